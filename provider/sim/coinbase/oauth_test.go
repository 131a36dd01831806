package coinbase

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// movableClock is the wall clock plus an offset the test moves.
type movableClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *movableClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}
func (c *movableClock) Sleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }
func (c *movableClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

const (
	redirect = "https://app.example/return"
	verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)

type oauthFixture struct {
	s     *Simulator
	srv   *httptest.Server
	clock *movableClock
	c     *http.Client
}

func newOAuthFixture(t *testing.T) *oauthFixture {
	t.Helper()
	clock := &movableClock{}
	s := New(Options{Seed: 3, Events: 50, Accounts: 2, Clock: clock, RateLimit: 5})
	s.RegisterOAuthClient(OAuthClient{ID: "app", Secret: "shh", RedirectURIs: []string{redirect}})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return &oauthFixture{s: s, srv: srv, clock: clock,
		c: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (f *oauthFixture) authURL(mod func(url.Values)) string {
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"client_id": {"app"}, "response_type": {"code"}, "redirect_uri": {redirect},
		"scope": {"wallet:user:read,wallet:accounts:read,offline_access"}, "state": {"state-xyz-123"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	if mod != nil {
		mod(q)
	}
	return f.srv.URL + "/oauth2/auth?" + q.Encode()
}

func read(t *testing.T, res *http.Response) string {
	t.Helper()
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var ticketField = regexp.MustCompile(`name="ticket" value="([^"]+)"`)

// login signs in at authURL and answers the consent with decision; it returns the redirect.
func (f *oauthFixture) login(t *testing.T, authURL, email, password, decision string) *url.URL {
	t.Helper()
	res, err := f.c.PostForm(authURL, url.Values{"email": {email}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	page := read(t, res)
	m := ticketField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no consent page: HTTP %d %s", res.StatusCode, page)
	}
	res, err = f.c.PostForm(f.srv.URL+"/oauth2/auth/consent", url.Values{"ticket": {m[1]}, "decision": {decision}})
	if err != nil {
		t.Fatal(err)
	}
	read(t, res)
	loc, err := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound || err != nil {
		t.Fatalf("consent answer: HTTP %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	return loc
}

func (f *oauthFixture) token(t *testing.T, form url.Values) (int, map[string]any) {
	t.Helper()
	form.Set("client_id", "app")
	if form.Get("client_secret") == "" {
		form.Set("client_secret", "shh")
	}
	res, err := http.PostForm(f.srv.URL+"/oauth2/token", form)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	_ = json.Unmarshal([]byte(read(t, res)), &body)
	return res.StatusCode, body
}

func (f *oauthFixture) api(t *testing.T, path, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", f.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := read(t, res)
	var e struct {
		Errors []struct{ ID string } `json:"errors"`
	}
	if json.Unmarshal([]byte(body), &e) == nil && len(e.Errors) > 0 {
		return res.StatusCode, e.Errors[0].ID
	}
	return res.StatusCode, ""
}

func TestOAuthLoginAndTokens(t *testing.T) {
	f := newOAuthFixture(t)
	// The login page is a plain form.
	res, err := f.c.Get(f.authURL(nil))
	if err != nil {
		t.Fatal(err)
	}
	page := read(t, res)
	for _, want := range []string{`name="email"`, `name="password"`, `<button type="submit">`} {
		if !strings.Contains(page, want) {
			t.Fatalf("login page lacks %s:\n%s", want, page)
		}
	}
	// A wrong password shows the form again.
	res, err = f.c.PostForm(f.authURL(nil), url.Values{"email": {f.s.LoginEmail(1)}, "password": {"nope"}})
	if err != nil {
		t.Fatal(err)
	}
	if page := read(t, res); res.StatusCode != http.StatusUnauthorized || !strings.Contains(page, `name="password"`) {
		t.Fatalf("wrong password: HTTP %d", res.StatusCode)
	}
	// Account 1 signs in and authorizes.
	loc := f.login(t, f.authURL(nil), strings.ToUpper(f.s.LoginEmail(1)), LoginPassword, "allow")
	code := loc.Query().Get("code")
	if !strings.HasPrefix(loc.String(), redirect+"?") || loc.Query().Get("state") != "state-xyz-123" || code == "" {
		t.Fatalf("redirect %s", loc)
	}
	if st, body := f.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect},
		"code_verifier": {strings.Repeat("x", 43)}}); st != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("wrong verifier: %d %v", st, body)
	}
	if st, body := f.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect},
		"code_verifier": {verifier}, "client_secret": {"wrong"}}); st != 401 || body["error"] != "invalid_client" {
		t.Fatalf("wrong secret: %d %v", st, body)
	}
	st, body := f.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}})
	if st != 200 || body["token_type"] != "bearer" || body["expires_in"] != float64(3600) || body["refresh_token"] == nil {
		t.Fatalf("exchange: %d %v", st, body)
	}
	at, rt := body["access_token"].(string), body["refresh_token"].(string)
	// The token reads account 1's user; the scope it lacks is refused.
	if st, _ := f.api(t, "/v2/user", at); st != 200 {
		t.Fatalf("bearer read: HTTP %d", st)
	}
	wallet := f.s.users[1].wallets[0].id
	if st, id := f.api(t, "/v2/accounts/"+wallet+"/transactions", at); st != 403 || id != "invalid_scope" {
		t.Fatalf("missing scope: %d %s", st, id)
	}
	if st, id := f.api(t, "/v2/user", "not-a-token"); st != 401 || id != "invalid_token" {
		t.Fatalf("unknown token: %d %s", st, id)
	}
	// One hour later: expired_token. The refresh gives a new pair and kills the old one.
	f.clock.advance(time.Hour)
	if st, id := f.api(t, "/v2/user", at); st != 401 || id != "expired_token" {
		t.Fatalf("expired: %d %s", st, id)
	}
	st, body = f.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	if st != 200 || body["refresh_token"] == rt {
		t.Fatalf("refresh: %d %v", st, body)
	}
	at2, rt2 := body["access_token"].(string), body["refresh_token"].(string)
	if st, body := f.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}); st != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("replayed refresh token: %d %v", st, body)
	}
	if st, _ := f.api(t, "/v2/accounts", at2); st != 200 {
		t.Fatalf("new pair: HTTP %d", st)
	}
	// The rate limit counts per OAuth user, apart from the CDP key's budget (5 per hour here).
	for range 4 {
		f.api(t, "/v2/user", at2)
	}
	if st, id := f.api(t, "/v2/user", at2); st != 429 || id != "rate_limit_exceeded" {
		t.Fatalf("6th call: %d %s", st, id)
	}
	// Strict mode: a replay revokes the grant, the newest pair included.
	f.s.SetReplayRevokesGrant(true)
	f.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	if st, body := f.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt2}}); st != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("refresh after a replay in strict mode: %d %v", st, body)
	}
	if st, id := f.api(t, "/v2/user", at2); st != 401 || id != "revoked_token" {
		t.Fatalf("access after a replay in strict mode: %d %s", st, id)
	}
}

func TestOAuthAuthorizeErrors(t *testing.T) {
	f := newOAuthFixture(t)
	get := func(u string) (*http.Response, string) {
		res, err := f.c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		return res, read(t, res)
	}
	// Unknown clients and unregistered redirect URIs are shown, never redirected to.
	for _, mod := range []func(url.Values){
		func(q url.Values) { q.Set("client_id", "stranger") },
		func(q url.Values) { q.Set("redirect_uri", "https://evil.example/") },
	} {
		if res, _ := get(f.authURL(mod)); res.StatusCode != 400 || res.Header.Get("Location") != "" {
			t.Fatalf("HTTP %d to %q", res.StatusCode, res.Header.Get("Location"))
		}
	}
	// Other errors go back to the client with the state.
	for mod, want := range map[*func(url.Values)]string{
		ptr(func(q url.Values) { q.Set("scope", "wallet:everything") }):             "invalid_scope",
		ptr(func(q url.Values) { q.Set("code_challenge_method", "S512") }):          "invalid_request",
		ptr(func(q url.Values) { q.Set("response_type", "token") }):                 "unsupported_response_type",
		ptr(func(q url.Values) { q.Set("state", "short") }):                         "invalid_request",
		ptr(func(q url.Values) { q.Set("code_challenge", strings.Repeat("a", 7)) }): "invalid_request",
	} {
		res, _ := get(f.authURL(*mod))
		loc, _ := url.Parse(res.Header.Get("Location"))
		if res.StatusCode != http.StatusFound || loc == nil || loc.Query().Get("error") != want {
			t.Fatalf("HTTP %d to %q, want error=%s", res.StatusCode, res.Header.Get("Location"), want)
		}
	}
	// Deny.
	loc := f.login(t, f.authURL(nil), f.s.LoginEmail(0), LoginPassword, "deny")
	if loc.Query().Get("error") != "access_denied" || loc.Query().Get("state") != "state-xyz-123" {
		t.Fatalf("deny: %s", loc)
	}
	// A code is single use, and its replay revokes the grant it produced.
	loc = f.login(t, f.authURL(nil), f.s.LoginEmail(0), LoginPassword, "allow")
	form := url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {redirect}, "code_verifier": {verifier}}
	st, body := f.token(t, form)
	if st != 200 {
		t.Fatalf("exchange: %d %v", st, body)
	}
	if st, body := f.token(t, form); st != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("code replay: %d %v", st, body)
	}
	if st, id := f.api(t, "/v2/user", body["access_token"].(string)); st != 401 || id != "revoked_token" {
		t.Fatalf("token of a replayed code: %d %s", st, id)
	}
	// Codes expire after 10 minutes.
	loc = f.login(t, f.authURL(nil), f.s.LoginEmail(0), LoginPassword, "allow")
	f.clock.advance(11 * time.Minute)
	form.Set("code", loc.Query().Get("code"))
	if st, body := f.token(t, form); st != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("expired code: %d %v", st, body)
	}
	// Revocation: 200 always; the grant of a known token stops working.
	loc = f.login(t, f.authURL(nil), f.s.LoginEmail(0), LoginPassword, "allow")
	form.Set("code", loc.Query().Get("code"))
	_, body = f.token(t, form)
	at := body["access_token"].(string)
	for _, tok := range []string{"unknown", body["refresh_token"].(string)} {
		res, err := http.PostForm(f.srv.URL+"/oauth2/revoke", url.Values{"token": {tok}, "client_id": {"app"}, "client_secret": {"shh"}})
		if err != nil {
			t.Fatal(err)
		}
		if read(t, res); res.StatusCode != 200 {
			t.Fatalf("revoke: HTTP %d", res.StatusCode)
		}
	}
	if st, id := f.api(t, "/v2/user", at); st != 401 || id != "revoked_token" {
		t.Fatalf("after revoke: %d %s", st, id)
	}
}

func ptr[T any](v T) *T { return &v }
