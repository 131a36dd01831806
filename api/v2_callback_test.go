package api

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/connections"
	"github.com/opencalico/opencalico/provider"
	"github.com/opencalico/opencalico/provider/coinbase"
	"github.com/opencalico/opencalico/provider/kraken"
	cbsim "github.com/opencalico/opencalico/provider/sim/coinbase"
	"github.com/opencalico/opencalico/secrets"
)

const cbReturn = "https://opencalico.example/connect/oauth/return"

// newOAuthWorld mounts the v2 routes over the connections service with Coinbase (its
// simulator) offered through its OAuth consent, and registers the partner the test tokens
// name, with one redirect URI.
func newOAuthWorld(t *testing.T) (*v2World, *recordingSyncs, string) {
	w := newV2World(t)
	ctx := context.Background()
	if err := w.st.CreateClient(ctx, &opencalico.Client{ID: "cli_partner", Name: "Acme Budget",
		RedirectURIs: []string{"https://partner.example/calico/done"}}); err != nil {
		t.Fatal(err)
	}
	sim := cbsim.New(cbsim.Options{Seed: 9, Accounts: 1, Events: 10, Years: 1})
	sim.RegisterOAuthClient(cbsim.OAuthClient{ID: "oc", Secret: "oc-secret", RedirectURIs: []string{cbReturn}})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	ring, err := secrets.NewKeyring(secrets.GenerateMasterKey())
	if err != nil {
		t.Fatal(err)
	}
	sealer := secrets.NewSealer(ring)
	o, err := coinbase.NewOAuth(coinbase.OAuthConfig{ClientID: "oc", ClientSecret: "oc-secret", RedirectURI: cbReturn,
		APIBaseURL: srv.URL, AttemptTimeout: 5 * time.Second, BaseDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ad := &coinbase.OAuthAdapter{Adapter: coinbase.New(coinbase.Options{BaseURL: srv.URL, BaseDelay: time.Millisecond}),
		Tokens: coinbase.NewTokenSource(o, w.st, sealer, coinbase.TokenSourceOptions{})}
	reg := provider.NewRegistry(ad, kraken.New(kraken.Options{}))
	syncs := &recordingSyncs{}
	svc, err := connections.New(connections.Config{Store: w.st, Sealer: sealer, Providers: reg, Sync: syncs,
		FingerprintKey: []byte("fingerprint key of at least 32 bytes!!"), Log: w.srv.log,
		OAuth: map[opencalico.ProviderID]connections.OAuthClient{coinbase.ID: connections.NewOAuthClient(o, ad)}})
	if err != nil {
		t.Fatal(err)
	}
	w.srv = NewServer(DefaultConfig(), w.srv.log, &fakeDB{current: true}, nil)
	w.srv.MountV2(V2{Store: w.st, Authenticate: testAuth, CursorKey: []byte("test cursor key, 32 bytes long!"),
		Catalog: reg, Syncs: syncs, Connections: svc})
	return w, syncs, srv.URL
}

var (
	simLoginForm = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
	simTicket    = regexp.MustCompile(`name="ticket" value="([^"]+)"`)
)

// simConsent is the person at Coinbase (the simulator): sign in as the first seeded account,
// press Authorize; it returns the query of the redirect back to opencalico's return page.
func simConsent(t *testing.T, base, consentURL string) url.Values {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	read := func(res *http.Response, err error) (*http.Response, string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	_, page := read(c.Get(consentURL))
	m := simLoginForm.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no login form at the consent URL:\n%s", page)
	}
	_, page = read(c.PostForm(base+strings.ReplaceAll(m[1], "&amp;", "&"), url.Values{"email": {"user1@coinbase-sim.example"}, "password": {cbsim.LoginPassword}}))
	if m = simTicket.FindStringSubmatch(page); m == nil {
		t.Fatalf("no consent page:\n%s", page)
	}
	res, _ := read(c.PostForm(base+"/oauth2/auth/consent", url.Values{"ticket": {m[1]}, "decision": {"allow"}}))
	loc, err := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), cbReturn+"?") {
		t.Fatalf("after the consent: HTTP %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	return loc.Query()
}

func TestV2OAuthCallback(t *testing.T) {
	w, syncs, simURL := newOAuthWorld(t)
	ctx := context.Background()
	start := func(body string) (int, map[string]any) {
		rec, out := w.send(t, http.MethodPost, w.bob, "/accounts/v2/providers", body, nil, "GetConsentURLForThirdPartyResponse")
		return rec.Code, out
	}
	callback := func(user *opencalico.User, providerID, state, code string) (int, map[string]any) {
		q := url.Values{"state": {state}, "code": {code}}
		rec, out := w.send(t, http.MethodPost, user, "/accounts/v2/oauth/callback/"+providerID+"?"+q.Encode(), "", nil, "IntegrationResponse")
		return rec.Code, out
	}

	// Refusals at the start.
	for name, c := range map[string]struct {
		body, cause string
	}{
		"unregistered redirect": {`{"provider_id":"coinbase","connection":{"type":"oauth2","redirect_uri":"https://evil.example/"}}`, "bad_request"},
		"no oauth2 at kraken":   {`{"provider_id":"kraken","connection":{"type":"oauth2"}}`, "unsupported_connection_type"},
		"unknown provider":      {`{"provider_id":"nope","connection":{"type":"oauth2"}}`, "unsupported_provider"},
	} {
		if status, out := start(c.body); status != http.StatusBadRequest || errorCause(out) != c.cause {
			t.Errorf("%s: %d %v", name, status, out)
		}
	}

	// Start: the consent URL, at the simulator, with a state and PKCE S256.
	status, out := start(`{"provider_id":"coinbase","display_label":"My Coinbase","connection":{"type":"oauth2"}}`)
	data, _ := out["data"].(map[string]any)
	if status != http.StatusCreated || data["added"] != false || data["connection"] != nil {
		t.Fatalf("start: %d %v", status, out)
	}
	consentURL, _ := data["redirect_url"].(string)
	if !strings.HasPrefix(consentURL, simURL+"/oauth2/auth?") || !strings.Contains(consentURL, "code_challenge_method=S256") {
		t.Fatalf("consent URL %q", consentURL)
	}
	back := simConsent(t, simURL, consentURL)
	state, code := back.Get("state"), back.Get("code")

	// Another user, another provider, a provider without OAuth, no state: invalid_state.
	for name, c := range map[string]struct {
		user         *opencalico.User
		provider, st string
		status       int
		cause        string
	}{
		"another user":     {w.alice, "coinbase", state, 400, "invalid_state"},
		"another provider": {w.bob, "kraken", state, 400, "invalid_state"},
		"unknown state":    {w.bob, "coinbase", "not-a-state-we-issued", 400, "invalid_state"},
		"no state":         {w.bob, "coinbase", "", 400, "invalid_state"},
	} {
		if status, out := callback(c.user, c.provider, c.st, code); status != c.status || errorCause(out) != c.cause {
			t.Errorf("%s: %d %v", name, status, out)
		}
	}
	if status, out := callback(w.bob, "coinbase", state, ""); status != http.StatusBadRequest || errorCause(out) != "bad_request" {
		t.Errorf("no code: %d %v", status, out)
	}

	// The owner completes it: 201, the connection, redirect_url the partner's redirect URI.
	status, out = callback(w.bob, "coinbase", state, code)
	data, _ = out["data"].(map[string]any)
	conn, _ := data["connection"].(map[string]any)
	if status != http.StatusCreated || data["added"] != true || data["redirect_url"] != "https://partner.example/calico/done" ||
		conn["connection_type"] != "oauth2" || conn["display_label"] != "My Coinbase" || conn["provider_id"] != "coinbase" {
		t.Fatalf("callback: %d %v", status, out)
	}
	if len(syncs.queue) != 1 || syncs.queue[0] != "sync:"+conn["connection_id"].(string) {
		t.Fatalf("first syncs queued: %v", syncs.queue)
	}

	// The same state replayed (even with the same code): invalid_state, nothing added.
	if status, out := callback(w.bob, "coinbase", state, code); status != http.StatusBadRequest || errorCause(out) != "invalid_state" {
		t.Fatalf("replay: %d %v", status, out)
	}
	list, err := w.st.ListConnections(ctx, w.bob.ID)
	if err != nil {
		t.Fatal(err)
	}
	oauthConns := 0
	for _, c := range list {
		if c.Type == opencalico.AuthOAuth2 {
			oauthConns++
		}
	}
	if oauthConns != 1 {
		t.Fatalf("bob has %d oauth2 connections, want 1", oauthConns)
	}

	// The same Coinbase account again: 409 already_connected.
	_, out = start(`{"provider_id":"coinbase","connection":{"type":"oauth2","redirect_uri":"https://partner.example/calico/done"}}`)
	data, _ = out["data"].(map[string]any)
	back = simConsent(t, simURL, data["redirect_url"].(string))
	if status, out := callback(w.bob, "coinbase", back.Get("state"), back.Get("code")); status != http.StatusConflict || errorCause(out) != "already_connected" {
		t.Fatalf("same account again: %d %v", status, out)
	}

	// A code Coinbase refuses: 400 invalid_credentials.
	_, out = start(`{"provider_id":"coinbase","connection":{"type":"oauth2"}}`)
	data, _ = out["data"].(map[string]any)
	u, _ := url.Parse(data["redirect_url"].(string))
	if status, out := callback(w.bob, "coinbase", u.Query().Get("state"), "forged-code"); status != http.StatusBadRequest || errorCause(out) != "invalid_credentials" {
		t.Fatalf("forged code: %d %v", status, out)
	}
}
