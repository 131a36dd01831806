package oauth

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/store"
)

// AuthorizeRequest is a validated authorization request.
type AuthorizeRequest struct {
	Client *opencalico.Client
	// RedirectURI is where the browser goes back to: the request's redirect_uri, or the
	// client's only registered one when the request had none.
	RedirectURI string
	// RequestedRedirectURI is the redirect_uri parameter as given ("" when omitted): the
	// token request must repeat it (RFC 6749 §4.1.3).
	RequestedRedirectURI string
	State                string
	Scope                string
	CodeChallenge        string
	CodeChallengeMethod  string // "S256", "plain" or "" (no PKCE: confidential clients only)
}

// pkceChallenge is the syntax of a code challenge and verifier (RFC 7636 §4.1, §4.2):
// 43 to 128 unreserved characters.
var pkceChallenge = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

// ValidateAuthorizeRequest checks the parameters of an authorization request, read from the
// URL's query (so that the widget's form posts, which keep the query, validate the same way).
// Its errors are *Error: write them with WriteAuthorizeError, which shows a page for an
// unknown client or redirect URI and redirects to the client otherwise.
func (s *Server) ValidateAuthorizeRequest(r *http.Request) (*AuthorizeRequest, error) {
	q := r.URL.Query()
	for _, p := range []string{"client_id", "redirect_uri", "response_type", "state", "scope", "code_challenge", "code_challenge_method"} {
		if len(q[p]) > 1 {
			// RFC 6749 §3.1: parameters must not be repeated. Before the redirect URI is
			// trusted, this can only be a page.
			return nil, oauthError(ErrInvalidRequest, "The parameter "+p+" is repeated.")
		}
	}
	clientID := q.Get("client_id")
	if clientID == "" {
		return nil, oauthError(ErrInvalidRequest, "The client_id parameter is missing.")
	}
	client, err := s.store.ClientByID(r.Context(), clientID)
	if opencalico.ErrorCodeOf(err) == opencalico.ENotFound {
		return nil, oauthError(ErrInvalidClient, "The application is not registered.")
	} else if err != nil {
		return nil, err
	}
	req := &AuthorizeRequest{Client: client, RequestedRedirectURI: q.Get("redirect_uri"), State: q.Get("state")}
	switch {
	case req.RequestedRedirectURI != "":
		// Exact string comparison (RFC 9700 §4.1.3): no prefix or pattern matching.
		if !slices.Contains(client.RedirectURIs, req.RequestedRedirectURI) {
			return nil, oauthError(ErrInvalidRequest, "The redirect_uri is not registered for this application.")
		}
		req.RedirectURI = req.RequestedRedirectURI
	case len(client.RedirectURIs) == 1:
		req.RedirectURI = client.RedirectURIs[0]
	default:
		return nil, oauthError(ErrInvalidRequest, "The redirect_uri parameter is missing.")
	}

	// From here on, errors go back to the client.
	fail := func(code, description string) (*AuthorizeRequest, error) {
		return nil, &Error{Code: code, Description: description, Redirect: req.RedirectURI, state: req.State}
	}
	if rt := q.Get("response_type"); rt != "code" {
		if rt == "" {
			return fail(ErrInvalidRequest, "The response_type parameter is missing.")
		}
		return fail(ErrUnsupportedResponseType, "Only response_type=code is supported.")
	}
	req.Scope = q.Get("scope")
	if req.Scope == "" {
		req.Scope = ScopeAccountsRead
	}
	if !validUserScope(req.Scope) {
		return fail(ErrInvalidScope, "The requested scope is not supported; use accounts:read.")
	}
	req.CodeChallenge = q.Get("code_challenge")
	req.CodeChallengeMethod = q.Get("code_challenge_method")
	switch {
	case req.CodeChallenge == "" && req.CodeChallengeMethod != "":
		return fail(ErrInvalidRequest, "code_challenge_method was given without a code_challenge.")
	case req.CodeChallenge == "":
		if client.Public {
			return fail(ErrInvalidRequest, "PKCE is required: send code_challenge and code_challenge_method=S256.")
		}
	case !pkceChallenge.MatchString(req.CodeChallenge):
		return fail(ErrInvalidRequest, "The code_challenge is malformed.")
	case req.CodeChallengeMethod == "S256":
	case req.CodeChallengeMethod == "plain" || req.CodeChallengeMethod == "":
		// RFC 7636 §4.3: a missing method means plain.
		if !client.AllowPlainPKCE {
			return fail(ErrInvalidRequest, "code_challenge_method=plain is not allowed for this application; use S256.")
		}
		req.CodeChallengeMethod = "plain"
	default:
		return fail(ErrInvalidRequest, "The code_challenge_method is not supported; use S256.")
	}
	return req, nil
}

// validUserScope reports whether scope (space-separated) asks only for scopes a user can grant.
func validUserScope(scope string) bool {
	for _, sc := range strings.Fields(scope) {
		if sc != ScopeAccountsRead {
			return false
		}
	}
	return strings.TrimSpace(scope) != ""
}

// IssueCode ends an approved authorization: it records (or reuses) the user's consent to the
// client and returns the URL to redirect the browser to, carrying a new code and the state.
func (s *Server) IssueCode(ctx context.Context, req *AuthorizeRequest, userID string) (string, error) {
	consent, err := s.consentFor(ctx, userID, req.Client.ID, req.Scope)
	if err != nil {
		return "", err
	}
	code := newSecret("occ_")
	now := s.now()
	if err := s.store.CreateOAuthCode(ctx, &store.OAuthCode{
		Hash: hashSecret(code), ClientID: req.Client.ID, UserID: userID, ConsentID: consent.ID,
		RedirectURI: req.RequestedRedirectURI, Scope: req.Scope, CodeChallenge: req.CodeChallenge,
		CodeChallengeMethod: req.CodeChallengeMethod, CreatedAt: now, ExpiresAt: now.Add(CodeTTL),
	}); err != nil {
		return "", err
	}
	params := url.Values{"code": {code}, "iss": {s.issuer}}
	if req.State != "" {
		params.Set("state", req.State)
	}
	return addQuery(req.RedirectURI, params), nil
}

// consentFor returns the user's active consent to the client, made if there is none. One
// consent per (user, client): a new authorization reuses it, with the newly approved scope.
func (s *Server) consentFor(ctx context.Context, userID, clientID, scope string) (*opencalico.Consent, error) {
	c, err := s.store.ActiveConsent(ctx, userID, clientID)
	switch {
	case err == nil:
		if c.Scope != scope {
			if err := s.store.SetConsentScope(ctx, c.ID, scope); err != nil {
				return nil, err
			}
			c.Scope = scope
		}
		return c, nil
	case opencalico.ErrorCodeOf(err) != opencalico.ENotFound:
		return nil, err
	}
	c = &opencalico.Consent{UserID: userID, ClientID: clientID, Scope: scope}
	if err := s.store.CreateConsent(ctx, c); err != nil {
		return nil, err
	}
	return c, nil
}

// DenyRedirect returns the URL that tells the client the user refused.
func (s *Server) DenyRedirect(req *AuthorizeRequest) string {
	e := &Error{Code: ErrAccessDenied, Description: "The user denied the request.", Redirect: req.RedirectURI, state: req.State}
	return e.RedirectURL(s.issuer)
}

// handleAuthorize validates the request and hands it to the widget.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	req, err := s.ValidateAuthorizeRequest(r)
	if err != nil {
		s.WriteAuthorizeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	// The widget's pages must not be framed by another site (clickjacking the consent).
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "frame-ancestors 'none'")
	if s.cfg.Widget == nil {
		s.WriteAuthorizeError(w, r, &Error{Code: ErrServerError, Description: "The sign-in widget is not available on this server."})
		return
	}
	s.cfg.Widget.ServeAuthorize(w, r, req)
}
