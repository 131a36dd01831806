-- The initial schema, SQLite flavour. Times are INTEGER unix microseconds, amounts TEXT
-- (exact decimal strings), secrets BLOB. Keep in step with ../postgres/00001_initial.sql.

-- +goose Up
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL,
    -- email_key is the email lower-cased in Go, the same way on both backends (SQLite's
    -- lower() folds ASCII only), so that uniqueness is case-insensitive.
    email_key     TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL DEFAULT '',
    -- change_seq is the user's change counter: every write to the user's transactions bumps
    -- it in the writing transaction, which orders the changes feed (see transactions.go).
    change_seq    INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);

CREATE TABLE clients (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    secret_hash      TEXT NOT NULL DEFAULT '',
    redirect_uris    TEXT NOT NULL DEFAULT '[]', -- JSON array of strings
    public           INTEGER NOT NULL DEFAULT 0,
    allow_plain_pkce INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL
);

CREATE TABLE consents (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scope      TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX consents_user ON consents (user_id, created_at);
CREATE INDEX consents_client ON consents (client_id);

CREATE TABLE connections (
    id                     TEXT PRIMARY KEY,
    user_id                TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider_id            TEXT NOT NULL,
    display_label          TEXT NOT NULL DEFAULT '',
    type                   TEXT NOT NULL,
    status                 TEXT NOT NULL,
    status_detail          TEXT NOT NULL DEFAULT '{}', -- JSON of opencalico.StatusDetail
    fingerprint            TEXT NOT NULL DEFAULT '',
    address                TEXT NOT NULL DEFAULT '',
    chain                  TEXT NOT NULL DEFAULT '',
    created_at             INTEGER NOT NULL,
    last_synced_at         INTEGER,
    assets_synced_at       INTEGER,
    transactions_synced_at INTEGER
);
CREATE INDEX connections_user ON connections (user_id, created_at, id);
-- The same credential linked twice by one user is refused; connections without a
-- fingerprint (an OAuth2 grant not yet made) are exempt.
CREATE UNIQUE INDEX connections_fingerprint ON connections (user_id, provider_id, fingerprint)
    WHERE fingerprint <> '';

-- One sealed secret per connection. Nothing here is readable without the master key.
CREATE TABLE connection_secrets (
    connection_id TEXT PRIMARY KEY REFERENCES connections (id) ON DELETE CASCADE,
    key_id        TEXT NOT NULL,
    wrapped_key   BLOB NOT NULL,
    ciphertext    BLOB NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX connection_secrets_key ON connection_secrets (key_id);

CREATE TABLE positions (
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    user_id       TEXT NOT NULL,
    provider_id   TEXT NOT NULL,
    asset_symbol  TEXT NOT NULL,
    chain         TEXT NOT NULL DEFAULT '',
    asset_id      TEXT NOT NULL DEFAULT '',
    asset_name    TEXT NOT NULL DEFAULT '',
    quantity      TEXT NOT NULL,
    available     TEXT NOT NULL,
    locked        TEXT NOT NULL,
    staked        TEXT NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (connection_id, asset_symbol, chain, asset_id)
) WITHOUT ROWID;
CREATE INDEX positions_user ON positions (user_id, connection_id, asset_symbol, chain, asset_id);

CREATE TABLE transactions (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL,
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    provider_id   TEXT NOT NULL,
    external_id   TEXT NOT NULL,
    type          TEXT NOT NULL,
    category      TEXT NOT NULL,
    subcategory   TEXT NOT NULL DEFAULT '',
    provider_type TEXT NOT NULL DEFAULT '',
    status        TEXT NOT NULL,
    ts            INTEGER NOT NULL,
    tx_hash       TEXT NOT NULL DEFAULT '',
    chain         TEXT NOT NULL DEFAULT '',
    from_address  TEXT NOT NULL DEFAULT '',
    to_address    TEXT NOT NULL DEFAULT '',
    description   TEXT NOT NULL DEFAULT '',
    transfer_id   TEXT NOT NULL DEFAULT '',
    -- content_hash is opencalico.Transaction.ContentHash: an upsert of the same event
    -- compares hashes instead of columns.
    content_hash  TEXT NOT NULL,
    -- created_seq and change_seq are values of users.change_seq: when the row was added and
    -- when it last changed. They drive the changes feed.
    created_seq   INTEGER NOT NULL,
    change_seq    INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (connection_id, external_id)
);
CREATE INDEX transactions_user_ts ON transactions (user_id, ts, id);
CREATE INDEX transactions_user_change ON transactions (user_id, change_seq, id);

-- Legs and fees of transactions, one row each: side 'in' (inputs), 'out' (outputs) or 'fee'.
-- One table for all three, rather than columns or JSON on the transaction, so that the asset
-- filter is an indexed EXISTS probe by primary key, and amounts keep their exact SQL type.
CREATE TABLE transaction_legs (
    transaction_id TEXT NOT NULL REFERENCES transactions (id) ON DELETE CASCADE,
    side           TEXT NOT NULL,
    position       INTEGER NOT NULL,
    asset_symbol   TEXT NOT NULL,
    asset_id       TEXT NOT NULL DEFAULT '',
    amount         TEXT NOT NULL,
    address        TEXT NOT NULL DEFAULT '',
    fee_kind       TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (transaction_id, side, position)
) WITHOUT ROWID;

-- A tombstone per removed transaction, so that the changes feed can report removals.
CREATE TABLE transaction_tombstones (
    user_id        TEXT NOT NULL,
    seq            INTEGER NOT NULL,
    transaction_id TEXT NOT NULL,
    connection_id  TEXT NOT NULL,
    removed_at     INTEGER NOT NULL,
    PRIMARY KEY (user_id, seq, transaction_id)
) WITHOUT ROWID;

-- +goose Down
DROP TABLE transaction_tombstones;
DROP TABLE transaction_legs;
DROP TABLE transactions;
DROP TABLE positions;
DROP TABLE connection_secrets;
DROP TABLE connections;
DROP TABLE consents;
DROP TABLE clients;
DROP TABLE users;
