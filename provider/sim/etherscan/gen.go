package etherscan

import (
	"encoding/hex"
	"math/big"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/sha3"
)

// Kind is what a generated transaction does to the wallet.
type Kind string

// Kinds of generated transactions.
const (
	KindReceiveNative   Kind = "receive_native"   // txlist: another account sends the native coin
	KindSendNative      Kind = "send_native"      // txlist: the wallet sends the native coin, paying gas
	KindSelfTransfer    Kind = "self_transfer"    // txlist: the wallet sends to itself, paying gas
	KindFailed          Kind = "failed"           // txlist: the wallet's call reverts; gas is paid
	KindSwapNativeIn    Kind = "swap_native_in"   // txlist (coin out) + tokentx (token in), same hash
	KindSwapNativeOut   Kind = "swap_native_out"  // txlist (call) + tokentx (token out) + internal (coin in)
	KindReceiveToken    Kind = "receive_token"    // tokentx only
	KindSendToken       Kind = "send_token"       // txlist (transfer call) + tokentx (token out)
	KindApprove         Kind = "approve"          // txlist: a call that moves nothing, gas only
	KindInternalReceive Kind = "internal_receive" // internal only: a contract pays the wallet
	KindSpamAirdrop     Kind = "spam_airdrop"     // tokentx only: a lure token arrives unasked
	KindPoison          Kind = "poison"           // tokentx only: a zero-value transfer by a third party
)

// Kinds lists every kind.
var Kinds = []Kind{KindReceiveNative, KindSendNative, KindSelfTransfer, KindFailed, KindSwapNativeIn,
	KindSwapNativeOut, KindReceiveToken, KindSendToken, KindApprove, KindInternalReceive, KindSpamAirdrop, KindPoison}

// chainSpec is a simulated chain.
type chainSpec struct {
	name        string
	id          int64
	symbol      string
	startBlock  uint64
	maxGap      uint64 // blocks between two transactions of a wallet, at most
	blockTimeMs int64
	minGwei     float64 // gas price range, in gwei (a float only to pick a random integer wei)
	maxGwei     float64
	bigNative   bool // native amounts in the thousands (POL)
	// l1Fee: an OP Stack chain, whose every sent transaction also pays an L1 data fee,
	// found only in its receipt (l1Fee), never in Etherscan's lists.
	l1Fee  bool
	tokens []*token
}

type token struct {
	contract [20]byte
	symbol   string
	name     string
	decimals int
	spam     bool
}

var chainSpecs = []chainSpec{
	{name: "ethereum", id: 1, symbol: "ETH", startBlock: 14_000_000, maxGap: 4000, blockTimeMs: 12000, minGwei: 3, maxGwei: 80},
	{name: "arbitrum", id: 42161, symbol: "ETH", startBlock: 150_000_000, maxGap: 150_000, blockTimeMs: 250, minGwei: 0.01, maxGwei: 0.1},
	{name: "base", id: 8453, symbol: "ETH", startBlock: 3_000_000, maxGap: 20_000, blockTimeMs: 2000, minGwei: 0.001, maxGwei: 0.05, l1Fee: true},
	{name: "polygon", id: 137, symbol: "POL", startBlock: 45_000_000, maxGap: 20_000, blockTimeMs: 2000, minGwei: 30, maxGwei: 300, bigNative: true},
}

// ChainNames lists the simulated chains.
func ChainNames() []string {
	out := make([]string, len(chainSpecs))
	for i, c := range chainSpecs {
		out[i] = c.name
	}
	return out
}

// tokensOf makes a chain's tokens: decimals 6, 18, 8 and 0, and a lure.
func tokensOf(chain string) []*token {
	mk := func(symbol, name string, decimals int, spam bool) *token {
		h := sha3.NewLegacyKeccak256()
		h.Write([]byte("sim-token:" + chain + ":" + symbol))
		var c [20]byte
		copy(c[:], h.Sum(nil))
		return &token{contract: c, symbol: symbol, name: name, decimals: decimals, spam: spam}
	}
	return []*token{
		mk("USDC", "USD Coin", 6, false),
		mk("WETH", "Wrapped Ether", 18, false),
		mk("WBTC", "Wrapped BTC", 8, false),
		mk("TICKET", "Event Ticket", 0, false),
		mk("Visit usdc-claim.xyz", "Claim your USDC reward at usdc-claim.xyz", 18, true),
	}
}

func init() {
	for i := range chainSpecs {
		chainSpecs[i].tokens = tokensOf(chainSpecs[i].name)
	}
}

// Rows as the simulator keeps them: compact, rendered into Etherscan's strings on request.
type normalRow struct {
	block    uint64
	ts       int64
	hash     [32]byte
	txIndex  uint32
	nonce    uint32
	from, to [20]byte
	value    *big.Int
	gasUsed  uint64
	gasPrice uint64 // wei
	failed   bool
	method   string // function signature ("" for a plain transfer)
	l1Fee    uint64 // wei, on an L1-fee chain when the wallet sent it (see receiptL1Fee)
}

type internalRow struct {
	block    uint64
	ts       int64
	hash     [32]byte
	from, to [20]byte
	value    *big.Int
	traceID  string
}

type tokenRow struct {
	block    uint64
	ts       int64
	hash     [32]byte
	txIndex  uint32
	from, to [20]byte
	token    *token
	value    *big.Int
	gasPrice uint64
}

// ledger is one wallet's history and balances on one chain. Rows are in block order, and
// within a block in transaction order.
type ledger struct {
	address  [20]byte
	chain    *chainSpec
	normal   []normalRow
	internal []internalRow
	tokens   []tokenRow
	native   *big.Int
	l1Fees   *big.Int // the L1 data fees the wallet paid, wei
	balances map[*token]*big.Int
	kinds    map[Kind]int
	count    int
	last     uint64
	// nativeAt and tokenAt are the balances after each change, in block order, for the
	// nodes' answers at a past block.
	nativeAt []balancePoint
	tokenAt  map[*token][]balancePoint
}

// balancePoint is a balance as it stood after a change in a block.
type balancePoint struct {
	block uint64
	value *big.Int
}

// balanceAt is the last balance of points set in a block ≤ block (zero before the first).
func balanceAt(points []balancePoint, block uint64) *big.Int {
	i := sort.Search(len(points), func(i int) bool { return points[i].block > block })
	if i == 0 {
		return new(big.Int)
	}
	return points[i-1].value
}

// nativeAtBlock is the wallet's native balance at the end of a block.
func (l *ledger) nativeAtBlock(block uint64) *big.Int { return balanceAt(l.nativeAt, block) }

// tokenAtBlock is the wallet's balance of a token at the end of a block.
func (l *ledger) tokenAtBlock(t *token, block uint64) *big.Int { return balanceAt(l.tokenAt[t], block) }

// Function signatures as Etherscan's functionName shows them.
const (
	fnSwapETHForTokens = "swapExactETHForTokens(uint256 amountOutMin, address[] path, address to, uint256 deadline)"
	fnSwapTokensForETH = "swapExactTokensForETH(uint256 amountIn, uint256 amountOutMin, address[] path, address to, uint256 deadline)"
	fnTransfer         = "transfer(address _to, uint256 _value)"
	fnApprove          = "approve(address spender, uint256 amount)"
	fnMulticall        = "multicall(bytes[] data)"
)

var big10 = big.NewInt(10)

type generator struct {
	rng    *rand.Rand
	l      *ledger
	others [][20]byte
	router [20]byte
	pool   [20]byte
	spam   [20]byte
	nonce  uint32
}

func (g *generator) addr() [20]byte {
	var a [20]byte
	for i := 0; i < 20; i += 4 {
		v := g.rng.Uint32()
		a[i], a[i+1], a[i+2], a[i+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	}
	return a
}

func (g *generator) hash() [32]byte {
	var h [32]byte
	for i := 0; i < 32; i += 8 {
		v := g.rng.Uint64()
		for j := 0; j < 8; j++ {
			h[i+j] = byte(v >> (8 * j))
		}
	}
	return h
}

// amount is a random integer amount of a token with the given decimals: a whole part up to
// maxWhole and random base units below it, so that amounts are not round.
func (g *generator) amount(decimals int, maxWhole int64) *big.Int {
	whole := big.NewInt(1 + g.rng.Int64N(maxWhole))
	scale := new(big.Int).Exp(big10, big.NewInt(int64(decimals)), nil)
	v := new(big.Int).Mul(whole, scale)
	if decimals > 0 {
		// Base units below one whole token (decimals ≤ 18 fit in a uint64).
		v.Add(v, new(big.Int).SetUint64(g.rng.Uint64N(scale.Uint64())))
	}
	return v
}

// part is a random share (1–100 %) of a positive amount, at least one unit.
func (g *generator) part(of *big.Int) *big.Int {
	v := new(big.Int).Mul(of, big.NewInt(1+g.rng.Int64N(100)))
	v.Div(v, big.NewInt(100))
	if v.Sign() == 0 {
		v.SetInt64(1)
	}
	return v
}

func (g *generator) nativeAmount() *big.Int {
	if g.l.chain.bigNative {
		return g.amount(18, 2000)
	}
	// 0.001 to ~3 ETH, to the wei.
	v := new(big.Int).SetUint64(g.rng.Uint64N(3_000_000_000_000_000_000))
	return v.Add(v, big.NewInt(1_000_000_000_000_000))
}

func (g *generator) gasPrice() uint64 {
	c := g.l.chain
	gwei := c.minGwei + g.rng.Float64()*(c.maxGwei-c.minGwei)
	return uint64(gwei*1e9) + g.rng.Uint64N(1000)
}

// l1Fee is the L1 data fee of a transaction the wallet sends: none off an OP Stack chain, else
// 0.0000001 to ~0.000005 ETH (Base's fees since blobs are of that order, and often larger
// than the L2 execution fee).
func (g *generator) l1Fee() uint64 {
	if !g.l.chain.l1Fee {
		return 0
	}
	return 100_000_000_000 + g.rng.Uint64N(5_000_000_000_000)
}

func fee(gasUsed, gasPrice uint64) *big.Int {
	return new(big.Int).Mul(new(big.Int).SetUint64(gasUsed), new(big.Int).SetUint64(gasPrice))
}

// generate fills the ledger with n transactions from its chain's start.
func (g *generator) generate(n int, origin time.Time) {
	l := g.l
	c := l.chain
	block := c.startBlock + g.rng.Uint64N(1000)
	var txIndex uint32
	for k := 0; k < n; k++ {
		// About a third of the transactions share their block with the previous one, so
		// that pages end in the middle of a block.
		if k == 0 || g.rng.IntN(3) > 0 {
			block += 1 + g.rng.Uint64N(c.maxGap)
			txIndex = g.rng.Uint32N(50)
		} else {
			txIndex += 1 + g.rng.Uint32N(5)
		}
		ts := origin.Unix() + int64(block-c.startBlock)*c.blockTimeMs/1000
		kind := KindReceiveNative
		if k > 0 {
			kind = pickKind(g.rng)
		}
		if !g.emit(kind, block, ts, txIndex) {
			g.emit(KindReceiveNative, block, ts, txIndex)
		}
		l.nativeAt = append(l.nativeAt, balancePoint{block: block, value: new(big.Int).Set(l.native)})
		l.last = block
	}
}

var kindWeights = []struct {
	kind   Kind
	weight int
}{
	{KindReceiveNative, 14}, {KindSendNative, 12}, {KindSelfTransfer, 2}, {KindFailed, 5},
	{KindSwapNativeIn, 9}, {KindSwapNativeOut, 7}, {KindReceiveToken, 12}, {KindSendToken, 10},
	{KindApprove, 6}, {KindInternalReceive, 5}, {KindSpamAirdrop, 5}, {KindPoison, 4},
}

func pickKind(rng *rand.Rand) Kind {
	total := 0
	for _, w := range kindWeights {
		total += w.weight
	}
	n := rng.IntN(total)
	for _, w := range kindWeights {
		if n < w.weight {
			return w.kind
		}
		n -= w.weight
	}
	return KindReceiveNative
}

// emit adds one transaction of the kind, or reports false when the wallet cannot afford it.
func (g *generator) emit(kind Kind, block uint64, ts int64, txIndex uint32) bool {
	l := g.l
	me := l.address
	h := g.hash()
	other := g.others[g.rng.IntN(len(g.others))]
	gp := g.gasPrice()
	l1 := g.l1Fee()
	realTokens := l.chain.tokens[:4]
	// spend pays value and the fees of a transaction the wallet sends (a reverted one too:
	// its gas was burnt and its data posted to L1).
	spend := func(value *big.Int, gasUsed uint64) bool {
		need := new(big.Int).Add(value, fee(gasUsed, gp))
		need.Add(need, new(big.Int).SetUint64(l1))
		if l.native.Cmp(need) < 0 {
			return false
		}
		l.native.Sub(l.native, need)
		l.l1Fees.Add(l.l1Fees, new(big.Int).SetUint64(l1))
		return true
	}
	sent := func(to [20]byte, value *big.Int, gasUsed uint64, method string, failed bool) {
		g.nonce++
		l.normal = append(l.normal, normalRow{block: block, ts: ts, hash: h, txIndex: txIndex, nonce: g.nonce,
			from: me, to: to, value: value, gasUsed: gasUsed, gasPrice: gp, failed: failed, method: method, l1Fee: l1})
	}
	tokenMove := func(t *token, from, to [20]byte, value *big.Int) {
		l.tokens = append(l.tokens, tokenRow{block: block, ts: ts, hash: h, txIndex: txIndex, from: from, to: to, token: t, value: value, gasPrice: gp})
		bal := l.balances[t]
		if bal == nil {
			bal = new(big.Int)
			l.balances[t] = bal
		}
		if from == me {
			bal.Sub(bal, value)
		}
		if to == me {
			bal.Add(bal, value)
		}
		l.tokenAt[t] = append(l.tokenAt[t], balancePoint{block: block, value: new(big.Int).Set(bal)})
	}
	held := func() *token {
		var have []*token
		for _, t := range realTokens {
			if b := l.balances[t]; b != nil && b.Sign() > 0 {
				have = append(have, t)
			}
		}
		if len(have) == 0 {
			return nil
		}
		return have[g.rng.IntN(len(have))]
	}
	tokenAmount := func(t *token) *big.Int {
		maxWhole := int64(5000)
		switch t.decimals {
		case 8, 18:
			maxWhole = 3
		case 0:
			maxWhole = 20
		}
		return g.amount(t.decimals, maxWhole)
	}

	switch kind {
	case KindReceiveNative:
		v := g.nativeAmount()
		l.normal = append(l.normal, normalRow{block: block, ts: ts, hash: h, txIndex: txIndex, nonce: g.rng.Uint32N(5000),
			from: other, to: me, value: v, gasUsed: 21000, gasPrice: gp})
		l.native.Add(l.native, v)
	case KindSendNative:
		v := g.part(l.native)
		v.Div(v, big.NewInt(2))
		if v.Sign() == 0 || !spend(v, 21000) {
			return false
		}
		sent(other, v, 21000, "", false)
	case KindSelfTransfer:
		v := g.part(l.native)
		if !spend(big.NewInt(0), 21000) {
			return false
		}
		sent(me, v, 21000, "", false)
	case KindFailed:
		gasUsed := 30000 + g.rng.Uint64N(100000)
		if !spend(big.NewInt(0), gasUsed) {
			return false
		}
		// The value of a reverted call stays with the sender.
		v := new(big.Int)
		if g.rng.IntN(2) == 0 {
			v = g.part(l.native)
			v.Div(v, big.NewInt(4))
		}
		sent(g.router, v, gasUsed, fnMulticall, true)
	case KindSwapNativeIn:
		v := g.part(l.native)
		v.Div(v, big.NewInt(3))
		gasUsed := 120000 + g.rng.Uint64N(80000)
		if v.Sign() == 0 || !spend(v, gasUsed) {
			return false
		}
		t := realTokens[g.rng.IntN(len(realTokens))]
		sent(g.router, v, gasUsed, fnSwapETHForTokens, false)
		tokenMove(t, g.pool, me, tokenAmount(t))
	case KindSwapNativeOut:
		t := held()
		gasUsed := 130000 + g.rng.Uint64N(80000)
		if t == nil || !spend(big.NewInt(0), gasUsed) {
			return false
		}
		sent(g.router, new(big.Int), gasUsed, fnSwapTokensForETH, false)
		tokenMove(t, me, g.pool, g.part(l.balances[t]))
		v := g.nativeAmount()
		l.internal = append(l.internal, internalRow{block: block, ts: ts, hash: h, from: g.router, to: me, value: v, traceID: "0_" + string(rune('1'+g.rng.IntN(3)))})
		l.native.Add(l.native, v)
	case KindReceiveToken:
		t := realTokens[g.rng.IntN(len(realTokens))]
		tokenMove(t, other, me, tokenAmount(t))
	case KindSendToken:
		t := held()
		gasUsed := 45000 + g.rng.Uint64N(20000)
		if t == nil || !spend(big.NewInt(0), gasUsed) {
			return false
		}
		sent(t.contract, new(big.Int), gasUsed, fnTransfer, false)
		tokenMove(t, me, other, g.part(l.balances[t]))
	case KindApprove:
		gasUsed := 44000 + g.rng.Uint64N(3000)
		t := realTokens[g.rng.IntN(len(realTokens))]
		if !spend(big.NewInt(0), gasUsed) {
			return false
		}
		sent(t.contract, new(big.Int), gasUsed, fnApprove, false)
	case KindInternalReceive:
		v := g.nativeAmount()
		l.internal = append(l.internal, internalRow{block: block, ts: ts, hash: h, from: g.router, to: me, value: v, traceID: "0"})
		l.native.Add(l.native, v)
	case KindSpamAirdrop:
		t := l.chain.tokens[4]
		tokenMove(t, g.spam, me, g.amount(t.decimals, 10000))
	case KindPoison:
		// A look-alike of a counterparty (same first and last bytes) in a zero transfer of
		// a real token, in either direction: transferFrom(wallet, lookalike, 0) needs no
		// allowance.
		look := g.addr()
		look[0], look[1], look[18], look[19] = other[0], other[1], other[18], other[19]
		usdc := realTokens[0]
		if g.rng.IntN(2) == 0 {
			tokenMove(usdc, me, look, new(big.Int))
		} else {
			tokenMove(usdc, look, me, new(big.Int))
		}
	}
	l.kinds[kind]++
	l.count++
	return true
}

// hexAddr is an address as Etherscan writes it (lower case).
func hexAddr(a [20]byte) string { return "0x" + hex.EncodeToString(a[:]) }

// checksum spells an address in EIP-55 mixed case.
func checksum(a [20]byte) string {
	lower := hex.EncodeToString(a[:])
	h := sha3.NewLegacyKeccak256()
	h.Write([]byte(lower))
	sum := h.Sum(nil)
	var b strings.Builder
	b.WriteString("0x")
	for i := 0; i < len(lower); i++ {
		c := lower[i]
		nib := sum[i/2] >> 4
		if i%2 == 1 {
			nib = sum[i/2] & 0xf
		}
		if c >= 'a' && nib >= 8 {
			c -= 32
		}
		b.WriteByte(c)
	}
	return b.String()
}

func parseAddr(s string) ([20]byte, bool) {
	var a [20]byte
	if len(s) != 42 || (s[:2] != "0x" && s[:2] != "0X") {
		return a, false
	}
	b, err := hex.DecodeString(s[2:])
	if err != nil {
		return a, false
	}
	copy(a[:], b)
	return a, true
}
