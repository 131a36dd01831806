package connections_test

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
	"github.com/opencalico/opencalico/provider/binance"
	"github.com/opencalico/opencalico/provider/coinbase"
	cbsim "github.com/opencalico/opencalico/provider/sim/coinbase"
)

const cbRedirect = "https://opencalico.example/connect/oauth/return"

type oauthHarness struct {
	*harness
	cb    *cbsim.Simulator
	cbURL string
	now   time.Time
}

// newOAuthHarness is the harness with Coinbase (the simulator, two seeded accounts) offered
// with its OAuth consent.
func newOAuthHarness(t *testing.T) *oauthHarness {
	t.Helper()
	h := newHarness(t)
	cb := cbsim.New(cbsim.Options{Seed: 3, Accounts: 2, Events: 20, Years: 1})
	cb.RegisterOAuthClient(cbsim.OAuthClient{ID: "oc-test", Secret: "oc-secret", RedirectURIs: []string{cbRedirect}})
	ts := httptest.NewServer(cb.Handler())
	t.Cleanup(ts.Close)
	o, err := coinbase.NewOAuth(coinbase.OAuthConfig{ClientID: "oc-test", ClientSecret: "oc-secret", RedirectURI: cbRedirect,
		APIBaseURL: ts.URL, AttemptTimeout: 5 * time.Second, BaseDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ad := &coinbase.OAuthAdapter{Adapter: coinbase.New(coinbase.Options{BaseURL: ts.URL, BaseDelay: time.Millisecond}),
		Tokens: coinbase.NewTokenSource(o, h.db, h.sealer, coinbase.TokenSourceOptions{})}
	oh := &oauthHarness{harness: h, cb: cb, cbURL: ts.URL, now: time.Now()}
	bsim := httptest.NewServer(h.sim.Handler())
	t.Cleanup(bsim.Close)
	h.svc, err = connections.New(connections.Config{Store: h.db, Sealer: h.sealer,
		Providers: provider.NewRegistry(binance.New(binance.Options{BaseURL: bsim.URL}), ad), Sync: h.queue,
		FingerprintKey: make([]byte, connections.KeySize),
		OAuth:          map[opencalico.ProviderID]connections.OAuthClient{coinbase.ID: connections.NewOAuthClient(o, ad)},
		Now:            func() time.Time { return oh.now }})
	if err != nil {
		t.Fatal(err)
	}
	return oh
}

var (
	simFormAction = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
	simTicket     = regexp.MustCompile(`name="ticket" value="([^"]+)"`)
)

// simConsent plays the person at the simulator's pages: sign in as the seeded account, press
// Authorize (or Deny); it returns the query of the redirect back to opencalico.
func simConsent(t *testing.T, base, consentURL string, account int, decision string) url.Values {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	read := func(res *http.Response) string {
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	res, err := c.Get(consentURL)
	if err != nil {
		t.Fatal(err)
	}
	m := simFormAction.FindStringSubmatch(read(res))
	if m == nil {
		t.Fatalf("no login form at %s", consentURL)
	}
	res, err = c.PostForm(base+strings.ReplaceAll(m[1], "&amp;", "&"), url.Values{
		"email": {"user" + string(rune('1'+account)) + "@coinbase-sim.example"}, "password": {cbsim.LoginPassword}})
	if err != nil {
		t.Fatal(err)
	}
	m = simTicket.FindStringSubmatch(read(res))
	if m == nil {
		t.Fatal("no consent page after signing in")
	}
	res, err = c.PostForm(base+"/oauth2/auth/consent", url.Values{"ticket": {m[1]}, "decision": {decision}})
	if err != nil {
		t.Fatal(err)
	}
	read(res)
	loc, err := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), cbRedirect+"?") {
		t.Fatalf("after consent: HTTP %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	return loc.Query()
}

func (h *oauthHarness) start(t *testing.T, clientID, label, returnURL string) string {
	t.Helper()
	u, err := h.svc.StartOAuth(context.Background(), connections.OAuthStart{UserID: h.user.ID, ClientID: clientID,
		ProviderID: coinbase.ID, DisplayLabel: label, ReturnURL: returnURL})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestOAuthConnect(t *testing.T) {
	h := newOAuthHarness(t)
	ctx := context.Background()
	if origin, ok := h.svc.OAuthReady(coinbase.ID); !ok || origin != h.cbURL {
		t.Fatalf("OAuthReady(coinbase) = %q, %v; want %q", origin, ok, h.cbURL)
	}
	if _, ok := h.svc.OAuthReady("binance"); ok {
		t.Fatal("binance reported ready for OAuth")
	}

	consentURL := h.start(t, "cli_partner", "My Coinbase", "https://partner.example/done")
	cu, _ := url.Parse(consentURL)
	state := cu.Query().Get("state")
	if len(state) < 40 || cu.Query().Get("code_challenge_method") != "S256" || cu.Query().Get("code_challenge") == "" {
		t.Fatalf("consent URL %s", consentURL)
	}
	pending, err := h.svc.PendingOAuth(ctx, state)
	if err != nil || pending.ClientID != "cli_partner" || pending.UserID != h.user.ID || pending.ProviderID != coinbase.ID {
		t.Fatalf("pending = %+v, %v", pending, err)
	}
	back := simConsent(t, h.cbURL, consentURL, 0, "allow")
	if back.Get("state") != state || back.Get("code") == "" {
		t.Fatalf("back from the consent: %v", back)
	}
	complete := func(state, code, client string, user string) (*connections.OAuthResult, error) {
		return h.svc.CompleteOAuth(ctx, connections.OAuthCompletion{UserID: user, ClientID: client,
			ProviderID: coinbase.ID, State: state, Code: code})
	}

	// The widget may not complete a partner's state; it is used up by the attempt.
	if _, err := complete(state, back.Get("code"), "", h.user.ID); opencalico.ErrorCodeOf(err) != opencalico.EInvalidState {
		t.Fatalf("completed by the wrong party: %v", err)
	}
	consentURL = h.start(t, "cli_partner", "My Coinbase", "https://partner.example/done")
	cu, _ = url.Parse(consentURL)
	state = cu.Query().Get("state")
	back = simConsent(t, h.cbURL, consentURL, 0, "allow")

	// Another user cannot use it either, and that does not use it up.
	other := &opencalico.User{Email: "eve@example.com"}
	if err := h.db.CreateUser(ctx, other); err != nil {
		t.Fatal(err)
	}
	if _, err := complete(state, back.Get("code"), "cli_partner", other.ID); opencalico.ErrorCodeOf(err) != opencalico.EInvalidState {
		t.Fatalf("another user: %v", err)
	}

	res, err := complete(state, back.Get("code"), "cli_partner", h.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	c := res.Connection
	if res.ReturnURL != "https://partner.example/done" || c.Type != opencalico.AuthOAuth2 || c.DisplayLabel != "My Coinbase" ||
		c.ProviderID != coinbase.ID || !strings.HasPrefix(c.Fingerprint, "fp1_") || c.Status != opencalico.StatusPending {
		t.Fatalf("result = %+v, connection %+v", res, c)
	}
	if len(h.queue.ids) != 1 || h.queue.ids[0] != c.ID {
		t.Fatalf("queued %v", h.queue.ids)
	}
	sealed, err := h.db.Secret(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := h.sealer.OpenCredentials(sealed)
	if err != nil || creds["access_token"] == "" || creds["refresh_token"] == "" || creds["expires_at"] == "" {
		t.Fatalf("sealed credentials have %d fields (%v)", len(creds), err)
	}

	// Replayed: invalid_state, no second connection.
	if _, err := complete(state, back.Get("code"), "cli_partner", h.user.ID); opencalico.ErrorCodeOf(err) != opencalico.EInvalidState {
		t.Fatalf("replay: %v", err)
	}

	// The same Coinbase account again: already_connected. Another one: a second connection.
	back = simConsent(t, h.cbURL, h.start(t, "", "", "/connect?x=1"), 0, "allow")
	_, err = complete(back.Get("state"), back.Get("code"), "", h.user.ID)
	wantError(t, err, opencalico.EAlreadyConnected)
	back = simConsent(t, h.cbURL, h.start(t, "", "", "/connect?x=1"), 1, "allow")
	res, err = complete(back.Get("state"), back.Get("code"), "", h.user.ID)
	if err != nil || res.Connection.DisplayLabel != "Coinbase" || res.ReturnURL != "/connect?x=1" {
		t.Fatalf("second account: %+v, %v", res, err)
	}

	// A code Coinbase does not take: invalid_credentials, the state spent.
	cu, _ = url.Parse(h.start(t, "", "", ""))
	_, err = complete(cu.Query().Get("state"), "not-a-code", "", h.user.ID)
	wantError(t, err, opencalico.EInvalidCredentials, "not-a-code")
	_, err = complete(cu.Query().Get("state"), "not-a-code", "", h.user.ID)
	wantError(t, err, opencalico.EInvalidState)

	// Expired after ten minutes.
	cu, _ = url.Parse(h.start(t, "", "", ""))
	h.now = h.now.Add(connections.StateLifetime)
	_, err = complete(cu.Query().Get("state"), "whatever", "", h.user.ID)
	wantError(t, err, opencalico.EInvalidState)

	// Refused at Coinbase: CancelOAuth uses the state up.
	cu, _ = url.Parse(h.start(t, "", "", "/connect?y=2"))
	if to, err := h.svc.CancelOAuth(ctx, h.user.ID, coinbase.ID, cu.Query().Get("state")); err != nil || to != "/connect?y=2" {
		t.Fatalf("cancel: %q, %v", to, err)
	}
	if _, err := h.svc.PendingOAuth(ctx, cu.Query().Get("state")); opencalico.ErrorCodeOf(err) != opencalico.EInvalidState {
		t.Fatalf("after cancel: %v", err)
	}
}

func TestOAuthStartRefused(t *testing.T) {
	h := newOAuthHarness(t)
	ctx := context.Background()
	_, err := h.svc.StartOAuth(ctx, connections.OAuthStart{UserID: h.user.ID, ProviderID: "binance"})
	wantError(t, err, opencalico.EUnsupportedConnectionType)
	_, err = h.svc.StartOAuth(ctx, connections.OAuthStart{UserID: h.user.ID, ProviderID: "nope"})
	wantError(t, err, opencalico.EUnsupportedProvider)
	_, err = h.svc.StartOAuth(ctx, connections.OAuthStart{UserID: h.user.ID, ProviderID: coinbase.ID, DisplayLabel: strings.Repeat("x", 101)})
	wantError(t, err, opencalico.EBadRequest)
	// Add refuses oauth2: it goes through StartOAuth.
	_, err = h.svc.Add(ctx, connections.AddRequest{UserID: h.user.ID, ProviderID: coinbase.ID, Type: opencalico.AuthOAuth2})
	wantError(t, err, opencalico.EUnsupportedConnectionType)

	// Coinbase offers oauth2, but a server without an OAuth client says so.
	plain, err := connections.New(connections.Config{Store: h.db, Sealer: h.sealer, Sync: h.queue,
		Providers:      provider.NewRegistry(&coinbase.OAuthAdapter{Adapter: coinbase.New(coinbase.Options{BaseURL: h.cbURL})}),
		FingerprintKey: make([]byte, connections.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = plain.StartOAuth(ctx, connections.OAuthStart{UserID: h.user.ID, ProviderID: coinbase.ID})
	wantError(t, err, opencalico.EUnsupportedConnectionType)
	if !strings.Contains(opencalico.ErrorMessage(err), "no OAuth client") {
		t.Fatalf("message: %q", opencalico.ErrorMessage(err))
	}
	if _, ok := plain.OAuthReady(coinbase.ID); ok {
		t.Fatal("ready without an OAuth client")
	}
}
