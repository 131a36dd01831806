package esplora

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"time"
)

// Kind is a seeded wallet's kind.
type Kind string

// The wallet kinds: single addresses of each script type, and extended keys.
const (
	KindP2PKH  Kind = "p2pkh"  // one 1… address
	KindP2SH   Kind = "p2sh"   // one 3… address
	KindP2WPKH Kind = "p2wpkh" // one bc1q… address
	KindP2TR   Kind = "p2tr"   // one bc1p… address
	KindXpub   Kind = "xpub"   // BIP44, P2PKH addresses
	KindYpub   Kind = "ypub"   // BIP49, P2SH-P2WPKH addresses
	KindZpub   Kind = "zpub"   // BIP84, P2WPKH addresses
)

// Kinds is the order in which wallets are seeded (wallet i has kind Kinds[i mod 7]).
var Kinds = []Kind{KindP2PKH, KindP2SH, KindP2WPKH, KindP2TR, KindXpub, KindYpub, KindZpub}

type txIn struct {
	txid  string
	vout  int
	prev  output
	value int64
}

type txOut struct {
	out   output
	value int64
}

type simTx struct {
	txid      string
	vin       []txIn
	vout      []txOut
	fee       int64
	confirmed bool
	height    int64
	blockTime int64
	json      []byte // rendered when confirmed state changes
}

type utxo struct {
	txid  string
	vout  int
	out   output
	value int64
}

// wallet is a seeded wallet and its ground truth.
type wallet struct {
	kind    Kind
	handle  string // the address or the extended key the user connects
	rng     *rand.Rand
	single  output
	account privKey
	chains  [2]privKey // receive and change branches
	used    [2][]int   // used indices in order of first use
	byIndex [2]map[int]output
	mine    map[string]bool
	utxos   []utxo
	txs     []*simTx
}

// seedWallet makes wallet i of kind k.
func seedWallet(seed int64, i int, k Kind) *wallet {
	w := &wallet{kind: k, rng: rand.New(rand.NewPCG(uint64(seed), uint64(i)+1)), mine: map[string]bool{}}
	switch k {
	case KindP2PKH, KindP2SH, KindP2WPKH:
		program := w.bytes(20)
		w.single = makeOutput(map[Kind]scriptKind{KindP2PKH: scriptP2PKH, KindP2SH: scriptP2SH, KindP2WPKH: scriptP2WPKH}[k], program)
	case KindP2TR:
		w.single = makeOutput(scriptP2TR, w.bytes(32))
	default:
		purpose, version := map[Kind]uint32{KindXpub: 44, KindYpub: 49, KindZpub: 84}[k], map[Kind][]byte{
			KindXpub: {0x04, 0x88, 0xb2, 0x1e}, KindYpub: {0x04, 0x9d, 0x7c, 0xb2}, KindZpub: {0x04, 0xb2, 0x47, 0x46},
		}[k]
		const hardened = 1 << 31
		w.account = masterKey(w.bytes(32)).child(purpose + hardened).child(hardened).child(hardened)
		w.handle = w.account.xpub(version)
		w.chains = [2]privKey{w.account.child(0), w.account.child(1)}
		w.byIndex = [2]map[int]output{{}, {}}
	}
	if !w.hd() {
		w.handle = w.single.address
		w.mine[w.single.address] = true
	}
	return w
}

func (w *wallet) bytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(w.rng.IntN(256))
	}
	return b
}

func (w *wallet) hd() bool { return w.single.address == "" }

func (w *wallet) scriptKind() scriptKind {
	switch w.kind {
	case KindYpub:
		return scriptP2SH
	case KindZpub:
		return scriptP2WPKH
	}
	return scriptP2PKH
}

// address returns an address of the wallet's chain (0 receive, 1 change): mostly one already
// used, sometimes the next one. The next index usually follows the last; now and then it
// skips some (never 20 or more), as happens when a wallet hands out addresses that are never
// paid. The receive chain always skips 4–9, so that index 10 is used after six unused ones.
func (w *wallet) address(chain int) output {
	if !w.hd() {
		return w.single
	}
	used := w.used[chain]
	if len(used) > 0 && w.rng.Float64() > 0.07 {
		return w.byIndex[chain][used[w.rng.IntN(len(used))]]
	}
	next := 0
	if len(used) > 0 {
		last := used[len(used)-1]
		next = last + 1
		switch {
		case chain == 0 && last == 3:
			next = 10
		case w.rng.Float64() < 0.1:
			next += 1 + w.rng.IntN(15) // 1–15 unused between
		}
	}
	out := outputForKey(w.scriptKind(), w.chains[chain].child(uint32(next)).pub())
	w.used[chain] = append(w.used[chain], next)
	w.byIndex[chain][next] = out
	w.mine[out.address] = true
	return out
}

// external is an address of someone else, of a random kind.
func (w *wallet) external() output {
	switch w.rng.IntN(4) {
	case 0:
		return makeOutput(scriptP2PKH, w.bytes(20))
	case 1:
		return makeOutput(scriptP2SH, w.bytes(20))
	case 2:
		return makeOutput(scriptP2WPKH, w.bytes(20))
	}
	return makeOutput(scriptP2TR, w.bytes(32))
}

func (w *wallet) txid() string { return hexOf(w.bytes(32)) }

func (w *wallet) balance() int64 {
	var sum int64
	for _, u := range w.utxos {
		sum += u.value
	}
	return sum
}

// receive pays the wallet from outside; sometimes to two of its addresses at once.
func (w *wallet) receive() *simTx {
	tx := &simTx{txid: w.txid(), fee: 200 + w.rng.Int64N(20000)}
	payees := 1
	if w.hd() && w.rng.Float64() < 0.08 {
		payees = 2
	}
	var total int64
	for j := 0; j < payees; j++ {
		v := 10_000 + w.rng.Int64N(50_000_000)
		tx.vout = append(tx.vout, txOut{w.address(0), v})
		total += v
	}
	change := w.rng.Int64N(100_000_000)
	tx.vout = append(tx.vout, txOut{w.external(), change})
	need := total + change + tx.fee
	nIn := 1 + w.rng.IntN(2)
	for j := 0; j < nIn; j++ {
		v := need / int64(nIn)
		if j == nIn-1 {
			v = need - v*int64(nIn-1)
		}
		tx.vin = append(tx.vin, txIn{w.txid(), w.rng.IntN(3), w.external(), v})
	}
	return tx
}

// spend takes coins for at least amount; nil when the wallet has too little.
func (w *wallet) spend(tx *simTx, amount int64) (int64, bool) {
	w.rng.Shuffle(len(w.utxos), func(i, j int) { w.utxos[i], w.utxos[j] = w.utxos[j], w.utxos[i] })
	var got int64
	n := 0
	for n < len(w.utxos) && got < amount {
		got += w.utxos[n].value
		n++
	}
	if got < amount {
		return 0, false
	}
	for _, u := range w.utxos[:n] {
		tx.vin = append(tx.vin, txIn{u.txid, u.vout, u.out, u.value})
	}
	w.utxos = w.utxos[n:]
	return got, true
}

// send pays one or two outsiders, with change back to the wallet.
func (w *wallet) send() *simTx {
	bal := w.balance()
	if bal < 100_000 {
		return nil
	}
	tx := &simTx{txid: w.txid(), fee: 200 + w.rng.Int64N(20000)}
	amount := 1000 + w.rng.Int64N(bal*6/10)
	got, ok := w.spend(tx, amount+tx.fee)
	if !ok {
		return nil
	}
	recipients := 1
	if w.rng.Float64() < 0.2 {
		recipients = 2
	}
	for j := 0; j < recipients; j++ {
		v := amount / int64(recipients)
		if j == recipients-1 {
			v = amount - v*int64(recipients-1)
		}
		tx.vout = append(tx.vout, txOut{w.external(), v})
	}
	if change := got - amount - tx.fee; change >= 546 {
		tx.vout = append(tx.vout, txOut{w.address(1), change})
	} else {
		tx.fee += change // dust goes to the miner
	}
	return tx
}

// consolidate moves some coins between the wallet's own addresses.
func (w *wallet) consolidate() *simTx {
	if len(w.utxos) < 2 || w.balance() < 50_000 {
		return nil
	}
	tx := &simTx{txid: w.txid(), fee: 200 + w.rng.Int64N(5000)}
	n := 2 + w.rng.IntN(min(3, len(w.utxos)-1))
	var got int64
	for _, u := range w.utxos[:n] {
		tx.vin = append(tx.vin, txIn{u.txid, u.vout, u.out, u.value})
		got += u.value
	}
	if got <= tx.fee+546 {
		return nil
	}
	w.utxos = w.utxos[n:]
	tx.vout = append(tx.vout, txOut{w.address(1), got - tx.fee})
	return tx
}

// book records tx and its wallet outputs as coins.
func (w *wallet) book(tx *simTx) {
	for i, o := range tx.vout {
		if w.isMine(o.out.address) {
			w.utxos = append(w.utxos, utxo{tx.txid, i, o.out, o.value})
		}
	}
	w.txs = append(w.txs, tx)
}

func (w *wallet) isMine(a string) bool { return w.mine[a] }

// generate books n confirmed transactions between from and to, then pending ones.
func (w *wallet) generate(n, pending int, from, to time.Time) {
	span := to.Sub(from)
	times := make([]int64, n)
	for i := range times {
		times[i] = from.Add(time.Duration(w.rng.Int64N(int64(span)))).Unix()
	}
	slices.Sort(times)
	const baseHeight = 600_000
	for i := 0; i < n+pending; i++ {
		var tx *simTx
		for tx == nil {
			switch r := w.rng.Float64(); {
			case r < 0.45 || len(w.utxos) == 0:
				tx = w.receive()
			case r < 0.9:
				tx = w.send()
			default:
				tx = w.consolidate()
			}
		}
		if i < n {
			tx.confirmed = true
			tx.blockTime = times[i]
			tx.height = baseHeight + (times[i]-from.Unix())/600
		}
		w.book(tx)
	}
	for _, tx := range w.txs {
		tx.render()
	}
}

// render writes the transaction as Esplora does.
func (tx *simTx) render() {
	type prevout struct {
		ScriptPubKey        string `json:"scriptpubkey"`
		ScriptPubKeyType    string `json:"scriptpubkey_type"`
		ScriptPubKeyAddress string `json:"scriptpubkey_address"`
		Value               int64  `json:"value"`
	}
	type vin struct {
		TxID       string   `json:"txid"`
		Vout       int      `json:"vout"`
		Prevout    prevout  `json:"prevout"`
		ScriptSig  string   `json:"scriptsig"`
		Witness    []string `json:"witness,omitempty"`
		IsCoinbase bool     `json:"is_coinbase"`
		Sequence   uint32   `json:"sequence"`
	}
	type status struct {
		Confirmed   bool   `json:"confirmed"`
		BlockHeight int64  `json:"block_height,omitempty"`
		BlockHash   string `json:"block_hash,omitempty"`
		BlockTime   int64  `json:"block_time,omitempty"`
	}
	type wireTx struct {
		TxID     string    `json:"txid"`
		Version  int       `json:"version"`
		Locktime int       `json:"locktime"`
		Vin      []vin     `json:"vin"`
		Vout     []prevout `json:"vout"`
		Size     int       `json:"size"`
		Weight   int       `json:"weight"`
		Fee      int64     `json:"fee"`
		Status   status    `json:"status"`
	}
	wt := wireTx{TxID: tx.txid, Version: 2, Fee: tx.fee, Vin: []vin{}, Vout: []prevout{},
		Size: 10 + 148*len(tx.vin) + 34*len(tx.vout)}
	wt.Weight = wt.Size * 3
	for _, in := range tx.vin {
		wt.Vin = append(wt.Vin, vin{TxID: in.txid, Vout: in.vout, Sequence: 0xfffffffd,
			Prevout: prevout{in.prev.script, in.prev.scriptType, in.prev.address, in.value}})
	}
	for _, o := range tx.vout {
		wt.Vout = append(wt.Vout, prevout{o.out.script, o.out.scriptType, o.out.address, o.value})
	}
	if tx.confirmed {
		h := sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(tx.height)))
		wt.Status = status{true, tx.height, hexOf(h[:]), tx.blockTime}
	}
	tx.json, _ = json.Marshal(wt)
}
