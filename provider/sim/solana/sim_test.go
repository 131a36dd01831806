package solana

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/opencalico/opencalico/provider"
)

func call(t *testing.T, url, method string, params ...any) (int, http.Header, map[string]json.RawMessage) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	res, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var env map[string]json.RawMessage
	_ = json.NewDecoder(res.Body).Decode(&env)
	return res.StatusCode, res.Header, env
}

func TestDeterministic(t *testing.T) {
	a, b := New(Options{Seed: 3, Transactions: 50}), New(Options{Seed: 3, Transactions: 50})
	if a.Credentials()[0]["address"] != b.Credentials()[0]["address"] || a.Truth(1).Lamports != b.Truth(1).Lamports {
		t.Fatal("the same seed made different wallets")
	}
	if c := New(Options{Seed: 4, Transactions: 50}); c.Credentials()[0]["address"] == a.Credentials()[0]["address"] {
		t.Fatal("another seed made the same wallet")
	}
	if !base58Len32(a.Credentials()[0]["address"]) || base58Len32("1111") {
		t.Fatal("base58 length check")
	}
}

func TestPagingAndErrors(t *testing.T) {
	s := New(Options{Seed: 1, Accounts: 1, Transactions: 30})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	addr := s.Credentials()[0]["address"]
	type sig struct {
		Signature string `json:"signature"`
	}
	page := func(opts map[string]any) []sig {
		_, _, env := call(t, srv.URL, "getSignaturesForAddress", addr, opts)
		var out []sig
		if err := json.Unmarshal(env["result"], &out); err != nil {
			t.Fatalf("%s", env["error"])
		}
		return out
	}
	all := page(map[string]any{})
	if len(all) != 30 {
		t.Fatalf("%d signatures", len(all))
	}
	if p := page(map[string]any{"limit": 10, "before": all[9].Signature}); len(p) != 10 || p[0] != all[10] {
		t.Errorf("before: %v", p)
	}
	if p := page(map[string]any{"until": all[5].Signature}); len(p) != 5 || p[4] != all[4] {
		t.Errorf("until: %v", p)
	}
	if _, _, env := call(t, srv.URL, "getSignaturesForAddress", addr, map[string]any{"limit": 1001}); env["error"] == nil {
		t.Error("limit 1001 accepted")
	}
	if _, _, env := call(t, srv.URL, "getBalance", "not-an-address"); !bytes.Contains(env["error"], []byte("-32602")) {
		t.Errorf("bad address: %s", env["error"])
	}
	if _, _, env := call(t, srv.URL, "getTransaction", all[0].Signature, map[string]any{"encoding": "jsonParsed"}); !bytes.Contains(env["error"], []byte("-32015")) {
		t.Errorf("without maxSupportedTransactionVersion: %s", env["error"])
	}
	s.Inject(Fault429, 1)
	if status, h, _ := call(t, srv.URL, "getBalance", addr); status != http.StatusTooManyRequests || h.Get("Retry-After") != "1" {
		t.Errorf("429 fault: %d %v", status, h)
	}
}

func TestRateLimit(t *testing.T) {
	clock := provider.NewScaledClock(time.Now(), 1)
	s := New(Options{Seed: 1, Accounts: 1, Transactions: 5, Clock: clock, RequestsPerSecond: 2})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	limited := 0
	for i := 0; i < 5; i++ {
		if status, _, _ := call(t, srv.URL, "getBalance", s.Credentials()[0]["address"]); status == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited == 0 || s.Stats().RateLimited != limited {
		t.Errorf("%d refused, stats %+v", limited, s.Stats())
	}
}

// The truth is the net of the rendered history: replay the wallet's account and token
// balances from every transaction's pre and post balances.
func TestTruthIsTheNetOfTheHistory(t *testing.T) {
	s := New(Options{Seed: 9, Accounts: 1, Transactions: 300})
	w := s.wallets[0]
	var lamports int64
	tokens := map[string]int64{}
	for _, tx := range w.txs {
		var body struct {
			Meta struct {
				PreBalances, PostBalances           []int64
				PreTokenBalances, PostTokenBalances []struct {
					Mint, Owner   string
					UITokenAmount struct{ Amount json.Number } `json:"uiTokenAmount"`
				}
			}
			Transaction struct {
				Message struct{ AccountKeys []struct{ Pubkey string } }
			}
		}
		if err := json.Unmarshal(tx.body, &body); err != nil {
			t.Fatal(err)
		}
		for i, k := range body.Transaction.Message.AccountKeys {
			if k.Pubkey == w.address {
				if body.Meta.PreBalances[i] != lamports {
					t.Fatalf("%s: pre balance %d, running %d", tx.signature, body.Meta.PreBalances[i], lamports)
				}
				lamports = body.Meta.PostBalances[i]
			}
		}
		for _, b := range body.Meta.PreTokenBalances {
			if b.Owner == w.address {
				n, _ := b.UITokenAmount.Amount.Int64()
				tokens[b.Mint] -= n
			}
		}
		for _, b := range body.Meta.PostTokenBalances {
			if b.Owner == w.address {
				n, _ := b.UITokenAmount.Amount.Int64()
				tokens[b.Mint] += n
			}
		}
	}
	truth := s.Truth(0)
	if uint64(lamports) != truth.Lamports {
		t.Errorf("lamports %d, truth %d", lamports, truth.Lamports)
	}
	for mint, n := range truth.Tokens {
		if uint64(tokens[mint]) != n {
			t.Errorf("%s: %d, truth %d", mint, tokens[mint], n)
		}
	}
	if len(truth.Kinds) != 6 {
		t.Errorf("kinds %v", truth.Kinds)
	}
}
