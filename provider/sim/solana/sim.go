// Package solana simulates a Solana JSON-RPC node for tests and sandbox mode: seeded wallets
// with years of SOL and SPL token transfers, swaps and failed transactions, served through
// getBalance, getTokenAccountsByOwner, getSignaturesForAddress and getTransaction in the
// real shapes, with the real paging (limit ≤ 1000, before, until), a requests-per-second
// limit answering 429 with Retry-After, and faults on demand.
//
// Each wallet holds token accounts of the SPL Token program and one of Token-2022. As on a
// real node, getSignaturesForAddress lists a transaction for an address iff the address is
// among the transaction's account keys: most token receives into an existing account do not
// list the wallet itself, so only its token account's history holds them.
//
// It does not import the adapter: both sides follow the node's documented behaviour.
package solana

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/opencalico/opencalico/provider"
)

// Options configure a simulator. Zero values take the defaults.
type Options struct {
	Seed         int64
	Clock        provider.Clock
	Accounts     int // default 2
	Transactions int // per wallet, default 400
	// RequestsPerSecond is the node's limit per client (0: none); beyond it, 429 with
	// Retry-After.
	RequestsPerSecond float64
	// SlowDelay is how long a FaultSlow answer waits (default 2 s).
	SlowDelay time.Duration
}

// Fault is a failure injected into the next requests.
type Fault string

// Faults on demand.
const (
	Fault5xx        Fault = "5xx"         // 503 with a plain body
	Fault429        Fault = "429"         // 429 with Retry-After: 1 and a JSON-RPC error body
	FaultMalformed  Fault = "malformed"   // 200 with an HTML page
	FaultTruncated  Fault = "truncated"   // 200 with the answer cut in half
	FaultNodeBehind Fault = "node_behind" // 200 with JSON-RPC error -32005
	FaultSlow       Fault = "slow"        // the answer after SlowDelay
)

// Stats count what the simulator answered.
type Stats struct {
	Requests    int
	RateLimited int // refused by the rate limit (not injected)
	Faults      int
	ByMethod    map[string]int
}

// Simulator is a fake Solana RPC node.
type Simulator struct {
	clock   provider.Clock
	rate    float64
	slow    time.Duration
	wallets []*wallet
	byAddr  map[string]*wallet
	// txBySig finds any generated transaction; byKey lists, per address, the transactions
	// whose account keys include it, oldest first by (slot, seq): exactly what a node's
	// getSignaturesForAddress answers from.
	txBySig map[string]*simTx
	byKey   map[string][]*simTx

	mu      sync.Mutex
	stats   Stats
	faults  []Fault
	tokens  float64
	tokenAt time.Time
}

// New generates the seeded wallets.
func New(opts Options) *Simulator {
	if opts.Clock == nil {
		opts.Clock = provider.RealClock{}
	}
	if opts.Accounts <= 0 {
		opts.Accounts = 2
	}
	if opts.Transactions <= 0 {
		opts.Transactions = 400
	}
	if opts.SlowDelay <= 0 {
		opts.SlowDelay = 2 * time.Second
	}
	s := &Simulator{clock: opts.Clock, rate: opts.RequestsPerSecond, slow: opts.SlowDelay,
		byAddr: map[string]*wallet{}, txBySig: map[string]*simTx{}, byKey: map[string][]*simTx{},
		stats: Stats{ByMethod: map[string]int{}}}
	from := time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC)
	to := time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < opts.Accounts; i++ {
		w := &wallet{rng: rand.New(rand.NewPCG(uint64(opts.Seed), uint64(i))), kinds: map[Kind]int{}}
		w.address = w.key()
		for j := 0; j < 8; j++ {
			w.others = append(w.others, w.key())
		}
		// The last mint is a Token-2022 one: its accounts belong to the other token program.
		mints := []mintInfo{{MintUSDC, 6, tokenProgram}, {MintUSDT, 6, tokenProgram}, {w.key(), 9, tokenProgram}, {w.key(), 6, token2022Program}}
		for _, m := range mints {
			w.tokens = append(w.tokens, &tokenAccountState{address: w.key(), mint: m})
		}
		w.generate(opts.Transactions, from, to, mints)
		s.wallets = append(s.wallets, w)
		s.byAddr[w.address] = w
		for _, tx := range w.txs {
			tx.seq = len(s.txBySig)
			s.txBySig[tx.signature] = tx
			for _, k := range tx.keys {
				s.byKey[k] = append(s.byKey[k], tx)
			}
		}
	}
	// Program ids appear in the transactions of every wallet, whose slots interleave.
	for _, list := range s.byKey {
		slices.SortFunc(list, compareTx)
	}
	s.tokenAt = opts.Clock.Now()
	s.tokens = 1
	return s
}

// Credentials are the wallet connections of the seeded wallets, field "address".
func (s *Simulator) Credentials() []map[string]string {
	out := make([]map[string]string, len(s.wallets))
	for i, w := range s.wallets {
		out[i] = map[string]string{"address": w.address}
	}
	return out
}

// Truth is the ground truth of wallet i.
func (s *Simulator) Truth(i int) Truth { return s.wallets[i].truth() }

// Stats returns a copy of the counters.
func (s *Simulator) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.ByMethod = map[string]int{}
	for k, v := range s.stats.ByMethod {
		st.ByMethod[k] = v
	}
	return st
}

// Inject makes the next n requests fail with f (after those already queued).
func (s *Simulator) Inject(f Fault, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < n; i++ {
		s.faults = append(s.faults, f)
	}
}

// Handler serves JSON-RPC 2.0 over HTTP POST at any path.
func (s *Simulator) Handler() http.Handler {
	return http.HandlerFunc(s.serve)
}

type rpcRequest struct {
	JSONRPC string            `json:"jsonrpc"`
	ID      json.RawMessage   `json:"id"`
	Method  string            `json:"method"`
	Params  []json.RawMessage `json:"params"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func rpcError(id json.RawMessage, code int, msg string) map[string]any {
	return map[string]any{"jsonrpc": "2.0", "error": map[string]any{"code": code, "message": msg}, "id": id}
}

// admit takes a token of the limit and the next fault, under the lock.
func (s *Simulator) admit() (limited bool, fault Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Requests++
	if len(s.faults) > 0 {
		fault, s.faults = s.faults[0], s.faults[1:]
		s.stats.Faults++
		return false, fault
	}
	if s.rate > 0 {
		now := s.clock.Now()
		s.tokens = min(s.rate, s.tokens+now.Sub(s.tokenAt).Seconds()*s.rate)
		s.tokenAt = now
		if s.tokens < 1 {
			s.stats.RateLimited++
			return true, ""
		}
		s.tokens--
	}
	return false, ""
}

func (s *Simulator) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "Used HTTP Method is not allowed. POST or OPTIONS is required", http.StatusMethodNotAllowed)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var req rpcRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeJSON(w, http.StatusOK, rpcError(json.RawMessage("null"), -32700, "Parse error"))
		return
	}
	limited, fault := s.admit()
	if limited {
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusTooManyRequests, rpcError(req.ID, 429, "Too many requests for a specific RPC call, contact your app developer or support@rpcpool.com."))
		return
	}
	switch fault {
	case Fault5xx:
		http.Error(w, "upstream connect error", http.StatusServiceUnavailable)
		return
	case Fault429:
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusTooManyRequests, rpcError(req.ID, 429, "Too many requests for a specific RPC call, contact your app developer or support@rpcpool.com."))
		return
	case FaultMalformed:
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<html><body>502 Bad Gateway</body></html>")
		return
	case FaultNodeBehind:
		writeJSON(w, http.StatusOK, rpcError(req.ID, -32005, "Node is behind by 42 slots"))
		return
	case FaultSlow:
		_ = s.clock.Sleep(r.Context(), s.slow)
	}
	s.mu.Lock()
	s.stats.ByMethod[req.Method]++
	s.mu.Unlock()

	result, code, msg := s.dispatch(req)
	var out any
	if code != 0 {
		out = rpcError(req.ID, code, msg)
	} else {
		out = map[string]any{"jsonrpc": "2.0", "result": result, "id": req.ID}
	}
	if fault == FaultTruncated {
		b, _ := json.Marshal(out)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b[:len(b)/2])
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Simulator) context() map[string]any {
	return map[string]any{"apiVersion": "2.1.21", "slot": 350_000_000}
}

// dispatch answers a method: a result, or a JSON-RPC error code and message.
func (s *Simulator) dispatch(req rpcRequest) (any, int, string) {
	str := func(i int) (string, bool) {
		if i >= len(req.Params) {
			return "", false
		}
		var v string
		return v, json.Unmarshal(req.Params[i], &v) == nil
	}
	address := func() (*wallet, string, bool) {
		a, ok := str(0)
		if !ok || !base58Len32(a) {
			return nil, "", false
		}
		return s.byAddr[a], a, true
	}
	switch req.Method {
	case "getBalance":
		w, _, ok := address()
		if !ok {
			return nil, -32602, "Invalid param: Invalid"
		}
		var lamports uint64
		if w != nil {
			lamports = w.lamports
		}
		return map[string]any{"context": s.context(), "value": lamports}, 0, ""
	case "getTokenAccountsByOwner":
		w, owner, ok := address()
		if !ok {
			return nil, -32602, "Invalid param: Invalid"
		}
		var filter struct {
			ProgramID string `json:"programId"`
			Mint      string `json:"mint"`
		}
		if len(req.Params) < 2 || json.Unmarshal(req.Params[1], &filter) != nil || (filter.ProgramID == "" && filter.Mint == "") {
			return nil, -32602, "Invalid params: missing filter"
		}
		if filter.ProgramID != "" && filter.ProgramID != tokenProgram && filter.ProgramID != token2022Program {
			return nil, -32602, "Invalid param: unrecognized Token program id"
		}
		value := []any{}
		if w != nil {
			for _, ta := range w.tokens {
				if !ta.opened || (filter.Mint != "" && filter.Mint != ta.mint.mint) ||
					(filter.ProgramID != "" && filter.ProgramID != ta.mint.program) {
					continue
				}
				parsedProgram := "spl-token"
				if ta.mint.program == token2022Program {
					parsedProgram = "spl-token-2022"
				}
				value = append(value, map[string]any{
					"pubkey": ta.address,
					"account": map[string]any{
						"data": map[string]any{
							"parsed": map[string]any{
								"info": map[string]any{"isNative": false, "mint": ta.mint.mint, "owner": owner,
									"state": "initialized", "tokenAmount": uiAmount(ta.amount, ta.mint.decimals)},
								"type": "account",
							},
							"program": parsedProgram, "space": 165,
						},
						"executable": false, "lamports": 2039280, "owner": ta.mint.program, "rentEpoch": uint64(18446744073709551615), "space": 165,
					},
				})
			}
		}
		return map[string]any{"context": s.context(), "value": value}, 0, ""
	case "getSignaturesForAddress":
		_, addr, ok := address()
		if !ok {
			return nil, -32602, "Invalid param: Invalid"
		}
		var opts struct {
			Limit  *int   `json:"limit"`
			Before string `json:"before"`
			Until  string `json:"until"`
		}
		if len(req.Params) > 1 {
			if err := json.Unmarshal(req.Params[1], &opts); err != nil {
				return nil, -32602, "Invalid params: " + err.Error()
			}
		}
		limit := 1000
		if opts.Limit != nil {
			limit = *opts.Limit
		}
		if limit < 1 || limit > 1000 {
			return nil, -32602, "Invalid limit; max 1000"
		}
		// Any address is answered, the wallet's token accounts as much as the wallet: a
		// transaction is listed for an address iff the address is among its account keys.
		// before and until may name any known transaction; the listing is what lies
		// strictly between them, newest first.
		list := s.byKey[addr]
		start := len(list) - 1
		if opts.Before != "" {
			tx, ok := s.txBySig[opts.Before]
			if !ok {
				return []any{}, 0, ""
			}
			start = sort.Search(len(list), func(i int) bool { return compareTx(list[i], tx) >= 0 }) - 1
		}
		stop := -1
		if opts.Until != "" {
			if tx, ok := s.txBySig[opts.Until]; ok {
				stop = sort.Search(len(list), func(i int) bool { return compareTx(list[i], tx) > 0 }) - 1
			}
		}
		out := []any{}
		for i := start; i > stop && len(out) < limit; i-- {
			tx := list[i]
			var errField any
			if tx.failed {
				errField = map[string]any{"InstructionError": []any{0, map[string]any{"Custom": 1}}}
			}
			out = append(out, map[string]any{"signature": tx.signature, "slot": tx.slot, "err": errField,
				"memo": nil, "blockTime": tx.blockTime, "confirmationStatus": "finalized"})
		}
		return out, 0, ""
	case "getTransaction":
		sig, ok := str(0)
		if !ok {
			return nil, -32602, "Invalid params: invalid type: expected a signature"
		}
		if len(req.Params) < 2 || !jsonHas(req.Params[1], "maxSupportedTransactionVersion") {
			// Nodes refuse versioned transactions to clients that did not say they read them.
			if _, ok := s.txBySig[sig]; ok {
				return nil, -32015, "Transaction version (0) is not supported by the requesting client. Please try the request again with the following configuration parameter: \"maxSupportedTransactionVersion\": 0"
			}
		}
		if tx, ok := s.txBySig[sig]; ok {
			return tx.body, 0, ""
		}
		return nil, 0, ""
	}
	return nil, -32601, fmt.Sprintf("Method not found: %s", strconv.Quote(req.Method))
}

func jsonHas(raw json.RawMessage, field string) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return false
	}
	_, ok := m[field]
	return ok
}

// compareTx orders transactions as a node lists them: by slot, then by position (seq).
func compareTx(a, b *simTx) int {
	if a.slot != b.slot {
		if a.slot < b.slot {
			return -1
		}
		return 1
	}
	return a.seq - b.seq
}
