package solana

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/internal/adaptertest"
	"github.com/opencalico/opencalico/provider"
	solsim "github.com/opencalico/opencalico/provider/sim/solana"
	"github.com/shopspring/decimal"
)

// The adapter keeps below the simulator's rate, so that a full sync is never refused.
const (
	simRate     = 50
	adapterRate = 40
)

type fixture struct {
	sim   *solsim.Simulator
	srv   *httptest.Server
	clock *provider.ScaledClock
}

func newFixture(t *testing.T, txs int) fixture {
	t.Helper()
	clock := provider.NewScaledClock(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), 40)
	sim := solsim.New(solsim.Options{Seed: 11, Clock: clock, Accounts: 2, Transactions: txs, RequestsPerSecond: simRate})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	return fixture{sim, srv, clock}
}

func (f fixture) adapter(opts Options) *Adapter {
	opts.BaseURL = f.srv.URL
	opts.Clock = f.clock
	opts.RequestsPerSecond = adapterRate
	if opts.SignaturesLimit == 0 {
		opts.SignaturesLimit = 70 // several signature pages per wallet
	}
	if opts.BaseDelay == 0 {
		opts.BaseDelay = 50 * time.Millisecond
	}
	return New(opts)
}

func (f fixture) account(i int) provider.Account {
	return provider.Account{ConnectionID: "conn_" + string(rune('a'+i)), UserID: "user_1",
		Address: f.sim.Credentials()[i]["address"], Chain: "solana"}
}

// checkComplete compares a read with the simulator's truth: every transaction, of the
// right type, and per asset the exact balance.
func checkComplete(t *testing.T, r *adaptertest.Read, truth solsim.Truth) {
	t.Helper()
	if len(r.Txs) != truth.Count {
		t.Errorf("read %d transactions, truth %d", len(r.Txs), truth.Count)
	}
	types := map[opencalico.TransactionType]int{}
	for _, tx := range r.Txs {
		types[tx.Type]++
		want := map[opencalico.TransactionType]opencalico.Category{
			opencalico.TypeReceive: opencalico.CategoryDeposit, opencalico.TypeSend: opencalico.CategoryWithdrawal,
			opencalico.TypeInputOutput: opencalico.CategoryTrade, opencalico.TypeInputOnly: opencalico.CategoryFee,
		}[tx.Type]
		if tx.Categorization.Category != want || tx.Status != opencalico.TxConfirmed || tx.Chain != Chain || tx.TxHash != tx.ExternalID {
			t.Errorf("%s: type %s category %s status %s", tx.ExternalID, tx.Type, tx.Categorization.Category, tx.Status)
		}
		if (tx.Type == opencalico.TypeReceive) != (len(tx.Fees) == 0) {
			t.Errorf("%s: %s with fees %v", tx.ExternalID, tx.Type, tx.Fees)
		}
	}
	k := truth.Kinds
	wantTypes := map[opencalico.TransactionType]int{
		opencalico.TypeReceive:     k[solsim.KindReceiveSOL] + k[solsim.KindReceiveToken],
		opencalico.TypeSend:        k[solsim.KindSendSOL] + k[solsim.KindSendToken],
		opencalico.TypeInputOutput: k[solsim.KindSwap],
		opencalico.TypeInputOnly:   k[solsim.KindFailed],
	}
	for typ, n := range wantTypes {
		if types[typ] != n || n == 0 {
			t.Errorf("%d transactions of type %s, truth %d", types[typ], typ, n)
		}
	}
	net := adaptertest.NetByAsset(r.Txs)
	if want := Lamports(int64(truth.Lamports)); !net[SOLAssetID].Equal(want) {
		t.Errorf("SOL: history nets %s, truth %s", net[SOLAssetID], want)
	}
	for mint, amount := range truth.Tokens {
		want := decimal.New(int64(amount), -int32(truth.Decimals[mint]))
		if got := net[TokenAssetID(mint)]; !got.Equal(want) {
			t.Errorf("%s: history nets %s, truth %s", TokenSymbol(mint), got, want)
		}
	}
}

func TestAdapterAgainstSimulator(t *testing.T) {
	f := newFixture(t, 400)
	ad := f.adapter(Options{})
	ctx := context.Background()
	for i := range f.sim.Credentials() {
		truth := f.sim.Truth(i)
		a := f.account(i)
		if err := ad.Verify(ctx, a); err != nil {
			t.Fatal(err)
		}
		r := adaptertest.NewRead()
		if err := ad.History(ctx, a, r.Cursors, r.Sink(t, -1)); err != nil {
			t.Fatal(err)
		}
		checkComplete(t, r, truth)
		if r.Rows != len(r.Txs) {
			t.Errorf("%d rows handed for %d transactions", r.Rows, len(r.Txs))
		}

		// Balances equal the history's net, per asset, exactly.
		pos, err := ad.Balances(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		net := adaptertest.NetByAsset(r.Txs)
		seen := map[string]bool{}
		for _, p := range pos {
			seen[p.AssetID] = true
			if !p.Quantity.Equal(net[p.AssetID]) {
				t.Errorf("%s: balance %s, history nets %s", p.AssetSymbol, p.Quantity, net[p.AssetID])
			}
		}
		for id, q := range net {
			if !seen[id] && !q.IsZero() {
				t.Errorf("%s: history nets %s, no balance", id, q)
			}
		}
		if pos[0].AssetID != SOLAssetID || pos[0].AssetSymbol != "SOL" {
			t.Errorf("first position %+v", pos[0])
		}
		var usdc bool
		for _, p := range pos {
			usdc = usdc || p.AssetSymbol == "USDC"
		}
		if !usdc {
			t.Errorf("no USDC position in %+v", pos)
		}

		// A second read from the cursors adds nothing.
		again := &adaptertest.Read{Txs: map[string]*opencalico.Transaction{}, Cursors: r.Cursors}
		if err := ad.History(ctx, a, again.Cursors, again.Sink(t, -1)); err != nil {
			t.Fatal(err)
		}
		if again.Rows != 0 {
			t.Errorf("second read handed %d rows", again.Rows)
		}
	}
	if st := f.sim.Stats(); st.RateLimited != 0 {
		t.Errorf("%d requests refused by the rate limit", st.RateLimited)
	}
}

func TestFaultsRecovered(t *testing.T) {
	for _, fault := range []solsim.Fault{solsim.Fault5xx, solsim.Fault429, solsim.FaultMalformed, solsim.FaultTruncated, solsim.FaultNodeBehind} {
		t.Run(string(fault), func(t *testing.T) {
			f := newFixture(t, 120)
			ad := f.adapter(Options{SignaturesLimit: 40})
			a := f.account(1)
			f.sim.Inject(fault, 2) // the first signature page fails twice
			r := adaptertest.NewRead()
			if err := ad.History(context.Background(), a, r.Cursors, r.Sink(t, -1)); err != nil {
				t.Fatal(err)
			}
			st := f.sim.Stats()
			if st.Faults != 2 {
				t.Errorf("%d faults served", st.Faults)
			}
			checkComplete(t, r, f.sim.Truth(1))
			if r.Rows != len(r.Txs) {
				t.Errorf("%d rows for %d transactions", r.Rows, len(r.Txs))
			}
		})
	}
}

func TestPersistentFaultIsIncomplete(t *testing.T) {
	f := newFixture(t, 250)
	ad := f.adapter(Options{MaxAttempts: 2})
	a := f.account(0)
	r := adaptertest.NewRead()
	// The read is stopped after its first page, then resumed against a failing node.
	if err := ad.History(context.Background(), a, r.Cursors, r.Sink(t, 1)); !errors.Is(err, adaptertest.ErrStop) {
		t.Fatal(err)
	}
	r.Pages = 0
	f.sim.Inject(solsim.Fault5xx, 2)
	err := ad.History(context.Background(), a, r.Cursors, r.Sink(t, -1))
	var inc *provider.IncompleteError
	if !errors.As(err, &inc) || len(inc.Streams) != 1 || inc.Streams[0] != a.Address {
		t.Fatalf("got %v, want an IncompleteError naming the wallet", err)
	}
	if opencalico.ErrorCodeOf(err) != opencalico.EProviderUnavailable {
		t.Errorf("code %s", opencalico.ErrorCodeOf(err))
	}
	// Nothing was lost: the next read completes the history from the saved cursor.
	if err := ad.History(context.Background(), a, r.Cursors, r.Sink(t, -1)); err != nil {
		t.Fatal(err)
	}
	checkComplete(t, r, f.sim.Truth(0))
	if r.Rows != len(r.Txs) {
		t.Errorf("%d rows for %d transactions", r.Rows, len(r.Txs))
	}
}

func TestInvalidAddressMakesNoRequest(t *testing.T) {
	f := newFixture(t, 10)
	ad := f.adapter(Options{})
	a := provider.Account{ConnectionID: "c", Address: "0xdeadbeef", Chain: "solana"}
	ctx := context.Background()
	if err := ad.Verify(ctx, a); opencalico.ErrorCodeOf(err) != opencalico.EInvalidAddress {
		t.Errorf("Verify: %v", err)
	}
	if err := ad.History(ctx, a, provider.Cursors{}, adaptertest.NewRead().Sink(t, -1)); opencalico.ErrorCodeOf(err) != opencalico.EInvalidAddress {
		t.Errorf("History: %v", err)
	}
	if _, err := ad.Balances(ctx, a); opencalico.ErrorCodeOf(err) != opencalico.EInvalidAddress {
		t.Errorf("Balances: %v", err)
	}
	if n := f.sim.Stats().Requests; n != 0 {
		t.Errorf("%d requests made", n)
	}
}
