package coinbase

// The simulator's OAuth2 server: the part of login.coinbase.com that "Sign in with Coinbase"
// integrations use, served beside the API on the same handler.
//
//	GET  /oauth2/auth           the login page (email, password), then the consent page
//	POST /oauth2/auth           checks the login, shows the consent page ("Authorize", "Deny")
//	POST /oauth2/auth/consent   redirects to redirect_uri?code=…&state=… (or error=access_denied)
//	POST /oauth2/token          authorization_code (with PKCE) and refresh_token grants
//	POST /oauth2/revoke         revokes the grant of an access or refresh token; always 200
//
// Test accounts: seeded account i (0-based) signs in as LoginEmail(i), by default
// "user1@coinbase-sim.example" for the first, with the password LoginPassword. The OAuth user
// is that seeded account: its access tokens read the same wallets as its CDP key, under a
// rate-limit budget of its own ("per OAuth user", as Coinbase counts).
//
// Token behaviour, from Coinbase's documentation where it says, and otherwise the strictest
// reading (Coinbase's login service behaves as an Ory Hydra/fosite server):
//   - access tokens live one hour on the simulator's clock; refresh tokens 1.5 years;
//   - a refresh token can be exchanged once. There is no grace period in which the just-used
//     token is accepted again: Coinbase documents none, so a client must not rely on one;
//   - presenting a refresh token that was already used is answered invalid_grant. With
//     SetReplayRevokesGrant(true) the simulator also revokes the whole grant (its newest
//     access and refresh tokens), as Ory Hydra's reuse detection does: the strictest reading,
//     under which two clients racing with one refresh token both lose the connection;
//   - a refresh revokes the access token of the previous pair;
//   - an authorization code is single use and lives 10 minutes; a second use revokes the
//     grant it produced;
//   - revoking any token of a grant revokes the grant; /oauth2/revoke answers 200 whether or
//     not the token was known.
//
// API errors for bearer tokens are Coinbase's v2 bodies: 401 expired_token, revoked_token or
// invalid_token, and 403 invalid_scope when the grant lacks the endpoint's scope.

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// LoginPassword is the password of every seeded account on the simulator's login page.
const LoginPassword = "sim-password"

// The lifetimes the simulator enforces.
const (
	AccessTokenLifetime  = time.Hour
	RefreshTokenLifetime = 18 * 30 * 24 * time.Hour // about 1.5 years
	AuthCodeLifetime     = 10 * time.Minute
	loginTicketLifetime  = 10 * time.Minute
)

// The scopes the simulator knows. The API endpoints need the three read scopes; offline_access
// makes the token answer carry a refresh token.
var knownScopes = []string{"wallet:user:read", "wallet:accounts:read", "wallet:transactions:read",
	"wallet:addresses:read", "wallet:buys:read", "wallet:sells:read", "wallet:deposits:read",
	"wallet:withdrawals:read", "offline_access"}

// OAuthClient is an OAuth2 application registered with the simulator. A client without a
// Secret is public and must use PKCE.
type OAuthClient struct {
	ID           string
	Secret       string
	RedirectURIs []string // exact matches; the first is the default when a request has none
}

// OAuthStats count what the simulator's OAuth server did.
type OAuthStats struct {
	CodesIssued     int
	Exchanges       int // successful authorization_code grants
	Refreshes       int // successful refresh_token grants
	RefreshReplays  int // refresh tokens presented again after use
	InvalidGrants   int // every invalid_grant answer
	Revocations     int // successful /oauth2/revoke of a known token
	BearerAccepted  int
	BearerRejected  int
	LoginsFailed    int
	ConsentsGranted int
}

type oauthState struct {
	clients map[string]OAuthClient
	tickets map[string]*loginTicket
	codes   map[string]*authCode
	access  map[string]*accessToken
	refresh map[string]*refreshToken
	stats   OAuthStats
	// replayRevokes makes a replayed refresh token revoke its grant.
	replayRevokes bool
}

// SetReplayRevokesGrant chooses whether presenting an already used refresh token revokes the
// grant it belongs to (default false: only that request fails).
func (s *Simulator) SetReplayRevokesGrant(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oauth.replayRevokes = on
}

func newOAuthState() *oauthState {
	return &oauthState{clients: map[string]OAuthClient{}, tickets: map[string]*loginTicket{},
		codes: map[string]*authCode{}, access: map[string]*accessToken{}, refresh: map[string]*refreshToken{}}
}

// authRequest is a validated authorization request.
type authRequest struct {
	client        OAuthClient
	redirectURI   string // effective
	redirectGiven bool
	scopes        []string
	state         string
	challenge     string
	method        string
}

type loginTicket struct {
	req     authRequest
	user    *user
	expires time.Time
}

type authCode struct {
	req     authRequest
	user    *user
	expires time.Time
	used    bool
	grant   *grant // the grant it produced, revoked if the code is replayed
}

type grant struct {
	user    *user
	client  string
	scopes  []string
	revoked bool
}

type accessToken struct {
	grant   *grant
	expires time.Time
	revoked bool
}

type refreshToken struct {
	grant   *grant
	expires time.Time
	used    bool
}

// RegisterOAuthClient registers (or replaces) an OAuth2 application.
func (s *Simulator) RegisterOAuthClient(c OAuthClient) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	s.oauth.clients[c.ID] = c
}

// LoginEmail is the email seeded account i signs in with on the login page.
func (s *Simulator) LoginEmail(account int) string {
	return fmt.Sprintf("user%d@coinbase-sim.example", account+1)
}

// userByEmail maps a login to a seeded account; s.mu is held.
func (s *Simulator) userByEmail(email string) *user {
	email = strings.ToLower(strings.TrimSpace(email))
	for i, u := range s.users {
		if s.LoginEmail(i) == email {
			return u
		}
	}
	return nil
}

// OAuthStats returns the OAuth counters so far.
func (s *Simulator) OAuthStats() OAuthStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.oauth.stats
}

// RevokeOAuthAccess revokes every grant of an account, as a user removing the application in
// Coinbase's settings does: its access tokens answer 401 revoked_token, its refresh tokens
// invalid_grant.
func (s *Simulator) RevokeOAuthAccess(account int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[account]
	for _, a := range s.oauth.access {
		if a.grant.user == u {
			a.grant.revoked = true
		}
	}
	for _, r := range s.oauth.refresh {
		if r.grant.user == u {
			r.grant.revoked = true
		}
	}
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Simulator) serveOAuth(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/oauth2/auth" && (r.Method == http.MethodGet || r.Method == http.MethodPost):
		s.serveAuthorize(w, r)
	case r.URL.Path == "/oauth2/auth/consent" && r.Method == http.MethodPost:
		s.serveConsent(w, r)
	case r.URL.Path == "/oauth2/token" && r.Method == http.MethodPost:
		s.serveToken(w, r)
	case r.URL.Path == "/oauth2/revoke" && r.Method == http.MethodPost:
		s.serveRevoke(w, r)
	default:
		http.NotFound(w, r)
	}
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} – Coinbase (simulator)</title></head>
<body><main>
<h1>{{.Title}}</h1>
{{if .Error}}<p role="alert" class="error">{{.Error}}</p>{{end}}
{{if .Login}}<form method="post" action="{{.Action}}">
<label>Email <input type="email" name="email" autocomplete="username" required></label>
<label>Password <input type="password" name="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button>
</form>{{end}}
{{if .Consent}}<p><strong>{{.Client}}</strong> would like to access your Coinbase account ({{.User}}):</p>
<ul>{{range .Scopes}}<li>{{.}}</li>{{end}}</ul>
<form method="post" action="/oauth2/auth/consent">
<input type="hidden" name="ticket" value="{{.Ticket}}">
<button type="submit" name="decision" value="allow">Authorize</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>{{end}}
</main></body></html>
`))

type page struct {
	Title, Error, Action, Client, User, Ticket string
	Login, Consent                             bool
	Scopes                                     []string
}

func renderPage(w http.ResponseWriter, status int, p page) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = pageTemplate.Execute(w, p)
}

// authError is a problem with an authorization request. Errors found before the client and
// its redirect URI are trusted are shown on a page; the others go back to the client.
type authError struct {
	redirect bool
	code     string
	desc     string
}

// parseAuthRequest validates the query of /oauth2/auth; s.mu is held.
func (s *Simulator) parseAuthRequest(q url.Values) (authRequest, *authError) {
	var req authRequest
	c, ok := s.oauth.clients[q.Get("client_id")]
	if !ok {
		return req, &authError{code: "invalid_client", desc: "Unknown client_id."}
	}
	req.client = c
	req.redirectURI = q.Get("redirect_uri")
	req.redirectGiven = req.redirectURI != ""
	if !req.redirectGiven {
		if len(c.RedirectURIs) == 0 {
			return req, &authError{code: "invalid_request", desc: "The client has no redirect URI."}
		}
		req.redirectURI = c.RedirectURIs[0]
	} else if !slices.Contains(c.RedirectURIs, req.redirectURI) {
		return req, &authError{code: "invalid_request", desc: "The redirect_uri is not registered for this client."}
	}
	req.state = q.Get("state")
	if q.Get("response_type") != "code" {
		return req, &authError{redirect: true, code: "unsupported_response_type", desc: "response_type must be code."}
	}
	if req.state != "" && len(req.state) < 8 {
		return req, &authError{redirect: true, code: "invalid_request", desc: "state must be at least 8 characters long."}
	}
	for _, sc := range strings.FieldsFunc(q.Get("scope"), func(r rune) bool { return r == ',' || r == ' ' }) {
		if !slices.Contains(knownScopes, sc) {
			return req, &authError{redirect: true, code: "invalid_scope", desc: "Unknown scope " + sc + "."}
		}
		if !slices.Contains(req.scopes, sc) {
			req.scopes = append(req.scopes, sc)
		}
	}
	req.challenge, req.method = q.Get("code_challenge"), q.Get("code_challenge_method")
	switch {
	case req.challenge == "" && c.Secret == "":
		return req, &authError{redirect: true, code: "invalid_request", desc: "A public client must use PKCE."}
	case req.challenge == "":
	case req.method == "":
		req.method = "plain"
	case req.method != "S256" && req.method != "plain":
		return req, &authError{redirect: true, code: "invalid_request", desc: "code_challenge_method must be S256 or plain."}
	}
	if req.challenge != "" && (len(req.challenge) < 43 || len(req.challenge) > 128) {
		return req, &authError{redirect: true, code: "invalid_request", desc: "code_challenge must be 43 to 128 characters."}
	}
	return req, nil
}

// redirectTo sends the browser back to the client with params (and the request's state).
func redirectTo(w http.ResponseWriter, r *http.Request, req authRequest, params url.Values) {
	u, err := url.Parse(req.redirectURI)
	if err != nil {
		renderPage(w, http.StatusBadRequest, page{Title: "Error", Error: "Unusable redirect URI."})
		return
	}
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	if req.state != "" {
		q.Set("state", req.state)
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func (s *Simulator) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := r.URL.Query()
	req, aerr := s.parseAuthRequest(q)
	if aerr != nil {
		if aerr.redirect {
			redirectTo(w, r, req, url.Values{"error": {aerr.code}, "error_description": {aerr.desc}})
			return
		}
		renderPage(w, http.StatusBadRequest, page{Title: "Error", Error: aerr.code + ": " + aerr.desc})
		return
	}
	action := "/oauth2/auth?" + r.URL.RawQuery
	if r.Method == http.MethodGet {
		renderPage(w, http.StatusOK, page{Title: "Sign in to Coinbase", Login: true, Action: action})
		return
	}
	if err := r.ParseForm(); err != nil {
		renderPage(w, http.StatusBadRequest, page{Title: "Sign in to Coinbase", Login: true, Action: action, Error: "Unreadable form."})
		return
	}
	u := s.userByEmail(r.PostForm.Get("email"))
	if u == nil || subtle.ConstantTimeCompare([]byte(r.PostForm.Get("password")), []byte(LoginPassword)) != 1 {
		s.oauth.stats.LoginsFailed++
		renderPage(w, http.StatusUnauthorized, page{Title: "Sign in to Coinbase", Login: true, Action: action,
			Error: "Incorrect email or password."})
		return
	}
	ticket := randomToken()
	now := s.clock.Now()
	s.oauth.tickets[ticket] = &loginTicket{req: req, user: u, expires: now.Add(loginTicketLifetime)}
	for k, t := range s.oauth.tickets {
		if now.After(t.expires) {
			delete(s.oauth.tickets, k)
		}
	}
	renderPage(w, http.StatusOK, page{Title: "Authorize " + req.client.ID, Consent: true, Client: req.client.ID,
		User: s.LoginEmail(slices.Index(s.users, u)), Scopes: req.scopes, Ticket: ticket})
}

func (s *Simulator) serveConsent(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		renderPage(w, http.StatusBadRequest, page{Title: "Error", Error: "Unreadable form."})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	t, ok := s.oauth.tickets[r.PostForm.Get("ticket")]
	if ok {
		delete(s.oauth.tickets, r.PostForm.Get("ticket"))
	}
	if !ok || now.After(t.expires) {
		renderPage(w, http.StatusBadRequest, page{Title: "Error", Error: "This sign-in expired; start again from the application."})
		return
	}
	if r.PostForm.Get("decision") == "deny" {
		redirectTo(w, r, t.req, url.Values{"error": {"access_denied"}, "error_description": {"The user denied the request."}})
		return
	}
	code := randomToken()
	s.oauth.codes[code] = &authCode{req: t.req, user: t.user, expires: now.Add(AuthCodeLifetime)}
	s.oauth.stats.CodesIssued++
	s.oauth.stats.ConsentsGranted++
	redirectTo(w, r, t.req, url.Values{"code": {code}})
}

func writeOAuthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="oauth2"`)
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// clientAuth reads the client's credentials from HTTP Basic or the form; s.mu is held. ok is
// false when credentials were given and are wrong; c is nil when none were given.
func (s *Simulator) clientAuth(r *http.Request) (c *OAuthClient, ok bool) {
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id == "" {
		return nil, true
	}
	cl, known := s.oauth.clients[id]
	if !known || subtle.ConstantTimeCompare([]byte(secret), []byte(cl.Secret)) != 1 {
		return nil, false
	}
	return &cl, true
}

// issue makes a new pair for the grant: an access token, and a refresh token when the grant
// has offline_access. s.mu is held.
func (s *Simulator) issue(w http.ResponseWriter, g *grant) {
	now := s.clock.Now()
	at := randomToken()
	s.oauth.access[at] = &accessToken{grant: g, expires: now.Add(AccessTokenLifetime)}
	body := map[string]any{"access_token": at, "token_type": "bearer",
		"expires_in": int(AccessTokenLifetime.Seconds()), "scope": strings.Join(g.scopes, ",")}
	if slices.Contains(g.scopes, "offline_access") {
		rt := randomToken()
		s.oauth.refresh[rt] = &refreshToken{grant: g, expires: now.Add(RefreshTokenLifetime)}
		body["refresh_token"] = rt
	}
	if len(s.oauth.access) > 10000 {
		for k, a := range s.oauth.access {
			if now.Sub(a.expires) > 24*time.Hour {
				delete(s.oauth.access, k)
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(body)
}

// revokeGrant revokes every token of a grant; s.mu is held.
func (s *Simulator) revokeGrant(g *grant) {
	if g != nil {
		g.revoked = true
	}
}

func (s *Simulator) invalidGrant(w http.ResponseWriter, desc string) {
	s.oauth.stats.InvalidGrants++
	writeOAuthError(w, http.StatusBadRequest, "invalid_grant", desc)
}

func (s *Simulator) serveToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "Unreadable form body.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clientAuth(r)
	if !ok || c == nil {
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed.")
		return
	}
	now := s.clock.Now()
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		code := r.PostForm.Get("code")
		ac, ok := s.oauth.codes[code]
		switch {
		case !ok:
			s.invalidGrant(w, "The authorization code is invalid.")
			return
		case ac.used:
			// A replayed code revokes what it produced (RFC 6749 §4.1.2).
			s.revokeGrant(ac.grant)
			s.invalidGrant(w, "The authorization code has already been used.")
			return
		case now.After(ac.expires):
			s.invalidGrant(w, "The authorization code has expired.")
			return
		case ac.req.client.ID != c.ID:
			s.invalidGrant(w, "The authorization code was issued to another client.")
			return
		}
		if ru := r.PostForm.Get("redirect_uri"); ru != "" && ru != ac.req.redirectURI || ru == "" && ac.req.redirectGiven {
			s.invalidGrant(w, "The redirect_uri does not match the authorization request.")
			return
		}
		if ac.req.challenge != "" {
			v := r.PostForm.Get("code_verifier")
			want := v
			if ac.req.method == "S256" {
				sum := sha256.Sum256([]byte(v))
				want = base64.RawURLEncoding.EncodeToString(sum[:])
			}
			if len(v) < 43 || len(v) > 128 || subtle.ConstantTimeCompare([]byte(want), []byte(ac.req.challenge)) != 1 {
				s.invalidGrant(w, "The PKCE code_verifier does not match the code_challenge.")
				return
			}
		}
		ac.used = true
		g := &grant{user: ac.user, client: c.ID, scopes: ac.req.scopes}
		ac.grant = g
		s.oauth.stats.Exchanges++
		s.issue(w, g)
	case "refresh_token":
		rt, ok := s.oauth.refresh[r.PostForm.Get("refresh_token")]
		switch {
		case !ok:
			s.invalidGrant(w, "The refresh token is invalid.")
			return
		case rt.grant.client != c.ID:
			s.invalidGrant(w, "The refresh token was issued to another client.")
			return
		case rt.used:
			// Single use, no grace period.
			s.oauth.stats.RefreshReplays++
			if s.oauth.replayRevokes {
				s.revokeGrant(rt.grant)
			}
			s.invalidGrant(w, "The refresh token has already been used.")
			return
		case rt.grant.revoked:
			s.invalidGrant(w, "The refresh token has been revoked.")
			return
		case now.After(rt.expires):
			s.invalidGrant(w, "The refresh token has expired.")
			return
		}
		rt.used = true
		// The previous pair's access tokens stop working.
		for _, a := range s.oauth.access {
			if a.grant == rt.grant {
				a.revoked = true
			}
		}
		// The new pair stays in the grant (the token family), so that a later replay of any
		// of its refresh tokens, or a code replay, revokes the newest pair too.
		s.oauth.stats.Refreshes++
		s.issue(w, rt.grant)
	default:
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token.")
	}
}

func (s *Simulator) serveRevoke(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "Unreadable form body.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clientAuth(r)
	if !ok {
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed.")
		return
	}
	tok := r.PostForm.Get("token")
	var g *grant
	if a, ok := s.oauth.access[tok]; ok {
		g = a.grant
	} else if rt, ok := s.oauth.refresh[tok]; ok {
		g = rt.grant
	}
	if c == nil {
		// Without client credentials, the bearer token of the request must be an access token
		// of the same grant (Coinbase: "supply the current access token twice").
		bearer, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		a, ok := s.oauth.access[bearer]
		if !ok || a.revoked || a.grant.revoked || s.clock.Now().After(a.expires) {
			writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "Authenticate with client credentials or the access token.")
			return
		}
		if g != a.grant {
			g = nil
		}
	} else if g != nil && g.client != c.ID {
		g = nil
	}
	if g != nil && !g.revoked {
		s.revokeGrant(g)
		s.oauth.stats.Revocations++
	}
	w.WriteHeader(http.StatusOK)
}

// authFailure is why a request to the API was refused.
type authFailure struct {
	status      int
	id, message string
}

// requiredScope is the OAuth scope an API path needs.
func requiredScope(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(parts) == 2 && parts[1] == "user":
		return "wallet:user:read"
	case len(parts) >= 4 && parts[1] == "accounts" && parts[3] == "transactions":
		return "wallet:transactions:read"
	case len(parts) >= 2 && parts[1] == "accounts":
		return "wallet:accounts:read"
	}
	return ""
}

// authenticateAny accepts a CDP key JWT or an OAuth2 access token, and names the rate-limit
// budget the request draws from; s.mu is held.
func (s *Simulator) authenticateAny(r *http.Request) (*user, string, authFailure) {
	raw, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if strings.Count(raw, ".") == 2 {
		u, msg := s.authenticate(r)
		if u == nil {
			return nil, "", authFailure{http.StatusUnauthorized, "authentication_error", msg}
		}
		return u, u.keyName, authFailure{}
	}
	if raw == "" {
		return nil, "", authFailure{http.StatusUnauthorized, "authentication_error", "missing bearer token"}
	}
	a, ok := s.oauth.access[raw]
	switch {
	case !ok:
		s.oauth.stats.BearerRejected++
		return nil, "", authFailure{http.StatusUnauthorized, "invalid_token", "The access token is invalid"}
	case a.revoked || a.grant.revoked:
		s.oauth.stats.BearerRejected++
		return nil, "", authFailure{http.StatusUnauthorized, "revoked_token", "The access token was revoked"}
	case !s.clock.Now().Before(a.expires):
		s.oauth.stats.BearerRejected++
		return nil, "", authFailure{http.StatusUnauthorized, "expired_token", "The access token expired"}
	}
	if sc := requiredScope(r.URL.Path); sc != "" && !slices.Contains(a.grant.scopes, sc) {
		s.oauth.stats.BearerRejected++
		return nil, "", authFailure{http.StatusForbidden, "invalid_scope", "Invalid scope"}
	}
	s.oauth.stats.BearerAccepted++
	return a.grant.user, "oauth:" + a.grant.user.id, authFailure{}
}
