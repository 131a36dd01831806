package binance

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
	binancesim "github.com/opencalico/opencalico/provider/sim/binance"
	"github.com/shopspring/decimal"
)

// simEnd is where generated histories end; the shared clock starts an hour later and runs
// 60 times faster than the wall clock, so a rate-limited minute takes a real second.
var simEnd = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

type env struct {
	sim   *binancesim.Simulator
	url   string
	clock *provider.ScaledClock
}

func newEnv(t *testing.T, opts binancesim.Options) *env {
	t.Helper()
	clock := provider.NewScaledClock(simEnd.Add(time.Hour), 60)
	opts.Clock, opts.End = clock, simEnd
	if opts.Seed == 0 {
		opts.Seed = 42
	}
	s := binancesim.New(opts)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return &env{sim: s, url: srv.URL, clock: clock}
}

func (e *env) adapter(opts Options) *Adapter {
	opts.BaseURL, opts.Clock = e.url, e.clock
	if opts.RecvWindow == 0 {
		opts.RecvWindow = 60000 // a minute of scaled time is one real second: allow for -race
	}
	return New(opts)
}

func (e *env) account(i int) provider.Account {
	return provider.Account{ConnectionID: fmt.Sprintf("conn_%d", i), UserID: "user_1", Credentials: e.sim.Credentials()[i]}
}

// read is the outcome of one or more History runs, as the sync engine would store it.
type read struct {
	txs     map[string]*opencalico.Transaction
	cursors provider.Cursors
	pages   int
	emitted int // transactions handed over, doubles included
}

func newRead() *read {
	return &read{txs: map[string]*opencalico.Transaction{}, cursors: provider.Cursors{}}
}

// history runs History from r's cursors into r; the sink fails after stopAfter pages (0:
// never), keeping only what was accepted.
func (r *read) history(ctx context.Context, a *Adapter, acc provider.Account, stopAfter int) error {
	from := provider.Cursors{}
	for k, v := range r.cursors {
		from[k] = v
	}
	accepted := 0
	return a.History(ctx, acc, from, func(_ context.Context, p provider.Page) error {
		if stopAfter > 0 && accepted == stopAfter {
			return errStop
		}
		accepted++
		r.pages++
		r.cursors[p.Stream] = p.Cursor
		for _, tx := range p.Transactions {
			r.emitted++
			r.txs[tx.ExternalID] = tx
		}
		return nil
	})
}

var errStop = errors.New("sink stopped")

// sameTransactions fails unless got and want hold the same events with the same content.
func sameTransactions(t *testing.T, got, want map[string]*opencalico.Transaction) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d transactions, want %d", len(got), len(want))
	}
	for id, w := range want {
		g, ok := got[id]
		if !ok {
			t.Errorf("missing %s", id)
			continue
		}
		if g.ContentHash() != w.ContentHash() {
			t.Errorf("%s differs: %+v vs %+v", id, g, w)
		}
	}
}

// reconcile checks that, per asset, outputs − inputs − fees equals the balance. Failed
// events moved nothing; a pending deposit is not credited yet, while a pending withdrawal
// is already debited (Binance takes amount and fee when it is requested).
func reconcile(t *testing.T, txs map[string]*opencalico.Transaction, balances []opencalico.Position) {
	t.Helper()
	net := map[string]decimal.Decimal{}
	for _, tx := range txs {
		if tx.Status == opencalico.TxFailed || (tx.Status == opencalico.TxPending && tx.Type == opencalico.TypeReceive) {
			continue
		}
		for _, l := range tx.Outputs {
			net[l.AssetSymbol] = net[l.AssetSymbol].Add(l.Amount)
		}
		for _, l := range tx.Inputs {
			net[l.AssetSymbol] = net[l.AssetSymbol].Sub(l.Amount)
		}
		for _, f := range tx.Fees {
			net[f.AssetSymbol] = net[f.AssetSymbol].Sub(f.Amount)
		}
	}
	held := map[string]decimal.Decimal{}
	for _, p := range balances {
		held[p.AssetSymbol] = p.Quantity
		if !p.Quantity.Equal(p.Available.Add(p.Locked)) {
			t.Errorf("%s: quantity %s ≠ available %s + locked %s", p.AssetSymbol, p.Quantity, p.Available, p.Locked)
		}
	}
	for asset, v := range net {
		if !v.Equal(held[asset]) {
			t.Errorf("%s: history nets %s, balance %s", asset, v, held[asset])
		}
	}
	for asset, v := range held {
		if _, ok := net[asset]; !ok {
			t.Errorf("%s: balance %s without history", asset, v)
		}
	}
}

func TestFullHistory(t *testing.T) {
	e := newEnv(t, binancesim.Options{})
	a := e.adapter(Options{})
	acc := e.account(0)
	ctx := context.Background()
	if err := a.Verify(ctx, acc); err != nil {
		t.Fatal(err)
	}
	r := newRead()
	if err := r.history(ctx, a, acc, 0); err != nil {
		t.Fatal(err)
	}
	if r.emitted != len(r.txs) {
		t.Errorf("%d emitted for %d distinct: doubles in one run", r.emitted, len(r.txs))
	}
	kinds := map[string]int{}
	statuses := map[opencalico.TransactionStatus]int{}
	for _, tx := range r.txs {
		if err := tx.Validate(); err != nil {
			t.Fatal(err)
		}
		if tx.UserID != "user_1" || tx.ConnectionID != "conn_0" || tx.ProviderID != ID {
			t.Fatalf("%s: bookkeeping %q %q %q", tx.ExternalID, tx.UserID, tx.ConnectionID, tx.ProviderID)
		}
		kind, _, _ := strings.Cut(tx.ExternalID, ":")
		want := map[string]struct {
			typ opencalico.TransactionType
			cat opencalico.Category
		}{
			"trade":      {opencalico.TypeInputOutput, opencalico.CategoryTrade},
			"deposit":    {opencalico.TypeReceive, opencalico.CategoryDeposit},
			"withdrawal": {opencalico.TypeSend, opencalico.CategoryWithdrawal},
		}[kind]
		if tx.Type != want.typ || tx.Categorization.Category != want.cat {
			t.Fatalf("%s: %s/%s", tx.ExternalID, tx.Type, tx.Categorization.Category)
		}
		kinds[kind+"/"+tx.Categorization.Subcategory]++
		statuses[tx.Status]++
	}
	t.Logf("%d transactions in %d pages, %d requests: %v %v", len(r.txs), r.pages, e.sim.Requests(), kinds, statuses)
	if kinds["trade/buy"] < 1000 || kinds["trade/sell"] < 1000 || kinds["deposit/"] < 100 || kinds["withdrawal/"] < 40 ||
		statuses[opencalico.TxPending] < 2 || statuses[opencalico.TxFailed] < 1 {
		t.Errorf("history looks short: %v %v", kinds, statuses)
	}
	balances, err := a.Balances(ctx, acc)
	if err != nil {
		t.Fatal(err)
	}
	reconcile(t, r.txs, balances)

	// A second run from the saved cursors adds nothing new and changes nothing.
	before := r.txs
	r2 := &read{txs: map[string]*opencalico.Transaction{}, cursors: r.cursors}
	if err := r2.history(ctx, a, acc, 0); err != nil {
		t.Fatal(err)
	}
	for id, tx := range r2.txs {
		if old, ok := before[id]; !ok || old.ContentHash() != tx.ContentHash() {
			t.Errorf("second run brought new or changed %s", id)
		}
	}
	t.Logf("second run re-read %d transactions (open windows and pending events)", len(r2.txs))

	// Pending events settle: the re-read picks up the new status, the balance follows.
	e.sim.SettlePending()
	r3 := &read{txs: r.txs, cursors: r.cursors}
	if err := r3.history(ctx, a, acc, 0); err != nil {
		t.Fatal(err)
	}
	for _, tx := range r3.txs {
		if tx.Status == opencalico.TxPending {
			t.Errorf("%s still pending after settling", tx.ExternalID)
		}
	}
	if len(r3.txs) != len(before) {
		t.Errorf("settling changed the count: %d → %d", len(before), len(r3.txs))
	}
	balances, err = a.Balances(ctx, acc)
	if err != nil {
		t.Fatal(err)
	}
	reconcile(t, r3.txs, balances)
	if n := e.sim.RateLimitErrors(); n != 0 {
		t.Errorf("%d rate-limit errors", n)
	}
}

func TestResume(t *testing.T) {
	e := newEnv(t, binancesim.Options{Trades: 1200})
	ctx := context.Background()
	acc := e.account(0)
	whole := newRead()
	if err := whole.history(ctx, e.adapter(Options{}), acc, 0); err != nil {
		t.Fatal(err)
	}
	for _, k := range []int{1, 3, 8, 15, whole.pages - 1} {
		t.Run(fmt.Sprint(k), func(t *testing.T) {
			r := newRead()
			a := e.adapter(Options{})
			if err := r.history(ctx, a, acc, k); !errors.Is(err, errStop) {
				t.Fatalf("interrupted read: %v", err)
			}
			if r.pages != k {
				t.Fatalf("%d pages accepted", r.pages)
			}
			if err := r.history(ctx, a, acc, 0); err != nil {
				t.Fatal(err)
			}
			sameTransactions(t, r.txs, whole.txs)
		})
	}
}

func TestFaults(t *testing.T) {
	ctx := context.Background()
	base := newEnv(t, binancesim.Options{Trades: 600})
	baseline := newRead()
	if err := baseline.history(ctx, base.adapter(Options{}), base.account(0), 0); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		fault   binancesim.Fault
		streams []string             // incomplete streams expected; nil: recovered
		code    opencalico.ErrorCode // of the error, when not recovered
	}{
		{"5xx retried", binancesim.Fault{Kind: binancesim.FaultServerError, Path: "/api/v3/myTrades", Times: 2}, nil, ""},
		{"429 retried after Retry-After", binancesim.Fault{Kind: binancesim.FaultRateLimit, Path: "/sapi/v1/capital/deposit", RetryAfter: 2}, nil, ""},
		{"truncated body retried", binancesim.Fault{Kind: binancesim.FaultTruncated, Path: "/api/v3/account"}, nil, ""},
		{"malformed body retried", binancesim.Fault{Kind: binancesim.FaultMalformed, Path: "/sapi/v1/capital/withdraw"}, nil, ""},
		{"slow answer retried", binancesim.Fault{Kind: binancesim.FaultSlow, Path: "/api/v3/myTrades", Delay: 500 * time.Millisecond}, nil, ""},
		{"timestamp re-synced", binancesim.Fault{Kind: binancesim.FaultTimestamp, Path: "/api/v3/myTrades"}, nil, ""},
		{"withdrawals down", binancesim.Fault{Kind: binancesim.FaultServerError, Path: "/sapi/v1/capital/withdraw", Times: 1000},
			[]string{"myTrades", "withdrawals"}, opencalico.EProviderUnavailable},
		{"one symbol down", binancesim.Fault{Kind: binancesim.FaultMalformed, Path: "/api/v3/myTrades", Times: 5},
			[]string{"myTrades:ADAUSDT"}, opencalico.EProviderUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, binancesim.Options{Trades: 600})
			a := e.adapter(Options{AttemptTimeout: 100 * time.Millisecond, BaseDelay: 100 * time.Millisecond})
			e.sim.Inject(tt.fault)
			r := newRead()
			err := r.history(ctx, a, e.account(0), 0)
			if r.emitted != len(r.txs) {
				t.Errorf("%d emitted for %d distinct", r.emitted, len(r.txs))
			}
			if tt.streams == nil {
				if err != nil {
					t.Fatal(err)
				}
				sameTransactions(t, r.txs, baseline.txs)
				return
			}
			var ie *provider.IncompleteError
			if !errors.As(err, &ie) || !slices.Equal(ie.Streams, tt.streams) || opencalico.ErrorCodeOf(err) != tt.code {
				t.Fatalf("err = %v (code %s)", err, opencalico.ErrorCodeOf(err))
			}
			// What was read is right, and everything but the failed streams was read.
			for id, tx := range r.txs {
				if w, ok := baseline.txs[id]; !ok || w.ContentHash() != tx.ContentHash() {
					t.Errorf("%s not as in the baseline", id)
				}
			}
			for id := range baseline.txs {
				if _, ok := r.txs[id]; !ok && !inFailedStream(id, ie.Streams) {
					t.Errorf("lost %s", id)
				}
			}
		})
	}

	t.Run("418 stops every call", func(t *testing.T) {
		e := newEnv(t, binancesim.Options{Trades: 100})
		a := e.adapter(Options{})
		e.sim.Inject(binancesim.Fault{Kind: binancesim.FaultBan, Path: "/api/v3/account", RetryAfter: 600})
		err := newRead().history(ctx, a, e.account(0), 0)
		if opencalico.ErrorCodeOf(err) != opencalico.ERateLimited {
			t.Fatalf("err = %v", err)
		}
		// exchangeInfo, time, the banned account call; nothing after.
		if n := e.sim.Requests(); n != 3 {
			t.Errorf("%d requests", n)
		}
		if err := a.Verify(ctx, e.account(0)); opencalico.ErrorCodeOf(err) != opencalico.ERateLimited || e.sim.Requests() != 3 {
			t.Errorf("during the ban: %v after %d requests", err, e.sim.Requests())
		}
	})

	t.Run("revoked key", func(t *testing.T) {
		e := newEnv(t, binancesim.Options{Trades: 100})
		a := e.adapter(Options{})
		acc := e.account(0)
		if err := a.Verify(ctx, acc); err != nil {
			t.Fatal(err)
		}
		e.sim.Revoke(0)
		before := e.sim.Requests()
		if err := a.Verify(ctx, acc); opencalico.ErrorCodeOf(err) != opencalico.EInvalidCredentials {
			t.Fatalf("err = %v", err)
		}
		if n := e.sim.Requests() - before; n != 1 {
			t.Errorf("%d requests for a revoked key", n)
		}
		if err := newRead().history(ctx, a, acc, 0); opencalico.ErrorCodeOf(err) != opencalico.EInvalidCredentials {
			t.Errorf("history: %v", err)
		}
		if _, err := a.Balances(ctx, acc); opencalico.ErrorCodeOf(err) != opencalico.EInvalidCredentials {
			t.Errorf("balances: %v", err)
		}
	})

	t.Run("wrong secret", func(t *testing.T) {
		e := newEnv(t, binancesim.Options{Trades: 100})
		acc := e.account(0)
		acc.Credentials = provider.Credentials{"api_key": acc.Credentials["api_key"], "secret_key": "not-the-secret"}
		err := e.adapter(Options{}).Verify(ctx, acc)
		if opencalico.ErrorCodeOf(err) != opencalico.EInvalidCredentials {
			t.Fatalf("err = %v", err)
		}
		if strings.Contains(err.Error(), "not-the-secret") || strings.Contains(err.Error(), acc.Credentials["api_key"]) {
			t.Error("the error names a credential")
		}
	})

	t.Run("server clock skew", func(t *testing.T) {
		e := newEnv(t, binancesim.Options{Trades: 100})
		a := e.adapter(Options{RecvWindow: 5000})
		e.sim.SetSkew(time.Hour)
		if err := a.Verify(ctx, e.account(0)); err != nil {
			t.Fatal(err)
		}
		e.sim.SetSkew(-10 * time.Minute) // the offset goes stale: -1021, re-sync, success
		if err := a.Verify(ctx, e.account(0)); err != nil {
			t.Fatal(err)
		}
	})
}

func inFailedStream(externalID string, streams []string) bool {
	kind, rest, _ := strings.Cut(externalID, ":")
	for _, s := range streams {
		switch {
		case kind == "withdrawal" && s == streamWithdrawals, kind == "deposit" && s == streamDeposits:
			return true
		case kind == "trade" && strings.HasPrefix(s, streamTrades+":"):
			sym, _, _ := strings.Cut(rest, ":")
			if s == streamTrades+":"+sym {
				return true
			}
		}
	}
	return false
}

// With the simulator enforcing a small per-IP budget, three accounts syncing at once from
// one adapter never get a rate-limit answer: the shared limiter spreads them over minutes.
func TestRateLimitShared(t *testing.T) {
	const perMinute = 300
	e := newEnv(t, binancesim.Options{Accounts: 3, Trades: 600, WeightPerMinute: perMinute})
	a := e.adapter(Options{WeightPerMinute: perMinute})
	ctx := context.Background()
	start := e.clock.Now()
	var wg sync.WaitGroup
	errs := make([]error, 3)
	reads := make([]*read, 3)
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reads[i] = newRead()
			errs[i] = reads[i].history(ctx, a, e.account(i), 0)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("account %d: %v", i, err)
		}
		balances, err := a.Balances(ctx, e.account(i))
		if err != nil {
			t.Fatal(err)
		}
		reconcile(t, reads[i].txs, balances)
	}
	took := e.clock.Now().Sub(start)
	t.Logf("3 accounts, %d requests in %s of simulated time", e.sim.Requests(), took.Round(time.Second))
	if n := e.sim.RateLimitErrors(); n != 0 {
		t.Errorf("%d rate-limit errors", n)
	}
	if took < 2*time.Minute {
		t.Errorf("took %s: the budget cannot have been enforced", took)
	}
}
