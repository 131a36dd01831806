package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencalico/opencalico/provider"
	"github.com/opencalico/opencalico/store"
)

// startSandbox runs serve --sandbox in this process and returns it with the client it printed.
func startSandbox(t *testing.T, dataDir string) (*demoServer, sandboxClient) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout syncBuffer
	srv, err := startServer(ctx, dataDir, &stdout, "--sandbox")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.stop(); err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("stdout = %q, want one JSON line", stdout.String())
	}
	var printed sandboxClientFile
	if err := json.Unmarshal([]byte(lines[0]), &printed); err != nil {
		t.Fatalf("stdout %q: %v", lines[0], err)
	}
	return srv, printed.SandboxClient
}

// sandboxUser creates a sandbox user and returns a client that calls the API as them.
func sandboxUser(t *testing.T, srv *demoServer, c sandboxClient) *apiClient {
	t.Helper()
	var user struct {
		UserID      string `json:"user_id"`
		AccessToken string `json:"access_token"`
	}
	client := &apiClient{base: srv.base, basicID: c.ClientID, basicSecret: c.ClientSecret}
	if err := client.call(context.Background(), http.MethodPost, "/sandbox/users", nil, &user); err != nil {
		t.Fatal(err)
	}
	return &apiClient{base: srv.base, token: user.AccessToken}
}

func TestSandboxClient(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv, c := startSandbox(t, dir)
	if c.ClientID == "" || !strings.HasPrefix(c.ClientSecret, "ocs_") || c.RedirectURI != srv.base+"/sandbox/callback" ||
		!strings.HasPrefix(c.AuthorizeURL, srv.base+"/oauth/authorize?") {
		t.Fatalf("sandbox client = %+v", c)
	}
	path := filepath.Join(dir, sandboxClientFileName)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s mode = %v, want 0600", path, fi.Mode().Perm())
	}
	var saved sandboxClientFile
	raw, _ := os.ReadFile(path)
	if err := json.Unmarshal(raw, &saved); err != nil || saved.SandboxClient != c {
		t.Fatalf("file = %s (%v), want the printed client %+v", raw, err, c)
	}
	// The authorization URL leads to the widget's sign-in page.
	res, err := http.Get(c.AuthorizeURL)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET authorize_url = %d", res.StatusCode)
	}
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}

	// A restart on the same data directory (on another port: a new redirect URI) keeps the
	// file's client when its redirect URI still matches, and registers a new one otherwise.
	srv2, c2 := startSandbox(t, dir)
	if c2.RedirectURI != srv2.base+"/sandbox/callback" {
		t.Fatalf("restarted client = %+v", c2)
	}
	if c2.ClientID == c.ClientID {
		t.Fatalf("client %s reused with a redirect URI of another port", c.ClientID)
	}
	// Its secret works, and the old client's still does too (it was not deleted).
	for _, cl := range []sandboxClient{c, c2} {
		sandboxUser(t, srv2, cl)
	}
}

// TestSandboxClientReuse restarts the server on the same address: the client is reused.
func TestSandboxClientReuse(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c, err := ensureSandboxClientForTest(t, dir, "http://127.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	again, err := ensureSandboxClientForTest(t, dir, "http://127.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	if *again != *c {
		t.Fatalf("restart gave %+v, want %+v", again, c)
	}
}

func TestSandboxRefused(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"serve", "--sandbox", "--env", "production", "--data-dir", t.TempDir()},
		{"serve", "--sandbox", "--role", "api", "--data-dir", t.TempDir()},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), args, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), "--sandbox") {
			t.Errorf("%v: err = %v, want a refusal naming --sandbox", args, err)
		}
	}
}

// TestSandboxRoutesAbsent checks that without --sandbox the sandbox routes do not exist.
func TestSandboxRoutesAbsent(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout syncBuffer
	srv, err := startServer(ctx, t.TempDir(), &stdout)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.stop()
	for _, r := range []struct{ method, path string }{{"POST", "/sandbox/users"}, {"GET", "/sandbox/credentials"}, {"GET", "/sandbox/callback?code=x"}} {
		err := (&apiClient{base: srv.base, basicID: "cli_x", basicSecret: "ocs_x"}).call(ctx, r.method, r.path, nil, nil)
		var ae *apiError
		if !errors.As(err, &ae) || ae.Status != http.StatusNotFound || ae.Errors[0].Cause != "not_found" {
			t.Errorf("%s %s without --sandbox: %v, want 404 not_found", r.method, r.path, err)
		}
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout = %q, want nothing without --sandbox", stdout.String())
	}
}

// TestSandboxCredentials adds every listed credential: the good ones connect, each bad one
// fails with the error of its case.
func TestSandboxCredentials(t *testing.T) {
	t.Parallel()
	srv, c := startSandbox(t, t.TempDir())
	api := sandboxUser(t, srv, c)
	ctx := context.Background()
	type cred struct {
		Label      string            `json:"label"`
		Case       string            `json:"case"`
		Connection map[string]string `json:"connection"`
	}
	var creds map[string]struct {
		Good []cred `json:"good"`
		Bad  []cred `json:"bad"`
	}
	if err := api.call(ctx, http.MethodGet, "/sandbox/credentials", nil, &creds); err != nil {
		t.Fatal(err)
	}
	// What POST /accounts/v2/providers answers for each case.
	wantCause := func(id, c string) string {
		switch {
		case c == "revoked":
			return "invalid_credentials"
		case c == "rate_limited" && id != "binance":
			// Kraken's and Coinbase's adapters retry a 429 (honouring Retry-After) and give
			// up after their attempts; Binance's ban is rate_limited at once.
			return "provider_unavailable"
		}
		return c
	}
	check := func(id string, b cred) {
		start := time.Now()
		err := api.call(ctx, http.MethodPost, "/accounts/v2/providers",
			map[string]any{"provider_id": id, "display_label": b.Label, "connection": b.Connection}, nil)
		var ae *apiError
		if !errors.As(err, &ae) || len(ae.Errors) == 0 || ae.Errors[0].Cause != wantCause(id, b.Case) {
			t.Errorf("%s %s: %v, want %s", id, b.Case, err, wantCause(id, b.Case))
			return
		}
		t.Logf("%s %s: %v (%s)", id, b.Case, ae, time.Since(start).Round(100*time.Millisecond))
	}
	var (
		wg   sync.WaitGroup
		last []func()
	)
	for _, id := range []string{"binance", "kraken", "coinbase"} {
		pc, ok := creds[id]
		if !ok || len(pc.Good) < 2 || len(pc.Bad) != 3 {
			t.Fatalf("%s credentials = %+v", id, pc)
		}
		for _, g := range pc.Good {
			if err := api.call(ctx, http.MethodPost, "/accounts/v2/providers",
				map[string]any{"provider_id": id, "display_label": g.Label, "connection": g.Connection}, nil); err != nil {
				t.Errorf("%s %q: %v", id, g.Label, err)
			}
		}
		for _, b := range pc.Bad {
			if id == "binance" && b.Case == "rate_limited" {
				// Binance's one-second ban holds back every Binance call of the server (as a
				// real IP ban must): this one goes last, alone.
				last = append(last, func() { check(id, b) })
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				check(id, b)
			}()
		}
	}
	wg.Wait()
	for _, f := range last {
		f()
	}
	var list struct {
		Providers []demoConnection `json:"providers"`
	}
	if err := api.call(ctx, http.MethodGet, "/accounts/v2/providers", nil, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Providers) != 6 {
		t.Fatalf("%d connections, want the 6 good ones", len(list.Providers))
	}
}

// TestSandboxBaseURLWins checks that OPENCALICO_PROVIDER_<ID>_BASE_URL wins over the
// simulator: the adapter calls that endpoint, and the simulator's credentials are not listed.
func TestSandboxBaseURLWins(t *testing.T) {
	var hits atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"error":["EAPI:Invalid key"]}`))
	}))
	defer other.Close()
	t.Setenv(provider.BaseURLEnv("kraken"), other.URL)
	srv, c := startSandbox(t, t.TempDir())
	api := sandboxUser(t, srv, c)
	ctx := context.Background()
	var creds map[string]json.RawMessage
	if err := api.call(ctx, http.MethodGet, "/sandbox/credentials", nil, &creds); err != nil {
		t.Fatal(err)
	}
	if _, ok := creds["kraken"]; ok || creds["binance"] == nil {
		t.Fatalf("credentials list %v, want binance and coinbase only", keys(creds))
	}
	err := api.call(ctx, http.MethodPost, "/accounts/v2/providers", map[string]any{"provider_id": "kraken",
		"connection": map[string]string{"type": "api_key", "api_key": "k", "secret_key": wrongBase64Secret("")}}, nil)
	var ae *apiError
	if !errors.As(err, &ae) || ae.Errors[0].Cause != "invalid_credentials" || hits.Load() == 0 {
		t.Fatalf("add kraken: %v after %d calls to the explicit base URL", err, hits.Load())
	}
}

func keys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func ensureSandboxClientForTest(t *testing.T, dir, issuer string) (*sandboxClient, error) {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, "", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return ensureSandboxClient(ctx, db, issuer, dir)
}
