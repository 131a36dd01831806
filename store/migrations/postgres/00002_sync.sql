-- The sync engine's state, PostgreSQL flavour. Keep in step with ../sqlite/00002_sync.sql.

-- +goose Up
-- Where each sub-resource (stream) of a connection's history was read up to. A cursor is
-- written in the same database transaction as the rows it covers.
CREATE TABLE sync_cursors (
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    stream        TEXT NOT NULL,
    cursor        TEXT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (connection_id, stream)
);

-- The sync lease: at most one worker (of any process) syncs a connection at a time.
ALTER TABLE connections ADD COLUMN sync_holder TEXT NOT NULL DEFAULT '';
ALTER TABLE connections ADD COLUMN sync_lease_until BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE connections DROP COLUMN sync_lease_until;
ALTER TABLE connections DROP COLUMN sync_holder;
DROP TABLE sync_cursors;
