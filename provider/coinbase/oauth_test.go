package coinbase

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
	sim "github.com/opencalico/opencalico/provider/sim/coinbase"
	"github.com/opencalico/opencalico/secrets"
	"github.com/opencalico/opencalico/store"
)

const (
	testClientID     = "opencalico-test"
	testClientSecret = "client-secret"
	testRedirect     = "https://opencalico.example/connect/oauth/return"
)

type oauthEnv struct {
	sim    *sim.Simulator
	srv    *httptest.Server
	clock  *shiftClock
	ad     *Adapter
	oauth  *OAuth
	store  *store.Store
	sealer *secrets.Sealer
	userID string
}

func newOAuthEnv(t *testing.T) *oauthEnv {
	t.Helper()
	clock := &shiftClock{}
	s := sim.New(sim.Options{Seed: 7, Events: 200, Clock: clock})
	s.RegisterOAuthClient(sim.OAuthClient{ID: testClientID, Secret: testClientSecret, RedirectURIs: []string{testRedirect}})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	o, err := NewOAuth(OAuthConfig{ClientID: testClientID, ClientSecret: testClientSecret, RedirectURI: testRedirect,
		APIBaseURL: srv.URL, Clock: clock, AttemptTimeout: 2 * time.Second, BaseDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	ring, err := secrets.NewKeyring(secrets.GenerateMasterKey())
	if err != nil {
		t.Fatal(err)
	}
	u := &opencalico.User{Email: "owner@opencalico.example"}
	if err := st.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	return &oauthEnv{sim: s, srv: srv, clock: clock, oauth: o, store: st, sealer: secrets.NewSealer(ring), userID: u.ID,
		ad: New(Options{BaseURL: srv.URL, Clock: clock, AttemptTimeout: 2 * time.Second, BaseDelay: time.Millisecond})}
}

var (
	formAction = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
	ticketRe   = regexp.MustCompile(`name="ticket" value="([^"]+)"`)
)

// consent plays the user in a browser: open the consent URL, sign in, press Authorize; it
// returns the query of the redirect back to opencalico.
func consent(t *testing.T, base, consentURL, email, password string) url.Values {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	body := func(res *http.Response) string {
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	res, err := c.Get(consentURL)
	if err != nil {
		t.Fatal(err)
	}
	page := body(res)
	m := formAction.FindStringSubmatch(page)
	if res.StatusCode != 200 || m == nil || !strings.Contains(page, `name="email"`) || !strings.Contains(page, `name="password"`) ||
		!strings.Contains(page, `<button type="submit">`) {
		t.Fatalf("login page: HTTP %d\n%s", res.StatusCode, page)
	}
	action := strings.ReplaceAll(m[1], "&amp;", "&")
	res, err = c.PostForm(base+action, url.Values{"email": {email}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	page = body(res)
	m = ticketRe.FindStringSubmatch(page)
	if res.StatusCode != 200 || m == nil || !strings.Contains(page, ">Authorize</button>") {
		t.Fatalf("consent page: HTTP %d\n%s", res.StatusCode, page)
	}
	res, err = c.PostForm(base+"/oauth2/auth/consent", url.Values{"ticket": {m[1]}, "decision": {"allow"}})
	if err != nil {
		t.Fatal(err)
	}
	body(res)
	loc, err := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), testRedirect+"?") {
		t.Fatalf("after consent: HTTP %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	return loc.Query()
}

// connect runs the whole consent for seeded account 0 and stores the connection the way the
// callback handler would: tokens sealed under the new connection's id.
func (e *oauthEnv) connect(t *testing.T) (*opencalico.Connection, Tokens) {
	t.Helper()
	ctx := context.Background()
	state, verifier := "state-"+NewCodeVerifier(), NewCodeVerifier()
	back := consent(t, e.srv.URL, e.oauth.ConsentURL(state, verifier), e.sim.LoginEmail(0), sim.LoginPassword)
	if back.Get("state") != state || back.Get("code") == "" {
		t.Fatalf("redirect query %v", back)
	}
	tok, err := e.oauth.Exchange(ctx, back.Get("code"), verifier)
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" || tok.Expiry.Sub(e.clock.Now()) < 59*time.Minute {
		t.Fatalf("tokens %v", tok)
	}
	c := &opencalico.Connection{ID: opencalico.NewID("conn"), UserID: e.userID, ProviderID: ID, Type: opencalico.AuthOAuth2}
	sealed, err := e.sealer.SealCredentials(c.ID, tok.Credentials())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateConnection(ctx, c, &sealed); err != nil {
		t.Fatal(err)
	}
	return c, tok
}

// account is what the sync worker hands the adapter: the opened credentials.
func (e *oauthEnv) account(t *testing.T, c *opencalico.Connection) provider.Account {
	t.Helper()
	sealed, err := e.store.Secret(context.Background(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := e.sealer.OpenCredentials(sealed)
	if err != nil {
		t.Fatal(err)
	}
	return provider.Account{ConnectionID: c.ID, UserID: c.UserID, Credentials: creds}
}

func (e *oauthEnv) stored(t *testing.T, id string) map[string]string {
	t.Helper()
	sealed, err := e.store.Secret(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := e.sealer.OpenCredentials(sealed)
	if err != nil {
		t.Fatal(err)
	}
	return creds
}

func TestConsentURL(t *testing.T) {
	t.Setenv(LoginURLEnv, "")
	o, err := NewOAuth(OAuthConfig{ClientID: "cid", ClientSecret: "s", RedirectURI: testRedirect, APIBaseURL: DefaultBaseURL})
	if err != nil {
		t.Fatal(err)
	}
	verifier := NewCodeVerifier()
	u, err := url.Parse(o.ConsentURL("state-123456", verifier))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Scheme+"://"+u.Host+u.Path != "https://login.coinbase.com/oauth2/auth" || q.Get("client_id") != "cid" ||
		q.Get("response_type") != "code" || q.Get("redirect_uri") != testRedirect || q.Get("state") != "state-123456" ||
		q.Get("scope") != "wallet:user:read,wallet:accounts:read,wallet:transactions:read,offline_access" ||
		q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") != CodeChallenge(verifier) {
		t.Fatalf("consent URL %s", u)
	}
	// RFC 7636 appendix B.
	if got := CodeChallenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"); got != "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" {
		t.Fatalf("S256 challenge %s", got)
	}
	if len(verifier) != 43 {
		t.Fatalf("verifier of %d characters", len(verifier))
	}
	// The login service follows the API when that points elsewhere (the simulator), unless
	// the variable says otherwise.
	if got := LoginURL("http://127.0.0.1:9999/"); got != "http://127.0.0.1:9999" {
		t.Fatalf("LoginURL(sim) = %s", got)
	}
	t.Setenv(LoginURLEnv, "https://login.example/")
	if got := LoginURL(DefaultBaseURL); got != "https://login.example" {
		t.Fatalf("LoginURL with %s = %s", LoginURLEnv, got)
	}
	if _, err := NewOAuth(OAuthConfig{ClientID: "cid", RedirectURI: "/relative"}); err == nil {
		t.Fatal("a relative redirect URI was accepted")
	}
}

// TestOAuthFlow: consent → code → Exchange → read with the access token → the token expires →
// refresh → the old refresh token is dead → reading works with the new pair.
func TestOAuthFlow(t *testing.T) {
	e := newOAuthEnv(t)
	ctx := context.Background()
	c, first := e.connect(t)
	ts := NewTokenSource(e.oauth, e.store, e.sealer, TokenSourceOptions{})
	oa := &OAuthAdapter{Adapter: e.ad, Tokens: ts}

	acct := e.account(t, c)
	if err := oa.Verify(ctx, acct); err != nil {
		t.Fatal(err)
	}
	// Right after Exchange, before anything is stored, the access token alone identifies the user.
	uid, err := oa.UserID(ctx, provider.Account{Credentials: provider.Credentials{FieldAccessToken: first.AccessToken}})
	if err != nil || uid == "" {
		t.Fatalf("UserID = %q, %v", uid, err)
	}
	pos, err := oa.Balances(ctx, acct)
	if err != nil {
		t.Fatal(err)
	}
	want := e.sim.Balances(0)
	if len(pos) != len(want) {
		t.Fatalf("%d positions, want %d", len(pos), len(want))
	}
	for _, p := range pos {
		if !p.Quantity.Equal(want[p.AssetSymbol]) {
			t.Fatalf("%s: %s, want %s", p.AssetSymbol, p.Quantity, want[p.AssetSymbol])
		}
	}
	col := newCollector()
	if err := oa.History(ctx, acct, nil, col.sink(t)); err != nil {
		t.Fatal(err)
	}
	if len(col.txs) == 0 {
		t.Fatal("no history read")
	}
	if st := e.sim.OAuthStats(); st.Refreshes != 0 || st.BearerAccepted == 0 {
		t.Fatalf("before expiry: %+v", st)
	}

	// An hour later the access token is refused with Coinbase's own 401.
	e.clock.advance(61 * time.Minute)
	err = e.ad.Verify(ctx, provider.Account{Credentials: provider.Credentials{FieldAccessToken: first.AccessToken}})
	if opencalico.ErrorCodeOf(err) != opencalico.EInvalidCredentials || !strings.Contains(err.Error(), "expired_token") {
		t.Fatalf("expired token: %v", err)
	}
	// The adapter refreshes by itself and stores the new pair.
	pos2, err := oa.Balances(ctx, e.account(t, c))
	if err != nil {
		t.Fatal(err)
	}
	if len(pos2) != len(pos) {
		t.Fatalf("%d positions after refresh", len(pos2))
	}
	if st := e.sim.OAuthStats(); st.Refreshes != 1 {
		t.Fatalf("refreshes %d", st.Refreshes)
	}
	second := tokensOf(e.stored(t, c.ID))
	if second.RefreshToken == first.RefreshToken || second.AccessToken == first.AccessToken ||
		second.Expiry.Sub(e.clock.Now()) < 59*time.Minute {
		t.Fatalf("stored pair not rotated: %v", second)
	}
	if creds := e.stored(t, c.ID); creds[fieldRefreshingSince] != "" || creds[fieldRefreshFailed] != "" {
		t.Fatalf("bookkeeping left in the secret: %v", provider.Credentials(creds))
	}
	// The old refresh token is single use.
	if _, err := e.oauth.Refresh(ctx, first.RefreshToken); opencalico.ErrorCodeOf(err) != opencalico.EReauthRequired {
		t.Fatalf("reused refresh token: %v", err)
	}
	// The new pair reads, directly and through the adapter.
	if err := e.ad.Verify(ctx, provider.Account{Credentials: provider.Credentials{FieldAccessToken: second.AccessToken}}); err != nil {
		t.Fatal(err)
	}
	col2 := newCollector()
	if err := oa.History(ctx, e.account(t, c), nil, col2.sink(t)); err != nil {
		t.Fatal(err)
	}
	if len(col2.txs) != len(col.txs) {
		t.Fatalf("history after refresh: %d, want %d", len(col2.txs), len(col.txs))
	}
	// A refresh can itself be refreshed: the chain goes on.
	e.clock.advance(61 * time.Minute)
	if _, err := ts.Token(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if st := e.sim.OAuthStats(); st.Refreshes != 2 {
		t.Fatalf("refreshes %d", st.Refreshes)
	}
}

// TestOAuthTokenErrors: Exchange and Refresh classify the token endpoint's answers.
func TestOAuthTokenErrors(t *testing.T) {
	e := newOAuthEnv(t)
	ctx := context.Background()
	state, verifier := "state-"+NewCodeVerifier(), NewCodeVerifier()
	back := consent(t, e.srv.URL, e.oauth.ConsentURL(state, verifier), e.sim.LoginEmail(0), sim.LoginPassword)
	if _, err := e.oauth.Exchange(ctx, back.Get("code"), NewCodeVerifier()); opencalico.ErrorCodeOf(err) != opencalico.EInvalidCredentials {
		t.Fatalf("wrong verifier: %v", err)
	}
	// A 503 is retried; the code then exchanges.
	e.sim.Inject(sim.Fault{Kind: sim.Fault5xx, Path: "/oauth2/token"})
	tok, err := e.oauth.Exchange(ctx, back.Get("code"), verifier)
	if err != nil {
		t.Fatal(err)
	}
	// An outage that outlasts the retries is provider_unavailable, not an auth failure.
	e.sim.Inject(sim.Fault{Kind: sim.Fault5xx, Path: "/oauth2/token", Times: 3})
	if _, err := e.oauth.Refresh(ctx, tok.RefreshToken); opencalico.ErrorCodeOf(err) != opencalico.EProviderUnavailable {
		t.Fatalf("outage: %v", err)
	}
	bad, _ := NewOAuth(OAuthConfig{ClientID: testClientID, ClientSecret: "wrong", RedirectURI: testRedirect, APIBaseURL: e.srv.URL})
	if _, err := bad.Refresh(ctx, tok.RefreshToken); opencalico.ErrorCodeOf(err) != opencalico.EProviderError || !strings.Contains(err.Error(), "invalid_client") {
		t.Fatalf("wrong client secret: %v", err)
	}
	fresh, err := e.oauth.Refresh(ctx, tok.RefreshToken)
	if err != nil {
		t.Fatalf("the refresh token was used by a failed attempt: %v", err)
	}
	// A replayed code is refused and revokes what it produced (RFC 6749 §4.1.2), the refreshed
	// pair included.
	if _, err := e.oauth.Exchange(ctx, back.Get("code"), verifier); opencalico.ErrorCodeOf(err) != opencalico.EInvalidCredentials {
		t.Fatalf("reused code: %v", err)
	}
	if _, err := e.oauth.Refresh(ctx, fresh.RefreshToken); opencalico.ErrorCodeOf(err) != opencalico.EReauthRequired {
		t.Fatalf("refresh after a code replay: %v", err)
	}
}

// TestOAuthConcurrentRefresh: many workers in two processes need a token when it expires;
// exactly one refresh reaches Coinbase. The simulator is strict here: a replayed refresh
// token would revoke the grant, so any double refresh would also break the reads below.
func TestOAuthConcurrentRefresh(t *testing.T) {
	e := newOAuthEnv(t)
	e.sim.SetReplayRevokesGrant(true)
	ctx := context.Background()
	c, _ := e.connect(t)
	procs := []*TokenSource{
		NewTokenSource(e.oauth, e.store, e.sealer, TokenSourceOptions{PollInterval: 5 * time.Millisecond}),
		NewTokenSource(e.oauth, e.store, e.sealer, TokenSourceOptions{PollInterval: 5 * time.Millisecond}),
	}
	e.clock.advance(2 * time.Hour)
	const workers = 8
	tokens := make([]string, workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := procs[i%2].Token(ctx, c.ID)
			if err != nil {
				t.Error(err)
			}
			tokens[i] = tok
		}()
	}
	wg.Wait()
	if st := e.sim.OAuthStats(); st.Refreshes != 1 || st.RefreshReplays != 0 {
		t.Fatalf("%d refreshes and %d replays, want exactly one refresh", st.Refreshes, st.RefreshReplays)
	}
	for _, tok := range tokens {
		if tok != tokens[0] {
			t.Fatal("workers got different tokens")
		}
	}
	oa := &OAuthAdapter{Adapter: e.ad, Tokens: procs[0]}
	if err := oa.Verify(ctx, e.account(t, c)); err != nil {
		t.Fatal(err)
	}
}

// failingStore is a store whose writes fail once told to: the process "dies" at that point.
type failingStore struct {
	*store.Store
	failFrom int // fail the n-th ReplaceSecret and every later one (1-based; 0 never)
	calls    atomic.Int32
}

func (f *failingStore) ReplaceSecret(ctx context.Context, prev, next opencalico.SealedSecret) (bool, error) {
	if n := int(f.calls.Add(1)); f.failFrom > 0 && n >= f.failFrom {
		return false, errors.New("injected crash: the process died before the commit")
	}
	return f.Store.ReplaceSecret(ctx, prev, next)
}

// TestOAuthCrashWindow kills the refresher between Coinbase's answer and the commit of the new
// pair (the first ReplaceSecret writes the intent marker, the second would store the pair).
// Coinbase refresh tokens are single use without a grace period, so the pair is lost; the
// outcome must be a connection clearly in reauth_required, not one that silently fails.
func TestOAuthCrashWindow(t *testing.T) {
	e := newOAuthEnv(t)
	ctx := context.Background()
	c, first := e.connect(t)
	opts := TokenSourceOptions{Lease: 2 * time.Minute, PollInterval: 5 * time.Millisecond}
	crashing := NewTokenSource(e.oauth, &failingStore{Store: e.store, failFrom: 2}, e.sealer, opts)
	e.clock.advance(61 * time.Minute)
	if _, err := crashing.Token(ctx, c.ID); err == nil || !strings.Contains(err.Error(), "injected crash") {
		t.Fatalf("crashing refresher: %v", err)
	}
	if st := e.sim.OAuthStats(); st.Refreshes != 1 {
		t.Fatalf("Coinbase saw %d refreshes", st.Refreshes)
	}
	// What the crash left: the old pair with the intent marker.
	left := e.stored(t, c.ID)
	if left[FieldRefreshToken] != first.RefreshToken || left[fieldRefreshingSince] == "" {
		t.Fatalf("after the crash: %v", provider.Credentials(left))
	}
	t.Logf("after the crash the secret holds the used refresh token and refreshing_since=%s", left[fieldRefreshingSince])

	// A restarted process does not touch the token while the lease runs: it waits.
	restarted := NewTokenSource(e.oauth, e.store, e.sealer, opts)
	wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err := restarted.Token(wctx, c.ID)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("within the lease: %v", err)
	}
	// After the lease it takes over, learns from Coinbase that the token was used, and puts the
	// connection in reauth_required with a message.
	e.clock.advance(3 * time.Minute)
	_, err = restarted.Token(ctx, c.ID)
	if opencalico.ErrorCodeOf(err) != opencalico.EReauthRequired || !provider.IsAuthError(err) ||
		!strings.Contains(opencalico.ErrorMessage(err), "interrupted") {
		t.Fatalf("after the lease: %v", err)
	}
	t.Logf("outcome: %s: %s", opencalico.ErrorCodeOf(err), opencalico.ErrorMessage(err))
	// The verdict is stored: later calls answer at once, without asking Coinbase again.
	before := e.sim.OAuthStats()
	if _, err := NewTokenSource(e.oauth, e.store, e.sealer, opts).Token(ctx, c.ID); opencalico.ErrorCodeOf(err) != opencalico.EReauthRequired {
		t.Fatalf("later call: %v", err)
	}
	oa := &OAuthAdapter{Adapter: e.ad, Tokens: restarted}
	if _, err := oa.Balances(ctx, e.account(t, c)); opencalico.ErrorCodeOf(err) != opencalico.EReauthRequired {
		t.Fatalf("sync after the crash: %v", err)
	}
	if after := e.sim.OAuthStats(); after.InvalidGrants != before.InvalidGrants || after.Refreshes != before.Refreshes {
		t.Fatalf("Coinbase was asked again: %+v → %+v", before, after)
	}
	// Connecting Coinbase again replaces the secret and the connection works.
	state, verifier := "state-"+NewCodeVerifier(), NewCodeVerifier()
	back := consent(t, e.srv.URL, e.oauth.ConsentURL(state, verifier), e.sim.LoginEmail(0), sim.LoginPassword)
	tok, err := e.oauth.Exchange(ctx, back.Get("code"), verifier)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := e.sealer.SealCredentials(c.ID, tok.Credentials())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.PutSecret(ctx, sealed); err != nil {
		t.Fatal(err)
	}
	if _, err := oa.Balances(ctx, e.account(t, c)); err != nil {
		t.Fatalf("after reconnecting: %v", err)
	}
}

// TestOAuthCrashBeforeCall: a refresher that died after writing its intent but before
// calling Coinbase loses nothing: the takeover's refresh succeeds.
func TestOAuthCrashBeforeCall(t *testing.T) {
	e := newOAuthEnv(t)
	ctx := context.Background()
	c, first := e.connect(t)
	creds := first.Credentials()
	creds[fieldRefreshingSince] = e.clock.Now().UTC().Format(time.RFC3339Nano)
	creds[fieldRefreshingOwner] = "dead-process"
	sealed, err := e.sealer.SealCredentials(c.ID, creds)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.PutSecret(ctx, sealed); err != nil {
		t.Fatal(err)
	}
	e.clock.advance(61 * time.Minute)
	ts := NewTokenSource(e.oauth, e.store, e.sealer, TokenSourceOptions{})
	tok, err := ts.Token(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if tok == first.AccessToken || e.sim.OAuthStats().Refreshes != 1 {
		t.Fatal("no refresh after the takeover")
	}
	if left := e.stored(t, c.ID); left[fieldRefreshingSince] != "" || left[FieldAccessToken] != tok {
		t.Fatalf("after the takeover: %v", provider.Credentials(left))
	}
}

// TestOAuthRevoke: revoking the grant stops the access token at once (Coinbase's 401
// revoked_token), and the connection ends in reauth_required.
func TestOAuthRevoke(t *testing.T) {
	e := newOAuthEnv(t)
	ctx := context.Background()
	c, tok := e.connect(t)
	if err := e.oauth.Revoke(ctx, tok.AccessToken); err != nil {
		t.Fatal(err)
	}
	err := e.ad.Verify(ctx, provider.Account{Credentials: provider.Credentials{FieldAccessToken: tok.AccessToken}})
	if opencalico.ErrorCodeOf(err) != opencalico.EInvalidCredentials || !strings.Contains(err.Error(), "revoked_token") {
		t.Fatalf("revoked access token: %v", err)
	}
	oa := &OAuthAdapter{Adapter: e.ad, Tokens: NewTokenSource(e.oauth, e.store, e.sealer, TokenSourceOptions{})}
	if _, err := oa.Balances(ctx, e.account(t, c)); opencalico.ErrorCodeOf(err) != opencalico.EReauthRequired {
		t.Fatalf("after revocation: %v", err)
	}
	if e.stored(t, c.ID)[fieldRefreshFailed] == "" {
		t.Fatal("the verdict was not stored")
	}
	// Revoking an unknown token is not an error (Coinbase answers 200).
	if err := e.oauth.Revoke(ctx, "unknown"); err != nil {
		t.Fatal(err)
	}
	if st := e.sim.OAuthStats(); st.Revocations != 1 {
		t.Fatalf("revocations %d", st.Revocations)
	}
}
