// Package etherscan simulates the Etherscan v2 API and the chains' JSON-RPC nodes for tests,
// benchmarks and sandbox mode: seeded wallets on ethereum, arbitrum, base and polygon with
// native sends and receives, failed transactions, swaps whose parts sit in different lists
// under one hash, token transfers of 6, 18, 8 and 0 decimals, gas-only calls, spam airdrops
// and address poisoning, several events per block, and balances equal to the history's net.
// On base (an OP Stack chain) every transaction the wallet sends also pays an L1 data fee,
// which only its receipt shows (l1Fee), as on the real chain.
//
// It serves GET /v2/api (module=account: txlist, txlistinternal, tokentx, balance) with
// Etherscan's paging (startblock/endblock, page × offset ≤ 10,000), its answers inside HTTP
// 200 (status "0" for no rows, a refused key, the per-second limit of a key across every
// chain, a chain the key's plan does not cover) and POST /rpc/{chain} (eth_blockNumber,
// eth_getBalance, eth_call balanceOf, eth_getTransactionReceipt, eth_chainId; batches). It does not import the adapter: both follow Etherscan's documented
// behaviour.
package etherscan

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/big"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencalico/opencalico/provider"
)

// DefaultAPIKey is the key the simulator accepts when Options.APIKey is empty.
const DefaultAPIKey = "SIMULATEDETHERSCANKEY0000000000000"

// Etherscan's messages, as it writes them.
const (
	msgRateLimit    = "Max calls per sec rate limit reached (%s/sec)"
	msgInvalidKey   = "Invalid API Key (#err2)|sim"
	msgMissingKey   = "Missing/Invalid API Key"
	msgWindow       = "Result window is too large, PageNo x Offset size must be less than or equal to 10000"
	msgNoTxs        = "No transactions found"
	msgBadAddress   = "Error! Invalid address format"
	msgBadChain     = "Missing or unsupported chainid parameter (required for v2 api), please see https://api.etherscan.io/v2/chainlist for the list of supported chainids"
	msgBadAction    = "Error! Missing Or invalid Action name"
	msgBadBlockArgs = "Error! Invalid startblock or endblock"
	// The free plan's refusal of a chain it does not serve (Base, BNB Smart Chain, Optimism…).
	msgPaidChain = "Free API access is not supported for this chain. Please upgrade your api plan for full chain coverage. https://etherscan.io/apis"
)

// Options configure a simulator. Zero values take the defaults.
type Options struct {
	Seed  int64
	Clock provider.Clock
	// Wallets is how many seeded wallets there are (default 3); each has the same address on
	// every chain and a history of its own on each.
	Wallets int
	// TxsPerWallet is the transactions of each wallet on each chain (default 200).
	TxsPerWallet int
	// Chains restricts the simulated chains (default all four).
	Chains []string
	// RequestsPerSecond is the API key's limit across all chains (default 3; negative: none):
	// at most that many calls in any second, beyond which the answer is Etherscan's HTTP 200
	// status "0" "Max calls per sec rate limit reached".
	RequestsPerSecond float64
	// APIKey is the only key accepted (default DefaultAPIKey).
	APIKey string
	// SlowDelay is how long a FaultSlow answer waits (default 2 s).
	SlowDelay time.Duration
	// HeadLead is how many blocks each chain's head stands above its newest generated
	// transaction (default 10,000, so that the whole history is well confirmed; a few blocks
	// leave the newest transactions inside the confirmation window).
	HeadLead uint64
	// StateDepth, when positive, makes the nodes prune state as a geth full node does (it
	// keeps the last 128 blocks): eth_getBalance and eth_call for a block older than
	// head − StateDepth are refused with -32000 "missing trie node <root> (path ) <nil>".
	// Zero: an archive node, every block answers.
	StateDepth uint64
	// PaidOnlyChains are the chains the API key's plan does not cover, as Etherscan's free
	// plan does not cover Base: every /v2/api request for one of them is refused with
	// Etherscan's status "0" "Free API access is not supported for this chain…". Their
	// JSON-RPC nodes still answer.
	PaidOnlyChains []string
}

// Fault is a failure injected into the next requests.
type Fault string

// Faults on demand.
const (
	Fault5xx        Fault = "5xx"         // 502 with Cloudflare's HTML page
	FaultRateLimit  Fault = "rate_limit"  // HTTP 200 status "0" "Max calls per sec rate limit reached"
	FaultMalformed  Fault = "malformed"   // 200 with an HTML page
	FaultTruncated  Fault = "truncated"   // 200 with the answer cut in half
	FaultSlow       Fault = "slow"        // the answer after SlowDelay
	FaultInvalidKey Fault = "invalid_key" // 200 status "0" "Invalid API Key", as for a revoked key
)

// Stats count what the simulator answered.
type Stats struct {
	Requests    int // /v2/api requests received
	Served      int // /v2/api requests answered with data or "No transactions found"
	RateLimited int // refused by the enforced limit (injected ones are Faults)
	Faults      int // injected faults served, API and RPC
	RPCRequests int // HTTP requests to /rpc/{chain} (a batch is one)
	RPCCalls    int // JSON-RPC calls, batch members counted one by one
	ByAction    map[string]int
	RPCMethods  map[string]int // JSON-RPC calls by method
	PlanRefused int            // /v2/api requests refused as outside the key's plan
}

// Simulator is a fake Etherscan v2 API and a fake JSON-RPC node per chain.
type Simulator struct {
	clock     provider.Clock
	apiKey    string
	limitN    int
	window    time.Duration
	limitText string
	slow      time.Duration
	depth     uint64         // Options.StateDepth
	paidOnly  map[int64]bool // chain ids outside the key's plan
	addresses [][20]byte
	chains    map[string]*simChain
	byID      map[int64]*simChain

	mu        sync.Mutex
	stats     Stats
	faults    []Fault
	rpcFaults []Fault
	sent      map[string][]time.Time // per API key, the admitted calls of the last window
}

type simChain struct {
	spec *chainSpec
	// head is the newest block; AdvanceHead raises it while requests are served.
	head    atomic.Uint64
	ledgers map[[20]byte]*ledger
	order   []*ledger
	byHash  map[[32]byte]*normalRow // every txlist row of the chain, for receipts
}

// New generates the seeded wallets' histories.
func New(opts Options) *Simulator {
	if opts.Clock == nil {
		opts.Clock = provider.RealClock{}
	}
	if opts.Wallets <= 0 {
		opts.Wallets = 3
	}
	if opts.TxsPerWallet <= 0 {
		opts.TxsPerWallet = 200
	}
	if opts.RequestsPerSecond == 0 {
		opts.RequestsPerSecond = 3
	}
	if opts.APIKey == "" {
		opts.APIKey = DefaultAPIKey
	}
	if opts.SlowDelay <= 0 {
		opts.SlowDelay = 2 * time.Second
	}
	if opts.HeadLead == 0 {
		opts.HeadLead = 10_000
	}
	if len(opts.Chains) == 0 {
		opts.Chains = ChainNames()
	}
	s := &Simulator{clock: opts.Clock, apiKey: opts.APIKey, slow: opts.SlowDelay, depth: opts.StateDepth,
		chains: map[string]*simChain{}, byID: map[int64]*simChain{}, sent: map[string][]time.Time{},
		paidOnly: map[int64]bool{}, stats: Stats{ByAction: map[string]int{}, RPCMethods: map[string]int{}}}
	if opts.RequestsPerSecond > 0 {
		// "N calls per second": N calls in any window of N/rate seconds.
		s.limitN = max(1, int(math.Floor(opts.RequestsPerSecond)))
		s.window = time.Duration(float64(s.limitN) / opts.RequestsPerSecond * float64(time.Second))
		s.limitText = strconv.FormatFloat(opts.RequestsPerSecond, 'f', -1, 64)
	}
	seedRng := rand.New(rand.NewPCG(uint64(opts.Seed), 0x5eed))
	for range opts.Wallets {
		g := generator{rng: seedRng}
		s.addresses = append(s.addresses, g.addr())
	}
	origin := time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC)
	for ci := range chainSpecs {
		spec := &chainSpecs[ci]
		if !slices.Contains(opts.Chains, spec.name) {
			continue
		}
		sc := &simChain{spec: spec, ledgers: map[[20]byte]*ledger{}, byHash: map[[32]byte]*normalRow{}}
		head := spec.startBlock + opts.HeadLead
		if slices.Contains(opts.PaidOnlyChains, spec.name) {
			s.paidOnly[spec.id] = true
		}
		for wi, a := range s.addresses {
			rng := rand.New(rand.NewPCG(uint64(opts.Seed), uint64(ci)<<32|uint64(wi)))
			l := &ledger{address: a, chain: spec, native: new(big.Int), l1Fees: new(big.Int), balances: map[*token]*big.Int{}, kinds: map[Kind]int{}, tokenAt: map[*token][]balancePoint{}}
			g := &generator{rng: rng, l: l}
			for range 12 {
				g.others = append(g.others, g.addr())
			}
			g.router, g.pool, g.spam = g.addr(), g.addr(), g.addr()
			g.generate(opts.TxsPerWallet, origin)
			sc.ledgers[a] = l
			sc.order = append(sc.order, l)
			head = max(head, l.last+opts.HeadLead)
			for i := range l.normal {
				sc.byHash[l.normal[i].hash] = &l.normal[i]
			}
		}
		sc.head.Store(head)
		s.chains[spec.name] = sc
		s.byID[spec.id] = sc
	}
	return s
}

// NewBenchmark is a simulator of n wallets × m transactions on chain "ethereum" alone, with
// Etherscan's 3 calls per second enforced; read its counters with Stats, Requests and
// RateLimitErrors.
func NewBenchmark(seed int64, clock provider.Clock, wallets, txsPerWallet int) *Simulator {
	return New(Options{Seed: seed, Clock: clock, Wallets: wallets, TxsPerWallet: txsPerWallet, Chains: []string{"ethereum"}})
}

// APIKey is the key the simulator accepts.
func (s *Simulator) APIKey() string { return s.apiKey }

// Addresses are the seeded wallets' addresses, EIP-55 checksummed (the same on every chain).
func (s *Simulator) Addresses() []string {
	out := make([]string, len(s.addresses))
	for i, a := range s.addresses {
		out[i] = checksum(a)
	}
	return out
}

// Wallet is the address of wallet i.
func (s *Simulator) Wallet(i int) string { return checksum(s.addresses[i]) }

// Credentials are the wallet connections of the seeded wallets, field "address".
func (s *Simulator) Credentials() []map[string]string {
	out := make([]map[string]string, len(s.addresses))
	for i, a := range s.addresses {
		out[i] = map[string]string{"address": checksum(a)}
	}
	return out
}

// Chains lists the simulated chains.
func (s *Simulator) Chains() []string {
	var out []string
	for _, c := range chainSpecs {
		if s.chains[c.name] != nil {
			out = append(out, c.name)
		}
	}
	return out
}

// TokenBalance is a token a wallet holds or held.
type TokenBalance struct {
	Contract string // lower case
	Symbol   string
	Decimals int
	Units    *big.Int
	Spam     bool
}

// Truth is what a seeded wallet did on a chain and holds there: its balances equal the net
// of its history exactly.
type Truth struct {
	Address string
	Chain   string
	ChainID int64
	Native  *big.Int // wei
	L1Fees  *big.Int // the L1 data fees the wallet paid, wei (zero off an OP Stack chain)
	Tokens  []TokenBalance
	Kinds   map[Kind]int
	Count   int // transactions that touch the wallet
	Rows    map[string]int
}

// Truth is the ground truth of wallet i on a chain.
func (s *Simulator) Truth(chain string, i int) Truth {
	sc := s.chains[chain]
	l := sc.ledgers[s.addresses[i]]
	t := Truth{Address: checksum(l.address), Chain: chain, ChainID: sc.spec.id, Native: new(big.Int).Set(l.native), L1Fees: new(big.Int).Set(l.l1Fees),
		Kinds: map[Kind]int{}, Count: l.count,
		Rows: map[string]int{"txlist": len(l.normal), "txlistinternal": len(l.internal), "tokentx": len(l.tokens)}}
	for k, n := range l.kinds {
		t.Kinds[k] = n
	}
	for _, tk := range sc.spec.tokens {
		if b, ok := l.balances[tk]; ok {
			t.Tokens = append(t.Tokens, TokenBalance{Contract: hexAddr(tk.contract), Symbol: tk.symbol, Decimals: tk.decimals, Units: new(big.Int).Set(b), Spam: tk.spam})
		}
	}
	return t
}

// Head is a chain's newest block.
func (s *Simulator) Head(chain string) uint64 { return s.chains[chain].head.Load() }

// AdvanceHead adds n blocks to a chain, none of them with a seeded wallet's transaction: the
// chain moving on between two requests of a sync.
func (s *Simulator) AdvanceHead(chain string, n uint64) { s.chains[chain].head.Add(n) }

// Stats returns a copy of the counters.
func (s *Simulator) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.ByAction = map[string]int{}
	for k, v := range s.stats.ByAction {
		st.ByAction[k] = v
	}
	st.RPCMethods = map[string]int{}
	for k, v := range s.stats.RPCMethods {
		st.RPCMethods[k] = v
	}
	return st
}

// Requests is how many /v2/api requests the simulator received.
func (s *Simulator) Requests() int { return s.Stats().Requests }

// RateLimitErrors is how many requests the enforced limit refused.
func (s *Simulator) RateLimitErrors() int { return s.Stats().RateLimited }

// Inject makes the next n /v2/api requests fail with f (after those already queued).
func (s *Simulator) Inject(f Fault, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, f)
	}
}

// InjectRPC makes the next n RPC requests fail with f (FaultRateLimit is a 429 there).
func (s *Simulator) InjectRPC(f Fault, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.rpcFaults = append(s.rpcFaults, f)
	}
}

// Handler serves /v2/api and /rpc/{chain}.
func (s *Simulator) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v2/api", s.serveAPI)
	mux.HandleFunc("/rpc/{chain}", s.serveRPC)
	return mux
}

func writeJSON(w http.ResponseWriter, v any, truncate bool) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if truncate {
		b = b[:len(b)/2]
	}
	_, _ = w.Write(b)
}

type answer struct {
	Status  string `json:"status"`
	Message string `json:"message"`
	Result  any    `json:"result"`
}

func notOK(result string) answer { return answer{Status: "0", Message: "NOTOK", Result: result} }

// takeFault pops the next injected fault of a queue.
func (s *Simulator) takeFault(queue *[]Fault) Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(*queue) == 0 {
		return ""
	}
	f := (*queue)[0]
	*queue = (*queue)[1:]
	s.stats.Faults++
	return f
}

// admit applies the key's limit: at most limitN calls in any window, across all chains.
func (s *Simulator) admit(key string) bool {
	if s.limitN == 0 {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	sent := s.sent[key]
	for len(sent) > 0 && !sent[0].Add(s.window).After(now) {
		sent = sent[1:]
	}
	if len(sent) >= s.limitN {
		s.sent[key] = sent
		s.stats.RateLimited++
		return false
	}
	s.sent[key] = append(sent, now)
	return true
}

func (s *Simulator) serveAPI(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.stats.Requests++
	s.mu.Unlock()
	fault := s.takeFault(&s.faults)
	switch fault {
	case Fault5xx:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>cloudflare</center></body></html>")
		return
	case FaultRateLimit:
		writeJSON(w, notOK(fmt.Sprintf(msgRateLimit, s.limitTextOr3())), false)
		return
	case FaultMalformed:
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<!DOCTYPE html><html><body>Just a moment...</body></html>")
		return
	case FaultInvalidKey:
		writeJSON(w, notOK(msgInvalidKey), false)
		return
	case FaultSlow:
		_ = s.clock.Sleep(r.Context(), s.slow)
	}
	q := r.URL.Query()
	key := q.Get("apikey")
	switch {
	case key == "":
		writeJSON(w, notOK(msgMissingKey), false)
		return
	case key != s.apiKey:
		writeJSON(w, notOK(msgInvalidKey), false)
		return
	}
	if !s.admit(key) {
		writeJSON(w, notOK(fmt.Sprintf(msgRateLimit, s.limitText)), false)
		return
	}
	if id, err := strconv.ParseInt(q.Get("chainid"), 10, 64); err == nil && s.paidOnly[id] {
		s.mu.Lock()
		s.stats.PlanRefused++
		s.mu.Unlock()
		writeJSON(w, notOK(msgPaidChain), false)
		return
	}
	ans := s.account(q)
	s.mu.Lock()
	s.stats.Served++
	s.stats.ByAction[q.Get("action")]++
	s.mu.Unlock()
	writeJSON(w, ans, fault == FaultTruncated)
}

func (s *Simulator) limitTextOr3() string {
	if s.limitText == "" {
		return "3"
	}
	return s.limitText
}

// account answers module=account.
func (s *Simulator) account(q map[string][]string) answer {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	chainID, err := strconv.ParseInt(get("chainid"), 10, 64)
	sc := s.byID[chainID]
	if err != nil || sc == nil {
		return notOK(msgBadChain)
	}
	if get("module") != "account" {
		return notOK("Error! Missing Or invalid Module name")
	}
	action := get("action")
	addr, ok := parseAddr(get("address"))
	if !ok {
		return notOK(msgBadAddress)
	}
	l := sc.ledgers[addr]
	if action == "balance" {
		wei := "0"
		if l != nil {
			wei = l.native.String()
		}
		return answer{Status: "1", Message: "OK", Result: wei}
	}
	if action != "txlist" && action != "txlistinternal" && action != "tokentx" {
		return notOK(msgBadAction)
	}
	num := func(k string, def int64) (int64, bool) {
		v := get(k)
		if v == "" {
			return def, true
		}
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil && n >= 0
	}
	start, ok1 := num("startblock", 0)
	end, ok2 := num("endblock", math.MaxInt64)
	if !ok1 || !ok2 {
		return notOK(msgBadBlockArgs)
	}
	page, ok3 := num("page", 1)
	offset, ok4 := num("offset", 10000)
	if !ok3 || !ok4 || page < 1 {
		page = 1
	}
	if offset < 1 {
		offset = 10000
	}
	if page*offset > 10000 {
		return notOK(msgWindow)
	}
	desc := get("sort") == "desc"
	if l == nil {
		return answer{Status: "0", Message: msgNoTxs, Result: []any{}}
	}
	// Rows of the block range, in the requested order, then the page.
	var n int
	var blockOf func(i int) uint64
	switch action {
	case "txlist":
		n, blockOf = len(l.normal), func(i int) uint64 { return l.normal[i].block }
	case "txlistinternal":
		n, blockOf = len(l.internal), func(i int) uint64 { return l.internal[i].block }
	default:
		n, blockOf = len(l.tokens), func(i int) uint64 { return l.tokens[i].block }
	}
	lo := sort.Search(n, func(i int) bool { return int64(blockOf(i)) >= start })
	hi := sort.Search(n, func(i int) bool { return int64(blockOf(i)) > end })
	if hi < lo {
		hi = lo
	}
	idx := make([]int, 0, min(int(offset), hi-lo))
	from := int((page - 1) * offset)
	for k := from; k < hi-lo && len(idx) < int(offset); k++ {
		if desc {
			idx = append(idx, hi-1-k)
		} else {
			idx = append(idx, lo+k)
		}
	}
	if len(idx) == 0 {
		return answer{Status: "0", Message: msgNoTxs, Result: []any{}}
	}
	head := sc.head.Load()
	out := make([]any, 0, len(idx))
	for _, i := range idx {
		switch action {
		case "txlist":
			out = append(out, renderNormal(&l.normal[i], head))
		case "txlistinternal":
			out = append(out, renderInternal(&l.internal[i]))
		default:
			out = append(out, renderToken(&l.tokens[i], head))
		}
	}
	return answer{Status: "1", Message: "OK", Result: out}
}

// Etherscan's row shapes: every field a string.
type wireNormal struct {
	BlockNumber       string `json:"blockNumber"`
	TimeStamp         string `json:"timeStamp"`
	Hash              string `json:"hash"`
	Nonce             string `json:"nonce"`
	BlockHash         string `json:"blockHash"`
	TransactionIndex  string `json:"transactionIndex"`
	From              string `json:"from"`
	To                string `json:"to"`
	Value             string `json:"value"`
	Gas               string `json:"gas"`
	GasPrice          string `json:"gasPrice"`
	IsError           string `json:"isError"`
	TxReceiptStatus   string `json:"txreceipt_status"`
	Input             string `json:"input"`
	ContractAddress   string `json:"contractAddress"`
	CumulativeGasUsed string `json:"cumulativeGasUsed"`
	GasUsed           string `json:"gasUsed"`
	Confirmations     string `json:"confirmations"`
	MethodID          string `json:"methodId"`
	FunctionName      string `json:"functionName"`
}

type wireInternal struct {
	BlockNumber     string `json:"blockNumber"`
	TimeStamp       string `json:"timeStamp"`
	Hash            string `json:"hash"`
	From            string `json:"from"`
	To              string `json:"to"`
	Value           string `json:"value"`
	ContractAddress string `json:"contractAddress"`
	Input           string `json:"input"`
	Type            string `json:"type"`
	Gas             string `json:"gas"`
	GasUsed         string `json:"gasUsed"`
	TraceID         string `json:"traceId"`
	IsError         string `json:"isError"`
	ErrCode         string `json:"errCode"`
}

type wireToken struct {
	BlockNumber       string `json:"blockNumber"`
	TimeStamp         string `json:"timeStamp"`
	Hash              string `json:"hash"`
	Nonce             string `json:"nonce"`
	BlockHash         string `json:"blockHash"`
	From              string `json:"from"`
	ContractAddress   string `json:"contractAddress"`
	To                string `json:"to"`
	Value             string `json:"value"`
	TokenName         string `json:"tokenName"`
	TokenSymbol       string `json:"tokenSymbol"`
	TokenDecimal      string `json:"tokenDecimal"`
	TransactionIndex  string `json:"transactionIndex"`
	Gas               string `json:"gas"`
	GasPrice          string `json:"gasPrice"`
	GasUsed           string `json:"gasUsed"`
	CumulativeGasUsed string `json:"cumulativeGasUsed"`
	Input             string `json:"input"`
	MethodID          string `json:"methodId"`
	FunctionName      string `json:"functionName"`
	Confirmations     string `json:"confirmations"`
}

func u(n uint64) string { return strconv.FormatUint(n, 10) }

func blockHash(block uint64) string {
	var b [32]byte
	for i := 0; i < 8; i++ {
		b[i] = byte(block >> (8 * i))
		b[31-i] = byte(block >> (8 * i))
	}
	return "0x" + hex.EncodeToString(b[:])
}

// methodID is the selector Etherscan shows for a function signature (a fixed stand-in per
// known signature; the simulator does not decode calldata).
var methodIDs = map[string]string{
	fnSwapETHForTokens: "0x7ff36ab5",
	fnSwapTokensForETH: "0x18cbafe5",
	fnTransfer:         "0xa9059cbb",
	fnApprove:          "0x095ea7b3",
	fnMulticall:        "0xac9650d8",
}

func renderNormal(n *normalRow, head uint64) wireNormal {
	input, method := "0x", "0x"
	if n.method != "" {
		method = methodIDs[n.method]
		input = method + strings.Repeat("0", 128)
	}
	isErr, status := "0", "1"
	if n.failed {
		isErr, status = "1", "0"
	}
	return wireNormal{
		BlockNumber: u(n.block), TimeStamp: strconv.FormatInt(n.ts, 10), Hash: "0x" + hex.EncodeToString(n.hash[:]),
		Nonce: u(uint64(n.nonce)), BlockHash: blockHash(n.block), TransactionIndex: u(uint64(n.txIndex)),
		From: hexAddr(n.from), To: hexAddr(n.to), Value: n.value.String(), Gas: u(n.gasUsed + n.gasUsed/3),
		GasPrice: u(n.gasPrice), IsError: isErr, TxReceiptStatus: status, Input: input,
		CumulativeGasUsed: u(n.gasUsed * 7), GasUsed: u(n.gasUsed), Confirmations: u(head - n.block),
		MethodID: method, FunctionName: n.method,
	}
}

func renderInternal(n *internalRow) wireInternal {
	return wireInternal{
		BlockNumber: u(n.block), TimeStamp: strconv.FormatInt(n.ts, 10), Hash: "0x" + hex.EncodeToString(n.hash[:]),
		From: hexAddr(n.from), To: hexAddr(n.to), Value: n.value.String(), Type: "call", Gas: "2300", GasUsed: "0",
		TraceID: n.traceID, IsError: "0",
	}
}

func renderToken(n *tokenRow, head uint64) wireToken {
	return wireToken{
		BlockNumber: u(n.block), TimeStamp: strconv.FormatInt(n.ts, 10), Hash: "0x" + hex.EncodeToString(n.hash[:]),
		Nonce: "1", BlockHash: blockHash(n.block), From: hexAddr(n.from), ContractAddress: hexAddr(n.token.contract),
		To: hexAddr(n.to), Value: n.value.String(), TokenName: n.token.name, TokenSymbol: n.token.symbol,
		TokenDecimal: strconv.Itoa(n.token.decimals), TransactionIndex: u(uint64(n.txIndex)), Gas: "90000",
		GasPrice: u(n.gasPrice), GasUsed: "65000", CumulativeGasUsed: "455000", Input: "deprecated",
		MethodID: "0xa9059cbb", FunctionName: fnTransfer, Confirmations: u(head - n.block),
	}
}

// JSON-RPC.

type rpcCall struct {
	JSONRPC string            `json:"jsonrpc"`
	ID      json.RawMessage   `json:"id"`
	Method  string            `json:"method"`
	Params  []json.RawMessage `json:"params"`
}

func rpcErrorBody(id json.RawMessage, code int, msg string) map[string]any {
	if id == nil {
		id = json.RawMessage("null")
	}
	return map[string]any{"jsonrpc": "2.0", "id": id, "error": map[string]any{"code": code, "message": msg}}
}

func (s *Simulator) serveRPC(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.stats.RPCRequests++
	s.mu.Unlock()
	sc := s.chains[r.PathValue("chain")]
	if sc == nil {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	fault := s.takeFault(&s.rpcFaults)
	switch fault {
	case Fault5xx:
		http.Error(w, "upstream connect error", http.StatusServiceUnavailable)
		return
	case FaultRateLimit:
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":null,"error":{"code":-32005,"message":"rate limit exceeded"}}`)
		return
	case FaultMalformed:
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<html><body>502 Bad Gateway</body></html>")
		return
	case FaultSlow:
		_ = s.clock.Sleep(r.Context(), s.slow)
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	trimmed := strings.TrimSpace(string(body))
	if strings.HasPrefix(trimmed, "[") {
		var calls []rpcCall
		if err := json.Unmarshal(body, &calls); err != nil {
			writeJSON(w, rpcErrorBody(nil, -32700, "parse error"), false)
			return
		}
		out := make([]any, len(calls))
		s.mu.Lock()
		s.stats.RPCCalls += len(calls)
		for _, c := range calls {
			s.stats.RPCMethods[c.Method]++
		}
		s.mu.Unlock()
		for i, c := range calls {
			out[i] = s.rpc(sc, c)
		}
		writeJSON(w, out, fault == FaultTruncated)
		return
	}
	var c rpcCall
	if err := json.Unmarshal(body, &c); err != nil {
		writeJSON(w, rpcErrorBody(nil, -32700, "parse error"), false)
		return
	}
	s.mu.Lock()
	s.stats.RPCCalls++
	s.stats.RPCMethods[c.Method]++
	s.mu.Unlock()
	writeJSON(w, s.rpc(sc, c), fault == FaultTruncated)
}

func quantity(n *big.Int) string { return "0x" + n.Text(16) }

// stateAt resolves the block tag of parameter i of a state call (eth_getBalance, eth_call)
// as geth does: "latest" (and "pending", "safe", "finalized", which the simulated chain does
// not tell apart), "earliest" or a hex number; a number past the head is "header not found",
// a block whose state is pruned (Options.StateDepth) is "missing trie node".
func (s *Simulator) stateAt(sc *simChain, c rpcCall, i int) (uint64, map[string]any) {
	if i >= len(c.Params) {
		return 0, rpcErrorBody(c.ID, -32602, fmt.Sprintf("missing value for required argument %d", i))
	}
	var tag string
	if json.Unmarshal(c.Params[i], &tag) != nil {
		return 0, rpcErrorBody(c.ID, -32602, fmt.Sprintf("invalid argument %d: json: cannot unmarshal into a block number", i))
	}
	var block uint64
	head := sc.head.Load()
	switch tag {
	case "latest", "pending", "safe", "finalized":
		return head, nil
	case "earliest":
		block = 0
	default:
		if !strings.HasPrefix(tag, "0x") {
			return 0, rpcErrorBody(c.ID, -32602, fmt.Sprintf("invalid argument %d: hex string without 0x prefix", i))
		}
		n, err := strconv.ParseUint(tag[2:], 16, 64)
		if err != nil || len(tag) == 2 {
			return 0, rpcErrorBody(c.ID, -32602, fmt.Sprintf("invalid argument %d: hex number is not valid", i))
		}
		block = n
	}
	if block > head {
		return 0, rpcErrorBody(c.ID, -32000, "header not found")
	}
	if s.depth > 0 && block+s.depth < head {
		// The state root of the block, which the node no longer holds.
		return 0, rpcErrorBody(c.ID, -32000, "missing trie node "+strings.TrimPrefix(stateRoot(block), "0x")+" (path ) <nil>")
	}
	return block, nil
}

// stateRoot is a block's simulated state root.
func stateRoot(block uint64) string {
	h := blockHash(block ^ 0x5747e)
	return "0x" + h[len(h)-64:]
}

// rpc answers one call: balances are the ledger's as they stood at the end of the block asked.
func (s *Simulator) rpc(sc *simChain, c rpcCall) any {
	ok := func(result any) any { return map[string]any{"jsonrpc": "2.0", "id": c.ID, "result": result} }
	str := func(i int) string {
		var v string
		if i < len(c.Params) {
			_ = json.Unmarshal(c.Params[i], &v)
		}
		return v
	}
	switch c.Method {
	case "eth_blockNumber":
		return ok(quantity(new(big.Int).SetUint64(sc.head.Load())))
	case "eth_chainId":
		return ok(quantity(big.NewInt(sc.spec.id)))
	case "eth_getBalance":
		a, valid := parseAddr(str(0))
		if !valid {
			return rpcErrorBody(c.ID, -32602, "invalid argument 0: hex string has length "+strconv.Itoa(len(str(0))-2)+", want 40 for common.Address")
		}
		block, refused := s.stateAt(sc, c, 1)
		if refused != nil {
			return refused
		}
		if l := sc.ledgers[a]; l != nil {
			return ok(quantity(l.nativeAtBlock(block)))
		}
		return ok("0x0")
	case "eth_call":
		var call struct {
			To    string `json:"to"`
			Data  string `json:"data"`
			Input string `json:"input"`
		}
		if len(c.Params) == 0 || json.Unmarshal(c.Params[0], &call) != nil {
			return rpcErrorBody(c.ID, -32602, "invalid argument 0")
		}
		data := call.Data
		if data == "" {
			data = call.Input
		}
		contract, valid := parseAddr(call.To)
		if !valid || len(data) != 10+64 || !strings.EqualFold(data[:10], "0x70a08231") {
			return rpcErrorBody(c.ID, -32000, "execution reverted")
		}
		holder, valid := parseAddr("0x" + data[10+24:])
		if !valid {
			return rpcErrorBody(c.ID, -32000, "execution reverted")
		}
		block, refused := s.stateAt(sc, c, 1)
		if refused != nil {
			return refused
		}
		units := new(big.Int)
		if l := sc.ledgers[holder]; l != nil {
			for t := range l.balances {
				if t.contract == contract {
					units = l.tokenAtBlock(t, block)
				}
			}
		}
		word := units.Text(16)
		return ok("0x" + strings.Repeat("0", 64-len(word)) + word)
	case "eth_getTransactionReceipt":
		raw := str(0)
		b, err := hex.DecodeString(strings.TrimPrefix(strings.ToLower(raw), "0x"))
		if err != nil || len(b) != 32 {
			return rpcErrorBody(c.ID, -32602, "invalid argument 0: hex string has length "+strconv.Itoa(len(raw)-2)+", want 64 for common.Hash")
		}
		n := sc.byHash[[32]byte(b)]
		if n == nil {
			return ok(nil) // a node answers null for a transaction it does not know
		}
		return ok(renderReceipt(sc, n))
	}
	return rpcErrorBody(c.ID, -32601, "the method "+c.Method+" does not exist/is not available")
}

// receiptL1Fee is a transaction's L1 data fee on an OP Stack chain: what the wallet paid when
// it sent it, else (a transaction somebody else sent and paid for) a fixed value drawn from
// its hash.
func receiptL1Fee(n *normalRow) uint64 {
	if n.l1Fee > 0 {
		return n.l1Fee
	}
	var v uint64
	for _, b := range n.hash[:8] {
		v = v<<8 | uint64(b)
	}
	return 100_000_000_000 + v%5_000_000_000_000
}

// renderReceipt is a node's eth_getTransactionReceipt answer: quantities in hex; on an OP
// Stack chain the L1 fee fields too (l1Fee is what the sender paid; the other L1 fields are
// plausible figures, not an Ecotone computation of it). Logs are left out.
func renderReceipt(sc *simChain, n *normalRow) map[string]any {
	hexU := func(v uint64) string { return "0x" + strconv.FormatUint(v, 16) }
	status := "0x1"
	if n.failed {
		status = "0x0"
	}
	r := map[string]any{
		"transactionHash": "0x" + hex.EncodeToString(n.hash[:]), "transactionIndex": hexU(uint64(n.txIndex)),
		"blockHash": blockHash(n.block), "blockNumber": hexU(n.block), "from": hexAddr(n.from), "to": hexAddr(n.to),
		"cumulativeGasUsed": hexU(n.gasUsed * 7), "gasUsed": hexU(n.gasUsed), "effectiveGasPrice": hexU(n.gasPrice),
		"contractAddress": nil, "logs": []any{}, "logsBloom": "0x" + strings.Repeat("0", 512), "status": status, "type": "0x2",
	}
	if sc.spec.l1Fee {
		l1 := receiptL1Fee(n)
		r["l1Fee"] = hexU(l1)
		r["l1GasUsed"] = hexU(1600 + l1%2000)
		r["l1GasPrice"] = hexU(1_000_000_000 + l1%20_000_000_000)
		r["l1BaseFeeScalar"] = "0x8dd"
		r["l1BlobBaseFee"] = hexU(1 + l1%1000)
		r["l1BlobBaseFeeScalar"] = "0x101c12"
	}
	return r
}
