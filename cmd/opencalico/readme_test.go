package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// firstSession returns the shell script of the README's "First session" section: its first
// sh block.
func firstSession(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "\n## First session\n")
	if !ok {
		t.Fatal("README.md has no First session section")
	}
	m := regexp.MustCompile("(?s)```sh\n(.*?)```").FindStringSubmatch(section)
	if m == nil {
		t.Fatal("the First session section has no sh block")
	}
	return m[1]
}

// TestReadmeFirstSession runs the README's First session calls, as written, against a sandbox
// server.
func TestReadmeFirstSession(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: the README's first session needs it (apt-get install -y %s)", tool, tool)
		}
	}
	script := firstSession(t)
	dir := t.TempDir()
	srv, _ := startSandbox(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
	cmd.Env = append(os.Environ(), "BASE="+srv.base, "DATA="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the First session script failed: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{
		`"rate_limited"`, `"revoked"`, `"invalid_credentials"`, // the credentials listing
		`"status": "pending"`,                // the connection added
		`"connection_type": "wallet"`,        // the wallet added
		`"status": "succeeded"`,              // the refresh
		`{"asset_symbol":"BTC","quantity":"`, // the portfolio
		`{"timestamp":"`,                     // the transactions
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %s:\n%s", want, text)
		}
	}
}
