package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/opencalico/opencalico"
)

// The state of the OAuth authorization server (package oauth). Codes and refresh tokens are
// identified by the hash of their value, which the oauth package computes: the store never
// sees a usable secret.

var (
	// ErrCodeReused is returned by ConsumeOAuthCode for a code that was already exchanged.
	ErrCodeReused = opencalico.Errorf(opencalico.EInvalidState, "authorization code already used")
	// ErrRefreshTokenReused is returned by RotateRefreshToken for a refresh token that was
	// already used or revoked.
	ErrRefreshTokenReused = opencalico.Errorf(opencalico.EInvalidState, "refresh token already used")
	// ErrGrantRevoked is returned by RotateRefreshToken when the token's grant was revoked.
	ErrGrantRevoked = opencalico.Errorf(opencalico.EInvalidState, "grant revoked")
)

// OAuthCode is a stored authorization code.
type OAuthCode struct {
	Hash                string
	ClientID            string
	UserID              string
	ConsentID           string
	RedirectURI         string // as given in the authorization request, "" when omitted
	Scope               string
	CodeChallenge       string
	CodeChallengeMethod string
	CreatedAt           time.Time
	ExpiresAt           time.Time
	UsedAt              *time.Time
}

// OAuthGrant is what one authorization code produced: a family of refresh tokens and the
// access tokens issued alongside them.
type OAuthGrant struct {
	ID        string
	CodeHash  string
	UserID    string
	ClientID  string
	ConsentID string
	Scope     string
	CreatedAt time.Time
	RevokedAt *time.Time
}

// RefreshToken is a stored refresh token.
type RefreshToken struct {
	Hash       string
	GrantID    string // the family
	ParentHash string
	UserID     string
	ClientID   string
	ConsentID  string
	Scope      string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	UsedAt     *time.Time
	RevokedAt  *time.Time
}

// SigningKey is a token signing key; the private key is sealed.
type SigningKey struct {
	ID         string // the JWS kid
	Algorithm  string
	PublicKey  []byte
	PrivateKey opencalico.SealedSecret
	CreatedAt  time.Time
	RetiredAt  *time.Time
}

// CreateOAuthCode stores a new authorization code.
func (s *Store) CreateOAuthCode(ctx context.Context, c *OAuthCode) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO oauth_codes (hash, client_id, user_id, consent_id,
		redirect_uri, scope, code_challenge, code_challenge_method, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		c.Hash, c.ClientID, c.UserID, c.ConsentID, c.RedirectURI, c.Scope, c.CodeChallenge,
		c.CodeChallengeMethod, micros(c.CreatedAt), micros(c.ExpiresAt))
	if err != nil {
		return fmt.Errorf("store: creating authorization code: %w", err)
	}
	return nil
}

const codeColumns = `hash, client_id, user_id, consent_id, redirect_uri, scope, code_challenge,
	code_challenge_method, created_at, expires_at, used_at`

func scanCode(row interface{ Scan(...any) error }) (*OAuthCode, error) {
	var (
		code             OAuthCode
		created, expires int64
		used             sql.NullInt64
	)
	if err := row.Scan(&code.Hash, &code.ClientID, &code.UserID, &code.ConsentID, &code.RedirectURI,
		&code.Scope, &code.CodeChallenge, &code.CodeChallengeMethod, &created, &expires, &used); err != nil {
		return nil, err
	}
	code.CreatedAt, code.ExpiresAt, code.UsedAt = fromMicros(created), fromMicros(expires), fromNullMicros(used)
	return &code, nil
}

// ConsumeOAuthCode marks the code used at `at` and, in the same transaction, creates the grant
// grantID from it, so that a grant exists for every spent code. The compare-and-set makes the
// code single-use even across processes.
//
// A code already used is not consumed again: every grant made from it is revoked (RFC 6749
// §4.1.2: the tokens issued from a reused code should be revoked) and the code is returned
// with ErrCodeReused. An unknown code is not_found. Expiry and bindings are the caller's to
// check, after consumption, so that a failed attempt spends the code too.
func (s *Store) ConsumeOAuthCode(ctx context.Context, hash, grantID string, at time.Time) (*OAuthCode, error) {
	var (
		code   *OAuthCode
		reused bool
	)
	err := s.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`UPDATE oauth_codes SET used_at = ? WHERE hash = ? AND used_at IS NULL`),
			micros(at), hash)
		if err != nil {
			return fmt.Errorf("store: consuming authorization code: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("store: consuming authorization code: %w", err)
		}
		if n == 1 {
			_, err = tx.ExecContext(ctx, s.q(`INSERT INTO oauth_grants (id, code_hash, user_id, client_id, consent_id, scope, created_at)
				SELECT ?, hash, user_id, client_id, consent_id, scope, ? FROM oauth_codes WHERE hash = ?`),
				grantID, micros(at), hash)
			if err != nil {
				return fmt.Errorf("store: creating grant: %w", err)
			}
		} else {
			reused = true
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE oauth_grants SET revoked_at = COALESCE(revoked_at, ?) WHERE code_hash = ?`),
				micros(at), hash); err != nil {
				return fmt.Errorf("store: revoking grants of a reused code: %w", err)
			}
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE oauth_refresh_tokens SET revoked_at = COALESCE(revoked_at, ?)
				WHERE grant_id IN (SELECT id FROM oauth_grants WHERE code_hash = ?)`), micros(at), hash); err != nil {
				return fmt.Errorf("store: revoking refresh tokens of a reused code: %w", err)
			}
		}
		code, err = scanCode(tx.QueryRowContext(ctx, s.q(`SELECT `+codeColumns+` FROM oauth_codes WHERE hash = ?`), hash))
		if errors.Is(err, sql.ErrNoRows) {
			return opencalico.Errorf(opencalico.ENotFound, "authorization code not found")
		} else if err != nil {
			return fmt.Errorf("store: reading authorization code: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if reused {
		return code, ErrCodeReused
	}
	return code, nil
}

// DeleteExpiredOAuthCodes removes codes that expired before `before`; spent codes are kept
// until then so that a replay within their lifetime is still recognised as one.
func (s *Store) DeleteExpiredOAuthCodes(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM oauth_codes WHERE expires_at < ?`), micros(before))
	if err != nil {
		return 0, fmt.Errorf("store: deleting expired codes: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

const grantColumns = `id, code_hash, user_id, client_id, consent_id, scope, created_at, revoked_at`

// OAuthGrantByID returns the grant, revoked or not, or a not_found error.
func (s *Store) OAuthGrantByID(ctx context.Context, id string) (*OAuthGrant, error) {
	var (
		g       OAuthGrant
		created int64
		revoked sql.NullInt64
	)
	err := s.db.QueryRowContext(ctx, s.q(`SELECT `+grantColumns+` FROM oauth_grants WHERE id = ?`), id).
		Scan(&g.ID, &g.CodeHash, &g.UserID, &g.ClientID, &g.ConsentID, &g.Scope, &created, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("grant", id)
	} else if err != nil {
		return nil, fmt.Errorf("store: reading grant: %w", err)
	}
	g.CreatedAt, g.RevokedAt = fromMicros(created), fromNullMicros(revoked)
	return &g, nil
}

// RevokeOAuthGrant revokes the grant and every refresh token of its family. Revoking twice
// keeps the first time; an unknown id is not an error (revocation is idempotent).
func (s *Store) RevokeOAuthGrant(ctx context.Context, id string, at time.Time) error {
	return s.InTx(ctx, func(tx *sql.Tx) error { return s.revokeGrantTx(ctx, tx, id, at) })
}

func (s *Store) revokeGrantTx(ctx context.Context, tx *sql.Tx, id string, at time.Time) error {
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE oauth_grants SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`),
		micros(at), id); err != nil {
		return fmt.Errorf("store: revoking grant: %w", err)
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE oauth_refresh_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE grant_id = ?`),
		micros(at), id); err != nil {
		return fmt.Errorf("store: revoking refresh tokens: %w", err)
	}
	return nil
}

// CreateRefreshToken stores a refresh token (the first of a family; later ones come from
// RotateRefreshToken).
func (s *Store) CreateRefreshToken(ctx context.Context, t *RefreshToken) error {
	return s.insertRefreshToken(ctx, s.db, t)
}

func (s *Store) insertRefreshToken(ctx context.Context, db interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, t *RefreshToken) error {
	_, err := db.ExecContext(ctx, s.q(`INSERT INTO oauth_refresh_tokens (hash, grant_id, parent_hash, user_id,
		client_id, consent_id, scope, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		t.Hash, t.GrantID, t.ParentHash, t.UserID, t.ClientID, t.ConsentID, t.Scope,
		micros(t.CreatedAt), micros(t.ExpiresAt))
	if err != nil {
		return fmt.Errorf("store: creating refresh token: %w", err)
	}
	return nil
}

const refreshColumns = `hash, grant_id, parent_hash, user_id, client_id, consent_id, scope,
	created_at, expires_at, used_at, revoked_at`

// RefreshTokenByHash returns the refresh token, spent or not, or a not_found error.
func (s *Store) RefreshTokenByHash(ctx context.Context, hash string) (*RefreshToken, error) {
	var (
		t                RefreshToken
		created, expires int64
		used, revoked    sql.NullInt64
	)
	err := s.db.QueryRowContext(ctx, s.q(`SELECT `+refreshColumns+` FROM oauth_refresh_tokens WHERE hash = ?`), hash).
		Scan(&t.Hash, &t.GrantID, &t.ParentHash, &t.UserID, &t.ClientID, &t.ConsentID, &t.Scope,
			&created, &expires, &used, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, opencalico.Errorf(opencalico.ENotFound, "refresh token not found")
	} else if err != nil {
		return nil, fmt.Errorf("store: reading refresh token: %w", err)
	}
	t.CreatedAt, t.ExpiresAt = fromMicros(created), fromMicros(expires)
	t.UsedAt, t.RevokedAt = fromNullMicros(used), fromNullMicros(revoked)
	return &t, nil
}

// RotateRefreshToken spends the refresh token oldHash and stores next in its family, in one
// transaction. The compare-and-set on used_at lets only one use win.
//
// A token already spent or revoked is reuse, the sign of a stolen token: the whole family is
// revoked (committed) and ErrRefreshTokenReused returned, so the newer token fails too. A
// token whose grant was revoked gives ErrGrantRevoked and nothing is stored.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash string, next *RefreshToken, at time.Time) error {
	reused := false
	err := s.InTx(ctx, func(tx *sql.Tx) error {
		var grantID string
		var grantRevoked sql.NullInt64
		err := tx.QueryRowContext(ctx, s.q(`SELECT g.id, g.revoked_at FROM oauth_refresh_tokens t
			JOIN oauth_grants g ON g.id = t.grant_id WHERE t.hash = ?`), oldHash).Scan(&grantID, &grantRevoked)
		if errors.Is(err, sql.ErrNoRows) {
			return opencalico.Errorf(opencalico.ENotFound, "refresh token not found")
		} else if err != nil {
			return fmt.Errorf("store: reading refresh token: %w", err)
		}
		res, err := tx.ExecContext(ctx, s.q(`UPDATE oauth_refresh_tokens SET used_at = ?
			WHERE hash = ? AND used_at IS NULL AND revoked_at IS NULL`), micros(at), oldHash)
		if err != nil {
			return fmt.Errorf("store: spending refresh token: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("store: spending refresh token: %w", err)
		} else if n == 0 {
			reused = true
			return s.revokeGrantTx(ctx, tx, grantID, at)
		}
		if grantRevoked.Valid {
			return ErrGrantRevoked
		}
		next.GrantID, next.ParentHash = grantID, oldHash
		return s.insertRefreshToken(ctx, tx, next)
	})
	if err != nil {
		return err
	}
	if reused {
		return ErrRefreshTokenReused
	}
	return nil
}

// RevokeAccessToken records the jti of an access token revoked before its expiry. Revoking
// twice is not an error.
func (s *Store) RevokeAccessToken(ctx context.Context, jti string, expiresAt time.Time) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO oauth_revoked_access_tokens (jti, expires_at) VALUES (?, ?)
		ON CONFLICT (jti) DO NOTHING`), jti, micros(expiresAt))
	if err != nil {
		return fmt.Errorf("store: revoking access token: %w", err)
	}
	return nil
}

// UserTokenActive reports whether an access token issued to a user may still be used: its
// consent exists for that user and client and is not revoked, its grant (when grantID is not
// empty) is not revoked, and its jti was not revoked. One query, run on every API request.
func (s *Store) UserTokenActive(ctx context.Context, userID, clientID, consentID, grantID, jti string) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM consents c
		WHERE c.id = ? AND c.user_id = ? AND c.client_id = ? AND c.revoked_at IS NULL
		AND (? = '' OR EXISTS (SELECT 1 FROM oauth_grants g WHERE g.id = ? AND g.consent_id = c.id AND g.revoked_at IS NULL))
		AND NOT EXISTS (SELECT 1 FROM oauth_revoked_access_tokens r WHERE r.jti = ?)`),
		consentID, userID, clientID, grantID, grantID, jti).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("store: checking token: %w", err)
	}
	return n == 1, nil
}

// ClientTokenActive reports whether a client_credentials access token may still be used: its
// client still exists and its jti was not revoked.
func (s *Store) ClientTokenActive(ctx context.Context, clientID, jti string) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM clients c WHERE c.id = ?
		AND NOT EXISTS (SELECT 1 FROM oauth_revoked_access_tokens r WHERE r.jti = ?)`), clientID, jti).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("store: checking token: %w", err)
	}
	return n == 1, nil
}

// ActiveConsent returns the user's active consent for the client, or a not_found error.
// There is normally at most one; the newest wins.
func (s *Store) ActiveConsent(ctx context.Context, userID, clientID string) (*opencalico.Consent, error) {
	c, err := scanConsent(s.db.QueryRowContext(ctx, s.q(`SELECT `+consentColumns+` FROM consents
		WHERE user_id = ? AND client_id = ? AND revoked_at IS NULL ORDER BY created_at DESC, id DESC LIMIT 1`),
		userID, clientID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, opencalico.Errorf(opencalico.ENotFound, "no active consent")
	} else if err != nil {
		return nil, fmt.Errorf("store: reading consent: %w", err)
	}
	return c, nil
}

// SetConsentScope replaces the scope of a consent (the user consented again, to other scopes).
func (s *Store) SetConsentScope(ctx context.Context, id, scope string) error {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE consents SET scope = ? WHERE id = ?`), scope, id)
	if err != nil {
		return fmt.Errorf("store: updating consent: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("consent", id)
	}
	return nil
}

// CreateSigningKey stores a new signing key and retires every other current key at the key's
// creation time, in one transaction: the new key becomes the one that signs.
func (s *Store) CreateSigningKey(ctx context.Context, k *SigningKey) error {
	k.CreatedAt = k.CreatedAt.UTC().Truncate(time.Microsecond)
	return s.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE oauth_signing_keys SET retired_at = ? WHERE retired_at IS NULL`),
			micros(k.CreatedAt)); err != nil {
			return fmt.Errorf("store: retiring signing keys: %w", err)
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO oauth_signing_keys (kid, algorithm, public_key,
			master_key_id, wrapped_key, ciphertext, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`),
			k.ID, k.Algorithm, k.PublicKey, k.PrivateKey.KeyID, k.PrivateKey.WrappedKey, k.PrivateKey.Ciphertext,
			micros(k.CreatedAt)); err != nil {
			return fmt.Errorf("store: creating signing key: %w", err)
		}
		return nil
	})
}

// SigningKeys returns the signing keys retired at or after `since` and the current ones,
// newest first. PrivateKey.ConnectionID is left empty: the caller knows what id it sealed
// the key under.
func (s *Store) SigningKeys(ctx context.Context, since time.Time) ([]*SigningKey, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT kid, algorithm, public_key, master_key_id, wrapped_key,
		ciphertext, created_at, retired_at FROM oauth_signing_keys
		WHERE retired_at IS NULL OR retired_at >= ? ORDER BY created_at DESC, kid DESC`), micros(since))
	if err != nil {
		return nil, fmt.Errorf("store: listing signing keys: %w", err)
	}
	defer rows.Close()
	var out []*SigningKey
	for rows.Next() {
		var (
			k       SigningKey
			created int64
			retired sql.NullInt64
		)
		if err := rows.Scan(&k.ID, &k.Algorithm, &k.PublicKey, &k.PrivateKey.KeyID, &k.PrivateKey.WrappedKey,
			&k.PrivateKey.Ciphertext, &created, &retired); err != nil {
			return nil, fmt.Errorf("store: listing signing keys: %w", err)
		}
		k.CreatedAt, k.RetiredAt = fromMicros(created), fromNullMicros(retired)
		out = append(out, &k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: listing signing keys: %w", err)
	}
	return out, nil
}
