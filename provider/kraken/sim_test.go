package kraken_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
	"github.com/opencalico/opencalico/provider/kraken"
	krakensim "github.com/opencalico/opencalico/provider/sim/kraken"
	"github.com/shopspring/decimal"
)

// env is an adapter talking to a simulator over HTTP, both on one fast clock.
type env struct {
	sim     *krakensim.Simulator
	ad      *kraken.Adapter
	account provider.Account
}

func newEnv(t *testing.T, events int, tweak func(*kraken.Options)) *env {
	return newEnvAt(t, 2000, events, tweak)
}

func newEnvAt(t *testing.T, factor float64, events int, tweak func(*kraken.Options)) *env {
	t.Helper()
	// factor 2000: the starter tier's 6 s per Ledgers call takes 3 ms.
	clock := provider.NewScaledClock(time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), factor)
	sim := krakensim.New(krakensim.Options{Seed: 42, Clock: clock, Events: events, SlowDelay: 2 * time.Second})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	opts := kraken.Options{BaseURL: srv.URL, HTTP: srv.Client(), Clock: clock, AttemptTimeout: time.Second}
	if tweak != nil {
		tweak(&opts)
	}
	return &env{sim: sim, ad: kraken.New(opts),
		account: provider.Account{ConnectionID: "conn-1", UserID: "user-1", Credentials: sim.Credentials()[0]}}
}

// run is one History read: the transactions by ExternalID, the cursors after the last
// accepted page, how many pages, and the ExternalIDs handed over more than once.
type run struct {
	txs     map[string]*opencalico.Transaction
	cursors provider.Cursors
	pages   int
	doubled []string
	err     error
}

// read runs History from cursors; the sink fails after stopAfter pages (0: never).
func (e *env) read(t *testing.T, from provider.Cursors, stopAfter int) run {
	t.Helper()
	r := run{txs: map[string]*opencalico.Transaction{}, cursors: provider.Cursors{}}
	for k, v := range from {
		r.cursors[k] = v
	}
	errStop := errors.New("stop")
	r.err = e.ad.History(context.Background(), e.account, from, func(_ context.Context, p provider.Page) error {
		if stopAfter > 0 && r.pages == stopAfter {
			return errStop
		}
		r.pages++
		for _, tx := range p.Transactions {
			if err := tx.Validate(); err != nil {
				t.Fatalf("invalid transaction: %v", err)
			}
			if _, dup := r.txs[tx.ExternalID]; dup {
				r.doubled = append(r.doubled, tx.ExternalID)
			}
			r.txs[tx.ExternalID] = tx
		}
		r.cursors[p.Stream] = p.Cursor
		return nil
	})
	if errors.Is(r.err, errStop) {
		r.err = nil
	}
	return r
}

// reconcile checks that, per asset, outputs − inputs − fees over txs equals the balance.
func (e *env) reconcile(t *testing.T, txs map[string]*opencalico.Transaction) {
	t.Helper()
	net := map[string]decimal.Decimal{}
	for _, tx := range txs {
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
	positions, err := e.ad.Balances(context.Background(), e.account)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, p := range positions {
		seen[p.AssetSymbol] = true
		if !net[p.AssetSymbol].Equal(p.Quantity) {
			t.Errorf("%s: balance %s, net of the history %s", p.AssetSymbol, p.Quantity, net[p.AssetSymbol])
		}
	}
	for sym, n := range net {
		if !seen[sym] && !n.IsZero() {
			t.Errorf("%s: no position, net of the history %s", sym, n)
		}
	}
	if len(positions) < 6 {
		t.Errorf("only %d positions", len(positions))
	}
}

func (e *env) assertClean(t *testing.T) {
	t.Helper()
	st := e.sim.Stats()
	if st.RateLimitErrors != 0 || st.InvalidNonces != 0 || st.InvalidSigs != 0 {
		t.Fatalf("simulator refused calls: %d rate limit, %d nonce, %d signature", st.RateLimitErrors, st.InvalidNonces, st.InvalidSigs)
	}
}

func TestFullHistory(t *testing.T) {
	e := newEnv(t, 3000, nil)
	if err := e.ad.Verify(context.Background(), e.account); err != nil {
		t.Fatal(err)
	}
	first := e.read(t, nil, 0)
	if first.err != nil {
		t.Fatal(first.err)
	}
	if len(first.doubled) > 0 {
		t.Fatalf("handed over twice: %v", first.doubled[:min(5, len(first.doubled))])
	}
	if len(first.txs) < 2500 {
		t.Fatalf("only %d transactions", len(first.txs))
	}
	// Each event has the type and category its ledger rows say.
	kinds := map[string]int{}
	for _, tx := range first.txs {
		c := tx.Categorization
		kinds[string(tx.Type)+"/"+string(c.Category)+"/"+c.Subcategory]++
		switch c.ProviderType {
		case "trade", "spend+receive":
			if tx.Type != opencalico.TypeInputOutput || c.Category != opencalico.CategoryTrade ||
				(c.Subcategory != "buy" && c.Subcategory != "sell") || len(tx.Fees) == 0 {
				t.Fatalf("%s: %+v", c.ProviderType, tx)
			}
			for _, f := range tx.Fees {
				if f.Kind != opencalico.FeeTrading {
					t.Fatalf("trade fee kind %s", f.Kind)
				}
			}
		case "deposit":
			if tx.Type != opencalico.TypeReceive || c.Category != opencalico.CategoryDeposit {
				t.Fatalf("deposit: %+v", tx)
			}
		case "withdrawal":
			if tx.Type != opencalico.TypeSend || c.Category != opencalico.CategoryWithdrawal ||
				len(tx.Fees) != 1 || tx.Fees[0].Kind != opencalico.FeeWithdrawal {
				t.Fatalf("withdrawal: %+v", tx)
			}
		case "staking", "earn:reward":
			if tx.Type != opencalico.TypeOutputOnly || c.Category != opencalico.CategoryStakingReward {
				t.Fatalf("reward: %+v", tx)
			}
		case "transfer:spottostaking+transfer:stakingfromspot", "earn:allocation":
			if tx.Type != opencalico.TypeInputOutput || c.Category != opencalico.CategoryStaking {
				t.Fatalf("staking: %+v", tx)
			}
		case "transfer:stakingtospot+transfer:spotfromstaking", "earn:deallocation":
			if tx.Type != opencalico.TypeInputOutput || c.Category != opencalico.CategoryUnstaking {
				t.Fatalf("unstaking: %+v", tx)
			}
		case "rollover", "margin":
			if c.Category != opencalico.CategoryMargin {
				t.Fatalf("margin: %+v", tx)
			}
		case "adjustment":
			if c.Category != opencalico.CategoryOther {
				t.Fatalf("adjustment: %+v", tx)
			}
		default:
			t.Fatalf("unexpected provider type %q", c.ProviderType)
		}
	}
	for _, want := range []string{"input_output/trade/buy", "input_output/trade/sell", "receive/deposit/", "send/withdrawal/",
		"output_only/staking_reward/", "input_output/staking/", "input_output/unstaking/", "uncategorized/margin/"} {
		if kinds[want] == 0 {
			t.Errorf("no %s transactions: %v", want, kinds)
		}
	}
	e.reconcile(t, first.txs)

	// A second read from the saved cursors adds nothing.
	second := e.read(t, first.cursors, 0)
	if second.err != nil {
		t.Fatal(second.err)
	}
	if len(second.txs) != 0 {
		t.Fatalf("the second read handed over %d transactions", len(second.txs))
	}
	e.assertClean(t)
	st := e.sim.Stats()
	t.Logf("%d ledger rows, %d transactions, %d pages, %d Ledgers calls, kinds %v",
		e.sim.LedgerRows(0), len(first.txs), first.pages, st.ByMethod["Ledgers"], kinds)
}

// fingerprint maps ExternalID → content hash, to compare reads exactly.
func fingerprint(txs map[string]*opencalico.Transaction) map[string]string {
	out := make(map[string]string, len(txs))
	for id, tx := range txs {
		out[id] = tx.ContentHash()
	}
	return out
}

func sameHistory(t *testing.T, got, want map[string]*opencalico.Transaction) {
	t.Helper()
	g, w := fingerprint(got), fingerprint(want)
	for id, h := range w {
		if g[id] != h {
			t.Fatalf("transaction %s: lost or different (%d got, %d want)", id, len(g), len(w))
		}
	}
	if len(g) != len(w) {
		t.Fatalf("%d transactions, want %d", len(g), len(w))
	}
}

// union merges two reads and reports ExternalIDs present in both.
func union(a, b run) (map[string]*opencalico.Transaction, []string) {
	out := map[string]*opencalico.Transaction{}
	var both []string
	for id, tx := range a.txs {
		out[id] = tx
	}
	for id, tx := range b.txs {
		if _, ok := out[id]; ok {
			both = append(both, id)
		}
		out[id] = tx
	}
	return out, both
}

func TestResume(t *testing.T) {
	e := newEnv(t, 1500, nil)
	whole := e.read(t, nil, 0)
	if whole.err != nil {
		t.Fatal(whole.err)
	}
	for _, k := range []int{1, 2, 7, whole.pages / 2, whole.pages - 1} {
		part := e.read(t, nil, k)
		if part.err != nil || part.pages != k {
			t.Fatalf("k=%d: %d pages, %v", k, part.pages, part.err)
		}
		rest := e.read(t, part.cursors, 0)
		if rest.err != nil {
			t.Fatal(rest.err)
		}
		all, both := union(part, rest)
		if len(both) > 0 {
			t.Fatalf("k=%d: handed over before and after the stop: %v", k, both)
		}
		sameHistory(t, all, whole.txs)
	}
	e.assertClean(t)
}

// Rows booked while a read is in progress are read once: by this read or the next.
func TestAppendDuringRead(t *testing.T) {
	e := newEnv(t, 1500, nil)
	e.sim.OnCall(func(method string, call int) {
		switch {
		case method != "Ledgers":
		case call == 4:
			e.sim.AppendLate(0, 0) // at the pinned end: the count moves during this read
		case call == 6:
			e.sim.AppendLate(0, 5*time.Minute)
		case call >= 9 && call%3 == 0:
			e.sim.Append(0, 2) // after the pinned end: for the next read
		}
	})
	first := e.read(t, nil, 0)
	if first.err != nil {
		t.Fatal(first.err)
	}
	e.sim.OnCall(nil)
	second := e.read(t, first.cursors, 0)
	if second.err != nil {
		t.Fatal(second.err)
	}
	if len(first.doubled)+len(second.doubled) > 0 {
		t.Fatalf("doubled within a read: %v %v", first.doubled, second.doubled)
	}
	all, both := union(first, second)
	if len(both) > 0 {
		t.Fatalf("handed over by both reads: %v", both)
	}
	if len(second.txs) == 0 {
		t.Fatal("the rows booked during the first read were not found by the second")
	}
	e.reconcile(t, all)
	third := e.read(t, second.cursors, 0)
	if third.err != nil || len(third.txs) != 0 {
		t.Fatalf("third read: %d transactions, %v", len(third.txs), third.err)
	}
	e.assertClean(t)
}

func TestFaults(t *testing.T) {
	e := newEnv(t, 800, nil)
	baseline := e.read(t, nil, 0)
	if baseline.err != nil {
		t.Fatal(baseline.err)
	}
	tests := []struct {
		name   string
		faults []krakensim.Fault
	}{
		{"HTTP 500", []krakensim.Fault{krakensim.FaultHTTP500, krakensim.FaultHTTP500}},
		{"HTTP 520", []krakensim.Fault{krakensim.FaultHTTP520}},
		{"HTTP 429", []krakensim.Fault{krakensim.FaultHTTP429}},
		{"rate limit error", []krakensim.Fault{krakensim.FaultRateLimit}},
		{"service unavailable", []krakensim.Fault{krakensim.FaultUnavailable, krakensim.FaultUnavailable}},
		{"throttled", []krakensim.Fault{krakensim.FaultThrottled}},
		{"invalid nonce", []krakensim.Fault{krakensim.FaultInvalidNonce, krakensim.FaultInvalidNonce}},
		{"slow answer", []krakensim.Fault{krakensim.FaultSlow}},
		{"truncated body", []krakensim.Fault{krakensim.FaultTruncated}},
		{"malformed body", []krakensim.Fault{krakensim.FaultMalformed}},
		{"mixed", []krakensim.Fault{krakensim.FaultTruncated, krakensim.FaultHTTP500, krakensim.FaultInvalidNonce, krakensim.FaultThrottled}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The faults strike in the middle of the read, at the 5th Ledgers call.
			var once sync.Once
			e.sim.OnCall(func(method string, call int) {
				if method == "Ledgers" {
					once.Do(func() { e.sim.Inject("Ledgers", tt.faults...) })
				}
			})
			defer e.sim.OnCall(nil)
			before := e.sim.Stats().FaultsServed
			got := e.read(t, nil, 0)
			if got.err != nil {
				t.Fatal(got.err)
			}
			if served := e.sim.Stats().FaultsServed - before; served != len(tt.faults) {
				t.Fatalf("%d faults served, want %d", served, len(tt.faults))
			}
			if len(got.doubled) > 0 {
				t.Fatalf("doubled: %v", got.doubled)
			}
			sameHistory(t, got.txs, baseline.txs)
		})
	}
	e.assertClean(t)
}

// An outage longer than the retries ends the read with IncompleteError naming the stream;
// what was handed over stands, and the next read completes it exactly.
func TestOutageIsReported(t *testing.T) {
	e := newEnv(t, 800, func(o *kraken.Options) { o.MaxAttempts = 3 })
	baseline := e.read(t, nil, 0)
	e.sim.OnCall(func(method string, call int) {
		if method == "Ledgers" && call == baseline.pages+6 { // in the middle of the second read
			e.sim.Inject("Ledgers", krakensim.FaultUnavailable, krakensim.FaultHTTP500, krakensim.FaultUnavailable)
		}
	})
	part := e.read(t, nil, 0)
	var inc *provider.IncompleteError
	if !errors.As(part.err, &inc) || len(inc.Streams) != 1 || inc.Streams[0] != kraken.LedgerStream {
		t.Fatalf("error %v, want IncompleteError naming %q", part.err, kraken.LedgerStream)
	}
	if opencalico.ErrorCodeOf(part.err) != opencalico.EProviderUnavailable {
		t.Fatalf("code %s", opencalico.ErrorCodeOf(part.err))
	}
	if part.pages == 0 || len(part.txs) >= len(baseline.txs) {
		t.Fatalf("%d pages, %d of %d transactions before the outage", part.pages, len(part.txs), len(baseline.txs))
	}
	e.sim.OnCall(nil)
	rest := e.read(t, part.cursors, 0)
	if rest.err != nil {
		t.Fatal(rest.err)
	}
	all, both := union(part, rest)
	if len(both) > 0 {
		t.Fatalf("doubled across the outage: %v", both)
	}
	sameHistory(t, all, baseline.txs)
}

func TestBadCredentials(t *testing.T) {
	tests := []struct {
		name  string
		setup func(e *env)
	}{
		{"revoked key", func(e *env) { e.sim.Revoke(0) }},
		{"wrong private key", func(e *env) {
			e.account.Credentials = map[string]string{"api_key": e.account.Credentials["api_key"],
				"secret_key": "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="}
		}},
		{"key without permission", func(e *env) { e.sim.Inject("", krakensim.FaultPermissionDenied) }},
	}
	for _, tt := range tests {
		for _, call := range []string{"Verify", "History"} {
			t.Run(tt.name+"/"+call, func(t *testing.T) {
				e := newEnv(t, 50, nil)
				tt.setup(e)
				var err error
				if call == "Verify" {
					err = e.ad.Verify(context.Background(), e.account)
				} else {
					err = e.read(t, nil, 0).err
				}
				if opencalico.ErrorCodeOf(err) != opencalico.EInvalidCredentials || !provider.IsAuthError(err) {
					t.Fatalf("error %v, want invalid_credentials", err)
				}
				if n := e.sim.Stats().Requests; n != 1 {
					t.Fatalf("%d requests, want exactly 1 (no retries)", n)
				}
				secret := e.account.Credentials["secret_key"]
				if msg := err.Error(); len(secret) > 8 && contains(msg, secret[:8]) {
					t.Fatal("the error names the secret")
				}
			})
		}
	}
	t.Run("missing fields", func(t *testing.T) {
		e := newEnv(t, 10, nil)
		e.account.Credentials = map[string]string{"api_key": "k"}
		if err := e.ad.Verify(context.Background(), e.account); opencalico.ErrorCodeOf(err) != opencalico.EInvalidCredentials {
			t.Fatalf("error %v", err)
		}
		if n := e.sim.Stats().Requests; n != 0 {
			t.Fatalf("%d requests", n)
		}
	})
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// frozenClock never moves: every nonce falls in one millisecond.
type frozenClock struct{ at time.Time }

func (c frozenClock) Now() time.Time { return c.at }
func (c frozenClock) Sleep(ctx context.Context, _ time.Duration) error {
	return ctx.Err()
}

// Concurrent calls of one key, all in one millisecond, still reach Kraken with increasing
// nonces.
func TestConcurrentCallsKeepNoncesOrdered(t *testing.T) {
	clock := frozenClock{at: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)}
	sim := krakensim.New(krakensim.Options{Seed: 1, Clock: clock, Events: 50})
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()
	ad := kraken.New(kraken.Options{BaseURL: srv.URL, HTTP: srv.Client(), Clock: clock})
	acct := provider.Account{ConnectionID: "c", Credentials: sim.Credentials()[0]}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ { // 16 points: under the maximum without any decay
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := ad.Balances(context.Background(), acct); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if st := sim.Stats(); st.InvalidNonces != 0 || st.Requests != 16 {
		t.Fatalf("%d requests, %d invalid nonces", st.Requests, st.InvalidNonces)
	}
}

// noLimit sends every call at once.
type noLimit struct{}

func (noLimit) Wait(context.Context, string, int) error { return nil }
func (noLimit) Observe(string, int, http.Header)        {}

// The simulator enforces Kraken's counter: without the limiter, a burst is refused with
// EAPI:Rate limit exceeded (and the client recovers by waiting); with it, never.
func TestRateLimitEnforced(t *testing.T) {
	// At 200× the burst outruns the decay; retries wait 30 ms of real time.
	e := newEnvAt(t, 200, 50, func(o *kraken.Options) { o.Limiter = noLimit{} })
	for i := 0; i < 15; i++ {
		if err := e.read(t, nil, 0).err; err != nil {
			t.Fatal(err)
		}
	}
	if st := e.sim.Stats(); st.RateLimitErrors == 0 {
		t.Fatal("a burst of 30 Ledgers calls was not refused")
	}
}
