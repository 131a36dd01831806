package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/opencalico/opencalico"
)

// Provider OAuth states: a consent at a provider (Coinbase's own sign-in page) that a user
// started and has not finished. The state travels through the provider and comes back with
// the code; the store keeps only its SHA-256, which the connections package computes, bound to
// the user, the partner and the provider, with the PKCE code verifier sealed. A state is
// single use: ConsumeProviderOAuthState marks it used by compare-and-set, so two requests
// bringing it back at once (or a replay) cannot both go on to exchange the code.

// ProviderOAuthState is a stored provider OAuth state.
type ProviderOAuthState struct {
	Hash       string // hex SHA-256 of the state
	UserID     string
	ClientID   string // the partner that started it through the API; "" for the Connect widget
	ProviderID opencalico.ProviderID
	// Verifier is the PKCE code verifier, sealed (under the pseudo connection id
	// "oauth-state:<hash>", so that it opens for this state only).
	Verifier     opencalico.SealedSecret
	DisplayLabel string
	ReturnURL    string // where the user goes once the connection is made ("" for none)
	CreatedAt    time.Time
	ExpiresAt    time.Time
	UsedAt       *time.Time
}

// errStateUnusable is what every unusable state gets: unknown, used, expired, or issued to
// someone else. One answer for all, so that a caller learns nothing about other users' states.
func errStateUnusable() error {
	return opencalico.Errorf(opencalico.EInvalidState,
		"This sign-in at the provider is unknown, expired or was already used: start connecting again.")
}

// CreateProviderOAuthState stores a new state. States that expired more than a day ago are
// deleted on the way.
func (s *Store) CreateProviderOAuthState(ctx context.Context, st *ProviderOAuthState) error {
	if st.Hash == "" || st.UserID == "" || st.ProviderID == "" || len(st.Verifier.Ciphertext) == 0 {
		return opencalico.Errorf(opencalico.EBadRequest, "incomplete provider OAuth state")
	}
	if st.CreatedAt.IsZero() {
		st.CreatedAt = s.now()
	}
	return s.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM provider_oauth_states WHERE expires_at < ?`),
			micros(st.CreatedAt.Add(-24*time.Hour))); err != nil {
			return fmt.Errorf("store: purging provider OAuth states: %w", err)
		}
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO provider_oauth_states (state_hash, user_id, client_id, provider_id,
			verifier_key_id, verifier_wrapped, verifier_sealed, display_label, return_url, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			st.Hash, st.UserID, st.ClientID, string(st.ProviderID), st.Verifier.KeyID, st.Verifier.WrappedKey,
			st.Verifier.Ciphertext, st.DisplayLabel, st.ReturnURL, micros(st.CreatedAt), micros(st.ExpiresAt))
		if err != nil {
			return fmt.Errorf("store: creating provider OAuth state: %w", err)
		}
		return nil
	})
}

const providerStateColumns = `state_hash, user_id, client_id, provider_id, verifier_key_id, verifier_wrapped,
	verifier_sealed, display_label, return_url, created_at, expires_at, used_at`

func scanProviderState(row interface{ Scan(...any) error }) (*ProviderOAuthState, error) {
	var (
		st               ProviderOAuthState
		provider         string
		created, expires int64
		used             sql.NullInt64
	)
	if err := row.Scan(&st.Hash, &st.UserID, &st.ClientID, &provider, &st.Verifier.KeyID, &st.Verifier.WrappedKey,
		&st.Verifier.Ciphertext, &st.DisplayLabel, &st.ReturnURL, &created, &expires, &used); err != nil {
		return nil, err
	}
	st.ProviderID = opencalico.ProviderID(provider)
	st.Verifier.ConnectionID = "oauth-state:" + st.Hash
	st.CreatedAt, st.ExpiresAt, st.UsedAt = fromMicros(created), fromMicros(expires), fromNullMicros(used)
	return &st, nil
}

// ProviderOAuthState returns a state that can still be consumed at now (unused, unexpired),
// without consuming it: what the return page reads to know where a consent came from. Any
// other state is invalid_state.
func (s *Store) ProviderOAuthState(ctx context.Context, hash string, now time.Time) (*ProviderOAuthState, error) {
	row := s.db.QueryRowContext(ctx, s.q(`SELECT `+providerStateColumns+` FROM provider_oauth_states
		WHERE state_hash = ? AND used_at IS NULL AND expires_at > ?`), hash, micros(now))
	st, err := scanProviderState(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errStateUnusable()
	}
	if err != nil {
		return nil, fmt.Errorf("store: reading provider OAuth state: %w", err)
	}
	return st, nil
}

// ConsumeProviderOAuthState marks the state used at now and returns it, if it was issued to
// this user for this provider, is unused and has not expired: a compare-and-set, so that it is
// consumed once even by concurrent requests in several processes. Anything else (unknown,
// replayed, expired, another user's or another provider's) is invalid_state and changes
// nothing.
func (s *Store) ConsumeProviderOAuthState(ctx context.Context, hash, userID string, providerID opencalico.ProviderID, now time.Time) (*ProviderOAuthState, error) {
	var st *ProviderOAuthState
	err := s.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`UPDATE provider_oauth_states SET used_at = ?
			WHERE state_hash = ? AND user_id = ? AND provider_id = ? AND used_at IS NULL AND expires_at > ?`),
			micros(now), hash, userID, string(providerID), micros(now))
		if err != nil {
			return fmt.Errorf("store: consuming provider OAuth state: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("store: consuming provider OAuth state: %w", err)
		}
		if n != 1 {
			return errStateUnusable()
		}
		st, err = scanProviderState(tx.QueryRowContext(ctx, s.q(`SELECT `+providerStateColumns+`
			FROM provider_oauth_states WHERE state_hash = ?`), hash))
		if err != nil {
			return fmt.Errorf("store: reading provider OAuth state: %w", err)
		}
		return nil
	})
	return st, err
}
