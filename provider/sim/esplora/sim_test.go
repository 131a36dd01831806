package esplora

import (
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/opencalico/opencalico/provider"
)

// BIP32 test vector 1 by private derivation from the seed; the adapter checks the same
// public keys by public derivation.
func TestKnownAnswers(t *testing.T) {
	seed, _ := hex.DecodeString("000102030405060708090a0b0c0d0e0f")
	xpub := []byte{0x04, 0x88, 0xb2, 0x1e}
	m := masterKey(seed)
	const hardened = 1 << 31
	cases := []struct {
		name string
		key  privKey
		want string
	}{
		{"m", m, "xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8"},
		{"m/0H", m.child(hardened), "xpub68Gmy5EdvgibQVfPdqkBBCHxA5htiqg55crXYuXoQRKfDBFA1WEjWgP6LHhwBZeNK1VTsfTFUHCdrfp1bgwQ9xv5ski8PX9rL2dZXvgGDnw"},
		{"m/0H/1", m.child(hardened).child(1), "xpub6ASuArnXKPbfEwhqN6e3mwBcDTgzisQN1wXN9BJcM47sSikHjJf3UFHKkNAWbWMiGj7Wf5uMash7SyYq527Hqck2AxYysAA7xmALppuCkwQ"},
	}
	for _, c := range cases {
		if got := c.key.xpub(xpub); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
	addresses := []struct{ name, got, want string }{
		{"m", outputForKey(scriptP2PKH, m.pub()).address, "15mKKb2eos1hWa6tisdPwwDC1a5J1y9nma"},
		// M/0/0 as the adapter derives it from the xpub (provider/bitcoin address_test.go).
		{"m/0/0", outputForKey(scriptP2PKH, m.child(0).child(0).pub()).address, "12CL4K2eVqj7hQTix7dM7CVHCkpP17Pry3"},
		// BIP173's example program.
		{"bech32", segwitAddress(0, mustHex("751e76e8199196d454941c45d1b3a323f1433bd6")), "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"},
		{"genesis p2pkh", makeOutput(scriptP2PKH, mustHex("62e907b15cbf27d5425399ebf6f0fb50ebb88f18")).address, "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"},
	}
	for _, a := range addresses {
		if a.got != a.want {
			t.Errorf("%s: %s, want %s", a.name, a.got, a.want)
		}
		if !validMainnetAddress(a.want) {
			t.Errorf("%s refused", a.want)
		}
	}
	for _, bad := range []string{"tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh"} {
		if validMainnetAddress(bad) {
			t.Errorf("%s accepted", bad)
		}
	}
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func TestGenerationIsDeterministicAndConsistent(t *testing.T) {
	start := time.Now()
	s := New(Options{Seed: 1, Transactions: 500})
	t.Logf("generated %d wallets in %v", len(s.wallets), time.Since(start))
	again := New(Options{Seed: 1, Transactions: 500})
	for i := range s.wallets {
		tr := s.Truth(i)
		if tr.Handle != again.Truth(i).Handle || tr.Balance != again.Truth(i).Balance {
			t.Errorf("wallet %d differs between two generations", i)
		}
		if tr.Balance < 0 || tr.ConfirmedTxs != 500 || tr.PendingTxs != 2 {
			t.Errorf("wallet %d: %+v", i, tr)
		}
		if tr.Kind == KindXpub && tr.MaxIndex[0] < 10 {
			t.Errorf("receive chain not past the skipped indices: %v", tr.MaxIndex)
		}
	}
}

func TestPagingAndRateLimit(t *testing.T) {
	clock := provider.NewScaledClock(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), 1)
	s := New(Options{Seed: 3, Wallets: 1, Transactions: 60, RequestsPerSecond: 1000, Burst: 1000, Clock: clock})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	addr := s.Credentials()[0]["address"]
	get := func(path string) (int, []map[string]any) {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		var list []map[string]any
		_ = json.Unmarshal(body, &list)
		return res.StatusCode, list
	}
	var all []string
	last := ""
	for {
		path := "/address/" + addr + "/txs/chain"
		if last != "" {
			path += "/" + last
		}
		_, page := get(path)
		for _, tx := range page {
			all = append(all, tx["txid"].(string))
		}
		if len(page) < chainPageSize {
			break
		}
		last = all[len(all)-1]
	}
	if len(all) != 60 {
		t.Errorf("paged %d confirmed transactions, want 60", len(all))
	}
	if _, page := get("/address/" + addr + "/txs/chain/" + "00" + all[0][2:]); len(page) != 0 {
		t.Errorf("an unknown last_seen_txid gave %d", len(page))
	}
	if code, _ := get("/address/tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"); code != http.StatusBadRequest {
		t.Errorf("testnet address: HTTP %d", code)
	}

	// A tight limit answers 429 with Retry-After.
	tight := New(Options{Seed: 3, Wallets: 1, Transactions: 10, RequestsPerSecond: 1, Burst: 1, Clock: clock})
	srv2 := httptest.NewServer(tight.Handler())
	defer srv2.Close()
	var saw429 bool
	for i := 0; i < 3; i++ {
		res, err := http.Get(srv2.URL + "/address/" + addr)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode == http.StatusTooManyRequests && res.Header.Get("Retry-After") != "" {
			saw429 = true
		}
	}
	if !saw429 || tight.Stats().RateLimited == 0 {
		t.Errorf("no enforced 429")
	}
}
