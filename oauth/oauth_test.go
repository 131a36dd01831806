package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/secrets"
	"github.com/opencalico/opencalico/store"
)

// clock is an adjustable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testWidget stands in for the Connect widget: the user is signed in already (userID) and
// approves, unless the request carries deny=1.
type testWidget struct {
	srv    *Server
	userID string
}

func (w *testWidget) ServeAuthorize(rw http.ResponseWriter, r *http.Request, req *AuthorizeRequest) {
	if r.URL.Query().Get("deny") == "1" {
		http.Redirect(rw, r, w.srv.DenyRedirect(req), http.StatusFound)
		return
	}
	to, err := w.srv.IssueCode(r.Context(), req, w.userID)
	if err != nil {
		w.srv.WriteAuthorizeError(rw, r, err)
		return
	}
	http.Redirect(rw, r, to, http.StatusFound)
}

type harness struct {
	t      *testing.T
	db     *store.Store
	srv    *Server
	clock  *clock
	ts     *httptest.Server
	user   *opencalico.User
	http   *http.Client // does not follow redirects
	secret map[string]string
}

const redirectURI = "https://partner.example/callback"

func newHarness(t *testing.T) *harness {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	ring, err := secrets.NewKeyring(secrets.GenerateMasterKey())
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, db: db, clock: &clock{t: time.Now().UTC()}, secret: map[string]string{}}
	mux := http.NewServeMux()
	h.ts = httptest.NewServer(mux)
	t.Cleanup(h.ts.Close)
	h.srv, err = New(ctx, Config{Issuer: h.ts.URL, Now: h.clock.Now}, db, secrets.NewSealer(ring))
	if err != nil {
		t.Fatal(err)
	}
	h.user = &opencalico.User{Email: "alice@example.com"}
	if err := db.CreateUser(ctx, h.user); err != nil {
		t.Fatal(err)
	}
	h.srv.SetWidget(&testWidget{srv: h.srv, userID: h.user.ID})
	h.srv.Mount(mux)
	whoami := func(w http.ResponseWriter, r *http.Request) {
		p, _ := FromContext(r.Context())
		_ = json.NewEncoder(w).Encode(p)
	}
	mux.Handle("GET /accounts/v2/whoami", h.srv.Authenticate(http.HandlerFunc(whoami)))
	mux.Handle("GET /enterprise/v1/whoami", h.srv.AuthenticateEnterprise(http.HandlerFunc(whoami)))
	h.http = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return h
}

// client registers a client and returns it; its secret is in h.secret.
func (h *harness) client(public, allowPlain bool, uris ...string) *opencalico.Client {
	h.t.Helper()
	if len(uris) == 0 {
		uris = []string{redirectURI}
	}
	c, secret, err := NewClient("Partner", uris, public, allowPlain)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.db.CreateClient(context.Background(), c); err != nil {
		h.t.Fatal(err)
	}
	h.secret[c.ID] = secret
	return c
}

func (h *harness) config(c *opencalico.Client) *oauth2.Config {
	style := oauth2.AuthStyleInHeader
	if c.Public {
		style = oauth2.AuthStyleInParams
	}
	return &oauth2.Config{ClientID: c.ID, ClientSecret: h.secret[c.ID], RedirectURL: redirectURI,
		Scopes:   []string{ScopeAccountsRead},
		Endpoint: oauth2.Endpoint{AuthURL: h.ts.URL + "/oauth/authorize", TokenURL: h.ts.URL + "/oauth/token", AuthStyle: style}}
}

// authorize sends the browser to authURL and returns where it is sent back to.
func (h *harness) authorize(authURL string) (*http.Response, *url.URL) {
	h.t.Helper()
	resp, err := h.http.Get(authURL)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusFound {
		return resp, nil
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		h.t.Fatal(err)
	}
	return resp, loc
}

// code runs an authorization with PKCE S256 and returns the code and the verifier.
func (h *harness) code(c *opencalico.Client) (code, verifier string) {
	h.t.Helper()
	verifier = oauth2.GenerateVerifier()
	_, loc := h.authorize(h.config(c).AuthCodeURL("st-1", oauth2.S256ChallengeOption(verifier)))
	if loc == nil || loc.Query().Get("code") == "" || loc.Query().Get("state") != "st-1" {
		h.t.Fatalf("authorization redirect = %v", loc)
	}
	return loc.Query().Get("code"), verifier
}

// whoami calls the accounts API with the access token.
func (h *harness) whoami(path, token string) (int, string, http.Header) {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.ts.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

// wantOAuthError asserts that err is the token endpoint's error code and description.
func wantOAuthError(t *testing.T, err error, code, description string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want a RetrieveError %s", err, code)
	}
	if re.ErrorCode != code || re.ErrorDescription != description {
		t.Fatalf("error = %q %q, want %q %q", re.ErrorCode, re.ErrorDescription, code, description)
	}
}

const unauthorizedBody = `{"errors":[{"cause":"unauthorized","message":"The access token is missing, invalid, expired or revoked."}]}` + "\n"

func (h *harness) wantUnauthorized(t *testing.T, path, token string) {
	t.Helper()
	status, body, hdr := h.whoami(path, token)
	if status != http.StatusUnauthorized || body != unauthorizedBody || hdr.Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
		t.Fatalf("got %d %s %q, want 401 unauthorized with invalid_token", status, body, hdr.Get("WWW-Authenticate"))
	}
}

func TestHappyPath(t *testing.T) {
	for _, public := range []bool{false, true} {
		t.Run(map[bool]string{false: "confidential", true: "public"}[public], func(t *testing.T) {
			h := newHarness(t)
			c := h.client(public, false)
			conf := h.config(c)
			ctx := context.Background()
			code, verifier := h.code(c)
			tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatal(err)
			}
			if tok.RefreshToken == "" || tok.TokenType != "Bearer" || tok.Extra("scope") != ScopeAccountsRead {
				t.Fatalf("token = %+v", tok)
			}
			if d := time.Until(tok.Expiry); d < 14*time.Minute || d > 16*time.Minute {
				t.Fatalf("access token lives %v, want 15m", d)
			}
			status, body, _ := h.whoami("/accounts/v2/whoami", tok.AccessToken)
			var p Principal
			if err := json.Unmarshal([]byte(body), &p); status != 200 || err != nil {
				t.Fatalf("whoami = %d %s", status, body)
			}
			if p.UserID != h.user.ID || p.ClientID != c.ID || !strings.HasPrefix(p.ConsentID, "cns_") || !p.HasScope(ScopeAccountsRead) {
				t.Fatalf("principal = %+v", p)
			}

			// Refresh renews both tokens.
			tok2, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
			if err != nil {
				t.Fatal(err)
			}
			if tok2.RefreshToken == tok.RefreshToken || tok2.AccessToken == tok.AccessToken {
				t.Fatal("refresh did not rotate the tokens")
			}
			if status, body, _ := h.whoami("/accounts/v2/whoami", tok2.AccessToken); status != 200 || !strings.Contains(body, p.ConsentID) {
				t.Fatalf("whoami after refresh = %d %s", status, body)
			}

			// A second authorization reuses the consent.
			code, verifier = h.code(c)
			tok3, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatal(err)
			}
			if _, body, _ := h.whoami("/accounts/v2/whoami", tok3.AccessToken); !strings.Contains(body, p.ConsentID) {
				t.Fatalf("second authorization made a new consent: %s", body)
			}
			consents, _ := h.db.ConsentsForUser(ctx, h.user.ID)
			if len(consents) != 1 {
				t.Fatalf("%d consents, want 1", len(consents))
			}
		})
	}
}

func TestAuthorizeErrors(t *testing.T) {
	h := newHarness(t)
	public := h.client(true, false)
	plain := h.client(true, true)
	twoURIs := h.client(false, false, redirectURI, "https://partner.example/other")
	challenge := oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())
	q := func(c *opencalico.Client, kv ...string) string {
		v := url.Values{"client_id": {c.ID}, "response_type": {"code"}, "state": {"xyz"},
			"code_challenge": {challenge}, "code_challenge_method": {"S256"}}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				v.Del(kv[i])
			} else {
				v.Set(kv[i], kv[i+1])
			}
		}
		return h.ts.URL + "/oauth/authorize?" + v.Encode()
	}
	tests := []struct {
		name string
		url  string
		// page: an error page with this description, and no redirect.
		page string
		// redirect: error and description sent to the redirect URI.
		redirect, description string
	}{
		{name: "unknown client", url: q(&opencalico.Client{ID: "cli_unknown"}), page: "The application is not registered."},
		{name: "missing client", url: q(public, "client_id", ""), page: "The client_id parameter is missing."},
		{name: "unregistered redirect URI", url: q(public, "redirect_uri", "https://evil.example/cb"), page: "The redirect_uri is not registered for this application."},
		{name: "redirect URI prefix", url: q(public, "redirect_uri", redirectURI+"/x"), page: "The redirect_uri is not registered for this application."},
		{name: "redirect URI needed with two", url: q(twoURIs), page: "The redirect_uri parameter is missing."},
		{name: "missing challenge, public client", url: q(public, "code_challenge", "", "code_challenge_method", ""),
			redirect: "invalid_request", description: "PKCE is required: send code_challenge and code_challenge_method=S256."},
		{name: "plain refused", url: q(public, "code_challenge_method", "plain"),
			redirect: "invalid_request", description: "code_challenge_method=plain is not allowed for this application; use S256."},
		{name: "unknown method", url: q(public, "code_challenge_method", "S512"),
			redirect: "invalid_request", description: "The code_challenge_method is not supported; use S256."},
		{name: "response type", url: q(public, "response_type", "token"),
			redirect: "unsupported_response_type", description: "Only response_type=code is supported."},
		{name: "scope", url: q(public, "scope", "enterprise"),
			redirect: "invalid_scope", description: "The requested scope is not supported; use accounts:read."},
		{name: "denied", url: q(public, "deny", "1"), redirect: "access_denied", description: "The user denied the request."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := h.http.Get(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if tt.page != "" {
				if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" ||
					!strings.Contains(string(body), `<p id="error-description">`+tt.page+`</p>`) {
					t.Fatalf("got %d Location=%q %s, want an error page %q", resp.StatusCode, resp.Header.Get("Location"), body, tt.page)
				}
				return
			}
			loc, _ := url.Parse(resp.Header.Get("Location"))
			if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc.String(), redirectURI+"?") ||
				loc.Query().Get("error") != tt.redirect || loc.Query().Get("error_description") != tt.description ||
				loc.Query().Get("state") != "xyz" || loc.Query().Has("code") {
				t.Fatalf("got %d %s, want a redirect with %s %q", resp.StatusCode, loc, tt.redirect, tt.description)
			}
		})
	}
	t.Run("plain allowed", func(t *testing.T) {
		verifier := oauth2.GenerateVerifier()
		_, loc := h.authorize(q(plain, "code_challenge", verifier, "code_challenge_method", "plain"))
		if loc == nil || loc.Query().Get("code") == "" {
			t.Fatalf("redirect = %v, want a code", loc)
		}
		tok, err := h.config(plain).Exchange(context.Background(), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
		if err != nil || tok.AccessToken == "" {
			t.Fatalf("exchange: %v", err)
		}
	})
}

func TestTokenErrors(t *testing.T) {
	h := newHarness(t)
	c := h.client(false, false)
	other := h.client(false, false)
	ctx := context.Background()
	tests := []struct {
		name              string
		exchange          func(conf *oauth2.Config, code, verifier string) error
		code, description string
	}{
		{"wrong verifier", func(conf *oauth2.Config, code, _ string) error {
			_, err := conf.Exchange(ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
			return err
		}, "invalid_grant", "The code_verifier does not match the code_challenge."},
		{"missing verifier", func(conf *oauth2.Config, code, _ string) error {
			_, err := conf.Exchange(ctx, code)
			return err
		}, "invalid_request", "The code_verifier parameter is missing."},
		{"expired code", func(conf *oauth2.Config, code, verifier string) error {
			h.clock.Advance(CodeTTL + time.Second)
			defer h.clock.Advance(-CodeTTL - time.Second)
			_, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
			return err
		}, "invalid_grant", "The authorization code has expired."},
		{"other client", func(_ *oauth2.Config, code, verifier string) error {
			_, err := h.config(other).Exchange(ctx, code, oauth2.VerifierOption(verifier))
			return err
		}, "invalid_grant", "The authorization code was issued to another client."},
		{"other redirect URI", func(conf *oauth2.Config, code, verifier string) error {
			conf.RedirectURL = "https://partner.example/else"
			_, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
			return err
		}, "invalid_grant", "The redirect_uri does not match the authorization request."},
		{"unknown code", func(conf *oauth2.Config, _, verifier string) error {
			_, err := conf.Exchange(ctx, "occ_nope", oauth2.VerifierOption(verifier))
			return err
		}, "invalid_grant", "The authorization code is invalid."},
		{"wrong secret", func(conf *oauth2.Config, code, verifier string) error {
			conf.ClientSecret = "ocs_wrong"
			_, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
			return err
		}, "invalid_client", "Client authentication failed."},
		{"unknown client", func(conf *oauth2.Config, code, verifier string) error {
			conf.ClientID = "cli_unknown"
			_, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
			return err
		}, "invalid_client", "Client authentication failed."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, verifier := h.code(c)
			err := tt.exchange(h.config(c), code, verifier)
			wantOAuthError(t, err, tt.code, tt.description)
			var re *oauth2.RetrieveError
			errors.As(err, &re)
			wantStatus := http.StatusBadRequest
			if tt.code == "invalid_client" {
				wantStatus = http.StatusUnauthorized
				if re.Response.Header.Get("WWW-Authenticate") == "" {
					t.Fatal("invalid_client without WWW-Authenticate")
				}
			}
			if re.Response.StatusCode != wantStatus {
				t.Fatalf("status %d, want %d", re.Response.StatusCode, wantStatus)
			}
		})
	}
}

func TestCodeUsedTwiceRevokesTokens(t *testing.T) {
	h := newHarness(t)
	c := h.client(false, false)
	conf := h.config(c)
	ctx := context.Background()
	code, verifier := h.code(c)
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	_, err = conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	wantOAuthError(t, err, "invalid_grant", "The authorization code was already used.")
	// The tokens of the first exchange are revoked.
	h.wantUnauthorized(t, "/accounts/v2/whoami", tok.AccessToken)
	_, err = conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	wantOAuthError(t, err, "invalid_grant", "The refresh token was already used or revoked.")
}

func TestRefreshTokenReuseRevokesFamily(t *testing.T) {
	h := newHarness(t)
	c := h.client(true, false)
	conf := h.config(c)
	ctx := context.Background()
	code, verifier := h.code(c)
	tok1, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	refresh := func(rt string) (*oauth2.Token, error) {
		return conf.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
	}
	tok2, err := refresh(tok1.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	_, err = refresh(tok1.RefreshToken)
	wantOAuthError(t, err, "invalid_grant", "The refresh token was already used or revoked.")
	// The newer token of the family fails too, and so do its access tokens.
	_, err = refresh(tok2.RefreshToken)
	wantOAuthError(t, err, "invalid_grant", "The refresh token was already used or revoked.")
	h.wantUnauthorized(t, "/accounts/v2/whoami", tok2.AccessToken)

	// Another client cannot use, nor burn, someone else's refresh token.
	code, verifier = h.code(c)
	tok3, _ := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	other := h.client(true, false)
	_, err = h.config(other).TokenSource(ctx, &oauth2.Token{RefreshToken: tok3.RefreshToken}).Token()
	wantOAuthError(t, err, "invalid_grant", "The refresh token was issued to another client.")
	if _, err := refresh(tok3.RefreshToken); err != nil {
		t.Fatalf("refresh after a foreign attempt: %v", err)
	}
}

func TestAuthenticate(t *testing.T) {
	h := newHarness(t)
	c := h.client(false, false)
	conf := h.config(c)
	ctx := context.Background()
	fresh := func() *oauth2.Token {
		code, verifier := h.code(c)
		tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	ccToken := func() string {
		tok, err := h.clientCredentials(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok.AccessToken
	}
	tests := []struct {
		name  string
		token func() string
	}{
		{"tampered payload", func() string {
			parts := strings.Split(fresh().AccessToken, ".")
			parts[1] = parts[1][:len(parts[1])-2] + "AA"
			return strings.Join(parts, ".")
		}},
		{"tampered signature", func() string {
			tok := fresh().AccessToken
			last := tok[len(tok)-5]
			repl := byte('A')
			if last == 'A' {
				repl = 'B'
			}
			return tok[:len(tok)-5] + string(repl) + tok[len(tok)-4:]
		}},
		{"expired", func() string {
			tok := fresh().AccessToken
			h.clock.Advance(AccessTokenTTL + keyLeeway + time.Second)
			return tok
		}},
		{"wrong audience (enterprise token)", ccToken},
		{"not a JWT", func() string { return "ocr_notajwt" }},
		{"revoked consent", func() string {
			tok := fresh().AccessToken
			consents, _ := h.db.ConsentsForUser(ctx, h.user.ID)
			for _, cns := range consents {
				if err := h.db.RevokeConsent(ctx, cns.ID); err != nil {
					t.Fatal(err)
				}
			}
			return tok
		}},
		{"revoked access token", func() string {
			tok := fresh().AccessToken
			h.revoke(t, c, tok)
			return tok
		}},
		{"revoked refresh token revokes its access tokens", func() string {
			tok := fresh()
			h.revoke(t, c, tok.RefreshToken)
			return tok.AccessToken
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := h.clock.Now()
			defer h.clock.Advance(now.Sub(h.clock.Now()))
			h.wantUnauthorized(t, "/accounts/v2/whoami", tt.token())
		})
	}
	t.Run("no token", func(t *testing.T) {
		status, body, hdr := h.whoami("/accounts/v2/whoami", "")
		if status != 401 || hdr.Get("WWW-Authenticate") != `Bearer realm="opencalico"` || !strings.Contains(body, `"cause":"unauthorized"`) {
			t.Fatalf("got %d %s %v", status, body, hdr)
		}
	})
	t.Run("user token on the enterprise API", func(t *testing.T) {
		h.wantUnauthorized(t, "/enterprise/v1/whoami", fresh().AccessToken)
	})
}

// revoke calls the revocation endpoint as client c and expects 200.
func (h *harness) revoke(t *testing.T, c *opencalico.Client, token string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.ts.URL+"/oauth/revoke", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(h.secret[c.ID]))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: status %d", resp.StatusCode)
	}
}

// clientCredentials asks for a client_credentials token as client c (by client_secret_post;
// a public client sends its client_id alone).
func (h *harness) clientCredentials(c *opencalico.Client, scopes ...string) (*oauth2.Token, error) {
	conf := &clientcredentials.Config{ClientID: c.ID, ClientSecret: h.secret[c.ID], TokenURL: h.ts.URL + "/oauth/token",
		Scopes: scopes, AuthStyle: oauth2.AuthStyleInParams}
	return conf.Token(context.Background())
}

func TestClientCredentials(t *testing.T) {
	h := newHarness(t)
	confidential := h.client(false, false)
	public := h.client(true, false)
	tok, err := h.clientCredentials(confidential)
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken != "" || tok.Extra("scope") != ScopeEnterprise {
		t.Fatalf("token = %+v", tok)
	}
	status, body, _ := h.whoami("/enterprise/v1/whoami", tok.AccessToken)
	if status != 200 || !strings.Contains(body, `"ClientID":"`+confidential.ID+`"`) {
		t.Fatalf("enterprise whoami = %d %s", status, body)
	}
	tests := []struct {
		name              string
		client            *opencalico.Client
		scopes            []string
		code, description string
	}{
		{"public client", public, nil, "unauthorized_client", "client_credentials is for confidential clients only."},
		{"user scope", confidential, []string{ScopeAccountsRead}, "invalid_scope", "client_credentials grants only the enterprise scope."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.clientCredentials(tt.client, tt.scopes...)
			wantOAuthError(t, err, tt.code, tt.description)
		})
	}
}

func TestSigningKeyRotation(t *testing.T) {
	h := newHarness(t)
	c := h.client(false, false)
	ctx := context.Background()
	tok, err := h.clientCredentials(c)
	if err != nil {
		t.Fatal(err)
	}
	jwks := func() []string {
		resp, err := http.Get(h.ts.URL + "/.well-known/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var set struct {
			Keys []struct{ Kid, Kty, Crv, Alg string }
		}
		if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
			t.Fatal(err)
		}
		var kids []string
		for _, k := range set.Keys {
			if k.Kty != "OKP" || k.Crv != "Ed25519" || k.Alg != "EdDSA" {
				t.Fatalf("key %+v", k)
			}
			kids = append(kids, k.Kid)
		}
		return kids
	}
	if kids := jwks(); len(kids) != 1 {
		t.Fatalf("kids = %v, want 1", kids)
	}
	if err := h.srv.RotateSigningKey(ctx); err != nil {
		t.Fatal(err)
	}
	if kids := jwks(); len(kids) != 2 {
		t.Fatalf("kids after rotation = %v, want 2", kids)
	}
	// A token signed by the old key still passes; new tokens use the new key.
	if status, body, _ := h.whoami("/enterprise/v1/whoami", tok.AccessToken); status != 200 {
		t.Fatalf("old token after rotation = %d %s", status, body)
	}
	tok2, _ := h.clientCredentials(c)
	if status, _, _ := h.whoami("/enterprise/v1/whoami", tok2.AccessToken); status != 200 {
		t.Fatal("new token refused")
	}
	// Once every token of the old key has expired, the key is no longer published.
	h.clock.Advance(AccessTokenTTL + keyLeeway + 2*refreshEvery)
	if kids := jwks(); len(kids) != 1 {
		t.Fatalf("kids after expiry = %v, want 1", kids)
	}
}

func TestMetadata(t *testing.T) {
	h := newHarness(t)
	resp, err := http.Get(h.ts.URL + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var md map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&md); err != nil {
		t.Fatal(err)
	}
	if md["issuer"] != h.ts.URL || md["token_endpoint"] != h.ts.URL+"/oauth/token" || md["jwks_uri"] != h.ts.URL+"/.well-known/jwks.json" {
		t.Fatalf("metadata = %v", md)
	}
}

func TestNewClient(t *testing.T) {
	tests := []struct {
		name    string
		uris    []string
		wantErr string
	}{
		{"https", []string{"https://a.example/cb"}, ""},
		{"loopback http", []string{"http://127.0.0.1:8000/cb"}, ""},
		{"native", []string{"com.example.app:/cb"}, ""},
		{"http", []string{"http://a.example/cb"}, `bad_request: redirect URI "http://a.example/cb" must use https (http is for localhost only)`},
		{"fragment", []string{"https://a.example/cb#x"}, `bad_request: redirect URI "https://a.example/cb#x" must not have a fragment`},
		{"relative", []string{"/cb"}, `bad_request: redirect URI "/cb" is not an absolute URI`},
		{"none", nil, "bad_request: a client needs at least one redirect URI"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, secret, err := NewClient("P", tt.uris, false, false)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil || secret == "" || c.SecretHash == secret || !SecretMatches(c.SecretHash, secret) || SecretMatches(c.SecretHash, secret+"x") {
				t.Fatalf("client %+v, %v", c, err)
			}
		})
	}
}
