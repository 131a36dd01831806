-- Provider OAuth states, SQLite flavour. Keep in step with ../postgres/00006_provider_oauth.sql.

-- +goose Up
-- A consent at a provider (Coinbase's "Sign in with Coinbase") that a user started and has not
-- finished: the state sent with the consent URL, by its SHA-256 only (it is a bearer secret),
-- bound to the user, the partner that asked (client_id, '' when the Connect widget did) and the
-- provider, with the PKCE code verifier sealed (it must be given back to the provider with the
-- code). Single use: used_at is set by a compare-and-set when the consent comes back.
CREATE TABLE provider_oauth_states (
    state_hash        TEXT PRIMARY KEY, -- hex SHA-256 of the state
    user_id           TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id         TEXT NOT NULL DEFAULT '',
    provider_id       TEXT NOT NULL,
    verifier_key_id   TEXT NOT NULL,
    verifier_wrapped  BLOB NOT NULL,
    verifier_sealed   BLOB NOT NULL,
    display_label     TEXT NOT NULL DEFAULT '',
    return_url        TEXT NOT NULL DEFAULT '',
    created_at        INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL,
    used_at           INTEGER
);
CREATE INDEX provider_oauth_states_expires ON provider_oauth_states (expires_at);

-- +goose Down
DROP TABLE provider_oauth_states;
