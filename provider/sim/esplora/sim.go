// Package esplora simulates an Esplora API (blockstream.info, mempool.space, electrs) for
// tests and sandbox mode: the address, address-history and transaction calls over
// deterministic wallets (single addresses of each script type, and xpub/ypub/zpub wallets),
// paging as Esplora does, a per-client request rate answered with 429 and Retry-After, and
// faults injected on demand.
//
// It deliberately shares no code with the adapter (provider/bitcoin): it derives the
// wallets' addresses from their private keys, the adapter from the extended public keys.
package esplora

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/opencalico/opencalico/provider"
)

// Esplora's page sizes.
const (
	chainPageSize   = 25
	mempoolPageSize = 50
)

// Options configure a simulator.
type Options struct {
	Seed  int64
	Clock provider.Clock // nil: the wall clock
	// Wallets is the number of seeded wallets (default 7: one of each Kind, in Kinds order).
	Wallets int
	// Transactions is the number of confirmed transactions per wallet (default 1500), and
	// Pending the number of unconfirmed ones left in the mempool (default 2).
	Transactions int
	Pending      int
	// HistoryEnd is when the confirmed history ends (default 2026-01-01 UTC); it begins
	// Years before (default 4).
	HistoryEnd time.Time
	Years      int
	// RequestsPerSecond and Burst are the per-client token bucket (defaults 10 and
	// RequestsPerSecond): a request without a token gets 429 with Retry-After.
	RequestsPerSecond float64
	Burst             int
	// SlowDelay is how long a FaultSlow answer is held back, in real time (default 2 s).
	SlowDelay time.Duration
}

// Fault is a failure the simulator answers instead of the real answer.
type Fault int

// The faults.
const (
	Fault500       Fault = iota + 1 // HTTP 500
	Fault502                        // HTTP 502 from a proxy, HTML body
	Fault503                        // HTTP 503 with Retry-After: 1
	Fault429                        // HTTP 429 with Retry-After: 1 (injected, not counted as enforced)
	FaultSlow                       // the answer held back for SlowDelay
	FaultTruncated                  // a valid answer cut in half
	FaultMalformed                  // an HTML page with status 200
)

// Routes, for Inject and Stats.
const (
	RouteAddress = "address" // GET /address/{a}
	RouteChain   = "chain"   // GET /address/{a}/txs/chain[/{last_seen_txid}]
	RouteMempool = "mempool" // GET /address/{a}/txs/mempool
	RouteTxs     = "txs"     // GET /address/{a}/txs
	RouteTx      = "tx"      // GET /tx/{txid}
	RouteTip     = "tip"     // GET /blocks/tip/height
)

// Stats count what the simulator served.
type Stats struct {
	Requests     int
	ByRoute      map[string]int
	RateLimited  int // requests refused by the enforced rate (injected 429s not counted)
	FaultsServed int
}

// Truth is a wallet's ground truth, for tests.
type Truth struct {
	Kind   Kind
	Handle string // the address or extended public key to connect
	// Addresses are the wallet's used addresses; for extended keys, MaxIndex is the highest
	// used index of the receive and change chains, and Skipped says whether a used index
	// follows unused ones (the receive chain always does: 0–3 used, 4–9 not, 10 used).
	Addresses []string
	MaxIndex  [2]int
	// ConfirmedTxs and PendingTxs count the transactions touching the wallet.
	ConfirmedTxs, PendingTxs int
	// Funded and Spent sum chain_stats over the wallet's addresses; Balance = Funded − Spent.
	Funded, Spent, Balance int64
	// PendingDebit is what the wallet's unconfirmed transactions take from it: the inputs
	// it funded less the outputs back to it (fee included).
	PendingDebit int64
}

// Simulator is a fake Esplora. It is safe for concurrent use.
type Simulator struct {
	opts  Options
	clock provider.Clock

	mu      sync.Mutex
	wallets []*wallet
	byAddr  map[string][]*simTx // every transaction touching an address, oldest first
	byID    map[string]*simTx
	tip     int64
	tokens  float64
	tokenAt time.Time
	faults  []queuedFault
	stats   Stats
}

type queuedFault struct {
	route string
	fault Fault
}

// New generates the wallets from the seed. The same options give the same wallets.
func New(opts Options) *Simulator {
	if opts.Wallets <= 0 {
		opts.Wallets = len(Kinds)
	}
	if opts.Transactions <= 0 {
		opts.Transactions = 1500
	}
	if opts.Pending < 0 {
		opts.Pending = 0
	} else if opts.Pending == 0 {
		opts.Pending = 2
	}
	if opts.HistoryEnd.IsZero() {
		opts.HistoryEnd = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if opts.Years <= 0 {
		opts.Years = 4
	}
	if opts.RequestsPerSecond <= 0 {
		opts.RequestsPerSecond = 10
	}
	if opts.Burst <= 0 {
		opts.Burst = max(1, int(opts.RequestsPerSecond))
	}
	if opts.SlowDelay <= 0 {
		opts.SlowDelay = 2 * time.Second
	}
	s := &Simulator{opts: opts, clock: opts.Clock, byAddr: map[string][]*simTx{}, byID: map[string]*simTx{},
		stats: Stats{ByRoute: map[string]int{}}}
	if s.clock == nil {
		s.clock = provider.RealClock{}
	}
	s.tokens, s.tokenAt = float64(opts.Burst), s.clock.Now()
	from := opts.HistoryEnd.AddDate(-opts.Years, 0, 0)
	for i := 0; i < opts.Wallets; i++ {
		w := seedWallet(opts.Seed, i, Kinds[i%len(Kinds)])
		w.generate(opts.Transactions, opts.Pending, from, opts.HistoryEnd)
		s.wallets = append(s.wallets, w)
		for _, tx := range w.txs {
			s.index(tx)
			s.tip = max(s.tip, tx.height)
		}
	}
	return s
}

// index files tx under every address it touches (once per address).
func (s *Simulator) index(tx *simTx) {
	s.byID[tx.txid] = tx
	seen := map[string]bool{}
	add := func(a string) {
		if a != "" && !seen[a] {
			seen[a] = true
			s.byAddr[a] = append(s.byAddr[a], tx)
		}
	}
	for _, in := range tx.vin {
		add(in.prev.address)
	}
	for _, o := range tx.vout {
		add(o.out.address)
	}
}

// Credentials returns what connects each wallet, by the adapter's AuthMetaData field name.
func (s *Simulator) Credentials() []map[string]string {
	out := make([]map[string]string, len(s.wallets))
	for i, w := range s.wallets {
		out[i] = map[string]string{"address": w.handle}
	}
	return out
}

// Inject queues faults, served in order to the next requests of route ("" for any).
func (s *Simulator) Inject(route string, faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range faults {
		s.faults = append(s.faults, queuedFault{route, f})
	}
}

// Stats returns a copy of the counters.
func (s *Simulator) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.ByRoute = map[string]int{}
	for k, v := range s.stats.ByRoute {
		st.ByRoute[k] = v
	}
	return st
}

// Mine confirms every pending transaction of a wallet in a new block at the simulator's
// current time, as a block found between two syncs does.
func (s *Simulator) Mine(wallet int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tip++
	for _, tx := range s.wallets[wallet].txs {
		if !tx.confirmed {
			tx.confirmed, tx.height, tx.blockTime = true, s.tip, s.clock.Now().Unix()
			tx.render()
		}
	}
}

// Pay books a payment of sats from outside to a receive address of the wallet, confirmed in a
// new block stamped at (which should follow the wallet's history), and returns its txid: an
// exchange's withdrawal arriving, for tests that link the two.
func (s *Simulator) Pay(wallet int, sats int64, at time.Time) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.wallets[wallet]
	tx := &simTx{txid: w.txid(), fee: 1_000}
	tx.vout = []txOut{{w.address(0), sats}}
	tx.vin = []txIn{{w.txid(), 0, w.external(), sats + tx.fee}}
	s.tip++
	tx.confirmed, tx.height, tx.blockTime = true, s.tip, at.Unix()
	w.book(tx)
	tx.render()
	s.index(tx)
	return tx.txid
}

// Truth returns wallet i's ground truth.
func (s *Simulator) Truth(i int) Truth {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.wallets[i]
	t := Truth{Kind: w.kind, Handle: w.handle, MaxIndex: [2]int{-1, -1}}
	if w.hd() {
		for c := 0; c < 2; c++ {
			for _, idx := range w.used[c] {
				t.Addresses = append(t.Addresses, w.byIndex[c][idx].address)
				t.MaxIndex[c] = max(t.MaxIndex[c], idx)
			}
		}
	} else {
		t.Addresses = []string{w.single.address}
	}
	for _, a := range t.Addresses {
		st := s.statsOf(a, true)
		t.Funded += st.FundedTxoSum
		t.Spent += st.SpentTxoSum
	}
	t.Balance = t.Funded - t.Spent
	for _, tx := range w.txs {
		if tx.confirmed {
			t.ConfirmedTxs++
			continue
		}
		t.PendingTxs++
		var in, out int64
		for _, v := range tx.vin {
			if w.isMine(v.prev.address) {
				in += v.value
			}
		}
		for _, o := range tx.vout {
			if w.isMine(o.out.address) {
				out += o.value
			}
		}
		if in > 0 {
			t.PendingDebit += max(in-out, tx.fee)
		}
	}
	return t
}

type txoStats struct {
	FundedTxoCount int   `json:"funded_txo_count"`
	FundedTxoSum   int64 `json:"funded_txo_sum"`
	SpentTxoCount  int   `json:"spent_txo_count"`
	SpentTxoSum    int64 `json:"spent_txo_sum"`
	TxCount        int   `json:"tx_count"`
}

// statsOf sums the confirmed (or unconfirmed) transactions of an address. The caller holds
// s.mu.
func (s *Simulator) statsOf(a string, confirmed bool) txoStats {
	var st txoStats
	for _, tx := range s.byAddr[a] {
		if tx.confirmed != confirmed {
			continue
		}
		st.TxCount++
		for _, in := range tx.vin {
			if in.prev.address == a {
				st.SpentTxoCount++
				st.SpentTxoSum += in.value
			}
		}
		for _, o := range tx.vout {
			if o.out.address == a {
				st.FundedTxoCount++
				st.FundedTxoSum += o.value
			}
		}
	}
	return st
}

// Handler serves the Esplora API.
func (s *Simulator) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /address/{a}", s.route(RouteAddress, s.address))
	mux.HandleFunc("GET /address/{a}/txs", s.route(RouteTxs, s.txs))
	mux.HandleFunc("GET /address/{a}/txs/chain", s.route(RouteChain, s.chain))
	mux.HandleFunc("GET /address/{a}/txs/chain/{last}", s.route(RouteChain, s.chain))
	mux.HandleFunc("GET /address/{a}/txs/mempool", s.route(RouteMempool, s.mempool))
	mux.HandleFunc("GET /tx/{txid}", s.route(RouteTx, s.tx))
	mux.HandleFunc("GET /blocks/tip/height", s.route(RouteTip, func(w http.ResponseWriter, r *http.Request) []byte {
		return []byte(strconv.FormatInt(s.tip, 10))
	}))
	return mux
}

// route wraps an answer with the rate limit, the fault queue and the counters. An answer
// function holds s.mu and returns the body (nil when it wrote an error itself).
func (s *Simulator) route(name string, answer func(w http.ResponseWriter, r *http.Request) []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.stats.Requests++
		s.stats.ByRoute[name]++
		if wait := s.take(); wait > 0 {
			s.stats.RateLimited++
			s.mu.Unlock()
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			http.Error(w, "Too Many Requests", http.StatusTooManyRequests)
			return
		}
		fault := s.nextFault(name)
		if fault != 0 {
			s.stats.FaultsServed++
		}
		body := answer(w, r)
		s.mu.Unlock()
		if body == nil {
			return
		}
		switch fault {
		case Fault500:
			http.Error(w, "Internal Server Error", http.StatusInternalServerError)
			return
		case Fault502:
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprint(w, "<html><body><h1>502 Bad Gateway</h1></body></html>")
			return
		case Fault503:
			w.Header().Set("Retry-After", "1")
			http.Error(w, "Service Unavailable", http.StatusServiceUnavailable)
			return
		case Fault429:
			w.Header().Set("Retry-After", "1")
			http.Error(w, "Too Many Requests", http.StatusTooManyRequests)
			return
		case FaultSlow:
			time.Sleep(s.opts.SlowDelay)
		case FaultTruncated:
			body = body[:len(body)/2]
		case FaultMalformed:
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, "<html><body>Please wait while we check your browser…</body></html>")
			return
		}
		if len(body) > 0 && (body[0] == '{' || body[0] == '[') {
			w.Header().Set("Content-Type", "application/json")
		} else {
			w.Header().Set("Content-Type", "text/plain")
		}
		_, _ = w.Write(body)
	}
}

// take spends a token of the bucket, or says how long until one is there. The caller holds
// s.mu.
func (s *Simulator) take() time.Duration {
	now := s.clock.Now()
	if elapsed := now.Sub(s.tokenAt).Seconds(); elapsed > 0 {
		s.tokens = math.Min(float64(s.opts.Burst), s.tokens+elapsed*s.opts.RequestsPerSecond)
		s.tokenAt = now
	}
	if s.tokens >= 1 {
		s.tokens--
		return 0
	}
	return time.Duration((1 - s.tokens) / s.opts.RequestsPerSecond * float64(time.Second))
}

func (s *Simulator) nextFault(route string) Fault {
	for i, f := range s.faults {
		if f.route == "" || f.route == route {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
			return f.fault
		}
	}
	return 0
}

// checkAddress answers 400 as Esplora does for what is not an address of its network.
func checkAddress(w http.ResponseWriter, a string) bool {
	if !validMainnetAddress(a) {
		http.Error(w, "Invalid Bitcoin address", http.StatusBadRequest)
		return false
	}
	return true
}

func (s *Simulator) address(w http.ResponseWriter, r *http.Request) []byte {
	a := r.PathValue("a")
	if !checkAddress(w, a) {
		return nil
	}
	body, _ := json.Marshal(struct {
		Address      string   `json:"address"`
		ChainStats   txoStats `json:"chain_stats"`
		MempoolStats txoStats `json:"mempool_stats"`
	}{a, s.statsOf(a, true), s.statsOf(a, false)})
	return body
}

// confirmedNewestFirst lists an address's confirmed transactions as Esplora orders them.
func (s *Simulator) confirmedNewestFirst(a string) []*simTx {
	all := s.byAddr[a]
	out := make([]*simTx, 0, len(all))
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].confirmed {
			out = append(out, all[i])
		}
	}
	// Mined transactions were appended in booking order, so heights never decrease along
	// all; a stable order by height descending is the reverse.
	return out
}

func (s *Simulator) pendingNewestFirst(a string) []*simTx {
	all := s.byAddr[a]
	var out []*simTx
	for i := len(all) - 1; i >= 0 && len(out) < mempoolPageSize; i-- {
		if !all[i].confirmed {
			out = append(out, all[i])
		}
	}
	return out
}

func renderList(txs []*simTx) []byte {
	b := []byte{'['}
	for i, tx := range txs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, tx.json...)
	}
	return append(b, ']')
}

// chain pages confirmed transactions, 25 at a time, after last_seen_txid when given; an
// unknown last_seen_txid gives an empty page, as electrs does.
func (s *Simulator) chain(w http.ResponseWriter, r *http.Request) []byte {
	a := r.PathValue("a")
	if !checkAddress(w, a) {
		return nil
	}
	list := s.confirmedNewestFirst(a)
	if last := r.PathValue("last"); last != "" {
		at := -1
		for i, tx := range list {
			if tx.txid == last {
				at = i
				break
			}
		}
		if at < 0 {
			return []byte("[]")
		}
		list = list[at+1:]
	}
	return renderList(list[:min(chainPageSize, len(list))])
}

func (s *Simulator) mempool(w http.ResponseWriter, r *http.Request) []byte {
	a := r.PathValue("a")
	if !checkAddress(w, a) {
		return nil
	}
	return renderList(s.pendingNewestFirst(a))
}

// txs is the first page of both: unconfirmed (up to 50), then 25 confirmed.
func (s *Simulator) txs(w http.ResponseWriter, r *http.Request) []byte {
	a := r.PathValue("a")
	if !checkAddress(w, a) {
		return nil
	}
	list := append(s.pendingNewestFirst(a), s.confirmedNewestFirst(a)...)
	return renderList(list[:min(len(list), len(s.pendingNewestFirst(a))+chainPageSize)])
}

func (s *Simulator) tx(w http.ResponseWriter, r *http.Request) []byte {
	tx := s.byID[r.PathValue("txid")]
	if tx == nil {
		http.Error(w, "Transaction not found", http.StatusNotFound)
		return nil
	}
	return tx.json
}
