package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDemo runs `opencalico demo` and checks that it tells the story: the three exchanges and
// the wallet connected and synced, a portfolio with BTC, and transactions.
func TestDemo(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	start := time.Now()
	if err := run(ctx, []string{"demo"}, &stdout, &stderr); err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	if d := time.Since(start); d > time.Minute {
		t.Errorf("demo took %s, want under a minute", d)
	}
	out := stdout.String()
	for _, p := range []string{"binance", "kraken", "coinbase", "bitcoin"} {
		if !regexp.MustCompile(`(?m)^   ` + p + ` +conn_\S+  connection active .*rows [1-9]`).MatchString(out) {
			t.Errorf("no synced %s connection in:\n%s", p, out)
		}
	}
	// BTC is held at every exchange and priced by the sandbox's price simulator.
	if !regexp.MustCompile(`(?m)^ +BTC +[0-9.]+ +[0-9.]+ USD +.*binance`).MatchString(out) {
		t.Errorf("no valued BTC row in the portfolio:\n%s", out)
	}
	if !strings.Contains(out, "the latest 10 transactions") || strings.Count(out, "confirmed") < 3 {
		t.Errorf("no transactions:\n%s", out)
	}
	if strings.Contains(out, "\x1b[") {
		t.Errorf("terminal control sequences in output that is not a terminal")
	}
}
