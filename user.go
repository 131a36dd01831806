package opencalico

import "time"

// User is an end user: the owner of connections, who consents to partners reading them.
type User struct {
	ID    string // "usr_…"
	Email string
	// PasswordHash is an encoded password hash (argon2id or bcrypt); empty for users created
	// without a password (sandbox users).
	PasswordHash string
	CreatedAt    time.Time
}

// Client is a partner application registered with the authorization server.
type Client struct {
	ID   string // the OAuth client_id
	Name string
	// SecretHash is the hash of the client secret of a confidential client; empty for a
	// public client. The secret itself is shown once, at creation, and never stored.
	SecretHash     string
	RedirectURIs   []string
	Public         bool
	AllowPlainPKCE bool
	CreatedAt      time.Time
}

// Consent records that a user lets a partner client read their connections.
type Consent struct {
	ID        string // "cns_…"
	UserID    string
	ClientID  string
	Scope     string
	CreatedAt time.Time
	// RevokedAt is set once the user or the partner revoked the consent; a revoked consent
	// stops every token issued under it.
	RevokedAt *time.Time
}

// Active reports whether the consent has not been revoked.
func (c Consent) Active() bool { return c.RevokedAt == nil }
