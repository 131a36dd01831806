package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencalico/opencalico/oauth"
	"github.com/opencalico/opencalico/store"
)

func TestClientsCommand(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(ctx, "", dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	db.Close()
	clients := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(ctx, append(append([]string{"clients"}, args[:1]...), append([]string{"--data-dir", dir}, args[1:]...)...), &out, &errOut)
		return out.String(), err
	}

	out, err := clients("create", "--name", "Partner", "--redirect-uri", "https://p.example/cb", "--redirect-uri", "https://p.example/cb2")
	if err != nil {
		t.Fatal(err)
	}
	var created map[string]string
	if err := json.Unmarshal([]byte(out), &created); err != nil || len(created) != 2 ||
		!strings.HasPrefix(created["client_id"], "cli_") || !strings.HasPrefix(created["client_secret"], "ocs_") {
		t.Fatalf("create printed %q", out)
	}
	out, err = clients("create", "--name", "App", "--redirect-uri", "com.example.app:/cb", "--public")
	if err != nil {
		t.Fatal(err)
	}
	var public map[string]string
	if err := json.Unmarshal([]byte(out), &public); err != nil || len(public) != 1 || public["client_id"] == "" {
		t.Fatalf("create --public printed %q, want a client_id only", out)
	}

	// The secret is stored only as a hash that matches it.
	db, err = store.Open(ctx, "", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c, err := db.ClientByID(ctx, created["client_id"])
	if err != nil {
		t.Fatal(err)
	}
	if c.SecretHash == created["client_secret"] || !oauth.SecretMatches(c.SecretHash, created["client_secret"]) ||
		len(c.RedirectURIs) != 2 || c.Public {
		t.Fatalf("stored client %+v", c)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "opencalico.db*"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		if bytes.Contains(data, []byte(created["client_secret"])) {
			t.Fatalf("%s holds the client secret in clear", f)
		}
	}

	out, err = clients("list", "--json")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, created["client_secret"]) || strings.Contains(out, c.SecretHash) ||
		!strings.Contains(out, created["client_id"]) || !strings.Contains(out, `"public":true`) {
		t.Fatalf("list printed %s", out)
	}

	if _, err := clients("delete", created["client_id"]); err != nil {
		t.Fatal(err)
	}
	out, _ = clients("list", "--json")
	if strings.Contains(out, created["client_id"]) {
		t.Fatalf("deleted client still listed: %s", out)
	}
	if _, err := clients("delete", created["client_id"]); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("deleting twice: %v", err)
	}
	if _, err := clients("create", "--name", "Bad", "--redirect-uri", "http://p.example/cb"); err == nil ||
		err.Error() != `bad_request: redirect URI "http://p.example/cb" must use https (http is for localhost only)` {
		t.Fatalf("bad redirect URI: %v", err)
	}
}
