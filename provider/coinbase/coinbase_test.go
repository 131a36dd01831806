package coinbase

import (
	"context"
	"errors"
	"maps"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
	sim "github.com/opencalico/opencalico/provider/sim/coinbase"
	"github.com/shopspring/decimal"
)

// noSleep is a clock at wall time whose Sleep returns at once: retries and limiter waits cost
// nothing in tests that do not exercise the limit.
type noSleep struct{}

func (noSleep) Now() time.Time                                   { return time.Now() }
func (noSleep) Sleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }

type env struct {
	sim   *sim.Simulator
	ad    *Adapter
	acct  provider.Account
	close func()
}

func newEnv(t *testing.T, so sim.Options, ao Options) *env {
	t.Helper()
	if so.Seed == 0 {
		so.Seed = 42
	}
	if so.Events == 0 {
		so.Events = 2000
	}
	s := sim.New(so)
	srv := httptest.NewServer(s.Handler())
	ao.BaseURL = srv.URL
	if ao.Clock == nil {
		ao.Clock = noSleep{}
	}
	if ao.AttemptTimeout == 0 {
		ao.AttemptTimeout = 2 * time.Second
	}
	ad := New(ao)
	t.Cleanup(srv.Close)
	return &env{sim: s, ad: ad, acct: provider.Account{ConnectionID: "conn1", UserID: "u1",
		Credentials: s.Credentials()[0]}, close: srv.Close}
}

// collector keeps what a sync engine would: transactions by ExternalID and cursors by stream.
type collector struct {
	txs     map[string]*opencalico.Transaction
	cursors provider.Cursors
	pages   int
	stopAt  int // stop with an error when this many pages were accepted (0: never)
}

func newCollector() *collector {
	return &collector{txs: map[string]*opencalico.Transaction{}, cursors: provider.Cursors{}}
}

var errStop = errors.New("stop")

func (c *collector) sink(t *testing.T) provider.Sink {
	return func(_ context.Context, p provider.Page) error {
		if c.stopAt > 0 && c.pages == c.stopAt {
			return errStop
		}
		for _, tx := range p.Transactions {
			if err := tx.Validate(); err != nil {
				t.Errorf("invalid transaction: %v", err)
			}
			c.txs[tx.ExternalID] = tx
		}
		c.cursors[p.Stream] = p.Cursor
		c.pages++
		return nil
	}
}

// reconcile checks, per asset, outputs − inputs − fees over non-failed transactions against
// Balances.
func reconcile(t *testing.T, e *env, txs map[string]*opencalico.Transaction) {
	t.Helper()
	net := map[string]decimal.Decimal{}
	for _, tx := range txs {
		if tx.Status == opencalico.TxFailed {
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
	pos, err := e.ad.Balances(context.Background(), e.acct)
	if err != nil {
		t.Fatal(err)
	}
	bal := map[string]decimal.Decimal{}
	for _, p := range pos {
		bal[p.AssetSymbol] = p.Quantity
	}
	for _, k := range slicesUnion(maps.Keys(net), maps.Keys(bal)) {
		if !net[k].Equal(bal[k]) {
			t.Errorf("%s: history nets %s, balance %s", k, net[k], bal[k])
		}
	}
	want := e.sim.Balances(0)
	for k, v := range want {
		if !bal[k].Equal(v) {
			t.Errorf("%s: adapter balance %s, simulator %s", k, bal[k], v)
		}
	}
}

func slicesUnion(a, b func(func(string) bool)) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range []func(func(string) bool){a, b} {
		for k := range s {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	return out
}

func TestFullSyncReconcilesAndIsIdempotent(t *testing.T) {
	e := newEnv(t, sim.Options{}, Options{})
	ctx := context.Background()
	c := newCollector()
	if err := e.ad.History(ctx, e.acct, nil, c.sink(t)); err != nil {
		t.Fatal(err)
	}
	if len(c.txs) < 1500 {
		t.Fatalf("only %d transactions", len(c.txs))
	}
	types := map[string]int{}
	for _, tx := range c.txs {
		types[tx.Categorization.ProviderType]++
		switch tx.Categorization.ProviderType {
		case "trade", "advanced_trade_fill", "sell":
			if tx.Type != opencalico.TypeInputOutput || tx.Categorization.Category != opencalico.CategoryTrade {
				t.Errorf("%s: %s/%s", tx.ExternalID, tx.Type, tx.Categorization.Category)
			}
		case "buy":
			if tx.Categorization.Category != opencalico.CategoryTrade || len(tx.Outputs) != 1 {
				t.Errorf("%s: %s/%s", tx.ExternalID, tx.Type, tx.Categorization.Category)
			}
		case "staking_reward", "inflation_reward":
			if tx.Type != opencalico.TypeOutputOnly || tx.Categorization.Category != opencalico.CategoryStakingReward {
				t.Errorf("%s: %s/%s", tx.ExternalID, tx.Type, tx.Categorization.Category)
			}
		case "fiat_withdrawal":
			if tx.Type != opencalico.TypeSend || tx.Categorization.Category != opencalico.CategoryWithdrawal {
				t.Errorf("%s: %s/%s", tx.ExternalID, tx.Type, tx.Categorization.Category)
			}
		case "tx":
			if tx.Type != opencalico.TypeUncategorized {
				t.Errorf("%s: %s", tx.ExternalID, tx.Type)
			}
		}
	}
	for _, want := range []string{"advanced_trade_fill", "buy", "sell", "send", "receive", "transfer", "trade",
		"fiat_deposit", "fiat_withdrawal", "staking_reward", "interest", "earn_payout", "inflation_reward", "clawback", "tx"} {
		if types[want] == 0 {
			t.Errorf("no %s transaction", want)
		}
	}
	// Rows of paired kinds collapse into one event each.
	rows := e.sim.Rows(0)
	if types["trade"]*2 != rows["trade"] {
		t.Errorf("%d conversions from %d rows", types["trade"], rows["trade"])
	}
	if types["advanced_trade_fill"]*2 != rows["advanced_trade_fill"] {
		t.Errorf("%d fills from %d rows", types["advanced_trade_fill"], rows["advanced_trade_fill"])
	}
	reconcile(t, e, c.txs)

	// A second run from the saved cursors adds nothing new.
	before := len(c.txs)
	if err := e.ad.History(ctx, e.acct, c.cursors, c.sink(t)); err != nil {
		t.Fatal(err)
	}
	if len(c.txs) != before {
		t.Fatalf("second run added %d transactions", len(c.txs)-before)
	}
	if n := e.sim.Stats().RateLimited; n != 0 {
		t.Fatalf("%d rate-limit answers", n)
	}
}

// shiftClock is the wall clock moved by an offset the test sets; Sleep returns at once.
type shiftClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *shiftClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}
func (c *shiftClock) Sleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }
func (c *shiftClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

func TestPendingSettlesAndNewActivity(t *testing.T) {
	clock := &shiftClock{}
	e := newEnv(t, sim.Options{Events: 400, Clock: clock}, Options{Clock: clock})
	ctx := context.Background()
	c := newCollector()
	if err := e.ad.History(ctx, e.acct, nil, c.sink(t)); err != nil {
		t.Fatal(err)
	}
	pending := 0
	for _, tx := range c.txs {
		if tx.Status == opencalico.TxPending {
			pending++
		}
	}
	if pending == 0 {
		t.Fatal("no pending transaction to settle")
	}
	e.sim.Settle()
	e.sim.AddActivity(0, 50)
	before := len(c.txs)
	if err := e.ad.History(ctx, e.acct, c.cursors, c.sink(t)); err != nil {
		t.Fatal(err)
	}
	for id, tx := range c.txs {
		if tx.Status == opencalico.TxPending {
			t.Errorf("%s still pending after settling", id)
		}
	}
	if len(c.txs) <= before {
		t.Fatal("new activity not read")
	}
	// A card buy has no fiat row: it is held for the pairing grace, then reported alone.
	held := 0
	for _, tx := range c.txs {
		if tx.Categorization.ProviderType == "buy" && tx.Timestamp.After(clock.Now().Add(-2*time.Minute)) {
			held--
		}
	}
	clock.advance(time.Hour)
	if err := e.ad.History(ctx, e.acct, c.cursors, c.sink(t)); err != nil {
		t.Fatal(err)
	}
	for _, tx := range c.txs {
		if tx.Categorization.ProviderType == "buy" && tx.Timestamp.After(clock.Now().Add(-2*time.Hour)) {
			held++
		}
	}
	t.Logf("%d recent buys reported after the grace period", held)
	reconcile(t, e, c.txs)
}

func TestResumeAfterEveryPage(t *testing.T) {
	e := newEnv(t, sim.Options{Events: 600}, Options{EventsPerPage: 40})
	ctx := context.Background()
	whole := newCollector()
	if err := e.ad.History(ctx, e.acct, nil, whole.sink(t)); err != nil {
		t.Fatal(err)
	}
	for _, k := range []int{1, 3, 7} {
		c := newCollector()
		c.stopAt = k
		if err := e.ad.History(ctx, e.acct, nil, c.sink(t)); !errors.Is(err, errStop) {
			t.Fatalf("k=%d: %v", k, err)
		}
		c.stopAt = 0
		if err := e.ad.History(ctx, e.acct, c.cursors, c.sink(t)); err != nil {
			t.Fatal(err)
		}
		if len(c.txs) != len(whole.txs) {
			t.Fatalf("k=%d: %d transactions, uninterrupted %d", k, len(c.txs), len(whole.txs))
		}
		for id, tx := range whole.txs {
			got, ok := c.txs[id]
			if !ok || got.ContentHash() != tx.ContentHash() {
				t.Fatalf("k=%d: %s differs after resume", k, id)
			}
		}
	}
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name     string
		fault    sim.Fault
		wantCode opencalico.ErrorCode
		partial  bool // IncompleteError expected
	}{
		{"5xx recovers", sim.Fault{Kind: sim.Fault5xx, Path: "/v2/accounts/", Times: 2}, "", false},
		{"429 recovers", sim.Fault{Kind: sim.Fault429, Times: 2}, "", false},
		{"truncated recovers", sim.Fault{Kind: sim.FaultTruncated, Path: "/v2/accounts/", Times: 1}, "", false},
		{"malformed recovers", sim.Fault{Kind: sim.FaultMalformed, Path: "/v2/accounts/", Times: 1}, "", false},
		{"slow recovers", sim.Fault{Kind: sim.FaultSlow, Path: "/v2/accounts/", Times: 1, Delay: 3 * time.Second}, "", false},
		{"outage of one wallet is reported", sim.Fault{Kind: sim.Fault5xx, Path: "/v2/accounts/", Times: 5}, opencalico.EProviderUnavailable, true},
		{"outage of the wallet list fails", sim.Fault{Kind: sim.Fault5xx, Path: "/v2/accounts", Times: 5}, opencalico.EProviderUnavailable, false},
		{"expired token is an auth error", sim.Fault{Kind: sim.FaultExpiredJWT, Times: 1}, opencalico.EInvalidCredentials, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, sim.Options{Events: 300}, Options{})
			ctx := context.Background()
			clean := newCollector()
			if err := e.ad.History(ctx, e.acct, nil, clean.sink(t)); err != nil {
				t.Fatal(err)
			}
			e.sim.Inject(tt.fault)
			c := newCollector()
			err := e.ad.History(ctx, e.acct, nil, c.sink(t))
			var inc *provider.IncompleteError
			if tt.partial != errors.As(err, &inc) {
				t.Fatalf("error %v, want incomplete=%v", err, tt.partial)
			}
			if code := opencalico.ErrorCodeOf(err); code != tt.wantCode {
				t.Fatalf("error %v (code %q), want %q", err, code, tt.wantCode)
			}
			if tt.wantCode == "" {
				if len(c.txs) != len(clean.txs) {
					t.Fatalf("%d transactions, want %d", len(c.txs), len(clean.txs))
				}
				return
			}
			// After a failure, a later run from the saved cursors completes the history.
			if err := e.ad.History(ctx, e.acct, c.cursors, c.sink(t)); err != nil {
				t.Fatal(err)
			}
			if len(c.txs) != len(clean.txs) {
				t.Fatalf("after recovery %d transactions, want %d", len(c.txs), len(clean.txs))
			}
			for id, tx := range clean.txs {
				if got := c.txs[id]; got == nil || got.ContentHash() != tx.ContentHash() {
					t.Fatalf("%s differs after recovery", id)
				}
			}
		})
	}
}

func TestRevokedKeyOneRequest(t *testing.T) {
	e := newEnv(t, sim.Options{Events: 50}, Options{})
	e.sim.Revoke(0)
	before := e.sim.Stats().Requests
	for _, call := range []func() error{
		func() error { return e.ad.Verify(context.Background(), e.acct) },
		func() error {
			return e.ad.History(context.Background(), e.acct, nil, func(context.Context, provider.Page) error { return nil })
		},
	} {
		err := call()
		if opencalico.ErrorCodeOf(err) != opencalico.EInvalidCredentials {
			t.Fatalf("error %v, want invalid_credentials", err)
		}
		if n := e.sim.Stats().Requests - before; n != 1 {
			t.Fatalf("%d requests, want exactly 1", n)
		}
		before = e.sim.Stats().Requests
	}
}

func TestVerify(t *testing.T) {
	e := newEnv(t, sim.Options{Events: 10, Accounts: 2}, Options{})
	for i, creds := range e.sim.Credentials() {
		if err := e.ad.Verify(context.Background(), provider.Account{Credentials: creds}); err != nil {
			t.Fatalf("account %d: %v", i, err)
		}
	}
	// A well-formed key Coinbase does not know.
	other := sim.New(sim.Options{Seed: 7, Events: 1}).Credentials()[0]
	err := e.ad.Verify(context.Background(), provider.Account{Credentials: other})
	if opencalico.ErrorCodeOf(err) != opencalico.EInvalidCredentials {
		t.Fatalf("unknown key: %v", err)
	}
}

// TestRateLimitNeverHit runs a full sync against a simulator enforcing a small limit over a
// short window (the shape of 10,000 an hour, scaled down): the adapter's bucket paces the
// calls so that no request is refused.
func TestRateLimitNeverHit(t *testing.T) {
	const limit, window = 20, 400 * time.Millisecond
	e := newEnv(t, sim.Options{Events: 1500, RateLimit: limit, RateWindow: window},
		Options{Clock: provider.RealClock{}, RequestsPerWindow: limit, Window: window, Burst: 5})
	c := newCollector()
	start := time.Now()
	if err := e.ad.History(context.Background(), e.acct, nil, c.sink(t)); err != nil {
		t.Fatal(err)
	}
	st := e.sim.Stats()
	if st.RateLimited != 0 {
		t.Fatalf("%d rate-limit answers in %d requests", st.RateLimited, st.Requests)
	}
	if st.Requests <= limit {
		t.Fatalf("only %d requests: the limit was not exercised", st.Requests)
	}
	t.Logf("%d requests in %v", st.Requests, time.Since(start))
}
