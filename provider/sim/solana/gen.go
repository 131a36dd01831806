package solana

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"
)

// Well-known mints and the simulator's own, with their decimals.
const (
	MintUSDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
	MintUSDT = "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB"

	systemProgram    = "11111111111111111111111111111111"
	tokenProgram     = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
	token2022Program = "TokenzQdBNbLqP5VEhdkAS6EjFbhs3K8ZaJk8SKvJ3Ln4WLp6Eb"
	lamportsPerSOL   = 1_000_000_000
)

// Kind is what a generated transaction does to the wallet.
type Kind string

// Kinds of generated transactions.
const (
	KindReceiveSOL   Kind = "receive_sol"
	KindSendSOL      Kind = "send_sol"
	KindReceiveToken Kind = "receive_token"
	KindSendToken    Kind = "send_token"
	KindSwap         Kind = "swap"
	KindFailed       Kind = "failed"
)

// Truth is what a seeded wallet holds and did: its balances equal the net of its history.
type Truth struct {
	Address  string
	Lamports uint64
	Tokens   map[string]uint64 // by mint, base units
	Decimals map[string]int
	Kinds    map[Kind]int
	Count    int
	// OwnerAbsent counts the transactions that credit one of the wallet's token accounts
	// without listing the wallet itself among their account keys: getSignaturesForAddress
	// of the wallet does not return them, only that of the token account.
	OwnerAbsent int
}

type mintInfo struct {
	mint     string
	decimals int
	program  string // the token program owning the mint's accounts
}

type tokenAccountState struct {
	address string
	mint    mintInfo
	amount  uint64
	opened  bool
}

type simTx struct {
	signature string
	slot      uint64
	blockTime int64
	failed    bool
	seq       int             // generation order across all wallets: ties of slot break by it
	keys      []string        // the account keys: the addresses whose history lists it
	body      json.RawMessage // the getTransaction result
}

type wallet struct {
	rng      *rand.Rand
	address  string
	lamports uint64
	tokens   []*tokenAccountState
	txs      []*simTx // oldest first
	kinds    map[Kind]int
	others   []string
}

func (w *wallet) key() string {
	b := make([]byte, 32)
	for i := range b {
		b[i] = byte(w.rng.UintN(256))
	}
	return base58Encode(b)
}

func (w *wallet) signature() string {
	b := make([]byte, 64)
	for i := range b {
		b[i] = byte(w.rng.UintN(256))
	}
	return base58Encode(b)
}

// JSON shapes of getTransaction (jsonParsed), as a node renders them.
type wireKey struct {
	Pubkey   string `json:"pubkey"`
	Signer   bool   `json:"signer"`
	Source   string `json:"source"`
	Writable bool   `json:"writable"`
}

type wireUIAmount struct {
	Amount         string   `json:"amount"`
	Decimals       int      `json:"decimals"`
	UIAmount       *float64 `json:"uiAmount"`
	UIAmountString string   `json:"uiAmountString"`
}

type wireTokenBalance struct {
	AccountIndex  int          `json:"accountIndex"`
	Mint          string       `json:"mint"`
	Owner         string       `json:"owner"`
	ProgramID     string       `json:"programId"`
	UITokenAmount wireUIAmount `json:"uiTokenAmount"`
}

func uiAmount(amount uint64, decimals int) wireUIAmount {
	s := strconv.FormatUint(amount, 10)
	for len(s) <= decimals {
		s = "0" + s
	}
	ui := s[:len(s)-decimals]
	if decimals > 0 {
		frac := s[len(s)-decimals:]
		for len(frac) > 0 && frac[len(frac)-1] == '0' {
			frac = frac[:len(frac)-1]
		}
		if frac != "" {
			ui += "." + frac
		}
	}
	f, _ := strconv.ParseFloat(ui, 64)
	return wireUIAmount{Amount: strconv.FormatUint(amount, 10), Decimals: decimals, UIAmount: &f, UIAmountString: ui}
}

// account is one account of a transaction being built, with its balances.
type account struct {
	key       wireKey
	pre, post uint64
}

type tokenMove struct {
	index     int
	mint      mintInfo
	owner     string
	pre, post uint64
	preAbsent bool // the token account was created by this transaction
}

func (w *wallet) render(tx *simTx, accounts []account, moves []tokenMove, fee uint64, instr string) {
	keys := make([]wireKey, len(accounts))
	tx.keys = make([]string, len(accounts))
	pre := make([]uint64, len(accounts))
	post := make([]uint64, len(accounts))
	for i, a := range accounts {
		keys[i], pre[i], post[i] = a.key, a.pre, a.post
		tx.keys[i] = a.key.Pubkey
	}
	preTok, postTok := []wireTokenBalance{}, []wireTokenBalance{}
	for _, m := range moves {
		b := wireTokenBalance{AccountIndex: m.index, Mint: m.mint.mint, Owner: m.owner, ProgramID: m.mint.program}
		if !m.preAbsent {
			b.UITokenAmount = uiAmount(m.pre, m.mint.decimals)
			preTok = append(preTok, b)
		}
		b.UITokenAmount = uiAmount(m.post, m.mint.decimals)
		postTok = append(postTok, b)
	}
	var errField any
	status := map[string]any{"Ok": nil}
	if tx.failed {
		errField = map[string]any{"InstructionError": []any{0, map[string]any{"Custom": 1}}}
		status = map[string]any{"Err": errField}
	}
	body := map[string]any{
		"slot":      tx.slot,
		"blockTime": tx.blockTime,
		"version":   0,
		"meta": map[string]any{
			"err": errField, "status": status, "fee": fee,
			"preBalances": pre, "postBalances": post,
			"preTokenBalances": preTok, "postTokenBalances": postTok,
			"innerInstructions": []any{}, "logMessages": []string{"Program log: " + instr},
			"rewards": []any{}, "computeUnitsConsumed": 4500,
		},
		"transaction": map[string]any{
			"signatures": []string{tx.signature},
			"message": map[string]any{
				"accountKeys":     keys,
				"instructions":    []any{map[string]any{"programId": accounts[len(accounts)-1].key.Pubkey, "stackHeight": nil, "parsed": map[string]any{"type": instr}}},
				"recentBlockhash": w.key(),
			},
		},
	}
	tx.body, _ = json.Marshal(body)
}

func signer(k string) wireKey {
	return wireKey{Pubkey: k, Signer: true, Source: "transaction", Writable: true}
}
func writable(k string) wireKey { return wireKey{Pubkey: k, Source: "transaction", Writable: true} }
func readonly(k string) wireKey { return wireKey{Pubkey: k, Source: "transaction"} }

func (w *wallet) other() string { return w.others[w.rng.IntN(len(w.others))] }

func (w *wallet) fee() uint64 { return 5000 + uint64(w.rng.IntN(20))*1000 }

// generate books n transactions between from and to, oldest first; the first is a SOL
// receive so that there is something to spend.
func (w *wallet) generate(n int, from, to time.Time, mints []mintInfo) {
	step := to.Sub(from) / time.Duration(n+1)
	slot := uint64(150_000_000)
	for i := 0; i < n; i++ {
		slot += 1 + uint64(w.rng.IntN(5000))
		tx := &simTx{signature: w.signature(), slot: slot, blockTime: from.Add(step * time.Duration(i+1)).Unix()}
		kind := w.pick(i)
		switch kind {
		case KindReceiveSOL:
			amt := uint64(1+w.rng.IntN(5000)) * 1_000_000
			payer, fee := w.other(), w.fee()
			payerPre := 1000*lamportsPerSOL + amt
			w.render(tx, []account{
				{signer(payer), payerPre, payerPre - amt - fee},
				{writable(w.address), w.lamports, w.lamports + amt},
				{readonly(systemProgram), 1, 1},
			}, nil, fee, "transfer")
			w.lamports += amt
		case KindSendSOL:
			fee := w.fee()
			amt := uint64(w.rng.Int64N(int64(w.lamports-fee)/2)) + 1
			to := w.other()
			w.render(tx, []account{
				{signer(w.address), w.lamports, w.lamports - amt - fee},
				{writable(to), 0, amt},
				{readonly(systemProgram), 1, 1},
			}, nil, fee, "transfer")
			w.lamports -= amt + fee
		case KindReceiveToken:
			ta := w.tokens[w.rng.IntN(len(w.tokens))]
			amt := uint64(1 + w.rng.IntN(1_000_000_000))
			payer, fee := w.other(), w.fee()
			payerATA := w.key()
			moves := []tokenMove{
				{index: 1, mint: ta.mint, owner: payer, pre: amt * 3, post: amt * 2},
				{index: 2, mint: ta.mint, owner: w.address, pre: ta.amount, post: ta.amount + amt, preAbsent: !ta.opened},
			}
			if second := w.otherOpened(ta); ta.opened && second != nil && w.rng.IntN(100) < 15 {
				// An airdrop of two tokens at once, into two existing accounts: again the
				// wallet is not among the keys, and both token accounts' histories list it.
				amt2 := uint64(1 + w.rng.IntN(1_000_000_000))
				payerATA2 := w.key()
				accounts := []account{
					{signer(payer), 10 * lamportsPerSOL, 10*lamportsPerSOL - fee},
					{writable(payerATA), 2039280, 2039280},
					{writable(payerATA2), 2039280, 2039280},
					{writable(ta.address), 2039280, 2039280},
					{writable(second.address), 2039280, 2039280},
				}
				if second.mint.program != ta.mint.program {
					accounts = append(accounts, account{readonly(second.mint.program), 1, 1})
				}
				accounts = append(accounts, account{readonly(ta.mint.program), 1, 1})
				w.render(tx, accounts, []tokenMove{
					{index: 1, mint: ta.mint, owner: payer, pre: amt * 3, post: amt * 2},
					{index: 2, mint: second.mint, owner: payer, pre: amt2 * 3, post: amt2 * 2},
					{index: 3, mint: ta.mint, owner: w.address, pre: ta.amount, post: ta.amount + amt},
					{index: 4, mint: second.mint, owner: w.address, pre: second.amount, post: second.amount + amt2},
				}, fee, "transferChecked")
				second.amount += amt2
			} else if ta.opened && w.rng.IntN(100) < 60 {
				// A plain transferChecked into the existing account: source, mint,
				// destination and the sender as authority. The wallet (the owner) is not
				// among the keys, so only getSignaturesForAddress of its token account lists
				// it; the node still names the owner in the token balances.
				w.render(tx, []account{
					{signer(payer), 10 * lamportsPerSOL, 10*lamportsPerSOL - fee},
					{writable(payerATA), 2039280, 2039280},
					{writable(ta.address), 2039280, 2039280},
					{readonly(ta.mint.mint), 1461600, 1461600},
					{readonly(ta.mint.program), 1, 1},
				}, moves, fee, "transferChecked")
			} else {
				// The account is created on the way (createIdempotent): that instruction
				// lists the owner, so getSignaturesForAddress of the wallet lists it too.
				w.render(tx, []account{
					{signer(payer), 10 * lamportsPerSOL, 10*lamportsPerSOL - fee},
					{writable(payerATA), 2039280, 2039280},
					{writable(ta.address), 2039280, 2039280},
					{readonly(w.address), w.lamports, w.lamports},
					{readonly(ta.mint.program), 1, 1},
				}, moves, fee, "transferChecked")
			}
			ta.amount += amt
			ta.opened = true
		case KindSendToken:
			ta := w.funded()
			amt := uint64(w.rng.Int64N(int64(ta.amount))) + 1
			fee := w.fee()
			to := w.other()
			toATA := w.key()
			w.render(tx, []account{
				{signer(w.address), w.lamports, w.lamports - fee},
				{writable(ta.address), 2039280, 2039280},
				{writable(toATA), 2039280, 2039280},
				{readonly(ta.mint.program), 1, 1},
			}, []tokenMove{
				{index: 1, mint: ta.mint, owner: w.address, pre: ta.amount, post: ta.amount - amt},
				{index: 2, mint: ta.mint, owner: to, pre: 0, post: amt},
			}, fee, "transferChecked")
			w.lamports -= fee
			ta.amount -= amt
		case KindSwap:
			ta := w.tokens[w.rng.IntN(len(w.tokens))]
			fee := w.fee()
			amt := uint64(w.rng.Int64N(int64(w.lamports-fee)/4)) + 1
			got := uint64(1 + w.rng.IntN(500_000_000))
			pool, poolATA := w.others[0], w.key()
			w.render(tx, []account{
				{signer(w.address), w.lamports, w.lamports - amt - fee},
				{writable(ta.address), 2039280, 2039280},
				{writable(pool), 500 * lamportsPerSOL, 500*lamportsPerSOL + amt},
				{writable(poolATA), 2039280, 2039280},
				{readonly(ta.mint.program), 1, 1},
			}, []tokenMove{
				{index: 1, mint: ta.mint, owner: w.address, pre: ta.amount, post: ta.amount + got, preAbsent: !ta.opened},
				{index: 3, mint: ta.mint, owner: pool, pre: 1 << 50, post: 1<<50 - got},
			}, fee, "swap")
			w.lamports -= amt + fee
			ta.amount += got
			ta.opened = true
		case KindFailed:
			tx.failed = true
			fee := w.fee()
			w.render(tx, []account{
				{signer(w.address), w.lamports, w.lamports - fee},
				{writable(w.other()), 0, 0},
				{readonly(systemProgram), 1, 1},
			}, nil, fee, "transfer")
			w.lamports -= fee
		}
		w.kinds[kind]++
		w.txs = append(w.txs, tx)
	}
}

// otherOpened is an opened token account other than ta, or nil.
func (w *wallet) otherOpened(ta *tokenAccountState) *tokenAccountState {
	for _, o := range w.tokens {
		if o != ta && o.opened {
			return o
		}
	}
	return nil
}

// funded is a token account holding tokens, or nil.
func (w *wallet) funded() *tokenAccountState {
	start := w.rng.IntN(len(w.tokens))
	for i := range w.tokens {
		if ta := w.tokens[(start+i)%len(w.tokens)]; ta.amount > 0 {
			return ta
		}
	}
	return nil
}

// pick chooses the next kind among those the wallet can afford.
func (w *wallet) pick(i int) Kind {
	if i == 0 || w.lamports < lamportsPerSOL/10 {
		return KindReceiveSOL
	}
	for {
		switch r := w.rng.IntN(100); {
		case r < 30:
			return KindReceiveSOL
		case r < 50:
			return KindSendSOL
		case r < 65:
			return KindReceiveToken
		case r < 78:
			if w.funded() != nil {
				return KindSendToken
			}
		case r < 92:
			return KindSwap
		default:
			return KindFailed
		}
	}
}

func (w *wallet) truth() Truth {
	t := Truth{Address: w.address, Lamports: w.lamports, Tokens: map[string]uint64{}, Decimals: map[string]int{}, Kinds: map[Kind]int{}, Count: len(w.txs)}
	for _, ta := range w.tokens {
		t.Tokens[ta.mint.mint] += ta.amount
		t.Decimals[ta.mint.mint] = ta.mint.decimals
	}
	for k, v := range w.kinds {
		t.Kinds[k] = v
	}
	for _, tx := range w.txs {
		if !slices.Contains(tx.keys, w.address) {
			t.OwnerAbsent++
		}
	}
	return t
}

const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

// base58Encode encodes b in the Bitcoin alphabet, leading zero bytes as '1'.
func base58Encode(b []byte) string {
	zeros := 0
	for zeros < len(b) && b[zeros] == 0 {
		zeros++
	}
	digits := []byte{} // little-endian base-58 digits
	for _, v := range b[zeros:] {
		carry := int(v)
		for i := range digits {
			carry += int(digits[i]) << 8
			digits[i] = byte(carry % 58)
			carry /= 58
		}
		for carry > 0 {
			digits = append(digits, byte(carry%58))
			carry /= 58
		}
	}
	out := make([]byte, 0, zeros+len(digits))
	for i := 0; i < zeros; i++ {
		out = append(out, '1')
	}
	for i := len(digits) - 1; i >= 0; i-- {
		out = append(out, base58Alphabet[digits[i]])
	}
	return string(out)
}

// base58Len32 reports whether s decodes to 32 bytes (a public key), the way nodes check.
func base58Len32(s string) bool {
	if s == "" || len(s) > 44 {
		return false
	}
	zeros := 0
	for zeros < len(s) && s[zeros] == '1' {
		zeros++
	}
	num := []byte{} // little-endian base-256
	for i := zeros; i < len(s); i++ {
		d := -1
		for j := 0; j < len(base58Alphabet); j++ {
			if base58Alphabet[j] == s[i] {
				d = j
				break
			}
		}
		if d < 0 {
			return false
		}
		carry := d
		for k := range num {
			carry += int(num[k]) * 58
			num[k] = byte(carry)
			carry >>= 8
		}
		for carry > 0 {
			num = append(num, byte(carry))
			carry >>= 8
		}
	}
	return zeros+len(num) == 32
}
