package coinbase

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// token signs a CDP JWT with go-jose for the simulator's own tests.
func token(t *testing.T, key crypto.Signer, alg jose.SignatureAlgorithm, kid, uri string, now time.Time, nonce string) string {
	t.Helper()
	opts := (&jose.SignerOptions{NonceSource: fixedNonce(nonce)}).WithType("JWT").WithHeader("kid", kid)
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(sig).Claims(map[string]any{"sub": kid, "iss": "cdp", "nbf": now.Unix(),
		"exp": now.Add(2 * time.Minute).Unix(), "uri": uri}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type fixedNonce string

func (n fixedNonce) Nonce() (string, error) { return string(n), nil }

func TestAuthentication(t *testing.T) {
	start := time.Now()
	s := New(Options{Seed: 1, Events: 100, Accounts: 2})
	if d := time.Since(start); d > time.Second {
		t.Fatalf("generation took %v", d)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	creds := s.Credentials()[1] // Ed25519
	raw, _ := base64.StdEncoding.DecodeString(creds["secret_key"])
	key := ed25519.PrivateKey(raw)
	host := srv.Listener.Addr().String()
	now := time.Now()
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	tests := []struct {
		name, tok string
		want      int
	}{
		{"good", token(t, key, jose.EdDSA, creds["api_key"], "GET "+host+"/v2/user", now, "n1"), 200},
		{"reused", token(t, key, jose.EdDSA, creds["api_key"], "GET "+host+"/v2/user", now, "n1"), 401},
		{"wrong uri", token(t, key, jose.EdDSA, creds["api_key"], "GET "+host+"/v2/accounts", now, "n2"), 401},
		{"expired", token(t, key, jose.EdDSA, creds["api_key"], "GET "+host+"/v2/user", now.Add(-5*time.Minute), "n3"), 401},
		{"wrong key", token(t, stranger, jose.EdDSA, creds["api_key"], "GET "+host+"/v2/user", now, "n4"), 401},
		{"unknown kid", token(t, key, jose.EdDSA, "organizations/x/apiKeys/y", "GET "+host+"/v2/user", now, "n5"), 401},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest("GET", srv.URL+"/v2/user", nil)
		req.Header.Set("Authorization", "Bearer "+tt.tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Errors []struct{ ID string } `json:"errors"`
		}
		_ = json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		if res.StatusCode != tt.want {
			t.Errorf("%s: HTTP %d, want %d", tt.name, res.StatusCode, tt.want)
		}
		if tt.want == 401 && (len(body.Errors) != 1 || body.Errors[0].ID != "authentication_error") {
			t.Errorf("%s: body %+v", tt.name, body)
		}
	}
}

func TestGenerationDeterministicAndSolvent(t *testing.T) {
	a, b := New(Options{Seed: 9, Events: 3000}), New(Options{Seed: 9, Events: 3000})
	ra, rb := a.Rows(0), b.Rows(0)
	total := 0
	for k, v := range ra {
		total += v
		if rb[k] != v {
			t.Fatalf("%s: %d vs %d rows", k, v, rb[k])
		}
	}
	if total < 3000 {
		t.Fatalf("%d rows", total)
	}
	for code, bal := range a.Balances(0) {
		if bal.IsNegative() || !bal.Equal(b.Balances(0)[code]) {
			t.Fatalf("%s: %s", code, bal)
		}
	}
	for _, w := range a.users[0].wallets {
		run := w.balance().Sub(w.balance())
		for _, tx := range w.txs {
			if tx.counts() {
				run = run.Add(tx.amount)
			}
			if run.IsNegative() {
				t.Fatalf("%s goes negative at %s", w.code, tx.ID)
			}
		}
	}
}
