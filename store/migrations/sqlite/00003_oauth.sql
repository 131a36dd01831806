-- The OAuth authorization server's state, SQLite flavour. Keep in step with
-- ../postgres/00003_oauth.sql. Codes and refresh tokens are stored as SHA-256 hashes only:
-- they are high-entropy bearer secrets, so a plain hash is enough and a stolen database
-- yields nothing usable.

-- +goose Up
CREATE TABLE oauth_codes (
    hash                  TEXT PRIMARY KEY, -- hex SHA-256 of the code
    client_id             TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id               TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    consent_id            TEXT NOT NULL REFERENCES consents (id) ON DELETE CASCADE,
    -- redirect_uri is the value the authorization request carried, '' when it had none.
    redirect_uri          TEXT NOT NULL DEFAULT '',
    scope                 TEXT NOT NULL,
    code_challenge        TEXT NOT NULL DEFAULT '',
    code_challenge_method TEXT NOT NULL DEFAULT '',
    created_at            INTEGER NOT NULL,
    expires_at            INTEGER NOT NULL,
    used_at               INTEGER
);
CREATE INDEX oauth_codes_expires ON oauth_codes (expires_at);

-- A grant is what one authorization code produced: a family of refresh tokens and the access
-- tokens issued with them (they carry its id). Revoking the grant stops them all.
CREATE TABLE oauth_grants (
    id         TEXT PRIMARY KEY,
    code_hash  TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    consent_id TEXT NOT NULL REFERENCES consents (id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX oauth_grants_code ON oauth_grants (code_hash);
CREATE INDEX oauth_grants_consent ON oauth_grants (consent_id);

CREATE TABLE oauth_refresh_tokens (
    hash        TEXT PRIMARY KEY, -- hex SHA-256 of the token
    grant_id    TEXT NOT NULL REFERENCES oauth_grants (id) ON DELETE CASCADE, -- the family
    parent_hash TEXT NOT NULL DEFAULT '', -- the token this one replaced, '' for the first
    user_id     TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    consent_id  TEXT NOT NULL,
    scope       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    revoked_at  INTEGER
);
CREATE INDEX oauth_refresh_tokens_grant ON oauth_refresh_tokens (grant_id);

-- Access tokens revoked before their expiry (RFC 7009), by jti; rows are useless after
-- expires_at.
CREATE TABLE oauth_revoked_access_tokens (
    jti        TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);

-- Token signing keys. The private key is sealed by the master key like a connection's
-- credentials (bound to the id "oauth-signing-key:<kid>"); the public key is in clear.
CREATE TABLE oauth_signing_keys (
    kid           TEXT PRIMARY KEY,
    algorithm     TEXT NOT NULL,
    public_key    BLOB NOT NULL,
    master_key_id TEXT NOT NULL,
    wrapped_key   BLOB NOT NULL,
    ciphertext    BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    retired_at    INTEGER -- set when a newer key became current
);

-- +goose Down
DROP TABLE oauth_signing_keys;
DROP TABLE oauth_revoked_access_tokens;
DROP TABLE oauth_refresh_tokens;
DROP TABLE oauth_grants;
DROP TABLE oauth_codes;
