package bitcoin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/internal/adaptertest"
	"github.com/opencalico/opencalico/provider"
	"github.com/opencalico/opencalico/provider/sim/esplora"
	"github.com/shopspring/decimal"
)

// The simulator's rate and the adapter's are the same: the limiter must never be refused.
const simRate = 50

type fixture struct {
	sim   *esplora.Simulator
	srv   *httptest.Server
	clock *provider.ScaledClock
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	clock := provider.NewScaledClock(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), 40)
	sim := esplora.New(esplora.Options{Seed: 7, Clock: clock, Transactions: 600, RequestsPerSecond: simRate, SlowDelay: 300 * time.Millisecond})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	return fixture{sim, srv, clock}
}

func (f fixture) adapter(opts Options) *Adapter {
	opts.BaseURL = f.srv.URL
	opts.Clock = f.clock
	if opts.RequestsPerSecond == 0 {
		opts.RequestsPerSecond = simRate
	}
	if opts.BaseDelay == 0 {
		opts.BaseDelay = 50 * time.Millisecond
	}
	return New(opts)
}

func account(f fixture, i int) provider.Account {
	return provider.Account{ConnectionID: "conn_" + string(rune('a'+i)), UserID: "user_1",
		Address: f.sim.Credentials()[i]["address"], Chain: "bitcoin"}
}

// net sums outputs − inputs − fees over confirmed transactions, and the inputs and fees of
// pending ones (what the store's reconciliation counts).
func net(txs map[string]*opencalico.Transaction) (confirmed, pendingDebit decimal.Decimal) {
	for _, tx := range txs {
		var in, out, fee decimal.Decimal
		for _, l := range tx.Inputs {
			in = in.Add(l.Amount)
		}
		for _, l := range tx.Outputs {
			out = out.Add(l.Amount)
		}
		for _, f := range tx.Fees {
			fee = fee.Add(f.Amount)
		}
		if tx.Status == opencalico.TxConfirmed {
			confirmed = confirmed.Add(out).Sub(in).Sub(fee)
		} else {
			pendingDebit = pendingDebit.Add(in).Add(fee)
		}
	}
	return confirmed, pendingDebit
}

func TestAdapterAgainstSimulator(t *testing.T) {
	f := newFixture(t)
	ad := f.adapter(Options{})
	ctx := context.Background()
	for i := range f.sim.Credentials() {
		truth := f.sim.Truth(i)
		t.Run(string(truth.Kind), func(t *testing.T) {
			a := account(f, i)
			if err := ad.Verify(ctx, a); err != nil {
				t.Fatal(err)
			}
			r := adaptertest.NewRead()
			if err := ad.History(ctx, a, r.Cursors, r.Sink(t, -1)); err != nil {
				t.Fatal(err)
			}
			checkRead(t, r, truth)
			conf, pend := net(r.Txs)
			if want := Sats(truth.Balance); !conf.Equal(want) {
				t.Errorf("confirmed net %s, chain_stats funded − spent %s", conf, want)
			}
			if want := Sats(truth.PendingDebit); !pend.Equal(want) {
				t.Errorf("pending debit %s, want %s", pend, want)
			}
			pos, err := ad.Balances(ctx, a)
			if err != nil {
				t.Fatal(err)
			}
			if len(pos) != 1 || !pos[0].Quantity.Equal(conf.Sub(pend)) || pos[0].AssetID != AssetID {
				t.Errorf("balances %+v, history adds up to %s", pos, conf.Sub(pend))
			}
			if truth.Kind == esplora.KindXpub || truth.Kind == esplora.KindYpub || truth.Kind == esplora.KindZpub {
				var d derivationCursor
				if err := json.Unmarshal([]byte(r.Cursors[DerivationStream]), &d); err != nil {
					t.Fatal(err)
				}
				if d.Receive != truth.MaxIndex[0] || d.Change != truth.MaxIndex[1] || d.Receive < 10 {
					t.Errorf("derivation found %+v, truth %v", d, truth.MaxIndex)
				}
			}

			// A second read from the cursors adds nothing and changes nothing.
			before := len(r.Txs)
			again := &adaptertest.Read{Txs: map[string]*opencalico.Transaction{}, Cursors: r.Cursors}
			if err := ad.History(ctx, a, again.Cursors, again.Sink(t, -1)); err != nil {
				t.Fatal(err)
			}
			for id, tx := range again.Txs {
				prev := r.Txs[id]
				if prev == nil || prev.ContentHash() != tx.ContentHash() {
					t.Errorf("second read brought %s anew or changed", id)
				}
				if tx.Status != opencalico.TxPending {
					t.Errorf("second read handed confirmed %s again", id)
				}
			}
			if before != len(r.Txs) {
				t.Errorf("second read grew the map")
			}
		})
	}
	if st := f.sim.Stats(); st.RateLimited != 0 {
		t.Errorf("%d requests refused by the rate limit", st.RateLimited)
	}
}

func checkRead(t *testing.T, r *adaptertest.Read, truth esplora.Truth) {
	t.Helper()
	var confirmed, pending int
	kinds := map[opencalico.TransactionType]int{}
	for _, tx := range r.Txs {
		if tx.Status == opencalico.TxConfirmed {
			confirmed++
		} else {
			pending++
		}
		kinds[tx.Type]++
		want := map[opencalico.TransactionType]opencalico.Category{
			opencalico.TypeReceive: opencalico.CategoryDeposit, opencalico.TypeSend: opencalico.CategoryWithdrawal,
			opencalico.TypeInputOnly: opencalico.CategoryTransfer,
		}[tx.Type]
		if tx.Categorization.Category != want || tx.Chain != "bitcoin" || tx.TxHash != tx.ExternalID {
			t.Errorf("%s: type %s category %s", tx.ExternalID, tx.Type, tx.Categorization.Category)
		}
		if tx.Type == opencalico.TypeSend && (tx.ToAddress == "" || len(tx.Fees) != 1) {
			t.Errorf("%s: a send without recipient or fee", tx.ExternalID)
		}
		if tx.Type == opencalico.TypeReceive && len(tx.Fees) != 0 {
			t.Errorf("%s: a receive from others carries a fee", tx.ExternalID)
		}
	}
	if confirmed != truth.ConfirmedTxs || pending != truth.PendingTxs {
		t.Errorf("read %d confirmed and %d pending, truth %d and %d", confirmed, pending, truth.ConfirmedTxs, truth.PendingTxs)
	}
	if kinds[opencalico.TypeReceive] == 0 || kinds[opencalico.TypeSend] == 0 || kinds[opencalico.TypeInputOnly] == 0 {
		t.Errorf("types read: %v", kinds)
	}
}

// Mining the pending transactions: the next read confirms them, and still reconciles.
func TestPendingConfirms(t *testing.T) {
	f := newFixture(t)
	ad := f.adapter(Options{})
	ctx := context.Background()
	const w = 6 // a zpub wallet
	a := account(f, w)
	r := adaptertest.NewRead()
	if err := ad.History(ctx, a, r.Cursors, r.Sink(t, -1)); err != nil {
		t.Fatal(err)
	}
	f.sim.Mine(w)
	if err := ad.History(ctx, a, r.Cursors, r.Sink(t, -1)); err != nil {
		t.Fatal(err)
	}
	truth := f.sim.Truth(w)
	checkRead(t, r, truth)
	if conf, pend := net(r.Txs); !conf.Equal(Sats(truth.Balance)) || !pend.IsZero() {
		t.Errorf("after mining: confirmed %s pending %s, truth %d", conf, pend, truth.Balance)
	}
}

// Stopping after k pages and resuming from the cursors saved reads exactly what one read
// does.
func TestResume(t *testing.T) {
	f := newFixture(t)
	ad := f.adapter(Options{})
	ctx := context.Background()
	for _, w := range []int{2, 4} { // a single bc1q address, an xpub wallet
		a := account(f, w)
		whole := adaptertest.NewRead()
		if err := ad.History(ctx, a, whole.Cursors, whole.Sink(t, -1)); err != nil {
			t.Fatal(err)
		}
		for _, k := range []int{0, 3, whole.Pages / 2, whole.Pages - 1} {
			parts := adaptertest.NewRead()
			err := ad.History(ctx, a, parts.Cursors, parts.Sink(t, k))
			if !errors.Is(err, adaptertest.ErrStop) {
				t.Fatalf("k=%d: %v", k, err)
			}
			// A fresh page counter: the rest of the read is not stopped.
			parts.Pages = 0
			if err := ad.History(ctx, a, parts.Cursors, parts.Sink(t, -1)); err != nil {
				t.Fatal(err)
			}
			if len(parts.Txs) != len(whole.Txs) {
				t.Errorf("wallet %d k=%d: %d transactions, whole read %d", w, k, len(parts.Txs), len(whole.Txs))
			}
			for id, tx := range whole.Txs {
				p := parts.Txs[id]
				if p != nil && tx.Status == opencalico.TxPending {
					// A pending transaction is stamped when a read first sees it; these
					// are two independent reads.
					q := *p
					q.Timestamp = tx.Timestamp
					p = &q
				}
				if p == nil || p.ContentHash() != tx.ContentHash() {
					t.Errorf("wallet %d k=%d: %s missing or different", w, k, id)
				}
			}
		}
	}
}

func TestFaults(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const w = 5 // a ypub wallet
	a := account(f, w)
	truth := f.sim.Truth(w)
	ad := f.adapter(Options{MaxAttempts: 4, AttemptTimeout: 100 * time.Millisecond})

	recovered := [][]esplora.Fault{
		{esplora.Fault500, esplora.Fault502},
		{esplora.Fault429, esplora.Fault503},
		{esplora.FaultTruncated, esplora.FaultMalformed},
		{esplora.FaultSlow},
	}
	for _, faults := range recovered {
		for _, route := range []string{esplora.RouteAddress, esplora.RouteChain, esplora.RouteMempool} {
			f.sim.Inject(route, faults...)
			r := adaptertest.NewRead()
			if err := ad.History(ctx, a, r.Cursors, r.Sink(t, -1)); err != nil {
				t.Fatalf("faults %v on %s: %v", faults, route, err)
			}
			checkRead(t, r, truth)
		}
	}

	// A chain page that keeps failing: that address's stream is reported, the rest read.
	r := adaptertest.NewRead()
	if err := ad.History(ctx, a, r.Cursors, r.Sink(t, -1)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		f.sim.Inject(esplora.RouteChain, esplora.Fault500)
	}
	part := adaptertest.NewRead()
	err := ad.History(ctx, a, part.Cursors, part.Sink(t, -1))
	var inc *provider.IncompleteError
	if !errors.As(err, &inc) || len(inc.Streams) != 1 || opencalico.ErrorCodeOf(err) != opencalico.EProviderUnavailable {
		t.Fatalf("want an IncompleteError naming one stream, got %v", err)
	}
	if len(part.Txs) >= len(r.Txs) || len(part.Txs) == 0 {
		t.Errorf("incomplete read handed %d of %d", len(part.Txs), len(r.Txs))
	}
	// The next read completes it.
	if err := ad.History(ctx, a, part.Cursors, part.Sink(t, -1)); err != nil {
		t.Fatal(err)
	}
	if len(part.Txs) != len(r.Txs) {
		t.Errorf("after the retry %d of %d", len(part.Txs), len(r.Txs))
	}

	// Discovery failing fails the read (every stream depends on it).
	for i := 0; i < 4; i++ {
		f.sim.Inject(esplora.RouteAddress, esplora.Fault503)
	}
	if err := ad.History(ctx, a, provider.Cursors{}, adaptertest.NewRead().Sink(t, -1)); opencalico.ErrorCodeOf(err) != opencalico.EProviderUnavailable {
		t.Errorf("discovery failure: %v", err)
	}

	// A testnet address is refused before any request.
	before := f.sim.Stats().Requests
	bad := provider.Account{ConnectionID: "c", Address: "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"}
	if err := ad.Verify(ctx, bad); opencalico.ErrorCodeOf(err) != opencalico.EInvalidAddress {
		t.Errorf("testnet address: %v", err)
	}
	if f.sim.Stats().Requests != before {
		t.Errorf("a refused address made requests")
	}
	if st := f.sim.Stats(); st.RateLimited != 0 {
		t.Errorf("%d requests refused by the rate limit", st.RateLimited)
	}
}
