package coinbase

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
)

// TestJWTKnownAnswer builds tokens with a fixed key name, clock and nonce and checks the
// header and claims byte for byte and the signature with the public key, for ES256 and EdDSA.
func TestJWTKnownAnswer(t *testing.T) {
	const keyName = "organizations/org-1/apiKeys/key-1"
	now := time.Unix(1700000000, 0)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalECPrivateKey(ec)
	ecPEM := string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	ed := ed25519.NewKeyFromSeed(make([]byte, 32))
	edB64 := base64.StdEncoding.EncodeToString(ed)

	tests := []struct {
		name, secret, alg string
		verify            func(input, sig []byte) bool
	}{
		{"ES256 PEM", ecPEM, "ES256", func(input, sig []byte) bool {
			d := sha256.Sum256(input)
			return len(sig) == 64 && ecdsa.Verify(&ec.PublicKey, d[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
		}},
		{"ES256 PEM with escaped newlines", strings.ReplaceAll(ecPEM, "\n", `\n`), "ES256", func(input, sig []byte) bool {
			d := sha256.Sum256(input)
			return ecdsa.Verify(&ec.PublicKey, d[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
		}},
		{"EdDSA base64", edB64, "EdDSA", func(input, sig []byte) bool {
			return ed25519.Verify(ed.Public().(ed25519.PublicKey), input, sig)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			auth, err := newAuthorizer(provider.Credentials{FieldAPIKey: keyName, FieldSecretKey: tt.secret},
				func() string { return "00112233445566778899aabbccddeeff" })
			if err != nil {
				t.Fatal(err)
			}
			r, _ := http.NewRequest("GET", "https://api.coinbase.com/v2/accounts?limit=100&order=asc", nil)
			if err := auth.authorize(r, now); err != nil {
				t.Fatal(err)
			}
			tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok {
				t.Fatal("no bearer token")
			}
			parts := strings.Split(tok, ".")
			if len(parts) != 3 {
				t.Fatalf("%d parts", len(parts))
			}
			dec := func(s string) []byte {
				b, err := base64.RawURLEncoding.DecodeString(s)
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
			wantHeader := `{"alg":"` + tt.alg + `","kid":"` + keyName + `","nonce":"00112233445566778899aabbccddeeff","typ":"JWT"}`
			if got := string(dec(parts[0])); got != wantHeader {
				t.Errorf("header %s\nwant   %s", got, wantHeader)
			}
			wantClaims := `{"sub":"` + keyName + `","iss":"cdp","nbf":1700000000,"exp":1700000120,"uri":"GET api.coinbase.com/v2/accounts"}`
			if got := string(dec(parts[1])); got != wantClaims {
				t.Errorf("claims %s\nwant   %s", got, wantClaims)
			}
			if !tt.verify([]byte(parts[0]+"."+parts[1]), dec(parts[2])) {
				t.Error("signature does not verify with the public key")
			}
		})
	}
	// Ed25519 is deterministic: the whole token is a known answer.
	tok, err := buildJWT(keyName, ed, "GET api.coinbase.com/v2/user", now, "n")
	if err != nil {
		t.Fatal(err)
	}
	tok2, _ := buildJWT(keyName, ed, "GET api.coinbase.com/v2/user", now, "n")
	if tok != tok2 {
		t.Fatal("EdDSA token not deterministic")
	}
}

func TestAuthorizerChoice(t *testing.T) {
	ed := base64.StdEncoding.EncodeToString(ed25519.NewKeyFromSeed(make([]byte, 32)))
	tests := []struct {
		name    string
		creds   provider.Credentials
		bearer  bool
		wantErr bool
	}{
		{"oauth token wins", provider.Credentials{FieldAccessToken: "tok-secret", FieldAPIKey: "k"}, true, false},
		{"cdp key", provider.Credentials{FieldAPIKey: "k", FieldSecretKey: ed}, false, false},
		{"missing secret", provider.Credentials{FieldAPIKey: "k"}, false, true},
		{"garbage secret", provider.Credentials{FieldAPIKey: "k", FieldSecretKey: "hunter2-not-a-key"}, false, true},
		{"bad PEM", provider.Credentials{FieldAPIKey: "k", FieldSecretKey: "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----"}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := newAuthorizer(tt.creds, nil)
			if tt.wantErr {
				if opencalico.ErrorCodeOf(err) != opencalico.EInvalidCredentials {
					t.Fatalf("error %v", err)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatal("error leaks the secret")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := a.(bearerToken); ok != tt.bearer {
				t.Fatalf("authorizer %T", a)
			}
			if strings.Contains(a.limitKey(), "tok-secret") {
				t.Fatal("limit key carries the token")
			}
		})
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		status    int
		body      string
		code      opencalico.ErrorCode
		transient bool
	}{
		{200, `{"data":{}}`, "", false},
		{200, `{"data":[`, "", true},
		{401, `{"errors":[{"id":"authentication_error","message":"invalid signature"}]}`, opencalico.EInvalidCredentials, false},
		{403, `{"errors":[{"id":"invalid_scope","message":"x"}]}`, opencalico.EInvalidCredentials, false},
		{404, `{"errors":[{"id":"not_found","message":"x"}]}`, opencalico.ENotFound, false},
		{429, `{"errors":[{"id":"rate_limit_exceeded","message":"Too many requests"}]}`, "", true},
		{503, `<html>`, "", true},
		{400, `{"errors":[{"id":"invalid_request","message":"x"}]}`, opencalico.EProviderError, false},
	}
	for _, tt := range tests {
		err := Classify(&provider.Response{Status: tt.status, Header: http.Header{}, Body: []byte(tt.body)})
		if provider.IsTransient(err) != tt.transient {
			t.Errorf("%d %s: transient=%v", tt.status, tt.body, provider.IsTransient(err))
		}
		if !tt.transient && opencalico.ErrorCodeOf(err) != tt.code {
			t.Errorf("%d %s: %v, want %q", tt.status, tt.body, err, tt.code)
		}
	}
}

func TestLimiterNeverExceedsWindow(t *testing.T) {
	clock := &stepClock{now: time.Unix(0, 0)}
	l := NewLimiter(100, time.Hour, 10, clock)
	var sent []time.Time
	for range 400 {
		if err := l.Wait(t.Context(), "k", 1); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, clock.Now())
	}
	for i := range sent {
		n := 0
		for j := i; j < len(sent) && sent[j].Sub(sent[i]) < time.Hour; j++ {
			n++
		}
		if n > 100 {
			t.Fatalf("%d requests in the hour from %v", n, sent[i])
		}
	}
}

// stepClock advances only when slept on.
type stepClock struct{ now time.Time }

func (c *stepClock) Now() time.Time { return c.now }
func (c *stepClock) Sleep(_ context.Context, d time.Duration) error {
	c.now = c.now.Add(d)
	return nil
}
