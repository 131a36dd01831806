package syncer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/internal/pgtest"
	"github.com/opencalico/opencalico/price"
	pricesim "github.com/opencalico/opencalico/price/sim"
	"github.com/opencalico/opencalico/provider"
	"github.com/opencalico/opencalico/provider/binance"
	"github.com/opencalico/opencalico/provider/coinbase"
	"github.com/opencalico/opencalico/provider/kraken"
	binancesim "github.com/opencalico/opencalico/provider/sim/binance"
	coinbasesim "github.com/opencalico/opencalico/provider/sim/coinbase"
	krakensim "github.com/opencalico/opencalico/provider/sim/kraken"
	"github.com/opencalico/opencalico/secrets"
	"github.com/opencalico/opencalico/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// world is a store, the three exchange simulators with adapters pointed at them on one fast
// clock, and a sealer: everything an engine needs.
type world struct {
	store    *store.Store
	sealer   *secrets.Sealer
	adapters *provider.Registry
	binance  *binancesim.Simulator
	kraken   *krakensim.Simulator
	coinbase *coinbasesim.Simulator
	creds    map[opencalico.ProviderID]map[string]string
	user     *opencalico.User
}

func newWorld(t *testing.T, d store.Dialect) *world {
	t.Helper()
	ctx := context.Background()
	var (
		st  *store.Store
		err error
	)
	if d == store.Postgres {
		st, err = store.Open(ctx, pgtest.URL(t), "")
	} else {
		st, err = store.Open(ctx, "", t.TempDir())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, st); err != nil {
		t.Fatal(err)
	}
	ring, err := secrets.NewKeyring(secrets.GenerateMasterKey())
	if err != nil {
		t.Fatal(err)
	}
	// Kraken's simulator and adapter share a clock 500 times faster than the wall clock, so
	// that its decaying counter lets a full ledger through in seconds instead of minutes.
	// Binance and Coinbase keep the wall clock: their limits are never reached here, and a
	// fast clock would shrink Binance's recvWindow and Coinbase's two-minute JWTs to a few
	// milliseconds, which a loaded machine misses.
	clock := provider.NewScaledClock(time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), 500)
	wall := provider.RealClock{}
	w := &world{store: st, sealer: secrets.NewSealer(ring), creds: map[opencalico.ProviderID]map[string]string{}}
	w.binance = binancesim.New(binancesim.Options{Seed: 1, Clock: wall})
	w.kraken = krakensim.New(krakensim.Options{Seed: 2, Clock: clock, Events: 1500})
	w.coinbase = coinbasesim.New(coinbasesim.Options{Seed: 3, Clock: wall, Events: 1500})
	bs, ks, cs := httptest.NewServer(w.binance.Handler()), httptest.NewServer(w.kraken.Handler()), httptest.NewServer(w.coinbase.Handler())
	t.Cleanup(func() { bs.Close(); ks.Close(); cs.Close() })
	fast := 50 * time.Millisecond
	w.adapters = provider.NewRegistry(
		binance.New(binance.Options{BaseURL: bs.URL, Clock: wall, BaseDelay: fast}),
		kraken.New(kraken.Options{BaseURL: ks.URL, Clock: clock, BaseDelay: fast}),
		coinbase.New(coinbase.Options{BaseURL: cs.URL, Clock: wall, BaseDelay: fast}),
	)
	w.creds["binance"] = w.binance.Credentials()[0]
	w.creds["kraken"] = w.kraken.Credentials()[0]
	w.creds["coinbase"] = w.coinbase.Credentials()[0]
	w.user = &opencalico.User{Email: "sync@example.com"}
	if err := st.CreateUser(ctx, w.user); err != nil {
		t.Fatal(err)
	}
	return w
}

// connect stores a connection of the provider with the simulator's good credentials.
func (w *world) connect(t *testing.T, p opencalico.ProviderID) *opencalico.Connection {
	t.Helper()
	c := &opencalico.Connection{ID: opencalico.NewID("conn"), UserID: w.user.ID, ProviderID: p,
		Type: opencalico.AuthAPIKey, Fingerprint: opencalico.NewID("fp")}
	sealed, err := w.sealer.SealCredentials(c.ID, w.creds[p])
	if err != nil {
		t.Fatal(err)
	}
	if err := w.store.CreateConnection(context.Background(), c, &sealed); err != nil {
		t.Fatal(err)
	}
	return c
}

func (w *world) engine(t *testing.T, cfg Config) *Engine {
	t.Helper()
	cfg.FetchPollInterval = 50 * time.Millisecond
	var logs io.Writer = io.Discard
	if testing.Verbose() {
		logs = os.Stderr
	}
	e, err := New(cfg, w.store, w.adapters, w.sealer, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.Stop(ctx)
	})
	return e
}

// waitFor polls the connection until done says so, failing after a minute.
func (w *world) waitFor(t *testing.T, id string, done func(*opencalico.Connection) bool) *opencalico.Connection {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		c, err := w.store.ConnectionByID(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if done(c) {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("connection %s still %s (%+v) after 90 s", id, c.Status, c.StatusDetail)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func synced(after time.Time) func(*opencalico.Connection) bool {
	return func(c *opencalico.Connection) bool {
		return c.Status == opencalico.StatusActive && c.TransactionsSyncedAt != nil && c.TransactionsSyncedAt.After(after)
	}
}

// snapshot is every transaction of a connection as id → content hash.
func (w *world) snapshot(t *testing.T, connID string) map[string]string {
	t.Helper()
	out := map[string]string{}
	var after *store.TransactionKey
	for {
		page, err := w.store.ListTransactions(context.Background(), store.TransactionFilter{
			UserID: w.user.ID, ConnectionIDs: []string{connID}, Limit: 100, After: after, Order: store.Asc})
		if err != nil {
			t.Fatal(err)
		}
		for _, tx := range page {
			if _, dup := out[tx.ExternalID]; dup {
				t.Fatalf("transaction %s listed twice", tx.ExternalID)
			}
			out[tx.ExternalID] = tx.ContentHash()
		}
		if len(page) < 100 {
			return out
		}
		k := store.TransactionKeyOf(page[len(page)-1])
		after = &k
	}
}

var backends = []store.Dialect{store.SQLite, store.Postgres}

// TestSyncEveryExchange syncs a seeded account of each exchange through the engine: the whole
// history is stored, reconciliation holds exactly, and a second sync adds nothing.
func TestSyncEveryExchange(t *testing.T) {
	for _, d := range backends {
		t.Run(string(d), func(t *testing.T) {
			w := newWorld(t, d)
			e := w.engine(t, Config{Workers: 4})
			ctx := context.Background()
			start := time.Now().Add(-time.Second)
			conns := map[opencalico.ProviderID]*opencalico.Connection{}
			for _, p := range []opencalico.ProviderID{"binance", "kraken", "coinbase"} {
				conns[p] = w.connect(t, p)
				if err := e.Enqueue(ctx, conns[p].ID); err != nil {
					t.Fatal(err)
				}
			}
			first := map[opencalico.ProviderID]map[string]string{}
			for p, c := range conns {
				got := w.waitFor(t, c.ID, synced(start))
				if len(got.StatusDetail.Mismatches) > 0 || len(got.StatusDetail.Incomplete) > 0 {
					t.Errorf("%s: %+v", p, got.StatusDetail)
				}
				if got.AssetsSyncedAt == nil {
					t.Errorf("%s: balances never synced", p)
				}
				first[p] = w.snapshot(t, c.ID)
				if len(first[p]) < 1000 {
					t.Errorf("%s: only %d transactions", p, len(first[p]))
				}
				positions, err := w.store.ListPositions(ctx, store.PositionFilter{UserID: w.user.ID, ConnectionIDs: []string{c.ID}, Limit: 1000})
				if err != nil || len(positions) == 0 {
					t.Errorf("%s: positions %v %v", p, positions, err)
				}
			}
			head, err := w.store.Changes(ctx, store.ChangesFilter{UserID: w.user.ID, Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			_ = head
			// The second sync reads again (open windows, pending rows) but adds nothing.
			second := time.Now()
			for _, c := range conns {
				if err := e.Enqueue(ctx, c.ID); err != nil {
					t.Fatal(err)
				}
			}
			for p, c := range conns {
				got := w.waitFor(t, c.ID, synced(second))
				if len(got.StatusDetail.Mismatches) > 0 {
					t.Errorf("%s after the second sync: %+v", p, got.StatusDetail)
				}
				again := w.snapshot(t, c.ID)
				if len(again) != len(first[p]) {
					t.Errorf("%s: %d transactions after the second sync, %d after the first", p, len(again), len(first[p]))
				}
				for id, h := range first[p] {
					if again[id] != h {
						t.Errorf("%s: transaction %s changed on a re-sync", p, id)
						break
					}
				}
			}
			for name, n := range map[string]int64{"binance": w.binance.RateLimitErrors()} {
				if n != 0 {
					t.Errorf("%s answered %d rate-limit errors", name, n)
				}
			}
			if n := w.kraken.Stats().RateLimitErrors; n != 0 {
				t.Errorf("kraken answered %d rate-limit errors", n)
			}
		})
	}
}

// TestResumeAfterCrashBetweenPages fails a history job after a few pages, as a worker that
// died would, and checks that the retried job ends with exactly the rows of a sync that was
// never interrupted.
func TestResumeAfterCrashBetweenPages(t *testing.T) {
	for _, d := range backends {
		t.Run(string(d), func(t *testing.T) {
			w := newWorld(t, d)
			ctx := context.Background()
			start := time.Now().Add(-time.Second)
			crashing := w.connect(t, "kraken")
			var pages, crashes atomic.Int32
			errCrash := errors.New("worker killed between pages")
			e := w.engine(t, Config{Workers: 2, AfterPage: func(connID string, p provider.Page) error {
				if connID == crashing.ID && pages.Add(1) == 7 {
					crashes.Add(1)
					return errCrash
				}
				return nil
			}})
			if err := e.Enqueue(ctx, crashing.ID); err != nil {
				t.Fatal(err)
			}
			got := w.waitFor(t, crashing.ID, synced(start))
			if crashes.Load() != 1 {
				t.Fatalf("%d crashes", crashes.Load())
			}
			if len(got.StatusDetail.Mismatches) > 0 {
				t.Fatalf("after resuming: %+v", got.StatusDetail)
			}
			resumed := w.snapshot(t, crashing.ID)

			clean := w.connect(t, "kraken")
			if err := e.Enqueue(ctx, clean.ID); err != nil {
				t.Fatal(err)
			}
			w.waitFor(t, clean.ID, synced(start))
			want := w.snapshot(t, clean.ID)
			if len(resumed) != len(want) {
				t.Fatalf("resumed sync has %d transactions, uninterrupted %d", len(resumed), len(want))
			}
			for ext, h := range want {
				if resumed[ext] != h {
					t.Fatalf("transaction %s differs after resuming", ext)
				}
			}
		})
	}
}

// TestRevokedKeyNeedsReauth checks that a refused key stops the sync at once, without
// retries, and says what the user must do.
func TestRevokedKeyNeedsReauth(t *testing.T) {
	w := newWorld(t, store.SQLite)
	ctx := context.Background()
	c := w.connect(t, "binance")
	w.binance.Revoke(0)
	e := w.engine(t, Config{Workers: 2})
	if err := e.Enqueue(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	got := w.waitFor(t, c.ID, func(c *opencalico.Connection) bool { return c.Status == opencalico.StatusReauthRequired })
	if got.StatusDetail.Cause != opencalico.EReauthRequired {
		t.Fatalf("detail %+v", got.StatusDetail)
	}
	before := w.binance.Requests()
	time.Sleep(2 * time.Second) // River's first retry would come within a second or two
	if after := w.binance.Requests(); after != before {
		t.Fatalf("the refused key was tried again: %d requests, then %d", before, after)
	}
	if before > 2 { // the clock offset and the account call
		t.Fatalf("%d requests for a refused key", before)
	}
}

// TestOutageIsRetriedAndRecovers makes the exchange fail for longer than the client's own
// retries last: the job fails, shows the error on the connection, and a later attempt of
// River's recovers.
func TestOutageIsRetriedAndRecovers(t *testing.T) {
	w := newWorld(t, store.SQLite)
	ctx := context.Background()
	c := w.connect(t, "coinbase")
	w.coinbase.Inject(coinbasesim.Fault{Kind: coinbasesim.Fault5xx, Path: "/v2/accounts", Times: 12})
	e := w.engine(t, Config{Workers: 2})
	start := time.Now()
	if err := e.Enqueue(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	got := w.waitFor(t, c.ID, synced(start))
	if !got.StatusDetail.IsZero() {
		t.Fatalf("detail after recovery %+v", got.StatusDetail)
	}
	if n := len(w.snapshot(t, c.ID)); n < 1000 {
		t.Fatalf("%d transactions after recovery", n)
	}
}

func TestReconcile(t *testing.T) {
	d := func(s string) decimalT { return mustDec(s) }
	positions := []opencalico.Position{{AssetSymbol: "BTC", Quantity: d("1.5")}, {AssetSymbol: "ETH", Quantity: d("2")}}
	net := map[string]decimalT{"BTC": d("1.50"), "ETH": d("1.9"), "DOT": d("0.1")}
	got := reconcile(positions, net)
	var names []string
	for _, m := range got {
		names = append(names, fmt.Sprintf("%s:%s", m.AssetSymbol, m.Difference))
	}
	sort.Strings(names)
	if fmt.Sprint(names) != "[DOT:0.1 ETH:-0.1]" {
		t.Fatalf("mismatches %v", names)
	}
}

// TestLongSyncRunsInSlices gives jobs a timeout shorter than a full history read: the read
// stops between pages, is queued again, and goes on where it stopped until it is complete.
func TestLongSyncRunsInSlices(t *testing.T) {
	w := newWorld(t, store.SQLite)
	ctx := context.Background()
	c := w.connect(t, "kraken")
	slow := func(string, provider.Page) error { time.Sleep(30 * time.Millisecond); return nil }
	e := w.engine(t, Config{Workers: 2, JobTimeout: 500 * time.Millisecond, AfterPage: slow})
	events, stop := e.Subscribe()
	defer stop()
	var snoozes atomic.Int32
	go func() {
		for ev := range events {
			if ev.Kind == "job_snoozed" {
				snoozes.Add(1)
			}
		}
	}()
	start := time.Now()
	if err := e.Enqueue(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	got := w.waitFor(t, c.ID, synced(start))
	if snoozes.Load() == 0 {
		t.Fatal("the history read was never sliced")
	}
	if len(got.StatusDetail.Mismatches) > 0 || len(got.StatusDetail.Incomplete) > 0 {
		t.Fatalf("after %d slices: %+v", snoozes.Load(), got.StatusDetail)
	}
	if n := len(w.snapshot(t, c.ID)); n != 1500 {
		t.Fatalf("%d transactions after %d slices, want 1500", n, snoozes.Load())
	}
}

func TestQueueMigrationsCurrent(t *testing.T) {
	for _, d := range backends {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			var (
				st  *store.Store
				err error
			)
			if d == store.Postgres {
				st, err = store.Open(ctx, pgtest.URL(t), "")
			} else {
				st, err = store.Open(ctx, "", t.TempDir())
			}
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if err := st.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			if ok, err := MigrationsCurrent(ctx, st); err != nil || ok {
				t.Fatalf("before migrating the queue: current=%v err=%v", ok, err)
			}
			if err := Migrate(ctx, st); err != nil {
				t.Fatal(err)
			}
			if ok, err := MigrationsCurrent(ctx, st); err != nil || !ok {
				t.Fatalf("after migrating the queue: current=%v err=%v", ok, err)
			}
		})
	}
}

// TestSyncFillsValues runs a sync with a price valuer: the history pages queue the prices they
// need, the fill job fetches them, and the stored transactions and positions then carry fiat
// values.
func TestSyncFillsValues(t *testing.T) {
	w := newWorld(t, store.SQLite)
	ctx := context.Background()
	psim := pricesim.New(pricesim.Options{CallsPerMinute: 10_000})
	ps := httptest.NewServer(psim)
	t.Cleanup(ps.Close)
	valuer := price.New(price.Options{Source: price.NewCoinGecko(price.CoinGeckoOptions{BaseURL: ps.URL, CallsPerMinute: 10_000}), Store: w.store})
	c := w.connect(t, "kraken")
	e := w.engine(t, Config{Workers: 2, Valuer: valuer})
	start := time.Now()
	if err := e.Enqueue(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	w.waitFor(t, c.ID, synced(start))
	deadline := time.Now().Add(60 * time.Second)
	for {
		txns, err := w.store.ListTransactions(ctx, store.TransactionFilter{UserID: w.user.ID, ConnectionIDs: []string{c.ID}, Limit: 200})
		if err != nil {
			t.Fatal(err)
		}
		values, err := valuer.ValueTransactions(ctx, txns, "EUR")
		if err != nil {
			t.Fatal(err)
		}
		valued, legs := 0, 0
		for _, v := range values {
			for _, x := range append(append([]*price.Value{}, v.Inputs...), v.Outputs...) {
				legs++
				if x != nil {
					valued++
					if x.Currency != "EUR" || x.Amount.IsNegative() {
						t.Fatalf("value %+v", x)
					}
				}
			}
		}
		if legs > 0 && valued*2 >= legs {
			positions, err := w.store.ListPositions(ctx, store.PositionFilter{UserID: w.user.ID, ConnectionIDs: []string{c.ID}, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			pv, err := valuer.ValuePositions(ctx, positions, "USD")
			if err != nil {
				t.Fatal(err)
			}
			known := 0
			for _, v := range pv {
				if v.Value != nil {
					known++
				}
			}
			if known*2 < len(positions) {
				if time.Now().Before(deadline) {
					time.Sleep(200 * time.Millisecond)
					continue
				}
				t.Fatalf("only %d of %d positions valued", known, len(positions))
			}
			t.Logf("%d of %d legs valued in EUR, %d of %d positions in USD", valued, legs, known, len(positions))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d legs valued after a minute", valued, legs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestRefreshDuringARunningSyncGetsItsOwn: a sync asked for while one is queued joins it, but
// one asked for while one runs (it may have read the provider already) is queued after it,
// once however many requests come during that run.
func TestRefreshDuringARunningSyncGetsItsOwn(t *testing.T) {
	for _, d := range backends {
		t.Run(string(d), func(t *testing.T) {
			w := newWorld(t, d)
			e, err := New(Config{InsertOnly: true}, w.store, w.adapters, w.sealer, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			c := w.connect(t, "kraken")
			queued := func() int {
				var n int
				q := `SELECT count(*) FROM river_job WHERE kind = 'sync.balances' AND state = 'available'`
				if err := w.store.DB().QueryRowContext(ctx, q).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			for range 2 {
				if err := e.Enqueue(ctx, c.ID); err != nil {
					t.Fatal(err)
				}
			}
			if n := queued(); n != 1 {
				t.Fatalf("two requests while queued: %d jobs, want 1", n)
			}
			// The job starts (as a worker would mark it).
			if _, err := w.store.DB().ExecContext(ctx, `UPDATE river_job SET state = 'running' WHERE kind = 'sync.balances'`); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				if err := e.Enqueue(ctx, c.ID); err != nil {
					t.Fatal(err)
				}
			}
			if n := queued(); n != 1 {
				t.Fatalf("three requests while one runs: %d jobs queued, want 1 to follow it", n)
			}
		})
	}
}
