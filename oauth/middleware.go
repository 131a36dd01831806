package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Principal is who an API request acts for, from its access token.
type Principal struct {
	UserID    string // "" for a client_credentials token
	ClientID  string
	ConsentID string // "" for a client_credentials token
	Scope     string
	TokenID   string // the jti
}

// HasScope reports whether the token grants scope.
func (p *Principal) HasScope(scope string) bool {
	for _, s := range strings.Fields(p.Scope) {
		if s == scope {
			return true
		}
	}
	return false
}

type principalKey struct{}

// FromContext returns the principal Authenticate put in the context.
func FromContext(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok
}

// NewContext returns ctx carrying p; for tests of handlers behind Authenticate.
func NewContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// verifiedClaims are the claims of a token whose signature, issuer, audience and times were
// checked.
type verifiedClaims struct {
	jwt.Claims
	accessClaims
}

var errInvalidToken = errors.New("invalid token")

// verify checks a token's signature (with a published key), issuer, audience (when audience is
// not empty) and, unless ignoreExpiry, its validity period. The error says nothing more than
// "invalid": the caller is told why only in logs, never with token material.
func (s *Server) verify(ctx context.Context, token, audience string, ignoreExpiry bool) (*verifiedClaims, error) {
	parsed, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil || len(parsed.Headers) != 1 {
		return nil, errInvalidToken
	}
	if typ, _ := parsed.Headers[0].ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(typ, "at+jwt") {
		// Only our access tokens: no other JWT signed by these keys is accepted as one.
		return nil, errInvalidToken
	}
	pub, ok := s.keys.publicKey(ctx, parsed.Headers[0].KeyID)
	if !ok {
		return nil, errInvalidToken
	}
	var c verifiedClaims
	if err := parsed.Claims(pub, &c.Claims, &c.accessClaims); err != nil {
		return nil, errInvalidToken
	}
	expected := jwt.Expected{Issuer: s.issuer, Time: s.now()}
	if audience != "" {
		expected.AnyAudience = jwt.Audience{audience}
	}
	if ignoreExpiry {
		expected.Time = c.IssuedAt.Time()
	}
	if c.ID == "" || c.Subject == "" || c.ClientID == "" || c.Expiry == nil || c.IssuedAt == nil {
		return nil, errInvalidToken
	}
	if err := c.ValidateWithLeeway(expected, keyLeeway); err != nil {
		return nil, errInvalidToken
	}
	return &c, nil
}

// Authenticate protects the accounts API: it lets through requests with a valid access token
// issued to a user (audience AccountsAudience) whose consent and grant are still active, with
// the Principal in the context. Others get 401 with WWW-Authenticate and the API's error body.
func (s *Server) Authenticate(next http.Handler) http.Handler {
	return s.authenticate(next, s.AccountsAudience())
}

// AuthenticateEnterprise protects the Enterprise API: client_credentials tokens only
// (audience EnterpriseAudience), from clients that still exist.
func (s *Server) AuthenticateEnterprise(next http.Handler) http.Handler {
	return s.authenticate(next, s.EnterpriseAudience())
}

func (s *Server) authenticate(next http.Handler, audience string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.PrincipalFromRequest(r.Context(), r, audience)
		if err != nil {
			if !errors.Is(err, errInvalidToken) {
				s.log.ErrorContext(r.Context(), "oauth: checking access token", "err", err.Error())
			}
			writeUnauthorized(w, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), p)))
	})
}

// errNoToken is a request without a bearer token: RFC 6750 §3.1 says not to send an error
// code then.
var errNoToken = errors.New("no token")

// PrincipalFromRequest checks the request's bearer token for the audience and returns who it
// acts for. It is the function behind Authenticate, for callers that want it without the
// middleware.
func (s *Server) PrincipalFromRequest(ctx context.Context, r *http.Request, audience string) (*Principal, error) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return nil, errNoToken
	}
	c, err := s.verify(ctx, strings.TrimSpace(token), audience, false)
	if err != nil {
		return nil, err
	}
	p := &Principal{ClientID: c.ClientID, Scope: c.Scope, TokenID: c.ID}
	var active bool
	if audience == s.EnterpriseAudience() {
		if c.ConsentID != "" || c.Subject != c.ClientID {
			return nil, errInvalidToken
		}
		active, err = s.store.ClientTokenActive(ctx, c.ClientID, c.ID)
	} else {
		if c.ConsentID == "" {
			return nil, errInvalidToken
		}
		p.UserID, p.ConsentID = c.Subject, c.ConsentID
		active, err = s.store.UserTokenActive(ctx, c.Subject, c.ClientID, c.ConsentID, c.GrantID, c.ID)
	}
	if err != nil {
		return nil, err
	}
	if !active {
		return nil, errInvalidToken
	}
	return p, nil
}

// writeUnauthorized answers 401 in the API's CalicoErrorResponse shape (package api's
// envelope, repeated here so that this package does not depend on api).
func writeUnauthorized(w http.ResponseWriter, err error) {
	msg := "The access token is missing, invalid, expired or revoked."
	challenge := `Bearer error="invalid_token"`
	switch {
	case errors.Is(err, errNoToken):
		msg = "This endpoint needs an access token: send Authorization: Bearer <token>."
		challenge = `Bearer realm="opencalico"`
	case !errors.Is(err, errInvalidToken):
		// A database failure: no entry, and not the caller's fault.
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"cause": "internal_error", "message": "The access token could not be checked; try again."}}})
		return
	}
	w.Header().Set("WWW-Authenticate", challenge)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusUnauthorized)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"cause": "unauthorized", "message": msg}}})
}
