package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/opencalico/opencalico"
)

// emailKey is the form of an email that uniqueness and lookups use. It is computed in Go
// rather than with SQL lower(), whose folding differs between SQLite (ASCII only) and
// PostgreSQL.
func emailKey(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// CreateUser stores a new user, filling ID and CreatedAt when they are empty. An email already
// registered (in any letter case) is a bad_request error.
func (s *Store) CreateUser(ctx context.Context, u *opencalico.User) error {
	if strings.TrimSpace(u.Email) == "" {
		return opencalico.Errorf(opencalico.EBadRequest, "a user needs an email")
	}
	if u.ID == "" {
		u.ID = opencalico.NewID("usr")
	}
	if u.CreatedAt.IsZero() {
		u.CreatedAt = s.now()
	}
	u.CreatedAt = u.CreatedAt.UTC().Truncate(time.Microsecond)
	res, err := s.db.ExecContext(ctx, s.q(`INSERT INTO users (id, email, email_key, password_hash, created_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (email_key) DO NOTHING`),
		u.ID, u.Email, emailKey(u.Email), u.PasswordHash, micros(u.CreatedAt))
	if err != nil {
		return fmt.Errorf("store: creating user: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: creating user: %w", err)
	} else if n == 0 {
		return opencalico.Errorf(opencalico.EBadRequest, "an account with this email already exists")
	}
	return nil
}

const userColumns = `id, email, password_hash, created_at`

func scanUser(row interface{ Scan(...any) error }) (*opencalico.User, error) {
	var (
		u       opencalico.User
		created int64
	)
	if err := row.Scan(&u.ID, &u.Email, &u.PasswordHash, &created); err != nil {
		return nil, err
	}
	u.CreatedAt = fromMicros(created)
	return &u, nil
}

// UserByID returns the user with the id, or a not_found error.
func (s *Store) UserByID(ctx context.Context, id string) (*opencalico.User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, s.q(`SELECT `+userColumns+` FROM users WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("user", id)
	} else if err != nil {
		return nil, fmt.Errorf("store: reading user: %w", err)
	}
	return u, nil
}

// UserByEmail returns the user with the email, compared without regard to letter case.
func (s *Store) UserByEmail(ctx context.Context, email string) (*opencalico.User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, s.q(`SELECT `+userColumns+` FROM users WHERE email_key = ?`), emailKey(email)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, opencalico.Errorf(opencalico.ENotFound, "no user with this email")
	} else if err != nil {
		return nil, fmt.Errorf("store: reading user: %w", err)
	}
	return u, nil
}

// CreateClient stores a new partner client, filling CreatedAt when it is zero. The ID is the
// OAuth client_id and must be set by the caller (the oauth package decides its form).
func (s *Store) CreateClient(ctx context.Context, c *opencalico.Client) error {
	if c.ID == "" {
		return opencalico.Errorf(opencalico.EBadRequest, "a client needs an id")
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = s.now()
	}
	c.CreatedAt = c.CreatedAt.UTC().Truncate(time.Microsecond)
	uris := c.RedirectURIs
	if uris == nil {
		uris = []string{}
	}
	urisJSON, err := json.Marshal(uris)
	if err != nil {
		return fmt.Errorf("store: encoding redirect URIs: %w", err)
	}
	_, err = s.db.ExecContext(ctx, s.q(`INSERT INTO clients (id, name, secret_hash, redirect_uris, public, allow_plain_pkce, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`),
		c.ID, c.Name, c.SecretHash, string(urisJSON), c.Public, c.AllowPlainPKCE, micros(c.CreatedAt))
	if err != nil {
		return fmt.Errorf("store: creating client: %w", err)
	}
	return nil
}

const clientColumns = `id, name, secret_hash, redirect_uris, public, allow_plain_pkce, created_at`

func scanClient(row interface{ Scan(...any) error }) (*opencalico.Client, error) {
	var (
		c       opencalico.Client
		uris    []byte
		created int64
	)
	if err := row.Scan(&c.ID, &c.Name, &c.SecretHash, &uris, &c.Public, &c.AllowPlainPKCE, &created); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(uris, &c.RedirectURIs); err != nil {
		return nil, fmt.Errorf("decoding redirect URIs of client %q: %w", c.ID, err)
	}
	c.CreatedAt = fromMicros(created)
	return &c, nil
}

// ClientByID returns the client, or a not_found error.
func (s *Store) ClientByID(ctx context.Context, id string) (*opencalico.Client, error) {
	c, err := scanClient(s.db.QueryRowContext(ctx, s.q(`SELECT `+clientColumns+` FROM clients WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("client", id)
	} else if err != nil {
		return nil, fmt.Errorf("store: reading client: %w", err)
	}
	return c, nil
}

// ListClients returns every client, oldest first. Partners are few; no paging.
func (s *Store) ListClients(ctx context.Context) ([]*opencalico.Client, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+clientColumns+` FROM clients ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("store: listing clients: %w", err)
	}
	defer rows.Close()
	var out []*opencalico.Client
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, fmt.Errorf("store: listing clients: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: listing clients: %w", err)
	}
	return out, nil
}

// DeleteClient removes a client and, with it, every consent given to it.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	return s.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM consents WHERE client_id = ?`), id); err != nil {
			return fmt.Errorf("store: deleting client: %w", err)
		}
		res, err := tx.ExecContext(ctx, s.q(`DELETE FROM clients WHERE id = ?`), id)
		if err != nil {
			return fmt.Errorf("store: deleting client: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound("client", id)
		}
		return nil
	})
}

// CreateConsent stores a consent, filling ID and CreatedAt when they are empty.
func (s *Store) CreateConsent(ctx context.Context, c *opencalico.Consent) error {
	if c.ID == "" {
		c.ID = opencalico.NewID("cns")
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = s.now()
	}
	c.CreatedAt = c.CreatedAt.UTC().Truncate(time.Microsecond)
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO consents (id, user_id, client_id, scope, created_at, revoked_at)
		VALUES (?, ?, ?, ?, ?, ?)`),
		c.ID, c.UserID, c.ClientID, c.Scope, micros(c.CreatedAt), nullMicros(c.RevokedAt))
	if err != nil {
		return fmt.Errorf("store: creating consent: %w", err)
	}
	return nil
}

const consentColumns = `id, user_id, client_id, scope, created_at, revoked_at`

func scanConsent(row interface{ Scan(...any) error }) (*opencalico.Consent, error) {
	var (
		c       opencalico.Consent
		created int64
		revoked sql.NullInt64
	)
	if err := row.Scan(&c.ID, &c.UserID, &c.ClientID, &c.Scope, &created, &revoked); err != nil {
		return nil, err
	}
	c.CreatedAt = fromMicros(created)
	c.RevokedAt = fromNullMicros(revoked)
	return &c, nil
}

// ConsentByID returns the consent, revoked or not, or a not_found error.
func (s *Store) ConsentByID(ctx context.Context, id string) (*opencalico.Consent, error) {
	c, err := scanConsent(s.db.QueryRowContext(ctx, s.q(`SELECT `+consentColumns+` FROM consents WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("consent", id)
	} else if err != nil {
		return nil, fmt.Errorf("store: reading consent: %w", err)
	}
	return c, nil
}

// ConsentsForUser returns the user's consents, revoked ones included, oldest first.
func (s *Store) ConsentsForUser(ctx context.Context, userID string) ([]*opencalico.Consent, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+consentColumns+` FROM consents WHERE user_id = ? ORDER BY created_at, id`), userID)
	if err != nil {
		return nil, fmt.Errorf("store: listing consents: %w", err)
	}
	defer rows.Close()
	var out []*opencalico.Consent
	for rows.Next() {
		c, err := scanConsent(rows)
		if err != nil {
			return nil, fmt.Errorf("store: listing consents: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: listing consents: %w", err)
	}
	return out, nil
}

// RevokeConsent marks the consent revoked now. Revoking a revoked consent keeps its first
// revocation time and is not an error; an unknown id is not_found.
func (s *Store) RevokeConsent(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE consents SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`),
		micros(s.now()), id)
	if err != nil {
		return fmt.Errorf("store: revoking consent: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("consent", id)
	}
	return nil
}
