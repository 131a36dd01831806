package ethereum

import (
	"context"
	"strconv"
	"testing"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/internal/adaptertest"
	ethsim "github.com/opencalico/opencalico/provider/sim/etherscan"
	"github.com/shopspring/decimal"
)

// latestPositions are the wallet's balances at the chain head (the simulator's truth), by
// asset id, zero ones left out.
func latestPositions(truth ethsim.Truth) map[string]decimal.Decimal {
	c, _ := LookupChain(truth.Chain)
	out := map[string]decimal.Decimal{c.NativeAssetID(): decimal.NewFromBigInt(truth.Native, -NativeDecimals)}
	for _, tb := range truth.Tokens {
		if tb.Units.Sign() != 0 {
			out[c.TokenAssetID(tb.Contract)] = decimal.NewFromBigInt(tb.Units, -int32(tb.Decimals))
		}
	}
	return out
}

func positionsByAsset(pos []opencalico.Position) map[string]decimal.Decimal {
	out := map[string]decimal.Decimal{}
	for _, p := range pos {
		out[p.AssetID] = p.Quantity
	}
	return out
}

func sameAmounts(a, b map[string]decimal.Decimal) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !v.Equal(w) {
			return false
		}
	}
	return true
}

// The wallet has transactions between the history's end block B = head − confirmations and
// the head (the simulator's head stands a few blocks above the newest one). Balances reads at
// B and the History that follows stops at B, so per asset the history nets exactly to the
// positions; the balances at the head, which Balances read before, differ from them.
func TestBalancesAndHistoryMeetAtTheSettledBlock(t *testing.T) {
	f := newFixture(t, ethsim.Options{Wallets: 1, TxsPerWallet: 150, HeadLead: 5}, 20)
	ctx := context.Background()
	for _, tc := range []struct {
		chain         string
		confirmations int64 // 0: the chain's own
	}{
		{"ethereum", 0}, // 12 blocks: the newest transactions, 5 blocks below the head
		{"ethereum", 20_000},
		{"arbitrum", 600_000},
		{"base", 100_000}, // L1 data fees too
		{"polygon", 100_000},
	} {
		t.Run(tc.chain+"/"+strconv.FormatInt(tc.confirmations, 10), func(t *testing.T) {
			ad := f.adapter(Options{Confirmations: tc.confirmations})
			a := f.account(tc.chain, 0)
			truth := f.sim.Truth(tc.chain, 0)
			pos, err := ad.Balances(ctx, a)
			if err != nil {
				t.Fatal(err)
			}
			r := adaptertest.NewRead()
			if err := ad.History(ctx, a, r.Cursors, r.Sink(t, -1)); err != nil {
				t.Fatal(err)
			}
			checkBalances(t, pos, r.Txs)

			c, _ := LookupChain(tc.chain)
			settled := int64(f.sim.Head(tc.chain)) - ad.confirmationsOf(c)
			if want := (historyCursor{NextBlock: settled + 1}).encode(); r.Cursors[tc.chain] != want {
				t.Errorf("cursor %s, want %s", r.Cursors[tc.chain], want)
			}
			// Without the fix the balances were those at the head: they would not reconcile.
			if sameAmounts(positionsByAsset(pos), latestPositions(truth)) || len(r.Txs) >= truth.Count {
				t.Fatalf("no activity after block %d (%d of %d transactions read): the test proves nothing", settled, len(r.Txs), truth.Count)
			}
			if st := f.sim.Stats(); st.RPCMethods["eth_getBalance"] == 0 {
				t.Error("no eth_getBalance")
			}
		})
	}
}

// The chain moves on between Balances and History (here by more than the confirmations, so
// that the wallet's newest transactions are settled when History runs): History stops at the
// block Balances read at, where the list it takes is complete, and reconciles exactly; the
// next sync reads the rest.
func TestHistoryStopsWhereBalancesRead(t *testing.T) {
	f := newFixture(t, ethsim.Options{Wallets: 1, TxsPerWallet: 150, HeadLead: 5, Chains: []string{"ethereum"}}, 20)
	ctx := context.Background()
	const confirmations = 20_000
	ad := f.adapter(Options{Confirmations: confirmations})
	a := f.account("ethereum", 0)
	settled := int64(f.sim.Head("ethereum")) - confirmations
	pos, err := ad.Balances(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	f.sim.AdvanceHead("ethereum", 2*confirmations)
	before := f.sim.Requests()
	r := adaptertest.NewRead()
	if err := ad.History(ctx, a, r.Cursors, r.Sink(t, -1)); err != nil {
		t.Fatal(err)
	}
	checkBalances(t, pos, r.Txs)
	if want := (historyCursor{NextBlock: settled + 1}).encode(); r.Cursors["ethereum"] != want {
		t.Errorf("cursor %s, want %s", r.Cursors["ethereum"], want)
	}
	if n := f.sim.Requests() - before; n != 2 {
		t.Errorf("history made %d Etherscan requests, want 2 (the tokentx list was handed over)", n)
	}

	// The next sync, with the chain still where it is, reads the rest and meets the head.
	pos, err = ad.Balances(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if err := ad.History(ctx, a, r.Cursors, r.Sink(t, -1)); err != nil {
		t.Fatal(err)
	}
	checkBalances(t, pos, r.Txs)
	checkComplete(t, r, f.sim.Truth("ethereum", 0))
}

// A node that no longer holds the state of block B (a pruned full node) refuses the reads at
// B; Balances asks them again at "latest" and gets the balances at the head. The single
// call (a wallet without tokens) and the batch take the same way.
func TestBalancesFallBackToLatest(t *testing.T) {
	for _, tc := range []struct {
		name          string
		txs           int
		stateDepth    uint64
		confirmations int64
	}{
		{"batch", 150, 100, 20_000},
		{"single call", 1, 3, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, ethsim.Options{Wallets: 1, TxsPerWallet: tc.txs, HeadLead: 5, StateDepth: tc.stateDepth, Chains: []string{"ethereum"}}, 20)
			ctx := context.Background()
			ad := f.adapter(Options{Confirmations: tc.confirmations})
			a := f.account("ethereum", 0)
			truth := f.sim.Truth("ethereum", 0)
			pos, err := ad.Balances(ctx, a)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := positionsByAsset(pos), latestPositions(truth); !sameAmounts(got, want) {
				t.Errorf("positions %v, want the head's %v", got, want)
			}
			st := f.sim.Stats()
			if tc.txs == 1 && (len(pos) != 1 || st.RPCMethods["eth_call"] != 0) {
				t.Fatalf("the wallet has tokens: %d positions", len(pos))
			}
			// Each call refused at B, then answered at latest.
			if st.RPCMethods["eth_getBalance"] != 2 || st.RPCMethods["eth_call"]%2 != 0 || st.RPCMethods["eth_call"] < 2*(len(pos)-1) {
				t.Errorf("RPC calls %v", st.RPCMethods)
			}
			// The history still reads, up to B.
			r := adaptertest.NewRead()
			if err := ad.History(ctx, a, r.Cursors, r.Sink(t, -1)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Only a refusal of the past block falls back; other errors fail Balances as before.
func TestPastStateRefused(t *testing.T) {
	for _, tc := range []struct {
		code    int
		message string
		data    string
		want    bool
	}{
		{-32000, "missing trie node 1a3bddc494098bac19ef26e6506812caa12ca5cf036a13ef0eabde38beab5d21 (path ) <nil>", "", true},
		{-32000, "missing trie node c6eb (path ) state 0xc6eb is not available, not found", "", true},
		{-32000, "state 0x669c5301b4a7abb7d1cd82d98f1c8a0d39e4dc0c3f807086c73e3172eb0c256f is not available", "", true},
		{-32000, "header not found", "", true},
		{-32000, "block not found 11185311", "", true},
		{-32603, "state at block #2 is pruned", "", true},
		{4444, "pruned history unavailable", "", true},
		{-32000, "required historical state unavailable (reexec=128)", "", true},
		{-32603, "Internal error", `"Nethermind.Trie.MissingTrieNodeException: Node A is missing from the DB"`, true},
		{-32000, "This request is not supported because your node is running with state pruning. Run with --pruning=archive.", "", true},
		{-32000, "execution reverted", "", false},
		{-32602, "invalid argument 1: hex string without 0x prefix", "", false},
		{-32601, "the method eth_getBalance does not exist/is not available", "", false},
		{-32603, "Internal error", "", false},
	} {
		e := &rpcError{Code: tc.code, Message: tc.message}
		if tc.data != "" {
			e.Data = []byte(tc.data)
		}
		if got := pastStateRefused(e); got != tc.want {
			t.Errorf("%d %q: %v, want %v", tc.code, tc.message, got, tc.want)
		}
	}
}
