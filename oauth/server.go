// Package oauth is opencalico's OAuth 2.0 authorization server: the authorization endpoint
// (with PKCE), the token endpoint (authorization_code, refresh_token, client_credentials),
// revocation (RFC 7009), metadata (RFC 8414), the JWKS, and the bearer-token middleware that
// protects the API.
//
// Access tokens are EdDSA-signed JWTs (RFC 9068 profile) whose audience names the API they are
// for: "<issuer>/accounts" for tokens issued to a user's consent, "<issuer>/enterprise" for
// client_credentials tokens. Refresh tokens and codes are opaque random strings stored as
// SHA-256 hashes. Signing keys live in the database, their private half sealed by the master
// key, so that every process of a deployment signs and verifies with the same keys.
//
// The user-facing part of an authorization (sign-in, provider picker, consent screen) is the
// widget's: see Widget.
package oauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/store"
)

// Lifetimes fixed by the API.
const (
	AccessTokenTTL  = 15 * time.Minute
	RefreshTokenTTL = 365 * 24 * time.Hour
	CodeTTL         = 5 * time.Minute
)

// Scopes.
const (
	ScopeAccountsRead = "accounts:read"
	ScopeEnterprise   = "enterprise"
)

// Store is what the authorization server asks of the database (*store.Store).
type Store interface {
	ClientByID(ctx context.Context, id string) (*opencalico.Client, error)
	CreateConsent(ctx context.Context, c *opencalico.Consent) error
	ActiveConsent(ctx context.Context, userID, clientID string) (*opencalico.Consent, error)
	SetConsentScope(ctx context.Context, id, scope string) error
	ConsentByID(ctx context.Context, id string) (*opencalico.Consent, error)

	CreateOAuthCode(ctx context.Context, c *store.OAuthCode) error
	ConsumeOAuthCode(ctx context.Context, hash, grantID string, at time.Time) (*store.OAuthCode, error)
	RevokeOAuthGrant(ctx context.Context, id string, at time.Time) error
	CreateRefreshToken(ctx context.Context, t *store.RefreshToken) error
	RefreshTokenByHash(ctx context.Context, hash string) (*store.RefreshToken, error)
	RotateRefreshToken(ctx context.Context, oldHash string, next *store.RefreshToken, at time.Time) error
	RevokeAccessToken(ctx context.Context, jti string, expiresAt time.Time) error
	UserTokenActive(ctx context.Context, userID, clientID, consentID, grantID, jti string) (bool, error)
	ClientTokenActive(ctx context.Context, clientID, jti string) (bool, error)

	CreateSigningKey(ctx context.Context, k *store.SigningKey) error
	SigningKeys(ctx context.Context, since time.Time) ([]*store.SigningKey, error)
}

// Sealer seals signing keys under the master key (*secrets.Sealer).
type Sealer interface {
	Seal(id string, plaintext []byte) (opencalico.SealedSecret, error)
	Open(sealed opencalico.SealedSecret) ([]byte, error)
}

// Widget runs the user-facing part of an authorization. The server calls it with every
// request to /oauth/authorize or /connect whose parameters are valid. The widget signs the user
// in, lets them connect providers and shows the consent screen, then ends the flow by
// redirecting the browser to IssueCode's URL (allow) or DenyRedirect's (deny).
//
// The widget's own pages keep the original query string (post their forms to
// /connect?<query>), so that each step is validated again by the server before it reaches
// the widget.
type Widget interface {
	ServeAuthorize(w http.ResponseWriter, r *http.Request, req *AuthorizeRequest)
}

// Config configures the server.
type Config struct {
	// Issuer is the server's public base URL, without a trailing slash
	// ("https://calico.example.com"): the iss of tokens and the base of every endpoint URL.
	Issuer string
	// Widget serves the sign-in and consent steps; nil answers authorization requests with a
	// page saying the widget is not available.
	Widget Widget
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	Log *slog.Logger
}

// Server is the authorization server. It is safe for concurrent use.
type Server struct {
	cfg    Config
	store  Store
	keys   *keySet
	now    func() time.Time
	log    *slog.Logger
	issuer string
}

// New returns a server using db and sealer. It makes the first signing key when the database
// has none.
func New(ctx context.Context, cfg Config, db Store, sealer Sealer) (*Server, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("oauth: an issuer URL is required")
	}
	s := &Server{cfg: cfg, store: db, now: cfg.Now, log: cfg.Log, issuer: strings.TrimSuffix(cfg.Issuer, "/")}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.keys = &keySet{store: db, sealer: sealer, now: s.now}
	if err := s.keys.ensure(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// SetWidget sets the widget after construction (the widget usually needs the server).
func (s *Server) SetWidget(w Widget) { s.cfg.Widget = w }

// Issuer returns the issuer URL.
func (s *Server) Issuer() string { return s.issuer }

// AccountsAudience is the aud of tokens for the accounts API; EnterpriseAudience that of
// client_credentials tokens.
func (s *Server) AccountsAudience() string   { return s.issuer + "/accounts" }
func (s *Server) EnterpriseAudience() string { return s.issuer + "/enterprise" }

// RotateSigningKey makes a new signing key current. Older keys stay in the JWKS until the
// tokens they signed have expired.
func (s *Server) RotateSigningKey(ctx context.Context) error { return s.keys.rotate(ctx) }

// Router is where routes are mounted (*api.Server).
type Router interface {
	Handle(pattern string, h http.Handler)
}

// Mount adds the OAuth routes to r.
func (s *Server) Mount(r Router) {
	r.Handle("GET /oauth/authorize", http.HandlerFunc(s.handleAuthorize))
	r.Handle("POST /oauth/authorize", http.HandlerFunc(s.handleAuthorize))
	r.Handle("GET /connect", http.HandlerFunc(s.handleAuthorize))
	r.Handle("POST /connect", http.HandlerFunc(s.handleAuthorize))
	r.Handle("POST /oauth/token", http.HandlerFunc(s.handleToken))
	r.Handle("POST /oauth/revoke", http.HandlerFunc(s.handleRevoke))
	r.Handle("GET /.well-known/oauth-authorization-server", http.HandlerFunc(s.handleMetadata))
	r.Handle("GET /.well-known/jwks.json", http.HandlerFunc(s.handleJWKS))
}

// Handler returns the routes on a plain mux, for tests and for embedding.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	s.Mount(mux)
	return mux
}

// newSecret returns a fresh 256-bit random value, base64url without padding, with a prefix
// that tells what it is when it turns up somewhere (a log, a support ticket).
func newSecret(prefix string) string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// hashSecret is how codes, refresh tokens and client secrets are stored. They are 256-bit
// random values, so a plain SHA-256 resists guessing without a slow password hash.
func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}
