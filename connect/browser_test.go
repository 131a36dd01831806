package connect_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"github.com/opencalico/opencalico/provider/ethereum"
	cbsim "github.com/opencalico/opencalico/provider/sim/coinbase"
)

// chromium is the browser the test drives. Without one the test fails rather than skips, so
// that a missing browser cannot pass for a working widget: install Debian's chromium (as
// .ci/run does) or point OPENCALICO_CHROMIUM at a browser.
func chromium(t *testing.T) string {
	for _, p := range []string{os.Getenv("OPENCALICO_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("no Chromium: apt-get install -y chromium, or set OPENCALICO_CHROMIUM to a browser")
	return ""
}

// newBrowser starts a headless Chromium with a fresh profile that does not try the network.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return ctx
}

// shots saves a PNG of each step into OPENCALICO_SCREENSHOTS (default: a temp dir).
type shots struct {
	t   *testing.T
	ctx context.Context
	dir string
	n   int
}

func newShots(t *testing.T, ctx context.Context) *shots {
	dir := os.Getenv("OPENCALICO_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return &shots{t: t, ctx: ctx, dir: dir}
}

func (s *shots) take(name string) {
	s.t.Helper()
	png, err := chromedp.Run(s.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		s.t.Fatalf("screenshot %s: %v", name, err)
	}
	s.n++
	path := filepath.Join(s.dir, fmt.Sprintf("%02d-%s.png", s.n, name))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		s.t.Fatal(err)
	}
	s.t.Logf("screenshot: %s", path)
}

func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("%s (at %s): %v", what, loc, err)
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// TestBrowserFlow goes through the widget as a person would, in Chromium: the partner's link,
// sign-up, the provider picker, a Binance key (a wrong one first), the connection's state,
// Coinbase through its own OAuth consent at the simulator (denied once, then authorized), the
// consent, the partner's callback; then the token exchange with PKCE, an API call, a
// refresh; then a second authorization that is denied, and the revocation of the consent.
func TestBrowserFlow(t *testing.T) {
	h := newHarness(t, true)
	ctx := newBrowser(t)
	shot := newShots(t, ctx)
	creds := h.sim.Credentials()[0]
	const email, password = "alice@example.com", "a long enough password"

	// The partner's link, with PKCE S256 and a state.
	link, verifier := h.authURL("state-1f3a")
	run(t, ctx, "open the partner's link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#email")))
	shot.take("signin")
	// By keyboard: the skip link comes first, then the email field, each with a visible focus.
	run(t, ctx, "tab to the email field", chromedp.KeyEvent("\t"), chromedp.KeyEvent("\t"))
	if focused, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.id`)); err != nil || focused != "email" {
		t.Fatalf("after two tabs the focus is on %q (%v), want the email field", focused, err)
	}
	shot.take("signin-keyboard")

	// Sign up.
	run(t, ctx, "go to sign-up", chromedp.Click(chromedp.CSS(".alt a")), chromedp.WaitVisible(chromedp.CSS(`input[name=password][autocomplete=new-password]`)))
	run(t, ctx, "fill the sign-up form",
		chromedp.SendKeys(chromedp.CSS(`input[name=email]`), email),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), password))
	shot.take("signup")
	run(t, ctx, "sign up", chromedp.Click(chromedp.CSS(`form button[type=submit].primary`)), chromedp.WaitVisible(chromedp.CSS("#add-title")))
	if got := text(t, ctx, ".notice"); !strings.Contains(got, "Your account is ready") {
		t.Fatalf("after sign-up: %q", got)
	}
	shot.take("home-empty")

	// Pick Binance with the search.
	run(t, ctx, "search the catalog",
		chromedp.SendKeys(chromedp.CSS("#q"), "bin"),
		chromedp.Click(chromedp.CSS(`form.search button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`input#q[value="bin"]`)), chromedp.WaitVisible(chromedp.CSS("#pick-binance")))
	if got := text(t, ctx, ".providers"); strings.Contains(got, "Kraken") || !strings.Contains(got, "Binance") {
		t.Fatalf("search results for bin: %q", got)
	}
	shot.take("search")
	run(t, ctx, "open Binance", chromedp.Click(chromedp.CSS("#pick-binance")), chromedp.WaitVisible(chromedp.CSS(`input[name=api_key]`)))

	// A wrong secret first: a clear error, nothing stored.
	run(t, ctx, "enter a wrong key",
		chromedp.SendKeys(chromedp.CSS(`input[name=api_key]`), creds["api_key"]),
		chromedp.SendKeys(chromedp.CSS(`input[name=secret_key]`), "not-the-secret-0000"),
		chromedp.Click(chromedp.CSS(`form.stack button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS("#form-error")))
	if got := text(t, ctx, "#form-error"); !strings.Contains(got, "Binance refused these credentials") {
		t.Fatalf("wrong key: %q", got)
	}
	shot.take("wrong-key")

	run(t, ctx, "enter the simulator's key",
		chromedp.SendKeys(chromedp.CSS(`input[name=api_key]`), creds["api_key"]),
		chromedp.SendKeys(chromedp.CSS(`input[name=secret_key]`), creds["secret_key"]),
		chromedp.SendKeys(chromedp.CSS(`input[name=display_label]`), "Main Binance"))
	shot.take("provider-form")
	run(t, ctx, "connect", chromedp.Click(chromedp.CSS(`form.stack button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS(".connections")))
	if got := text(t, ctx, ".notice"); !strings.Contains(got, "Main Binance is connected") {
		t.Fatalf("after connecting: %q", got)
	}
	shot.take("connected")

	// The first sync runs in the background; the page shows the connection's state.
	deadline := time.Now().Add(60 * time.Second)
	for {
		state := text(t, ctx, ".connections .state")
		if strings.Contains(state, "Up to date") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the connection's state is still %q", state)
		}
		time.Sleep(500 * time.Millisecond)
		run(t, ctx, "reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(".connections")))
	}
	shot.take("synced")
	run(t, ctx, "narrow layout", chromedp.EmulateViewport(390, 844))
	shot.take("synced-narrow")
	run(t, ctx, "wide layout", chromedp.EmulateViewport(1280, 900))

	// Coinbase through its own sign-in page: the provider page offers it above the key form.
	run(t, ctx, "open Coinbase", chromedp.Click(chromedp.CSS("#pick-coinbase")), chromedp.WaitVisible(chromedp.CSS("#oauth-connect")))
	if got := text(t, ctx, "main"); !strings.Contains(got, "Connect with Coinbase") || !strings.Contains(got, "Or use an API key") {
		t.Fatalf("Coinbase page: %q", got)
	}
	shot.take("coinbase-choice")
	coinbaseLogin := func(what string) {
		t.Helper()
		run(t, ctx, what+": connect with Coinbase", chromedp.Click(chromedp.CSS("#oauth-connect")),
			chromedp.WaitVisible(chromedp.CSS(`input[name=password][autocomplete=current-password]`)))
		if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasPrefix(loc, h.cbURL+"/oauth2/auth?") {
			t.Fatalf("%s: the button led to %s, not to Coinbase's consent", what, loc)
		}
		run(t, ctx, what+": sign in at Coinbase",
			chromedp.SendKeys(chromedp.CSS(`input[name=email]`), h.cb.LoginEmail(0)),
			chromedp.SendKeys(chromedp.CSS(`input[name=password]`), cbsim.LoginPassword))
	}
	// First the person changes their mind: Deny at Coinbase brings them back with a clear word.
	coinbaseLogin("deny")
	run(t, ctx, "sign in", chromedp.Click(chromedp.CSS(`button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS(`button[value=deny]`)))
	run(t, ctx, "deny at Coinbase", chromedp.Click(chromedp.CSS(`button[value=deny]`)), chromedp.WaitVisible(chromedp.CSS("#form-error")))
	if got := text(t, ctx, "#form-error"); !strings.Contains(got, "You did not authorize Coinbase, so nothing was connected") {
		t.Fatalf("after denying at Coinbase: %q", got)
	}
	shot.take("coinbase-denied")

	run(t, ctx, "open Coinbase again", chromedp.Click(chromedp.CSS("#pick-coinbase")), chromedp.WaitVisible(chromedp.CSS("#oauth-connect")))
	coinbaseLogin("allow")
	shot.take("coinbase-login")
	run(t, ctx, "sign in", chromedp.Click(chromedp.CSS(`button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS(`button[value=allow]`)))
	if got := text(t, ctx, "main"); !strings.Contains(got, "opencalico-test would like to access your Coinbase account") {
		t.Fatalf("Coinbase's consent page: %q", got)
	}
	shot.take("coinbase-consent")
	run(t, ctx, "authorize at Coinbase", chromedp.Click(chromedp.CSS(`button[value=allow]`)), chromedp.WaitVisible(chromedp.CSS(".notice")))
	if got := text(t, ctx, ".notice"); !strings.Contains(got, "Coinbase is connected. Its first sync has started") {
		t.Fatalf("after authorizing at Coinbase: %q", got)
	}
	if got := text(t, ctx, ".connections"); !strings.Contains(got, "Main Binance") || !strings.Contains(got, "Coinbase") {
		t.Fatalf("connections after Coinbase: %q", got)
	}
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasPrefix(loc, h.ts.URL+"/connect?") || !strings.Contains(loc, "state=state-1f3a") {
		t.Fatalf("back from Coinbase at %s, not in the partner's flow", loc)
	}
	shot.take("coinbase-connected")
	// Its first sync reads Coinbase with the tokens the consent gave.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		user, err := h.db.UserByEmail(context.Background(), email)
		if err != nil {
			t.Fatal(err)
		}
		list, err := h.db.ListConnections(context.Background(), user.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) == 2 && list[1].Type == "oauth2" && list[1].Status == "active" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Coinbase connection did not sync: %+v", list[len(list)-1])
		}
	}

	// Consent.
	run(t, ctx, "continue", chromedp.Click(chromedp.CSS(".next a")), chromedp.WaitVisible(chromedp.CSS(`button[value=allow]`)))
	if got := text(t, ctx, "h1"); !strings.Contains(got, "Allow Acme Budget to read your accounts?") {
		t.Fatalf("consent title: %q", got)
	}
	if got := text(t, ctx, "main"); !strings.Contains(got, "Main Binance") || !strings.Contains(got, "Coinbase") || !strings.Contains(got, "transaction history") {
		t.Fatalf("consent page: %q", got)
	}
	shot.take("consent")
	run(t, ctx, "narrow consent", chromedp.EmulateViewport(390, 844))
	shot.take("consent-narrow")
	run(t, ctx, "wide layout", chromedp.EmulateViewport(1280, 900))
	run(t, ctx, "allow", chromedp.Click(chromedp.CSS(`button[value=allow]`)), chromedp.WaitVisible(chromedp.CSS("#partner")))
	shot.take("partner-callback")
	got := h.partner.last()
	if got.Get("code") == "" || got.Get("state") != "state-1f3a" || got.Get("error") != "" {
		t.Fatalf("the partner received %v", got.Encode())
	}

	// The partner exchanges the code with its PKCE verifier, calls the API, refreshes.
	octx := context.WithValue(context.Background(), oauth2.HTTPClient, http.DefaultClient)
	tok, err := h.oauthCfg.Exchange(octx, got.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchanging the code: %v", err)
	}
	status, who := h.whoami(tok.AccessToken)
	user, err := h.db.UserByEmail(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusOK || who.UserID != user.ID || who.ClientID != h.client.ID {
		t.Fatalf("API call with the access token: %d %+v", status, who)
	}
	if status, labels := h.providers(tok.AccessToken); status != http.StatusOK || len(labels) != 2 || labels[0] != "Main Binance" || labels[1] != "Coinbase" {
		t.Fatalf("GET /accounts/v2/providers with the access token: %d %v", status, labels)
	}
	old := *tok
	tok.Expiry = time.Now().Add(-time.Minute)
	renewed, err := h.oauthCfg.TokenSource(octx, tok).Token()
	if err != nil {
		t.Fatalf("refreshing: %v", err)
	}
	if renewed.AccessToken == old.AccessToken || renewed.RefreshToken == old.RefreshToken {
		t.Fatal("the refresh did not renew the tokens")
	}
	if status, who := h.whoami(renewed.AccessToken); status != http.StatusOK || who.UserID != user.ID {
		t.Fatalf("API call with the renewed token: %d", status)
	}

	// A second authorization, denied: the partner gets access_denied and its state.
	link2, _ := h.authURL("state-2b7c")
	run(t, ctx, "open the link again", chromedp.Navigate(link2), chromedp.WaitVisible(chromedp.CSS(".next a")))
	run(t, ctx, "continue", chromedp.Click(chromedp.CSS(".next a")), chromedp.WaitVisible(chromedp.CSS(`button[value=deny]`)))
	run(t, ctx, "deny", chromedp.Click(chromedp.CSS(`button[value=deny]`)), chromedp.WaitVisible(chromedp.CSS("#partner")))
	shot.take("partner-denied")
	if got := h.partner.last(); got.Get("error") != "access_denied" || got.Get("state") != "state-2b7c" || got.Get("code") != "" {
		t.Fatalf("after deny the partner received %v", got.Encode())
	}

	// The person sees the partner's access and revokes it: the tokens stop working.
	run(t, ctx, "open the link again", chromedp.Navigate(link2), chromedp.WaitVisible(chromedp.CSS(".account")))
	run(t, ctx, "apps with access", chromedp.Click(chromedp.CSS(`.account a[href*="view=consents"]`)), chromedp.WaitVisible(chromedp.CSS(".consents")))
	if got := text(t, ctx, ".consents"); !strings.Contains(got, "Acme Budget") || !strings.Contains(got, "Has access") {
		t.Fatalf("consents: %q", got)
	}
	shot.take("consents")
	run(t, ctx, "revoke", chromedp.Click(chromedp.CSS(`.consents button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS(".notice")))
	if got := text(t, ctx, ".consents"); !strings.Contains(got, "Revoked") {
		t.Fatalf("after revoking: %q", got)
	}
	shot.take("revoked")
	if status, _ := h.whoami(renewed.AccessToken); status != http.StatusUnauthorized {
		t.Fatalf("API call after the consent was revoked: %d", status)
	}

	h.noSecretsInLogs(password, creds["secret_key"], "not-the-secret-0000", got.Get("code"), tok.RefreshToken, renewed.AccessToken,
		"cb-client-secret", cbsim.LoginPassword)
}

// TestBrowserWallet connects a Bitcoin wallet in a real browser: a testnet address is refused
// with a clear word and nothing stored, then a zpub connects and syncs.
func TestBrowserWallet(t *testing.T) {
	h := newHarness(t, true)
	ctx := newBrowser(t)
	shot := newShots(t, ctx)
	shot.n = 21 // after TestBrowserFlow's screenshots, in the same folder
	link, _ := h.authURL("state-wallet")
	run(t, ctx, "open the partner's link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#email")))
	run(t, ctx, "go to sign-up", chromedp.Click(chromedp.CSS(".alt a")), chromedp.WaitVisible(chromedp.CSS(`input[name=password][autocomplete=new-password]`)))
	run(t, ctx, "sign up",
		chromedp.SendKeys(chromedp.CSS(`input[name=email]`), "bob@example.com"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), "another long password"),
		chromedp.Click(chromedp.CSS(`form button[type=submit].primary`)), chromedp.WaitVisible(chromedp.CSS("#add-title")))

	run(t, ctx, "open Bitcoin", chromedp.Click(chromedp.CSS("#pick-bitcoin")), chromedp.WaitVisible(chromedp.CSS(`input[name=address]`)))
	if got := text(t, ctx, "main"); !strings.Contains(got, "public address") || !strings.Contains(got, "never enter a private key") ||
		strings.Contains(got, "API key") {
		t.Fatalf("the Bitcoin page: %q", got)
	}
	// BIP173's testnet vector: a valid address of the wrong network.
	run(t, ctx, "enter a testnet address",
		chromedp.SendKeys(chromedp.CSS(`input[name=address]`), "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"),
		chromedp.Click(chromedp.CSS(`form.stack button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS("#form-error")))
	if got := text(t, ctx, "#form-error"); !strings.Contains(got, "testnet") {
		t.Fatalf("testnet address: %q", got)
	}
	if conns, err := h.db.ListConnections(context.Background(), h.userID(t, "bob@example.com")); err != nil || len(conns) != 0 {
		t.Fatalf("after a refused address: %d connections, %v", len(conns), err)
	}
	shot.take("wallet-testnet")

	zpub := h.esplora.Truth(6).Handle // esplorasim.Kinds[6]: a BIP84 zpub
	run(t, ctx, "enter the zpub",
		chromedp.SendKeys(chromedp.CSS(`input[name=address]`), zpub),
		chromedp.SendKeys(chromedp.CSS(`input[name=display_label]`), "Cold storage"))
	shot.take("wallet-form")
	run(t, ctx, "connect", chromedp.Click(chromedp.CSS(`form.stack button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS(".connections")))
	if got := text(t, ctx, ".notice"); !strings.Contains(got, "Cold storage is connected") {
		t.Fatalf("after connecting: %q", got)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(text(t, ctx, ".connections .state"), "Up to date") {
		if time.Now().After(deadline) {
			t.Fatalf("the wallet's state is still %q", text(t, ctx, ".connections .state"))
		}
		time.Sleep(300 * time.Millisecond)
		run(t, ctx, "reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(".connections")))
	}
	shot.take("wallet-synced")

	// Ethereum reads several chains: its form asks which, and the address may come in lower
	// case (it is kept checksummed).
	run(t, ctx, "open Ethereum", chromedp.Click(chromedp.CSS("#pick-ethereum")), chromedp.WaitVisible(chromedp.CSS(`select#f-chain`)))
	if got := text(t, ctx, "select#f-chain"); !strings.Contains(got, "Ethereum") || !strings.Contains(got, "Polygon PoS") ||
		!strings.Contains(got, "Arbitrum One") || !strings.Contains(got, "Base") {
		t.Fatalf("the network choice: %q", got)
	}
	addr := h.etherscan.Wallet(0)
	run(t, ctx, "enter an address on Polygon",
		chromedp.SendKeys(chromedp.CSS(`input[name=address]`), strings.ToLower(addr)),
		chromedp.SetValue(chromedp.CSS(`select#f-chain`), "polygon"))
	shot.take("wallet-network")
	run(t, ctx, "connect", chromedp.Click(chromedp.CSS(`form.stack button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS(".connections")))
	if got := text(t, ctx, ".notice"); !strings.Contains(got, "is connected") {
		t.Fatalf("after connecting on Polygon: %q", got)
	}
	conns, err := h.db.ListConnections(context.Background(), h.userID(t, "bob@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	if c := conns[len(conns)-1]; c.ProviderID != ethereum.ProviderID || c.Chain != "polygon" || c.Address != addr {
		t.Fatalf("stored %s %s %s, want ethereum on polygon at %s", c.ProviderID, c.Chain, c.Address, addr)
	}
}
