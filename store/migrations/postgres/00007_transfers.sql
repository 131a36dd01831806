-- Transfers between a user's own connections, PostgreSQL flavour. Keep in step with
-- ../sqlite/00007_transfers.sql.

-- +goose Up
-- A linked side keeps the category its provider gave it, so that unlinking (when the other
-- side's connection is removed) restores it; the row's category then reads 'transfer'.
ALTER TABLE transactions ADD COLUMN category_before_link TEXT NOT NULL DEFAULT '';
-- tx_hash_key is the on-chain hash as the linker compares it: lower case, without the 0x of
-- EVM chains, so that the spellings providers use find each other with one index probe.
ALTER TABLE transactions ADD COLUMN tx_hash_key TEXT NOT NULL DEFAULT '';
-- The linker looks up the opposite side of a movement by its on-chain hash, and the sides
-- without a hash (exchanges that do not report one) by time: both among unlinked sends and
-- receives only, which is what these partial indexes hold.
CREATE INDEX transactions_unlinked_hash ON transactions (user_id, tx_hash_key)
    WHERE transfer_id = '' AND tx_hash_key <> '' AND type IN ('send', 'receive');
CREATE INDEX transactions_unlinked_hashless ON transactions (user_id, ts)
    WHERE transfer_id = '' AND tx_hash = '' AND type IN ('send', 'receive');
CREATE INDEX transactions_transfer ON transactions (user_id, transfer_id) WHERE transfer_id <> '';
-- The user's change sequence when the connection's transfers were last matched: the next pass
-- takes only the connection's sides changed since (the other connections' are looked up by
-- index), so that it costs what changed, not the whole history.
CREATE INDEX transactions_connection_change ON transactions (connection_id, change_seq);
ALTER TABLE connections ADD COLUMN transfers_linked_seq BIGINT NOT NULL DEFAULT 0;

-- +goose Down
DROP INDEX transactions_connection_change;
ALTER TABLE connections DROP COLUMN transfers_linked_seq;
DROP INDEX transactions_transfer;
DROP INDEX transactions_unlinked_hashless;
DROP INDEX transactions_unlinked_hash;
ALTER TABLE transactions DROP COLUMN tx_hash_key;
ALTER TABLE transactions DROP COLUMN category_before_link;
