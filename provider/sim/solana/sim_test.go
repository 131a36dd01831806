package solana

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
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
	if truth := s.Truth(0); len(all) != truth.Count-truth.OwnerAbsent {
		t.Fatalf("%d signatures, truth %d of which %d do not list the wallet", len(all), truth.Count, truth.OwnerAbsent)
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

// getSignaturesForAddress lists a transaction for an address iff the address is among its
// account keys, for the wallet and its token accounts alike, newest first, and pages the
// same way for both.
func TestSignaturesFollowAccountKeys(t *testing.T) {
	s := New(Options{Seed: 5, Accounts: 1, Transactions: 300})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	w := s.wallets[0]
	truth := s.Truth(0)
	if truth.OwnerAbsent == 0 {
		t.Fatal("no transaction credits a token account without listing the wallet")
	}
	list := func(addr string, opts map[string]any) []string {
		_, _, env := call(t, srv.URL, "getSignaturesForAddress", addr, opts)
		var out []struct{ Signature string }
		if err := json.Unmarshal(env["result"], &out); err != nil {
			t.Fatalf("%s", env["error"])
		}
		sigs := make([]string, len(out))
		for i, o := range out {
			sigs[i] = o.Signature
		}
		return sigs
	}
	addrs := []string{w.address}
	for _, ta := range w.tokens {
		addrs = append(addrs, ta.address)
	}
	onlyTokenAccounts := map[string]bool{}
	for _, addr := range addrs {
		var want []string // newest first
		for i := len(w.txs) - 1; i >= 0; i-- {
			if slices.Contains(w.txs[i].keys, addr) {
				want = append(want, w.txs[i].signature)
			}
		}
		got := list(addr, map[string]any{})
		if !slices.Equal(got, want) {
			t.Fatalf("%s: %d signatures, want %d", addr, len(got), len(want))
		}
		if len(want) > 4 {
			// before and until are positions of the address's own history.
			if p := list(addr, map[string]any{"limit": 2, "before": want[1], "until": want[4]}); !slices.Equal(p, want[2:4]) {
				t.Errorf("%s: before/until page %v, want %v", addr, p, want[2:4])
			}
		}
		if addr != w.address {
			for _, sig := range got {
				if !slices.Contains(s.txBySig[sig].keys, w.address) {
					onlyTokenAccounts[sig] = true
				}
			}
		}
	}
	// Some of them credit two of the wallet's token accounts at once.
	twice := 0
	for sig := range onlyTokenAccounts {
		n := 0
		for _, ta := range w.tokens {
			if slices.Contains(s.txBySig[sig].keys, ta.address) {
				n++
			}
		}
		if n > 1 {
			twice++
		}
	}
	if twice == 0 {
		t.Error("no transaction credits two token accounts without listing the wallet")
	}
	if len(onlyTokenAccounts) != truth.OwnerAbsent {
		t.Errorf("%d transactions found only through token accounts, truth %d", len(onlyTokenAccounts), truth.OwnerAbsent)
	}

	// Token accounts by program: the SPL Token ones, and the Token-2022 one apart.
	byProgram := func(program string) int {
		_, _, env := call(t, srv.URL, "getTokenAccountsByOwner", w.address, map[string]any{"programId": program}, map[string]any{"encoding": "jsonParsed"})
		var res struct {
			Value []struct {
				Account struct{ Owner string }
			}
		}
		if err := json.Unmarshal(env["result"], &res); err != nil {
			t.Fatalf("%s", env["error"])
		}
		for _, v := range res.Value {
			if v.Account.Owner != program {
				t.Errorf("an account of %s owned by %s", program, v.Account.Owner)
			}
		}
		return len(res.Value)
	}
	if n, m := byProgram(tokenProgram), byProgram(token2022Program); n != 3 || m != 1 {
		t.Errorf("%d SPL Token accounts, %d Token-2022 ones; want 3 and 1", n, m)
	}
}
