package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// runDemo starts a sandbox server in this process and tells the whole story through its HTTP
// API only, as a partner would: a sandbox user, three exchange accounts, a refresh with its
// progress, then the portfolio and the latest transactions.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", "demo [flags]", stderr)
	var (
		dataDir string
		timeout time.Duration
	)
	fs.StringVar(&dataDir, "data-dir", "", "data directory of the demo server (default: a temporary directory, removed at the end)")
	fs.DurationVar(&timeout, "timeout", 2*time.Minute, "give up after this long")
	// The demo's flags are its own: OPENCALICO_DATA_DIR names the real server's directory,
	// not the demo's, so the environment is not read.
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("demo takes no arguments (got %q)", fs.Arg(0))
	}
	if dataDir == "" {
		dir, err := os.MkdirTemp("", "opencalico-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		dataDir = dir
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	srv, err := startServer(ctx, dataDir, io.Discard, "--sandbox")
	if err != nil {
		return err
	}
	err = demoStory(ctx, srv, stdout, isTerminal(stdout))
	if stopErr := srv.stop(); err == nil && stopErr != nil {
		err = stopErr
	}
	if err != nil && srv.log.Len() > 0 {
		fmt.Fprintf(stderr, "server log:\n%s", srv.log.String())
	}
	return err
}

// demoServer is a sandbox server running in this process.
type demoServer struct {
	base    string
	dataDir string
	cancel  context.CancelFunc
	done    chan error
	log     *syncBuffer
}

// startServer runs `serve` with extra flags (--sandbox) on a free loopback port, with its data
// in dataDir and its stdout to stdout, and waits until it is ready.
//
// The port is one the system just handed out and took back, so another process may take it
// first; the server then fails to listen, and another port is tried.
func startServer(ctx context.Context, dataDir string, stdout io.Writer, extra ...string) (*demoServer, error) {
	for attempt := 1; ; attempt++ {
		s, err := startServerOnce(ctx, dataDir, stdout, extra...)
		if err != nil && attempt < 5 && strings.Contains(err.Error(), "address already in use") {
			continue
		}
		return s, err
	}
}

func startServerOnce(ctx context.Context, dataDir string, stdout io.Writer, extra ...string) (*demoServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &demoServer{base: "http://" + addr, dataDir: dataDir, cancel: cancel, done: make(chan error, 1), log: &syncBuffer{}}
	// Every flag that matters is given, so that the environment of a real deployment
	// (OPENCALICO_DATABASE_URL, …) does not reach the demo.
	go func() {
		args := append([]string{"--env", "development", "--role", "all", "--addr", addr,
			"--data-dir", dataDir, "--database-url", "", "--master-key-file", filepath.Join(dataDir, "master.key"),
			"--issuer", "", "--log-level", "warn", "--shutdown-timeout", "5s"}, extra...)
		s.done <- runServe(sctx, args, stdout, s.log)
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-s.done:
			cancel()
			if err == nil {
				err = errors.New("the server stopped")
			}
			return nil, fmt.Errorf("starting the server: %w\n%s", err, s.log.String())
		case <-ctx.Done():
			_ = s.stop()
			return nil, fmt.Errorf("starting the server: %w", ctx.Err())
		case <-tick.C:
		}
		res, err := http.Get(s.base + "/readyz")
		if err != nil {
			continue
		}
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			return s, nil
		}
	}
}

func (s *demoServer) stop() error {
	s.cancel()
	err := <-s.done
	s.done <- err // stop may be called twice
	return err
}

// syncBuffer is a buffer safe for the server's logger and the demo to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}
func (b *syncBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.b.String() }
func (b *syncBuffer) Len() int       { b.mu.Lock(); defer b.mu.Unlock(); return b.b.Len() }

// apiClient calls the server as a partner does.
type apiClient struct {
	base  string
	token string
	// basic, when set, authenticates as the client instead of the user.
	basicID, basicSecret string
}

// apiError is an error answer: its status and CalicoErrorResponse.
type apiError struct {
	Status int
	Errors []struct {
		ProviderID string `json:"provider_id"`
		Cause      string `json:"cause"`
		Message    string `json:"message"`
	} `json:"errors"`
}

func (e *apiError) Error() string {
	if len(e.Errors) == 0 {
		return fmt.Sprintf("HTTP %d", e.Status)
	}
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Errors[0].Cause, e.Errors[0].Message)
}

// call sends a JSON request and decodes the answer's data into out. Error answers are
// *apiError.
func (c *apiClient) call(ctx context.Context, method, path string, body, out any) error {
	return c.do(ctx, method, path, body, out, nil)
}

// callPaged GETs a list: the data into out, the whole envelope (its page) into full.
func (c *apiClient) callPaged(ctx context.Context, path string, out, full any) error {
	return c.do(ctx, http.MethodGet, path, nil, out, full)
}

func (c *apiClient) do(ctx context.Context, method, path string, body, out, full any) error {
	return c.doAttempt(ctx, method, path, body, out, full, 0)
}

// doAttempt is one try of do; a read refused for the request budget (429) is tried again
// after Retry-After, up to three times.
func (c *apiClient) doAttempt(ctx context.Context, method, path string, body, out, full any, retries int) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch {
	case c.basicID != "":
		req.SetBasicAuth(url.QueryEscape(c.basicID), url.QueryEscape(c.basicSecret))
	case c.token != "":
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusTooManyRequests && method == http.MethodGet && retries < 3 {
		// The per-token budget is spent: wait as the server asks, as any client should.
		wait, _ := strconv.Atoi(res.Header.Get("Retry-After"))
		select {
		case <-time.After(time.Duration(min(max(wait, 1), 60)) * time.Second):
		case <-ctx.Done():
			return ctx.Err()
		}
		return c.doAttempt(ctx, method, path, body, out, full, retries+1)
	}
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode >= 300 {
		e := &apiError{Status: res.StatusCode}
		_ = json.Unmarshal(raw, e)
		return e
	}
	if full != nil {
		if err := json.Unmarshal(raw, full); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	if out == nil {
		return nil
	}
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return json.Unmarshal(env.Data, out)
}

// The parts of the API's answers the demo reads.
type (
	demoConnection struct {
		ConnectionID string  `json:"connection_id"`
		ProviderID   string  `json:"provider_id"`
		DisplayLabel string  `json:"display_label"`
		Status       string  `json:"status"`
		StatusDetail *string `json:"status_detail"`
		// TransactionsSyncedAt is set once the history has been read.
		TransactionsSyncedAt *string `json:"transactions_synced_at"`
	}
	demoRefresh struct {
		RefreshID   string `json:"refresh_id"`
		Kind        string `json:"kind"`
		Status      string `json:"status"`
		Connections []struct {
			ConnectionID string `json:"connection_id"`
			ProviderID   string `json:"provider_id"`
			Status       string `json:"status"`
			RowsAdded    int    `json:"rows_added"`
			RowsUpdated  int    `json:"rows_updated"`
			Error        *struct {
				Cause   string `json:"cause"`
				Message string `json:"message"`
			} `json:"error"`
		} `json:"connections"`
	}
	demoValue struct {
		Amount   string `json:"amount"`
		Currency string `json:"currency"`
	}
	demoAsset struct {
		AssetSymbol string     `json:"asset_symbol"`
		Quantity    string     `json:"quantity"`
		Value       *demoValue `json:"value"`
		Sources     []struct {
			ProviderID string `json:"provider_id"`
			Quantity   string `json:"quantity"`
		} `json:"sources"`
	}
	demoLeg struct {
		AssetSymbol string `json:"asset_symbol"`
		Amount      string `json:"amount"`
	}
	demoTransaction struct {
		ProviderID string    `json:"provider_id"`
		Type       string    `json:"type"`
		Status     string    `json:"status"`
		Timestamp  string    `json:"timestamp"`
		Inputs     []demoLeg `json:"inputs"`
		Outputs    []demoLeg `json:"outputs"`
	}
)

// demoProviders are the accounts the demo connects, in order: three exchanges and a wallet.
var demoProviders = []struct{ id, name string }{{"binance", "Binance"}, {"kraken", "Kraken"}, {"coinbase", "Coinbase"}, {"bitcoin", "Bitcoin"}}

func demoStory(ctx context.Context, srv *demoServer, out io.Writer, terminal bool) error {
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	raw, err := os.ReadFile(filepath.Join(srv.dataDir, sandboxClientFileName))
	if err != nil {
		return err
	}
	var file sandboxClientFile
	if err := json.Unmarshal(raw, &file); err != nil {
		return err
	}
	say("opencalico demo: a sandbox server at %s with the Binance, Kraken, Coinbase and Bitcoin simulators", srv.base)
	say("")

	// 1. A user who has consented to the sandbox client.
	client := &apiClient{base: srv.base, basicID: file.SandboxClient.ClientID, basicSecret: file.SandboxClient.ClientSecret}
	var user struct {
		UserID      string `json:"user_id"`
		AccessToken string `json:"access_token"`
	}
	if err := client.call(ctx, http.MethodPost, "/sandbox/users", map[string]string{"email": "demo@sandbox.opencalico.invalid"}, &user); err != nil {
		return fmt.Errorf("POST /sandbox/users: %w", err)
	}
	say("1. POST /sandbox/users                       user %s, with an access token for client %s", user.UserID, file.SandboxClient.ClientID)
	api := &apiClient{base: srv.base, token: user.AccessToken}

	// 2. One account at each exchange, from the sandbox's ready-made credentials.
	var creds map[string]struct {
		Good []struct {
			Label      string            `json:"label"`
			Connection map[string]string `json:"connection"`
		} `json:"good"`
	}
	if err := api.call(ctx, http.MethodGet, "/sandbox/credentials", nil, &creds); err != nil {
		return fmt.Errorf("GET /sandbox/credentials: %w", err)
	}
	names := map[string]string{}
	for _, p := range demoProviders {
		c, ok := creds[p.id]
		if !ok || len(c.Good) == 0 {
			return fmt.Errorf("GET /sandbox/credentials lists no %s account", p.name)
		}
		var added struct {
			Connection demoConnection `json:"connection"`
		}
		body := map[string]any{"provider_id": p.id, "display_label": p.name + " (sandbox)", "connection": c.Good[0].Connection}
		if err := api.call(ctx, http.MethodPost, "/accounts/v2/providers", body, &added); err != nil {
			return fmt.Errorf("POST /accounts/v2/providers (%s): %w", p.id, err)
		}
		names[added.Connection.ConnectionID] = p.id
		say("2. POST /accounts/v2/providers  %-9s  connection %s, %s", p.id, added.Connection.ConnectionID, added.Connection.Status)
	}

	// 3. A refresh (balances, then the history), followed until every connection is done.
	var refresh demoRefresh
	err = api.call(ctx, http.MethodPost, "/accounts/v2/assets/refresh", map[string]any{}, &refresh)
	var ae *apiError
	switch {
	case err == nil:
		say("3. POST /accounts/v2/assets/refresh          refresh %s, %s", refresh.RefreshID, refresh.Status)
	case errors.As(err, &ae) && ae.Status == http.StatusTooManyRequests && len(ae.Errors) > 0:
		// Within the cooldown: the first syncs the adds queued are the refresh.
		say("3. POST /accounts/v2/assets/refresh          %s; following the first syncs instead", ae.Errors[0].Cause)
	default:
		return fmt.Errorf("POST /accounts/v2/assets/refresh: %w", err)
	}
	say("   progress (GET /accounts/v2/refresh/{id} and GET /accounts/v2/providers):")
	if err := followRefresh(ctx, api, refresh.RefreshID, names, out, terminal); err != nil {
		return err
	}
	say("")

	// 4. The portfolio, one row per asset across the exchanges.
	var assets struct {
		Assets []demoAsset `json:"assets"`
	}
	if err := api.call(ctx, http.MethodGet, "/accounts/v2/assets?group_by=asset&limit=100", nil, &assets); err != nil {
		return fmt.Errorf("GET /accounts/v2/assets: %w", err)
	}
	say("4. GET /accounts/v2/assets?group_by=asset    portfolio (%d assets; — where no price is known)", len(assets.Assets))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "   ASSET\tQUANTITY\tVALUE\t SOURCES\t")
	for _, a := range assets.Assets {
		value := "—"
		if a.Value != nil {
			value = a.Value.Amount + " " + a.Value.Currency
		}
		var sources []string
		for _, s := range a.Sources {
			sources = append(sources, s.ProviderID)
		}
		fmt.Fprintf(tw, "   %s\t%s\t%s\t %s\t\n", a.AssetSymbol, a.Quantity, value, strings.Join(sources, ", "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	say("")

	// 5. The latest transactions.
	var txs struct {
		Transactions []demoTransaction `json:"transactions"`
	}
	if err := api.call(ctx, http.MethodGet, "/accounts/v2/transactions?limit=10", nil, &txs); err != nil {
		return fmt.Errorf("GET /accounts/v2/transactions: %w", err)
	}
	say("5. GET /accounts/v2/transactions?limit=10    the latest %d transactions", len(txs.Transactions))
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	// inputs left the user's account, outputs arrived in it.
	fmt.Fprintln(tw, "   TIME\tPROVIDER\tTYPE\tSTATUS\tSENT\tRECEIVED")
	for _, t := range txs.Transactions {
		fmt.Fprintf(tw, "   %s\t%s\t%s\t%s\t%s\t%s\n", t.Timestamp, t.ProviderID, t.Type, t.Status, legs(t.Inputs), legs(t.Outputs))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	say("")
	say("Done. Run the same server yourself: go run ./cmd/opencalico serve --sandbox (the README's First session).")
	return nil
}

func legs(ls []demoLeg) string {
	if len(ls) == 0 {
		return "—"
	}
	var parts []string
	for _, l := range ls {
		parts = append(parts, l.Amount+" "+l.AssetSymbol)
	}
	return strings.Join(parts, ", ")
}

// followRefresh polls the refresh (when there is one) and the connections, printing a line
// whenever a connection's state changes, until every connection is active or failed. On a
// terminal the lines of one poll replace those of the last.
func followRefresh(ctx context.Context, api *apiClient, refreshID string, names map[string]string, out io.Writer, terminal bool) error {
	last := map[string]string{}
	// counted caches each connection's row count by the time of its last history read: the
	// count pages through every transaction, which is too much to repeat at every poll.
	counted := map[string]int{}
	drawn := 0
	// Two requests a poll, twice a second, stay well inside the per-token request budget.
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		rows := map[string]string{}
		refreshDone := refreshID == ""
		if refreshID != "" {
			var r demoRefresh
			if err := api.call(ctx, http.MethodGet, "/accounts/v2/refresh/"+refreshID, nil, &r); err != nil {
				return fmt.Errorf("GET /accounts/v2/refresh/%s: %w", refreshID, err)
			}
			for _, c := range r.Connections {
				line := fmt.Sprintf("refresh %-9s", c.Status)
				if r.Kind == "transactions" {
					line += fmt.Sprintf(" rows +%d ~%d", c.RowsAdded, c.RowsUpdated)
				}
				if c.Error != nil {
					line += " (" + c.Error.Cause + ": " + c.Error.Message + ")"
				}
				rows[c.ConnectionID] = line
			}
			refreshDone = r.Status != "queued" && r.Status != "running"
		}
		var list struct {
			Providers []demoConnection `json:"providers"`
		}
		if err := api.call(ctx, http.MethodGet, "/accounts/v2/providers", nil, &list); err != nil {
			return fmt.Errorf("GET /accounts/v2/providers: %w", err)
		}
		settled := true
		for _, c := range list.Providers {
			detail := ""
			if c.StatusDetail != nil && *c.StatusDetail != "" {
				detail = " (" + truncateText(*c.StatusDetail, 60) + ")"
			}
			line := fmt.Sprintf("%-18s %s", "connection "+c.Status+detail, rows[c.ConnectionID])
			if c.Status == "pending" || c.Status == "syncing" || c.TransactionsSyncedAt == nil {
				settled = false
			} else {
				key := c.ConnectionID + "@" + *c.TransactionsSyncedAt
				n, ok := counted[key]
				if !ok {
					var err error
					if n, err = countTransactions(ctx, api, c.ConnectionID); err != nil {
						return err
					}
					counted[key] = n
				}
				line += fmt.Sprintf("  rows %d", n)
			}
			rows[c.ConnectionID] = line
		}
		var changed []string
		for _, p := range demoProviders {
			for id, name := range names {
				if name != p.id {
					continue
				}
				line := strings.TrimRight(fmt.Sprintf("   %-9s %s  %s", name, id, rows[id]), " ")
				if terminal || line != last[id] {
					changed = append(changed, line)
				}
				last[id] = line
			}
		}
		if terminal && drawn > 0 {
			fmt.Fprintf(out, "\x1b[%dA", drawn) // back to the first line of the last poll
		}
		for _, l := range changed {
			if terminal {
				l += "\x1b[K"
			}
			fmt.Fprintln(out, l)
		}
		if terminal {
			drawn = len(changed)
		}
		if settled && refreshDone {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the syncs: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

func truncateText(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

// countTransactions counts a connection's transactions by paging GET /accounts/v2/transactions.
func countTransactions(ctx context.Context, api *apiClient, connectionID string) (int, error) {
	n, cursor := 0, ""
	for {
		q := url.Values{"connection_ids": {connectionID}, "limit": {"100"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page struct {
			Transactions []json.RawMessage `json:"transactions"`
		}
		var env struct {
			Page struct {
				NextCursor *string `json:"next_cursor"`
				HasMore    bool    `json:"has_more"`
			} `json:"page"`
		}
		if err := api.callPaged(ctx, "/accounts/v2/transactions?"+q.Encode(), &page, &env); err != nil {
			return 0, fmt.Errorf("GET /accounts/v2/transactions: %w", err)
		}
		n += len(page.Transactions)
		if !env.Page.HasMore || env.Page.NextCursor == nil {
			return n, nil
		}
		cursor = *env.Page.NextCursor
	}
}
