package connect_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/api"
	"github.com/opencalico/opencalico/connect"
	"github.com/opencalico/opencalico/connections"
	"github.com/opencalico/opencalico/oauth"
	"github.com/opencalico/opencalico/provider"
	"github.com/opencalico/opencalico/provider/binance"
	"github.com/opencalico/opencalico/provider/bitcoin"
	"github.com/opencalico/opencalico/provider/coinbase"
	"github.com/opencalico/opencalico/provider/ethereum"
	"github.com/opencalico/opencalico/provider/kraken"
	binancesim "github.com/opencalico/opencalico/provider/sim/binance"
	cbsim "github.com/opencalico/opencalico/provider/sim/coinbase"
	esplorasim "github.com/opencalico/opencalico/provider/sim/esplora"
	etherscansim "github.com/opencalico/opencalico/provider/sim/etherscan"
	"github.com/opencalico/opencalico/secrets"
	"github.com/opencalico/opencalico/store"
	"github.com/opencalico/opencalico/syncer"
)

// oauthOnly is a catalog entry that can only be connected through the provider's own OAuth
// consent, for which this server has no OAuth client: the widget shows it as coming soon.
type oauthOnly struct{}

func (oauthOnly) Provider() opencalico.Provider {
	return opencalico.Provider{ID: "examplex", Name: "ExampleX", Kind: opencalico.KindExchange,
		AuthTypes: []opencalico.AuthType{opencalico.AuthOAuth2}}
}

var errNotHere = errors.New("not available in this test")

func (oauthOnly) Verify(context.Context, provider.Account) error { return errNotHere }
func (oauthOnly) Balances(context.Context, provider.Account) ([]opencalico.Position, error) {
	return nil, errNotHere
}
func (oauthOnly) History(context.Context, provider.Account, provider.Cursors, provider.Sink) error {
	return errNotHere
}

// partner stands in for the partner's site: it records the query its callback receives.
type partner struct {
	ts  *httptest.Server
	mu  sync.Mutex
	got []url.Values
}

func newPartner(t *testing.T) *partner {
	p := &partner{}
	p.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r) // the browser's /favicon.ico
			return
		}
		p.mu.Lock()
		p.got = append(p.got, r.URL.Query())
		p.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		msg := "Acme Budget received an authorization code."
		if r.URL.Query().Get("error") != "" {
			msg = "Acme Budget was told: " + r.URL.Query().Get("error")
		}
		_, _ = io.WriteString(w, `<!doctype html><title>Acme Budget</title><h1 id="partner">`+msg+`</h1>`)
	}))
	t.Cleanup(p.ts.Close)
	return p
}

func (p *partner) last() url.Values {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.got) == 0 {
		return nil
	}
	return p.got[len(p.got)-1]
}

type harness struct {
	t         *testing.T
	db        *store.Store
	ts        *httptest.Server
	auth      *oauth.Server
	sim       *binancesim.Simulator
	cb        *cbsim.Simulator // Coinbase, connected through its OAuth consent
	esplora   *esplorasim.Simulator
	etherscan *etherscansim.Simulator
	cbURL     string
	conns     *connections.Service
	partner   *partner
	client    *opencalico.Client
	oauthCfg  *oauth2.Config
	logs      *strings.Builder
	logMu     *sync.Mutex
}

// lockedWriter lets the server's logs be read by the test (no secret may be in them).
type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// newHarness runs the server under test: the API server with the OAuth server, the widget
// and the connections service, a sync engine, and the Binance simulator behind the adapter.
func newHarness(t *testing.T, withSync bool) *harness {
	t.Helper()
	ctx := context.Background()
	h := &harness{t: t, logs: &strings.Builder{}, logMu: &sync.Mutex{}}
	log := slog.New(slog.NewTextHandler(lockedWriter{h.logMu, h.logs}, &slog.HandlerOptions{Level: slog.LevelInfo}))

	db, err := store.Open(ctx, "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := syncer.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	h.db = db
	ring, err := secrets.NewKeyring(secrets.GenerateMasterKey())
	if err != nil {
		t.Fatal(err)
	}
	sealer := secrets.NewSealer(ring)

	h.sim = binancesim.New(binancesim.Options{Seed: 3, Trades: 12, Deposits: 3, Withdrawals: 2, Years: 1})
	simTS := httptest.NewServer(h.sim.Handler())
	t.Cleanup(simTS.Close)
	var handler http.Handler
	h.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(h.ts.Close)

	// Coinbase through its OAuth consent: the simulator knows this server as an OAuth client
	// whose redirect URI is the widget's return page.
	h.cb = cbsim.New(cbsim.Options{Seed: 4, Accounts: 1, Events: 15, Years: 1})
	h.cb.RegisterOAuthClient(cbsim.OAuthClient{ID: "opencalico-test", Secret: "cb-client-secret",
		RedirectURIs: []string{h.ts.URL + connect.ReturnPath}})
	cbTS := httptest.NewServer(h.cb.Handler())
	t.Cleanup(cbTS.Close)
	h.cbURL = cbTS.URL
	cbOAuth, err := coinbase.NewOAuth(coinbase.OAuthConfig{ClientID: "opencalico-test", ClientSecret: "cb-client-secret",
		RedirectURI: h.ts.URL + connect.ReturnPath, APIBaseURL: cbTS.URL})
	if err != nil {
		t.Fatal(err)
	}
	cbAdapter := &coinbase.OAuthAdapter{Adapter: coinbase.New(coinbase.Options{BaseURL: cbTS.URL}),
		Tokens: coinbase.NewTokenSource(cbOAuth, db, sealer, coinbase.TokenSourceOptions{})}

	// Bitcoin wallets, read from an Esplora simulator.
	h.esplora = esplorasim.New(esplorasim.Options{Seed: 5, Transactions: 20, Pending: -1, Years: 1, RequestsPerSecond: 1000})
	esploraTS := httptest.NewServer(h.esplora.Handler())
	t.Cleanup(esploraTS.Close)

	// Ethereum and the EVM chains, read from an Etherscan simulator.
	h.etherscan = etherscansim.New(etherscansim.Options{Seed: 6, Wallets: 1, TxsPerWallet: 20, RequestsPerSecond: -1})
	etherscanTS := httptest.NewServer(h.etherscan.Handler())
	t.Cleanup(etherscanTS.Close)

	registry := provider.NewRegistry(
		binance.New(binance.Options{BaseURL: simTS.URL}),
		bitcoin.New(bitcoin.Options{BaseURL: esploraTS.URL, RequestsPerSecond: 1000}),
		ethereum.New(ethereum.Options{BaseURL: etherscanTS.URL, APIKey: h.etherscan.APIKey(), RequestsPerSecond: 1000,
			RPCURL: func(chain string) string { return etherscanTS.URL + "/rpc/" + chain }}),
		kraken.New(kraken.Options{BaseURL: "http://127.0.0.1:1"}),
		cbAdapter,
		oauthOnly{},
	)
	engine, err := syncer.New(syncer.Config{Workers: 1, InsertOnly: !withSync, FetchPollInterval: 100 * time.Millisecond}, db, registry, sealer, log)
	if err != nil {
		t.Fatal(err)
	}
	if withSync {
		if err := engine.Start(context.WithoutCancel(ctx)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = engine.Stop(sctx)
		})
	}

	h.auth, err = oauth.New(ctx, oauth.Config{Issuer: h.ts.URL, Log: log}, db, sealer)
	if err != nil {
		t.Fatal(err)
	}
	conns, err := connections.New(connections.Config{Store: db, Sealer: sealer, Providers: registry, Sync: engine,
		FingerprintKey: []byte("0123456789abcdef0123456789abcdef"), Log: log,
		OAuth: map[opencalico.ProviderID]connections.OAuthClient{coinbase.ID: connections.NewOAuthClient(cbOAuth, cbAdapter)}})
	if err != nil {
		t.Fatal(err)
	}
	h.conns = conns
	widget, err := connect.New(connect.Config{OAuth: h.auth, Users: db, Connections: conns, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	h.auth.SetWidget(widget)
	srv := api.NewServer(api.DefaultConfig(), log, db, nil)
	h.auth.Mount(srv)
	widget.Mount(srv)
	srv.MountV2(api.V2{Store: db, Catalog: registry, Authenticate: h.auth.Authenticate,
		CursorKey: []byte("cursor key for the browser test!"), Syncs: engine, Connections: conns})
	// whoami shows the principal a token carries.
	srv.Handle("GET /test/whoami", h.auth.Authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := oauth.FromContext(r.Context())
		_ = json.NewEncoder(w).Encode(p)
	})))
	handler = srv

	h.partner = newPartner(t)
	redirect := h.partner.ts.URL + "/callback"
	c, secret, err := oauth.NewClient("Acme Budget", []string{redirect}, false, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	h.client = c
	h.oauthCfg = &oauth2.Config{ClientID: c.ID, ClientSecret: secret, RedirectURL: redirect,
		Scopes: []string{oauth.ScopeAccountsRead},
		Endpoint: oauth2.Endpoint{AuthURL: h.ts.URL + "/connect", TokenURL: h.ts.URL + "/oauth/token",
			AuthStyle: oauth2.AuthStyleInHeader}}
	return h
}

// authURL is the partner's link into the widget, with PKCE S256.
func (h *harness) authURL(state string) (link, verifier string) {
	verifier = oauth2.GenerateVerifier()
	return h.oauthCfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), verifier
}

// providers calls GET /accounts/v2/providers with an access token, as a partner does, and
// returns the display labels of the connections it lists.
func (h *harness) providers(token string) (int, []string) {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.ts.URL+"/accounts/v2/providers", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			Providers []struct {
				DisplayLabel string `json:"display_label"`
			} `json:"providers"`
		} `json:"data"`
	}
	var labels []string
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			h.t.Fatal(err)
		}
		for _, p := range body.Data.Providers {
			labels = append(labels, p.DisplayLabel)
		}
	}
	return resp.StatusCode, labels
}

// whoami calls the test route with an access token.
func (h *harness) whoami(token string) (int, oauth.Principal) {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.ts.URL+"/test/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var p oauth.Principal
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
			h.t.Fatal(err)
		}
	}
	return resp.StatusCode, p
}

// noSecretsInLogs fails if a secret shows up in the server's logs.
func (h *harness) noSecretsInLogs(secrets ...string) {
	h.t.Helper()
	h.logMu.Lock()
	logs := h.logs.String()
	h.logMu.Unlock()
	for _, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			h.t.Errorf("a secret (%d characters) is in the server's logs", len(s))
		}
	}
}

// browser is a plain HTTP client with cookies, for the tests that need no rendering.
type browser struct {
	t    *testing.T
	h    *harness
	http *http.Client
}

func (h *harness) httpBrowser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: h.t, h: h, http: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// get fetches a page and returns its body and the CSRF token of its forms.
func (b *browser) get(u string) (status int, body, token string) {
	b.t.Helper()
	resp, err := b.http.Get(u)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if m := csrfField.FindStringSubmatch(string(data)); m != nil {
		token = m[1]
	}
	return resp.StatusCode, string(data), token
}

// post sends a form to u.
func (b *browser) post(u string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.http.PostForm(u, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, string(data)
}

// userID finds a widget user by email.
func (h *harness) userID(t *testing.T, email string) string {
	t.Helper()
	u, err := h.db.UserByEmail(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}
