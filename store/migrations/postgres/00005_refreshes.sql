-- Refreshes and idempotent requests, PostgreSQL flavour. Keep in step with ../sqlite/00005_refreshes.sql.

-- +goose Up
-- A refresh a partner asked for: which connections, when. Its progress is not stored but
-- derived from the connections (sync_attempted_at, *_synced_at, status) and from the
-- transactions written since, so that it can never disagree with them.
CREATE TABLE refreshes (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL DEFAULT '',
    kind       TEXT NOT NULL, -- assets | transactions
    created_at BIGINT NOT NULL
);
-- No foreign key to connections: a removed connection keeps its place in old refreshes.
CREATE TABLE refresh_connections (
    refresh_id    TEXT NOT NULL REFERENCES refreshes (id) ON DELETE CASCADE,
    connection_id TEXT NOT NULL,
    provider_id   TEXT NOT NULL,
    requested_at  BIGINT NOT NULL,
    PRIMARY KEY (refresh_id, connection_id)
);
CREATE INDEX refresh_connections_recent ON refresh_connections (connection_id, requested_at);

-- When a sync stage last started on the connection: a failure status newer than a refresh
-- request is that refresh's outcome.
ALTER TABLE connections ADD COLUMN sync_attempted_at BIGINT;

-- Answers to POSTs carrying an Idempotency-Key, replayed when the same key comes again.
CREATE TABLE idempotent_requests (
    caller       TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       BIGINT NOT NULL,
    body         BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (caller, key)
);

-- +goose Down
DROP TABLE idempotent_requests;
ALTER TABLE connections DROP COLUMN sync_attempted_at;
DROP TABLE refresh_connections;
DROP TABLE refreshes;
