package ethereum

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/internal/adaptertest"
	"github.com/opencalico/opencalico/provider"
	ethsim "github.com/opencalico/opencalico/provider/sim/etherscan"
	"github.com/shopspring/decimal"
)

type fixture struct {
	sim   *ethsim.Simulator
	srv   *httptest.Server
	clock *provider.ScaledClock
}

// newFixture serves a simulator; simRate 0 lifts its limit (tests of content run fast), a
// positive one enforces it.
func newFixture(t *testing.T, opts ethsim.Options, factor float64) fixture {
	t.Helper()
	clock := provider.NewScaledClock(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), factor)
	opts.Clock = clock
	if opts.Seed == 0 {
		opts.Seed = 7
	}
	if opts.RequestsPerSecond == 0 {
		opts.RequestsPerSecond = -1
	}
	sim := ethsim.New(opts)
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	return fixture{sim, srv, clock}
}

func (f fixture) adapter(opts Options) *Adapter {
	opts.BaseURL = f.srv.URL
	if opts.APIKey == "" {
		opts.APIKey = f.sim.APIKey()
	}
	opts.RPCURL = func(chain string) string { return f.srv.URL + "/rpc/" + chain }
	opts.Clock = f.clock
	if opts.RequestsPerSecond == 0 {
		opts.RequestsPerSecond = 1000
	}
	if opts.RPCRequestsPerSecond == 0 {
		opts.RPCRequestsPerSecond = 1000
	}
	if opts.BaseDelay == 0 {
		opts.BaseDelay = 50 * time.Millisecond
	}
	return New(opts)
}

func (f fixture) account(chain string, i int) provider.Account {
	return provider.Account{ConnectionID: fmt.Sprintf("conn_%s_%d", chain, i), UserID: "user_1",
		Address: f.sim.Wallet(i), Chain: chain}
}

type shape struct {
	typ      opencalico.TransactionType
	category opencalico.Category
}

// checkComplete compares a read with the simulator's truth: every transaction, of the right
// type and category, and per asset the exact balance.
func checkComplete(t *testing.T, r *adaptertest.Read, truth ethsim.Truth) {
	t.Helper()
	chain, _ := LookupChain(truth.Chain)
	if len(r.Txs) != truth.Count {
		t.Errorf("%s: read %d transactions, truth %d", truth.Chain, len(r.Txs), truth.Count)
	}
	got := map[shape]int{}
	for _, tx := range r.Txs {
		got[shape{tx.Type, tx.Categorization.Category}]++
		if tx.Chain != truth.Chain || tx.ExternalID != truth.Chain+":"+tx.TxHash || tx.Timestamp.IsZero() {
			t.Errorf("%s: chain %s hash %s", tx.ExternalID, tx.Chain, tx.TxHash)
		}
		if tx.Status != opencalico.TxConfirmed || (tx.Categorization.Subcategory == "failed_transaction") != (tx.Categorization.Category == opencalico.CategoryFee) {
			t.Errorf("%s: status %s, %s/%s", tx.ExternalID, tx.Status, tx.Categorization.Category, tx.Categorization.Subcategory)
		}
	}
	k := truth.Kinds
	for _, kind := range ethsim.Kinds {
		if k[kind] == 0 && truth.Count >= 100 {
			t.Errorf("%s: the simulator generated no %s", truth.Chain, kind)
		}
	}
	want := map[shape]int{
		{opencalico.TypeReceive, opencalico.CategoryDeposit}:                 k[ethsim.KindReceiveNative] + k[ethsim.KindReceiveToken] + k[ethsim.KindInternalReceive],
		{opencalico.TypeSend, opencalico.CategoryWithdrawal}:                 k[ethsim.KindSendNative] + k[ethsim.KindSendToken],
		{opencalico.TypeInputOnly, opencalico.CategoryFee}:                   k[ethsim.KindFailed],
		{opencalico.TypeInputOutput, opencalico.CategoryTrade}:               k[ethsim.KindSwapNativeIn] + k[ethsim.KindSwapNativeOut],
		{opencalico.TypeInputOnly, opencalico.CategoryContractInteraction}:   k[ethsim.KindApprove],
		{opencalico.TypeInputOnly, opencalico.CategoryTransfer}:              k[ethsim.KindSelfTransfer],
		{opencalico.TypeReceive, opencalico.CategorySpam}:                    -1, // counted below
		{opencalico.TypeSend, opencalico.CategorySpam}:                       -1,
		{opencalico.TypeUncategorized, opencalico.CategoryOther}:             0,
		{opencalico.TypeOutputOnly, opencalico.CategoryAirdrop}:              0,
		{opencalico.TypeInputOutput, opencalico.CategoryContractInteraction}: 0,
	}
	for s, n := range want {
		if n >= 0 && got[s] != n {
			t.Errorf("%s: %d transactions %s/%s, truth %d", truth.Chain, got[s], s.typ, s.category, n)
		}
	}
	if spam := got[shape{opencalico.TypeReceive, opencalico.CategorySpam}] + got[shape{opencalico.TypeSend, opencalico.CategorySpam}]; spam != k[ethsim.KindSpamAirdrop]+k[ethsim.KindPoison] {
		t.Errorf("%s: %d spam, truth %d", truth.Chain, spam, k[ethsim.KindSpamAirdrop]+k[ethsim.KindPoison])
	}
	net := adaptertest.NetByAsset(r.Txs)
	if want := decimal.NewFromBigInt(truth.Native, -NativeDecimals); !net[chain.NativeAssetID()].Equal(want) {
		t.Errorf("%s native: history nets %s, truth %s", truth.Chain, net[chain.NativeAssetID()], want)
	}
	for _, tb := range truth.Tokens {
		want := decimal.NewFromBigInt(tb.Units, -int32(tb.Decimals))
		if got := net[chain.TokenAssetID(tb.Contract)]; !got.Equal(want) {
			t.Errorf("%s %s: history nets %s, truth %s", truth.Chain, tb.Symbol, got, want)
		}
	}
}

// checkReceipts checks the L1 data fee's part in a read: on base the wallet paid some (so
// that exact reconciliation proves they were counted), and the read asked the receipt of
// each transaction the wallet sent (those with a fee) and of no other, in batches; on the
// other chains it asked none.
func checkReceipts(t *testing.T, chain string, r *adaptertest.Read, truth ethsim.Truth, before, after ethsim.Stats) {
	t.Helper()
	sent := 0
	for _, tx := range r.Txs {
		if len(tx.Fees) > 0 {
			sent++
		}
	}
	receipts := after.RPCMethods["eth_getTransactionReceipt"] - before.RPCMethods["eth_getTransactionReceipt"]
	requests := after.RPCRequests - before.RPCRequests
	c, _ := LookupChain(chain)
	switch {
	case !c.L1DataFee:
		if receipts != 0 || truth.L1Fees.Sign() != 0 {
			t.Errorf("%s: %d receipts asked, %s wei of L1 fees", chain, receipts, truth.L1Fees)
		}
	case truth.L1Fees.Sign() <= 0 || sent == 0:
		t.Errorf("%s: the wallet paid no L1 fee (%d sent)", chain, sent)
	case receipts != sent || requests > 1+(sent+rpcBatchSize-1)/rpcBatchSize+r.Pages:
		t.Errorf("%s: %d receipts asked in %d RPC requests for %d sent transactions", chain, receipts, requests, sent)
	}
}

// checkBalances compares Balances with the history's net, per asset, exactly.
func checkBalances(t *testing.T, pos []opencalico.Position, txs map[string]*opencalico.Transaction) {
	t.Helper()
	net := adaptertest.NetByAsset(txs)
	seen := map[string]bool{}
	for _, p := range pos {
		seen[p.AssetID] = true
		if !p.Quantity.Equal(net[p.AssetID]) {
			t.Errorf("%s %s: balance %s, history nets %s", p.Chain, p.AssetSymbol, p.Quantity, net[p.AssetID])
		}
	}
	for id, q := range net {
		if !seen[id] && !q.IsZero() {
			t.Errorf("%s: history nets %s, no balance", id, q)
		}
	}
}

func TestAdapterAgainstSimulatorEveryChain(t *testing.T) {
	f := newFixture(t, ethsim.Options{Wallets: 2, TxsPerWallet: 150}, 20)
	ad := f.adapter(Options{})
	ctx := context.Background()
	if got := ad.Provider().Chains; strings.Join(got, ",") != "ethereum,arbitrum,base,polygon" {
		t.Errorf("chains %v", got)
	}
	for _, chain := range Chains() {
		for i := range 2 {
			a := f.account(chain, i)
			if err := ad.Verify(ctx, a); err != nil {
				t.Fatal(err)
			}
			r := adaptertest.NewRead()
			start := f.sim.Stats()
			if err := ad.History(ctx, a, r.Cursors, r.Sink(t, -1)); err != nil {
				t.Fatal(err)
			}
			checkComplete(t, r, f.sim.Truth(chain, i))
			if r.Rows != len(r.Txs) {
				t.Errorf("%s: %d rows handed for %d transactions", chain, r.Rows, len(r.Txs))
			}
			checkReceipts(t, chain, r, f.sim.Truth(chain, i), start, f.sim.Stats())
			pos, err := ad.Balances(ctx, a)
			if err != nil {
				t.Fatal(err)
			}
			checkBalances(t, pos, r.Txs)
			c, _ := LookupChain(chain)
			if pos[0].AssetID != c.NativeAssetID() || pos[0].AssetSymbol != c.Symbol || len(pos) < 3 {
				t.Errorf("%s positions %+v", chain, pos)
			}

			// A second read from the cursors adds nothing and asks Etherscan nothing.
			before := f.sim.Requests()
			again := &adaptertest.Read{Txs: map[string]*opencalico.Transaction{}, Cursors: r.Cursors}
			if err := ad.History(ctx, a, again.Cursors, again.Sink(t, -1)); err != nil {
				t.Fatal(err)
			}
			if again.Rows != 0 || f.sim.Requests() != before {
				t.Errorf("%s: second read handed %d rows with %d requests", chain, again.Rows, f.sim.Requests()-before)
			}
		}
	}
}

// A small page size pages by startblock many times, with page ends inside blocks.
func TestSmallOffsetPagesWithinBlocks(t *testing.T) {
	f := newFixture(t, ethsim.Options{Wallets: 1, TxsPerWallet: 120, Chains: []string{"ethereum", "arbitrum"}}, 20)
	ad := f.adapter(Options{Offset: 7})
	for _, chain := range []string{"ethereum", "arbitrum"} {
		r := adaptertest.NewRead()
		if err := ad.History(context.Background(), f.account(chain, 0), r.Cursors, r.Sink(t, -1)); err != nil {
			t.Fatal(err)
		}
		checkComplete(t, r, f.sim.Truth(chain, 0))
		if r.Rows != len(r.Txs) || r.Pages < 10 {
			t.Errorf("%s: %d rows, %d transactions, %d pages", chain, r.Rows, len(r.Txs), r.Pages)
		}
	}
	// Balances find the tokens with the largest page whatever Offset says.
	pos, err := ad.Balances(context.Background(), f.account("ethereum", 0))
	if err != nil || len(pos) < 3 {
		t.Fatalf("%v %+v", err, pos)
	}
}

// A page of one block: more rows in one block than a page holds.
func TestOffsetOfOne(t *testing.T) {
	f := newFixture(t, ethsim.Options{Wallets: 1, TxsPerWallet: 40, Chains: []string{"base"}}, 20)
	ad := f.adapter(Options{Offset: 1})
	r := adaptertest.NewRead()
	if err := ad.History(context.Background(), f.account("base", 0), r.Cursors, r.Sink(t, -1)); err != nil {
		t.Fatal(err)
	}
	checkComplete(t, r, f.sim.Truth("base", 0))
}

func TestResumeAtEveryPage(t *testing.T) {
	f := newFixture(t, ethsim.Options{Wallets: 1, TxsPerWallet: 30, Chains: []string{"ethereum"}}, 20)
	ad := f.adapter(Options{Offset: 5})
	ctx := context.Background()
	a := f.account("ethereum", 0)
	whole := adaptertest.NewRead()
	if err := ad.History(ctx, a, whole.Cursors, whole.Sink(t, -1)); err != nil {
		t.Fatal(err)
	}
	if whole.Pages < 4 {
		t.Fatalf("only %d pages", whole.Pages)
	}
	for k := 0; k < whole.Pages; k++ {
		r := adaptertest.NewRead()
		if err := ad.History(ctx, a, r.Cursors, r.Sink(t, k)); !errors.Is(err, adaptertest.ErrStop) {
			t.Fatalf("k=%d: got %v, want the sink's error", k, err)
		}
		if err := ad.History(ctx, a, r.Cursors, r.Sink(t, -1)); err != nil {
			t.Fatal(err)
		}
		if r.Rows != len(r.Txs) || len(r.Txs) != len(whole.Txs) {
			t.Errorf("k=%d: %d rows, %d transactions, uninterrupted %d", k, r.Rows, len(r.Txs), len(whole.Txs))
		}
		for id, tx := range whole.Txs {
			if got := r.Txs[id]; got == nil || got.ContentHash() != tx.ContentHash() {
				t.Errorf("k=%d: %s differs", k, id)
			}
		}
	}
}

func TestFaultsRecovered(t *testing.T) {
	for _, fault := range []ethsim.Fault{ethsim.Fault5xx, ethsim.FaultRateLimit, ethsim.FaultMalformed, ethsim.FaultTruncated, ethsim.FaultSlow} {
		t.Run(string(fault), func(t *testing.T) {
			f := newFixture(t, ethsim.Options{Wallets: 1, TxsPerWallet: 60, Chains: []string{"polygon"}, SlowDelay: 20 * time.Second}, 20)
			ad := f.adapter(Options{Offset: 25, AttemptTimeout: 300 * time.Millisecond})
			f.sim.Inject(fault, 2)
			r := adaptertest.NewRead()
			if err := ad.History(context.Background(), f.account("polygon", 0), r.Cursors, r.Sink(t, -1)); err != nil {
				t.Fatal(err)
			}
			if st := f.sim.Stats(); st.Faults != 2 {
				t.Errorf("%d faults served", st.Faults)
			}
			checkComplete(t, r, f.sim.Truth("polygon", 0))
			if r.Rows != len(r.Txs) {
				t.Errorf("%d rows for %d transactions", r.Rows, len(r.Txs))
			}
		})
	}
}

func TestRPCFaultsRecovered(t *testing.T) {
	for _, fault := range []ethsim.Fault{ethsim.Fault5xx, ethsim.FaultRateLimit, ethsim.FaultMalformed, ethsim.FaultTruncated} {
		t.Run(string(fault), func(t *testing.T) {
			f := newFixture(t, ethsim.Options{Wallets: 1, TxsPerWallet: 40, Chains: []string{"base"}}, 20)
			ad := f.adapter(Options{})
			f.sim.InjectRPC(fault, 2)
			a := f.account("base", 0)
			r := adaptertest.NewRead()
			if err := ad.History(context.Background(), a, r.Cursors, r.Sink(t, -1)); err != nil {
				t.Fatal(err)
			}
			f.sim.InjectRPC(fault, 1)
			pos, err := ad.Balances(context.Background(), a)
			if err != nil {
				t.Fatal(err)
			}
			checkBalances(t, pos, r.Txs)
		})
	}
}

func TestPersistentFaultIsIncomplete(t *testing.T) {
	f := newFixture(t, ethsim.Options{Wallets: 1, TxsPerWallet: 60, Chains: []string{"ethereum"}}, 20)
	ad := f.adapter(Options{Offset: 10, MaxAttempts: 2})
	a := f.account("ethereum", 0)
	r := adaptertest.NewRead()
	if err := ad.History(context.Background(), a, r.Cursors, r.Sink(t, 2)); !errors.Is(err, adaptertest.ErrStop) {
		t.Fatal(err)
	}
	r.Pages = 0
	f.sim.Inject(ethsim.Fault5xx, 2)
	err := ad.History(context.Background(), a, r.Cursors, r.Sink(t, -1))
	var inc *provider.IncompleteError
	if !errors.As(err, &inc) || len(inc.Streams) != 1 || inc.Streams[0] != "ethereum" {
		t.Fatalf("got %v, want an IncompleteError naming the chain", err)
	}
	if opencalico.ErrorCodeOf(err) != opencalico.EProviderUnavailable {
		t.Errorf("code %s", opencalico.ErrorCodeOf(err))
	}
	if err := ad.History(context.Background(), a, r.Cursors, r.Sink(t, -1)); err != nil {
		t.Fatal(err)
	}
	checkComplete(t, r, f.sim.Truth("ethereum", 0))
	if r.Rows != len(r.Txs) {
		t.Errorf("%d rows for %d transactions", r.Rows, len(r.Txs))
	}
}

// errorText is everything an error chain says.
func errorText(err error) string {
	var b strings.Builder
	for e := err; e != nil; e = errors.Unwrap(e) {
		b.WriteString(e.Error())
		b.WriteString(fmt.Sprintf(" %+v\n", e))
	}
	return b.String()
}

func TestInvalidAPIKeyIsNotRetriedNorShown(t *testing.T) {
	const wrongKey = "WRONGKEY0123456789ABCDEF"
	for _, c := range []struct {
		name  string
		key   string
		fault ethsim.Fault
	}{{"wrong key", wrongKey, ""}, {"revoked key", "", ethsim.FaultInvalidKey}} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, ethsim.Options{Wallets: 1, TxsPerWallet: 20, Chains: []string{"ethereum"}}, 20)
			ad := f.adapter(Options{APIKey: c.key})
			key := c.key
			if key == "" {
				key = f.sim.APIKey()
			}
			if c.fault != "" {
				f.sim.Inject(c.fault, 1)
			}
			err := ad.History(context.Background(), f.account("ethereum", 0), provider.Cursors{}, adaptertest.NewRead().Sink(t, -1))
			if opencalico.ErrorCodeOf(err) != opencalico.EProviderError || provider.IsAuthError(err) {
				t.Fatalf("got %v (%s), want a provider error", err, opencalico.ErrorCodeOf(err))
			}
			if n := f.sim.Requests(); n != 1 {
				t.Errorf("%d requests, want exactly 1", n)
			}
			if text := errorText(err); strings.Contains(text, key) || strings.Contains(text, "apikey") {
				t.Errorf("the error shows the key: %s", text)
			}
		})
	}
}

// A chain the server key's plan does not cover (Etherscan's free plan does not serve Base):
// Verify says the chain needs a paid plan after one request, without the key, not retried;
// History ends the same way and keeps no cursor; other chains are unaffected.
func TestChainOutsideThePlan(t *testing.T) {
	f := newFixture(t, ethsim.Options{Wallets: 1, TxsPerWallet: 20, Chains: []string{"ethereum", "base"}, PaidOnlyChains: []string{"base"}}, 20)
	ad := f.adapter(Options{})
	ctx := context.Background()
	key := f.sim.APIKey()
	check := func(what string, err error) {
		t.Helper()
		var oe *opencalico.Error
		if !errors.As(err, &oe) || oe.Code != opencalico.EProviderError || provider.IsAuthError(err) || provider.IsTransient(err) {
			t.Fatalf("%s: got %v (%s), want a provider error", what, err, opencalico.ErrorCodeOf(err))
		}
		if msg := oe.Message; !strings.Contains(msg, "base chain needs a paid Etherscan API plan") || !strings.Contains(msg, "8453") {
			t.Errorf("%s: the message does not say what to do: %q", what, msg)
		}
		if text := errorText(err); strings.Contains(text, key) || strings.Contains(text, "apikey") {
			t.Errorf("%s: the error shows the key: %s", what, text)
		}
	}
	check("Verify", ad.Verify(ctx, f.account("base", 0)))
	if st := f.sim.Stats(); st.Requests != 1 || st.RPCRequests != 0 || st.PlanRefused != 1 {
		t.Errorf("Verify made %d Etherscan and %d RPC requests, want exactly 1 and 0", st.Requests, st.RPCRequests)
	}

	r := adaptertest.NewRead()
	err := ad.History(ctx, f.account("base", 0), r.Cursors, r.Sink(t, -1))
	check("History", err)
	var inc *provider.IncompleteError
	if !errors.As(err, &inc) || len(r.Cursors) != 0 {
		t.Errorf("History: %v, cursors %v", err, r.Cursors)
	}
	if st := f.sim.Stats(); st.Requests != 2 {
		t.Errorf("History retried: %d Etherscan requests in all", st.Requests)
	}

	if err := ad.Verify(ctx, f.account("ethereum", 0)); err != nil {
		t.Errorf("ethereum: %v", err)
	}
}

func TestRateLimitHeld(t *testing.T) {
	// The simulator enforces 3 calls per second per key over all chains, on a clock 5 times
	// faster than the wall; eight accounts (four wallets on two chains) sync at once through
	// one adapter with the default policy.
	f := newFixture(t, ethsim.Options{Wallets: 4, TxsPerWallet: 60, Chains: []string{"ethereum", "base"}, RequestsPerSecond: 3}, 5)
	ad := f.adapter(Options{RequestsPerSecond: DefaultRequestsPerSecond, Offset: 40})
	var wg sync.WaitGroup
	for _, chain := range []string{"ethereum", "base"} {
		for i := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a := f.account(chain, i)
				r := adaptertest.NewRead()
				if err := ad.History(context.Background(), a, r.Cursors, r.Sink(t, -1)); err != nil {
					t.Error(err)
					return
				}
				checkComplete(t, r, f.sim.Truth(chain, i))
				pos, err := ad.Balances(context.Background(), a)
				if err != nil {
					t.Error(err)
					return
				}
				checkBalances(t, pos, r.Txs)
			}()
		}
	}
	wg.Wait()
	st := f.sim.Stats()
	if st.RateLimited != 0 {
		t.Errorf("%d requests refused by the rate limit", st.RateLimited)
	}
	if st.Requests < 24 {
		t.Errorf("only %d requests", st.Requests)
	}
	t.Logf("%d Etherscan requests, %d refused, %d RPC requests", st.Requests, st.RateLimited, st.RPCRequests)
}

func TestAccountChecksMakeNoRequest(t *testing.T) {
	f := newFixture(t, ethsim.Options{Wallets: 1, TxsPerWallet: 5, Chains: []string{"ethereum"}}, 20)
	ad := f.adapter(Options{})
	ctx := context.Background()
	bad := []struct {
		a    provider.Account
		code opencalico.ErrorCode
	}{
		{provider.Account{Address: "0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"}, opencalico.EInvalidAddress},
		{provider.Account{Address: "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"}, opencalico.EInvalidAddress},
		{provider.Account{Address: f.sim.Wallet(0), Chain: "optimism"}, opencalico.EBadRequest},
	}
	for _, c := range bad {
		if err := ad.Verify(ctx, c.a); opencalico.ErrorCodeOf(err) != c.code {
			t.Errorf("Verify %+v: %v", c.a, err)
		}
		if err := ad.History(ctx, c.a, provider.Cursors{}, adaptertest.NewRead().Sink(t, -1)); opencalico.ErrorCodeOf(err) != c.code {
			t.Errorf("History: %v", err)
		}
		if _, err := ad.Balances(ctx, c.a); opencalico.ErrorCodeOf(err) != c.code {
			t.Errorf("Balances: %v", err)
		}
	}
	if err := ad.Verify(ctx, bad[2].a); err == nil || !strings.Contains(err.Error(), "ethereum, arbitrum, base, polygon") {
		t.Errorf("the error does not name the chains: %v", err)
	}
	if st := f.sim.Stats(); st.Requests+st.RPCRequests != 0 {
		t.Errorf("%d requests made", st.Requests+st.RPCRequests)
	}
	// The empty chain is ethereum; an unknown wallet has no history and a zero balance.
	empty := provider.Account{ConnectionID: "c", Address: "0xde709f2102306220921060314715629080e2fb77"}
	r := adaptertest.NewRead()
	if err := ad.History(ctx, empty, r.Cursors, r.Sink(t, -1)); err != nil || len(r.Txs) != 0 || r.Cursors["ethereum"] == "" {
		t.Errorf("empty wallet: %v, %d transactions, cursors %v", err, len(r.Txs), r.Cursors)
	}
	pos, err := ad.Balances(ctx, empty)
	if err != nil || len(pos) != 1 || !pos[0].Quantity.IsZero() {
		t.Errorf("empty wallet balances: %v %+v", err, pos)
	}
	if err := ad.History(ctx, empty, provider.Cursors{"ethereum": "garbage"}, r.Sink(t, -1)); opencalico.ErrorCodeOf(err) != opencalico.EInvalidCursor {
		t.Errorf("bad cursor: %v", err)
	}
}

func TestLimiterWindow(t *testing.T) {
	clock := provider.NewScaledClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), 50)
	l := NewLimiter(clock, 3, 0)
	ctx := context.Background()
	start := clock.Now()
	var at []time.Duration
	for range 7 {
		if err := l.Wait(ctx, "k", 1); err != nil {
			t.Fatal(err)
		}
		at = append(at, clock.Now().Sub(start))
		l.Observe("k", 200, nil) // answered at once
	}
	// Three at once, then three a second later, then the seventh.
	if at[2] > 200*time.Millisecond || at[3] < time.Second || at[5] > 1700*time.Millisecond || at[6] < 2*time.Second {
		t.Errorf("sends at %v", at)
	}
	// A pause closes the key for every caller.
	l.Pause("k2", time.Second)
	before := clock.Now()
	if err := l.Wait(ctx, "k2", 1); err != nil || clock.Now().Sub(before) < time.Second {
		t.Errorf("waited %v", clock.Now().Sub(before))
	}
}

// TestBalancesThenHistoryAskForTokensOnce: the tokentx list Balances reads to find the
// wallet's tokens serves the history read that follows, so a first sync of a wallet whose
// lists fit one page each costs three Etherscan calls, not four, and hands over exactly what
// a read of its own would.
func TestBalancesThenHistoryAskForTokensOnce(t *testing.T) {
	f := newFixture(t, ethsim.Options{Wallets: 1, TxsPerWallet: 150}, 20)
	ctx := context.Background()
	a := f.account("ethereum", 0)

	cached := f.adapter(Options{})
	before := f.sim.Requests()
	if _, err := cached.Balances(ctx, a); err != nil {
		t.Fatal(err)
	}
	r := adaptertest.NewRead()
	if err := cached.History(ctx, a, r.Cursors, r.Sink(t, -1)); err != nil {
		t.Fatal(err)
	}
	if n := f.sim.Requests() - before; n != 3 {
		t.Errorf("balances then history made %d Etherscan requests, want 3 (tokentx once, txlist, txlistinternal)", n)
	}

	alone := adaptertest.NewRead()
	if err := f.adapter(Options{}).History(ctx, a, alone.Cursors, alone.Sink(t, -1)); err != nil {
		t.Fatal(err)
	}
	if len(r.Txs) != len(alone.Txs) || len(r.Txs) == 0 {
		t.Fatalf("with the balances' list: %d transactions; read alone: %d", len(r.Txs), len(alone.Txs))
	}
	for id, tx := range alone.Txs {
		if got := r.Txs[id]; got == nil || got.ContentHash() != tx.ContentHash() {
			t.Errorf("transaction %s differs", id)
		}
	}
	checkComplete(t, r, f.sim.Truth("ethereum", 0))

	// The list serves one read only: the next asks Etherscan again.
	if _, err := cached.Balances(ctx, a); err != nil {
		t.Fatal(err)
	}
	fresh := adaptertest.NewRead()
	if err := cached.History(ctx, a, fresh.Cursors, fresh.Sink(t, -1)); err != nil {
		t.Fatal(err)
	}
	again := adaptertest.NewRead()
	before = f.sim.Requests()
	if err := cached.History(ctx, a, again.Cursors, again.Sink(t, -1)); err != nil {
		t.Fatal(err)
	}
	if n := f.sim.Requests() - before; n != 3 || len(again.Txs) != len(alone.Txs) {
		t.Errorf("a read with no list waiting made %d requests and read %d transactions", n, len(again.Txs))
	}
}
