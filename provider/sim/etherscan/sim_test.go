package etherscan

import (
	"encoding/hex"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencalico/opencalico/provider"
)

func TestChecksumVectors(t *testing.T) {
	for _, v := range []string{"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
		"0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB", "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb"} {
		a, ok := parseAddr(strings.ToLower(v))
		if !ok || checksum(a) != v {
			t.Errorf("%s: %s", v, checksum(a))
		}
	}
}

// The generated history nets to the balances the simulator serves, per asset, exactly; and
// it holds what the adapter tests rely on.
func TestHistoryNetsToBalances(t *testing.T) {
	s := New(Options{Seed: 3, Wallets: 3, TxsPerWallet: 300})
	for _, sc := range s.chains {
		for _, l := range sc.order {
			native, l1Fees := new(big.Int), new(big.Int)
			for _, n := range l.normal {
				if n.from == l.address {
					// Gas, and on an OP Stack chain the L1 data fee, failed or not.
					native.Sub(native, fee(n.gasUsed, n.gasPrice))
					native.Sub(native, new(big.Int).SetUint64(n.l1Fee))
					l1Fees.Add(l1Fees, new(big.Int).SetUint64(n.l1Fee))
				}
				if (n.l1Fee > 0) != (sc.spec.l1Fee && n.from == l.address) {
					t.Errorf("%s: a row of l1Fee %d", sc.spec.name, n.l1Fee)
				}
				if n.failed {
					continue
				}
				if n.from == l.address {
					native.Sub(native, n.value)
				}
				if n.to == l.address {
					native.Add(native, n.value)
				}
			}
			for _, n := range l.internal {
				if n.to == l.address {
					native.Add(native, n.value)
				}
			}
			if native.Cmp(l.native) != 0 || native.Sign() < 0 {
				t.Errorf("%s: rows net %s wei, balance %s", sc.spec.name, native, l.native)
			}
			if l1Fees.Cmp(l.l1Fees) != 0 || (l1Fees.Sign() > 0) != sc.spec.l1Fee {
				t.Errorf("%s: rows pay %s wei of L1 fees, ledger %s", sc.spec.name, l1Fees, l.l1Fees)
			}
			tokens := map[*token]*big.Int{}
			sameBlock := 0
			for i, n := range l.tokens {
				b := tokens[n.token]
				if b == nil {
					b = new(big.Int)
					tokens[n.token] = b
				}
				if n.from == l.address {
					b.Sub(b, n.value)
				}
				if n.to == l.address {
					b.Add(b, n.value)
				}
				if b.Sign() < 0 {
					t.Errorf("%s: %s goes negative", sc.spec.name, n.token.symbol)
				}
				if i > 0 && l.tokens[i-1].block == n.block && l.tokens[i-1].hash != n.hash {
					sameBlock++
				}
			}
			for tk, b := range tokens {
				if b.Cmp(l.balances[tk]) != 0 {
					t.Errorf("%s %s: rows net %s, balance %s", sc.spec.name, tk.symbol, b, l.balances[tk])
				}
			}
			if sameBlock == 0 {
				t.Errorf("%s: no block holds two token transfers", sc.spec.name)
			}
			for _, k := range Kinds {
				if l.kinds[k] == 0 {
					t.Errorf("%s: no %s", sc.spec.name, k)
				}
			}
		}
	}
}

func TestGenerationIsFastAndDeterministic(t *testing.T) {
	start := time.Now()
	s := NewBenchmark(1, nil, 100, 1000)
	took := time.Since(start)
	t.Logf("100 wallets × 1,000 transactions generated in %v", took)
	if took > 5*time.Second {
		t.Errorf("generation took %v", took)
	}
	if got := s.Chains(); len(got) != 1 || got[0] != "ethereum" || len(s.Addresses()) != 100 {
		t.Errorf("chains %v, %d wallets", got, len(s.Addresses()))
	}
	a, b := New(Options{Seed: 9, Wallets: 2, TxsPerWallet: 50}), New(Options{Seed: 9, Wallets: 2, TxsPerWallet: 50})
	if a.Wallet(1) != b.Wallet(1) || a.Truth("polygon", 1).Native.Cmp(b.Truth("polygon", 1).Native) != 0 {
		t.Error("the same seed made different wallets")
	}
}

type apiAnswer struct {
	Status  string          `json:"status"`
	Message string          `json:"message"`
	Result  json.RawMessage `json:"result"`
}

func get(t *testing.T, srv *httptest.Server, q url.Values) apiAnswer {
	t.Helper()
	res, err := http.Get(srv.URL + "/v2/api?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var a apiAnswer
	if err := json.NewDecoder(res.Body).Decode(&a); err != nil || res.StatusCode != 200 {
		t.Fatalf("HTTP %d: %v", res.StatusCode, err)
	}
	return a
}

func resultText(a apiAnswer) string {
	var s string
	_ = json.Unmarshal(a.Result, &s)
	return s
}

func TestAPI(t *testing.T) {
	s := New(Options{Seed: 5, Wallets: 2, TxsPerWallet: 100, RequestsPerSecond: -1})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	query := func(kv ...string) url.Values {
		q := url.Values{"chainid": {"42161"}, "module": {"account"}, "action": {"txlist"}, "address": {s.Wallet(0)},
			"startblock": {"0"}, "endblock": {"99999999999"}, "page": {"1"}, "offset": {"1000"}, "sort": {"asc"}, "apikey": {s.APIKey()}}
		for i := 0; i < len(kv); i += 2 {
			q.Set(kv[i], kv[i+1])
		}
		return q
	}
	truth := s.Truth("arbitrum", 0)

	all := get(t, srv, query())
	var rows []map[string]string
	if err := json.Unmarshal(all.Result, &rows); err != nil || all.Status != "1" || len(rows) != truth.Rows["txlist"] {
		t.Fatalf("txlist: %v %s, %d rows, truth %d", err, all.Status, len(rows), truth.Rows["txlist"])
	}
	if rows[0]["blockNumber"] < "150000000" || rows[0]["hash"][:2] != "0x" || len(rows[0]["hash"]) != 66 || rows[0]["isError"] == "" {
		t.Errorf("row %v", rows[0])
	}
	// startblock and endblock are inclusive.
	b := rows[3]["blockNumber"]
	one := get(t, srv, query("startblock", b, "endblock", b))
	var inBlock []map[string]string
	_ = json.Unmarshal(one.Result, &inBlock)
	if len(inBlock) == 0 || inBlock[0]["blockNumber"] != b {
		t.Errorf("block %s: %v", b, inBlock)
	}
	// Descending order.
	desc := get(t, srv, query("sort", "desc", "offset", "1"))
	var last []map[string]string
	_ = json.Unmarshal(desc.Result, &last)
	if len(last) != 1 || last[0]["hash"] != rows[len(rows)-1]["hash"] {
		t.Errorf("desc: %v", last)
	}

	for name, c := range map[string]struct {
		q       url.Values
		status  string
		message string
		result  string
	}{
		"window":      {query("page", "11", "offset", "1000"), "0", "NOTOK", "Result window is too large, PageNo x Offset size must be less than or equal to 10000"},
		"window edge": {query("page", "10", "offset", "1000"), "0", "No transactions found", ""},
		"empty":       {query("address", "0xde709f2102306220921060314715629080e2fb77"), "0", "No transactions found", ""},
		"no key":      {query("apikey", ""), "0", "NOTOK", "Missing/Invalid API Key"},
		"wrong key":   {query("apikey", "NOPE"), "0", "NOTOK", "Invalid API Key (#err2)|sim"},
		"chain":       {query("chainid", "10"), "0", "NOTOK", msgBadChain},
		"address":     {query("address", "0x123"), "0", "NOTOK", msgBadAddress},
		"balance":     {query("action", "balance"), "1", "OK", truth.Native.String()},
	} {
		a := get(t, srv, c.q)
		if a.Status != c.status || a.Message != c.message || resultText(a) != c.result {
			t.Errorf("%s: %s %s %s", name, a.Status, a.Message, a.Result)
		}
	}
	for _, action := range []string{"txlistinternal", "tokentx"} {
		a := get(t, srv, query("action", action))
		var rows []map[string]string
		if err := json.Unmarshal(a.Result, &rows); err != nil || len(rows) != truth.Rows[action] {
			t.Errorf("%s: %v, %d rows, truth %d", action, err, len(rows), truth.Rows[action])
		}
	}
}

func TestRateLimitEnforced(t *testing.T) {
	// A clock 1,000 times slower than the wall: the five requests fall in one simulated second.
	clock := provider.NewScaledClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), 0.001)
	s := New(Options{Seed: 5, Wallets: 1, TxsPerWallet: 10, Clock: clock})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	var limited int
	for i, chainID := range []string{"1", "42161", "8453", "137", "1"} {
		a := get(t, srv, url.Values{"chainid": {chainID}, "module": {"account"}, "action": {"balance"}, "address": {s.Wallet(0)}, "apikey": {s.APIKey()}})
		if a.Status == "0" {
			limited++
			if a.Message != "NOTOK" || resultText(a) != "Max calls per sec rate limit reached (3/sec)" {
				t.Errorf("request %d: %s %s", i, a.Message, a.Result)
			}
		}
	}
	if st := s.Stats(); limited != 2 || st.RateLimited != 2 || st.Requests != 5 || st.Served != 3 {
		t.Errorf("%d limited; stats %+v", limited, st)
	}
}

func TestRPC(t *testing.T) {
	s := New(Options{Seed: 5, Wallets: 1, TxsPerWallet: 150, Chains: []string{"polygon"}})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	truth := s.Truth("polygon", 0)
	holder := strings.ToLower(s.Wallet(0))[2:]
	calls := []map[string]any{
		{"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []any{}},
		{"jsonrpc": "2.0", "id": 2, "method": "eth_getBalance", "params": []any{s.Wallet(0), "latest"}},
	}
	for i, tb := range truth.Tokens {
		calls = append(calls, map[string]any{"jsonrpc": "2.0", "id": 3 + i, "method": "eth_call",
			"params": []any{map[string]string{"to": tb.Contract, "data": "0x70a08231" + strings.Repeat("0", 24) + holder}, "latest"}})
	}
	body, _ := json.Marshal(calls)
	res, err := http.Post(srv.URL+"/rpc/polygon", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var answers []struct {
		ID     int    `json:"id"`
		Result string `json:"result"`
	}
	if err := json.Unmarshal(raw, &answers); err != nil || len(answers) != len(calls) {
		t.Fatalf("%v: %s", err, raw)
	}
	hexInt := func(s string) *big.Int {
		n, _ := new(big.Int).SetString(strings.TrimPrefix(s, "0x"), 16)
		return n
	}
	if hexInt(answers[0].Result).Uint64() != s.Head("polygon") || hexInt(answers[1].Result).Cmp(truth.Native) != 0 {
		t.Errorf("head %s balance %s", answers[0].Result, answers[1].Result)
	}
	for i, tb := range truth.Tokens {
		r := answers[2+i].Result
		if len(r) != 66 || hexInt(r).Cmp(tb.Units) != 0 {
			t.Errorf("%s: %s, truth %s", tb.Symbol, r, tb.Units)
		}
		if _, err := hex.DecodeString(r[2:]); err != nil {
			t.Error(err)
		}
	}
	if st := s.Stats(); st.RPCRequests != 1 || st.RPCCalls != len(calls) {
		t.Errorf("stats %+v", st)
	}
}

// rpcPost sends a JSON-RPC body and decodes the answer into out.
func rpcPost(t *testing.T, srv *httptest.Server, chain string, body any, out any) {
	t.Helper()
	b, _ := json.Marshal(body)
	res, err := http.Post(srv.URL+"/rpc/"+chain, "application/json", strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
}

// Receipts, in a batch: on base the wallet's sent transactions carry the l1Fee it paid (hex
// wei), and their sum is the truth's L1Fees; on ethereum no receipt has an l1Fee.
func TestReceipts(t *testing.T) {
	s := New(Options{Seed: 5, Wallets: 1, TxsPerWallet: 120, Chains: []string{"ethereum", "base"}})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	for _, chain := range []string{"ethereum", "base"} {
		sc := s.chains[chain]
		l := sc.order[0]
		var calls []map[string]any
		for i, n := range l.normal {
			calls = append(calls, map[string]any{"jsonrpc": "2.0", "id": i + 1, "method": "eth_getTransactionReceipt",
				"params": []any{"0x" + hex.EncodeToString(n.hash[:])}})
		}
		calls = append(calls, map[string]any{"jsonrpc": "2.0", "id": len(calls) + 1, "method": "eth_getTransactionReceipt",
			"params": []any{"0x" + strings.Repeat("ab", 32)}})
		var answers []struct {
			ID     int                `json:"id"`
			Result *map[string]any    `json:"result"`
			Error  *map[string]string `json:"error"`
		}
		rpcPost(t, srv, chain, calls, &answers)
		if len(answers) != len(calls) {
			t.Fatalf("%s: %d answers to %d calls", chain, len(answers), len(calls))
		}
		paid := new(big.Int)
		for i, a := range answers[:len(l.normal)] {
			n := l.normal[i]
			if a.Result == nil {
				t.Fatalf("%s: no receipt for row %d", chain, i)
			}
			r := *a.Result
			wantStatus := "0x1"
			if n.failed {
				wantStatus = "0x0"
			}
			if r["transactionHash"] != "0x"+hex.EncodeToString(n.hash[:]) || r["status"] != wantStatus || r["gasUsed"] != "0x"+strconv.FormatUint(n.gasUsed, 16) {
				t.Errorf("%s: receipt %v", chain, r)
			}
			fee, has := r["l1Fee"].(string)
			if has != (chain == "base") {
				t.Errorf("%s: l1Fee %v", chain, r["l1Fee"])
				continue
			}
			if !has {
				continue
			}
			v, ok := new(big.Int).SetString(strings.TrimPrefix(fee, "0x"), 16)
			if !ok || !strings.HasPrefix(fee, "0x") || v.Sign() <= 0 {
				t.Errorf("l1Fee %q", fee)
				continue
			}
			if n.from == l.address {
				paid.Add(paid, v)
			}
		}
		if last := answers[len(answers)-1]; last.Result != nil || last.Error != nil {
			t.Errorf("%s: an unknown hash got %v %v, want a null result", chain, last.Result, last.Error)
		}
		if truth := s.Truth(chain, 0); paid.Cmp(truth.L1Fees) != 0 || (chain == "base") != (paid.Sign() > 0) {
			t.Errorf("%s: receipts charge the wallet %s wei of L1 fees, truth %s", chain, paid, truth.L1Fees)
		}
	}
	if st := s.Stats(); st.RPCRequests != 2 || st.RPCMethods["eth_getTransactionReceipt"] != st.RPCCalls {
		t.Errorf("stats %+v", st)
	}
}

// A chain outside the key's plan gets Etherscan's refusal, whatever the action; other chains
// and the chain's node are served.
func TestPaidOnlyChains(t *testing.T) {
	s := New(Options{Seed: 5, Wallets: 1, TxsPerWallet: 20, Chains: []string{"ethereum", "base"}, PaidOnlyChains: []string{"base"}, RequestsPerSecond: -1})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	q := func(chainID, action string) url.Values {
		return url.Values{"chainid": {chainID}, "module": {"account"}, "action": {action}, "address": {s.Wallet(0)}, "apikey": {s.APIKey()}}
	}
	for _, action := range []string{"txlist", "tokentx", "balance"} {
		a := get(t, srv, q("8453", action))
		if a.Status != "0" || a.Message != "NOTOK" || resultText(a) != "Free API access is not supported for this chain. Please upgrade your api plan for full chain coverage. https://etherscan.io/apis" {
			t.Errorf("base %s: %s %s %s", action, a.Status, a.Message, a.Result)
		}
	}
	if a := get(t, srv, q("1", "txlist")); a.Status != "1" {
		t.Errorf("ethereum: %s %s", a.Status, a.Message)
	}
	// A wrong key is told so first.
	bad := q("8453", "txlist")
	bad.Set("apikey", "NOPE")
	if a := get(t, srv, bad); resultText(a) != msgInvalidKey {
		t.Errorf("wrong key on base: %s", a.Result)
	}
	var head struct {
		Result string `json:"result"`
	}
	rpcPost(t, srv, "base", map[string]any{"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []any{}}, &head)
	if head.Result == "" {
		t.Error("the base node did not answer")
	}
	if st := s.Stats(); st.PlanRefused != 3 || st.Requests != 5 || st.Served != 1 {
		t.Errorf("stats %+v", st)
	}
}

// rowsNetAt nets a wallet's rows of blocks ≤ block, per asset (nil: the native coin), by the
// rules of TestHistoryNetsToBalances.
func rowsNetAt(l *ledger, block uint64) map[*token]*big.Int {
	net := map[*token]*big.Int{nil: new(big.Int)}
	add := func(t *token, v *big.Int, sign int) {
		if net[t] == nil {
			net[t] = new(big.Int)
		}
		if sign < 0 {
			net[t].Sub(net[t], v)
		} else {
			net[t].Add(net[t], v)
		}
	}
	for _, n := range l.normal {
		if n.block > block {
			continue
		}
		if n.from == l.address {
			add(nil, fee(n.gasUsed, n.gasPrice), -1)
			add(nil, new(big.Int).SetUint64(n.l1Fee), -1)
		}
		if n.failed {
			continue
		}
		if n.from == l.address {
			add(nil, n.value, -1)
		}
		if n.to == l.address {
			add(nil, n.value, 1)
		}
	}
	for _, n := range l.internal {
		if n.block <= block && n.to == l.address {
			add(nil, n.value, 1)
		}
	}
	for _, n := range l.tokens {
		if n.block > block {
			continue
		}
		if n.from == l.address {
			add(n.token, n.value, -1)
		}
		if n.to == l.address {
			add(n.token, n.value, 1)
		}
	}
	return net
}

// A node answers eth_getBalance and balanceOf for the block asked: the net of the rows of the
// blocks up to it, at every block where the wallet's history changes and around it.
func TestBalancesAtBlock(t *testing.T) {
	s := New(Options{Seed: 9, Wallets: 1, TxsPerWallet: 120, Chains: []string{"base"}, HeadLead: 3})
	sc := s.chains["base"]
	l := sc.order[0]
	var blocks []uint64
	for _, n := range l.normal {
		blocks = append(blocks, n.block-1, n.block, n.block+1)
	}
	for _, n := range l.tokens {
		blocks = append(blocks, n.block-1, n.block)
	}
	blocks = append(blocks, 0, s.Head("base"))
	for _, b := range blocks {
		want := rowsNetAt(l, b)
		if got := l.nativeAtBlock(b); got.Cmp(want[nil]) != 0 {
			t.Fatalf("block %d: native %s, rows net %s", b, got, want[nil])
		}
		for _, tk := range sc.spec.tokens {
			w := want[tk]
			if w == nil {
				w = new(big.Int)
			}
			if got := l.tokenAtBlock(tk, b); got.Cmp(w) != 0 {
				t.Fatalf("block %d %s: %s, rows net %s", b, tk.symbol, got, w)
			}
		}
	}

	// Over the wire, in one batch: at a block in the middle, at the head and at "latest".
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	mid := l.normal[len(l.normal)/2].block
	holder := strings.ToLower(s.Wallet(0))[2:]
	usdc := hexAddr(sc.spec.tokens[0].contract)
	tags := []string{"0x" + strconv.FormatUint(mid, 16), "0x" + strconv.FormatUint(s.Head("base"), 16), "latest"}
	var calls []map[string]any
	for i, tag := range tags {
		calls = append(calls,
			map[string]any{"jsonrpc": "2.0", "id": 2 * i, "method": "eth_getBalance", "params": []any{s.Wallet(0), tag}},
			map[string]any{"jsonrpc": "2.0", "id": 2*i + 1, "method": "eth_call",
				"params": []any{map[string]string{"to": usdc, "data": "0x70a08231" + strings.Repeat("0", 24) + holder}, tag}})
	}
	var answers []struct {
		ID     int    `json:"id"`
		Result string `json:"result"`
	}
	rpcPost(t, srv, "base", calls, &answers)
	if len(answers) != len(calls) {
		t.Fatalf("%d answers", len(answers))
	}
	hexInt := func(s string) *big.Int {
		n, _ := new(big.Int).SetString(strings.TrimPrefix(s, "0x"), 16)
		return n
	}
	truth := s.Truth("base", 0)
	final := new(big.Int)
	for _, tb := range truth.Tokens {
		if tb.Symbol == "USDC" {
			final = tb.Units
		}
	}
	wants := [][2]*big.Int{
		{l.nativeAtBlock(mid), l.tokenAtBlock(sc.spec.tokens[0], mid)},
		{truth.Native, final},
		{truth.Native, final},
	}
	for _, a := range answers {
		if got, want := hexInt(a.Result), wants[a.ID/2][a.ID%2]; got == nil || got.Cmp(want) != 0 {
			t.Errorf("call %d at %s: %s, want %s", a.ID, tags[a.ID/2], a.Result, want)
		}
	}
	if wants[0][0].Cmp(truth.Native) == 0 {
		t.Error("the middle block's balance is the final one: the test proves nothing")
	}
}

// With StateDepth a node refuses state older than head − depth as a pruned geth node does,
// and every node refuses a block past its head; latest always answers.
func TestStateDepth(t *testing.T) {
	s := New(Options{Seed: 9, Wallets: 1, TxsPerWallet: 20, Chains: []string{"ethereum"}, StateDepth: 50})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	head := s.Head("ethereum")
	holder := strings.ToLower(s.Wallet(0))[2:]
	token := hexAddr(chainSpecs[0].tokens[0].contract)
	balanceOf := map[string]string{"to": token, "data": "0x70a08231" + strings.Repeat("0", 24) + holder}
	hexBlock := func(b uint64) string { return "0x" + strconv.FormatUint(b, 16) }
	for _, tc := range []struct {
		name    string
		method  string
		params  []any
		code    int
		message string // a prefix; "" for a result
	}{
		{"balance at the oldest kept block", "eth_getBalance", []any{s.Wallet(0), hexBlock(head - 50)}, 0, ""},
		{"balance pruned", "eth_getBalance", []any{s.Wallet(0), hexBlock(head - 51)}, -32000, "missing trie node "},
		{"call pruned", "eth_call", []any{balanceOf, hexBlock(head - 1000)}, -32000, "missing trie node "},
		{"call at latest", "eth_call", []any{balanceOf, "latest"}, 0, ""},
		{"balance at latest", "eth_getBalance", []any{s.Wallet(0), "latest"}, 0, ""},
		{"past the head", "eth_getBalance", []any{s.Wallet(0), hexBlock(head + 1)}, -32000, "header not found"},
		{"no block", "eth_getBalance", []any{s.Wallet(0)}, -32602, "missing value for required argument 1"},
		{"decimal block", "eth_getBalance", []any{s.Wallet(0), "123"}, -32602, "invalid argument 1"},
	} {
		var a struct {
			Result *string `json:"result"`
			Error  *struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		rpcPost(t, srv, "ethereum", map[string]any{"jsonrpc": "2.0", "id": 1, "method": tc.method, "params": tc.params}, &a)
		switch {
		case tc.message == "" && (a.Error != nil || a.Result == nil):
			t.Errorf("%s: %+v", tc.name, a.Error)
		case tc.message != "" && (a.Error == nil || a.Error.Code != tc.code || !strings.HasPrefix(a.Error.Message, tc.message)):
			t.Errorf("%s: %+v, want %d %q", tc.name, a.Error, tc.code, tc.message)
		case tc.code == -32000 && tc.message == "missing trie node " && !strings.HasSuffix(a.Error.Message, " (path ) <nil>"):
			t.Errorf("%s: %q", tc.name, a.Error.Message)
		}
	}
}
