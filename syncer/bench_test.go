package syncer

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
	"github.com/opencalico/opencalico/provider/binance"
	"github.com/opencalico/opencalico/provider/kraken"
	binancesim "github.com/opencalico/opencalico/provider/sim/binance"
	krakensim "github.com/opencalico/opencalico/provider/sim/kraken"
	"github.com/opencalico/opencalico/secrets"
	"github.com/opencalico/opencalico/store"
)

// Benchmarks of the sync engine, on SQLite, against the simulators. Sizes are overridable for
// a quick smoke run, e.g.:
//
//	OPENCALICO_BENCH_KRAKEN_EVENTS=800 OPENCALICO_BENCH_BINANCE_TRADES=600 \
//	OPENCALICO_BENCH_LEDGER_ROWS=20000 go test -run '^$' -bench . ./syncer/
//
// The rig of syncer_test.go (newWorld, engine, waitFor) takes a *testing.T, which a benchmark
// does not have, so the helpers below build the same world for a testing.TB.

func benchEnvInt(b testing.TB, env string, def int) int {
	if v := os.Getenv(env); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			b.Fatalf("%s=%q: want a non-negative integer", env, v)
		}
		return n
	}
	return def
}

func benchEnvFloat(b testing.TB, env string, def float64) float64 {
	if v := os.Getenv(env); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			b.Fatalf("%s=%q: want a positive number", env, v)
		}
		return f
	}
	return def
}

// newBenchWorld is newWorld for a benchmark: a fresh migrated SQLite store, a sealer, a user,
// and the given adapters. The simulators are the caller's.
func newBenchWorld(b testing.TB, adapters *provider.Registry) *world {
	b.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "", b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	if err := Migrate(ctx, st); err != nil {
		b.Fatal(err)
	}
	ring, err := secrets.NewKeyring(secrets.GenerateMasterKey())
	if err != nil {
		b.Fatal(err)
	}
	w := &world{store: st, sealer: secrets.NewSealer(ring), adapters: adapters,
		creds: map[opencalico.ProviderID]map[string]string{}, user: &opencalico.User{Email: "bench@example.com"}}
	if err := st.CreateUser(ctx, w.user); err != nil {
		b.Fatal(err)
	}
	return w
}

// benchConnect stores a connection with the given credentials.
func benchConnect(b testing.TB, w *world, p opencalico.ProviderID, creds map[string]string) *opencalico.Connection {
	b.Helper()
	c := &opencalico.Connection{ID: opencalico.NewID("conn"), UserID: w.user.ID, ProviderID: p,
		Type: opencalico.AuthAPIKey, Fingerprint: opencalico.NewID("fp")}
	sealed, err := w.sealer.SealCredentials(c.ID, creds)
	if err != nil {
		b.Fatal(err)
	}
	if err := w.store.CreateConnection(context.Background(), c, &sealed); err != nil {
		b.Fatal(err)
	}
	return c
}

// benchEngine starts an engine with cfg as given (FetchPollInterval included), stopped when
// the benchmark ends. Logs go to stderr only with -v and at warning level, so that a slow
// run shows its failures without drowning the figures.
func benchEngine(b testing.TB, w *world, cfg Config) *Engine {
	b.Helper()
	var logs io.Writer = io.Discard
	if testing.Verbose() {
		logs = os.Stderr
	}
	e, err := New(cfg, w.store, w.adapters, w.sealer, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		b.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.Stop(ctx)
	})
	return e
}

// benchWait polls the connection every poll until done says so, failing after timeout.
func benchWait(b testing.TB, w *world, id string, poll, timeout time.Duration, done func(*opencalico.Connection) bool) *opencalico.Connection {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c, err := w.store.ConnectionByID(context.Background(), id)
		if err != nil {
			b.Fatal(err)
		}
		if done(c) {
			return c
		}
		if time.Now().After(deadline) {
			b.Fatalf("connection %s still %s (%+v) after %v", id, c.Status, c.StatusDetail, timeout)
		}
		time.Sleep(poll)
	}
}

// simClock maps wall-clock instants onto a ScaledClock: the engine stamps TransactionsSyncedAt
// with the wall clock, and the benchmark wants the simulated instant of it.
type simClock struct {
	*provider.ScaledClock
	wall0, sim0 time.Time
}

func newSimClock(factor float64) simClock {
	c := provider.NewScaledClock(time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), factor)
	wall0 := time.Now()
	return simClock{ScaledClock: c, wall0: wall0, sim0: c.Now()}
}

func (c simClock) at(wall time.Time) time.Time {
	return c.sim0.Add(time.Duration(float64(wall.Sub(c.wall0)) * c.Factor))
}

// rttTransport times every round trip of an adapter in simulated time: the first request
// sent, the last answer received, and the sum of the round trips.
type rttTransport struct {
	clock provider.Clock
	mu    sync.Mutex
	n     int
	first time.Time
	last  time.Time
	sum   time.Duration
	log   []rttEntry
}

// rttEntry is one round trip: when it was sent and answered (simulated), what, and the
// Binance weight header of the answer.
type rttEntry struct {
	sent, done time.Time
	path       string
	status     int
	used       string
}

func (t *rttTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	sent := t.clock.Now()
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		// The answer counts as received once its body is read: the adapter reads it whole.
		resp.Body = &rttBody{ReadCloser: resp.Body, t: t, sent: sent,
			e: rttEntry{path: r.URL.Path, status: resp.StatusCode, used: resp.Header.Get("X-MBX-USED-WEIGHT-1M")}}
	}
	return resp, err
}

type rttBody struct {
	io.ReadCloser
	t    *rttTransport
	sent time.Time
	e    rttEntry
	once sync.Once
}

func (b *rttBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(func() {
		now := b.t.clock.Now()
		b.t.mu.Lock()
		defer b.t.mu.Unlock()
		if b.t.n == 0 || b.sent.Before(b.t.first) {
			b.t.first = b.sent
		}
		if now.After(b.t.last) {
			b.t.last = now
		}
		b.t.sum += now.Sub(b.sent)
		b.e.sent, b.e.done = b.sent, now
		b.t.log = append(b.t.log, b.e)
		b.t.n++
	})
	return err
}

// rateRun is what one rate-limited sync measured, in simulated time.
type rateRun struct {
	elapsed, minimum time.Duration
	requests         int64
	rateLimitErrors  int64
	// startup is from the request to sync to the first request the adapter sent; tail from
	// the last answer to the connection marked synced; inFlight the sum of round trips.
	startup, tail, inFlight time.Duration
	cost                    int // Kraken counter points, or Binance weight
	// ownMinimum is Binance's minimum at the adapter's budget (the limit less its reserve).
	ownMinimum time.Duration
}

func reportRateRuns(b *testing.B, unit string, runs []rateRun) {
	var ratio, req, rle, elapsed, minimum, startup, tail, flight, cost float64
	for _, x := range runs {
		ratio += x.elapsed.Seconds() / x.minimum.Seconds()
		req += float64(x.requests)
		rle += float64(x.rateLimitErrors)
		elapsed += x.elapsed.Seconds()
		minimum += x.minimum.Seconds()
		startup += x.startup.Seconds()
		tail += x.tail.Seconds()
		flight += x.inFlight.Seconds()
		cost += float64(x.cost)
	}
	n := float64(len(runs))
	b.ReportMetric(ratio/n, "ratio")
	b.ReportMetric(elapsed/n, "sim_s")
	b.ReportMetric(minimum/n, "min_sim_s")
	b.ReportMetric(req/n, "requests")
	b.ReportMetric(rle/n, "ratelimit_errors")
	b.ReportMetric(cost/n, unit)
	b.Logf("elapsed %.1f s simulated, minimum %.1f s, ratio %.3f; %.0f requests, %.0f %s, %.0f rate-limit errors; "+
		"startup %.2f s, tail %.2f s, in flight %.1f s (simulated)",
		elapsed/n, minimum/n, ratio/n, req/n, cost/n, unit, rle/n, startup/n, tail/n, flight/n)
}

// checkRatio fails the benchmark when the sync took more than 15 % over the minimum the limit
// allows (OPENCALICO_BENCH_MAX_RATIO overrides the bound) or met a rate-limit error.
func checkRatio(b *testing.B, x rateRun) {
	if x.rateLimitErrors != 0 {
		b.Errorf("the simulator answered %d rate-limit errors", x.rateLimitErrors)
	}
	if limit := benchEnvFloat(b, "OPENCALICO_BENCH_MAX_RATIO", 1.15); x.elapsed.Seconds() > limit*x.minimum.Seconds() {
		b.Errorf("the sync took %.1f s simulated, %.3f × the minimum of %.1f s (bound %.2f)",
			x.elapsed.Seconds(), x.elapsed.Seconds()/x.minimum.Seconds(), x.minimum.Seconds(), limit)
	}
}

// benchPoll is the engine's FetchPollInterval in the rate-limit benchmark. The engine runs a
// sync as two River jobs (balances, then history), and on SQLite each waits for the next poll
// to be picked up: up to 2 × FetchPollInterval of wall time, which the scaled clock multiplies
// by its factor (200 ms, the default, would be 20 s simulated at × 50). 5 ms keeps that under
// half a simulated second, against a sync of many simulated minutes.
const benchPoll = 5 * time.Millisecond

// BenchmarkSyncUnderRateLimits syncs one account through the engine against a simulator that
// enforces the shape of the provider's real rate limit, on a clock scaled so that the run
// takes seconds, and compares the simulated time the sync took with the least the limit
// allows for the requests the simulator saw. It fails on any rate-limit error, or when the
// sync takes more than 15 % over that minimum.
//
// Kraken: a counter per key of at most 20 that decays 0.33 per second, Balance costing 1 and
// Ledgers 2 (the simulator's defaults, Kraken's starter tier). The counter starts empty, so
// the first 20 points are free and every further point takes 1/0.33 s: a sync whose calls
// cost C points in all cannot send its last call before (C − 20) / 0.33 s, however it spaces
// them (the counter just before the last call, of cost c, is at least C − c − 0.33 t and
// must be at most 20 − c).
//
// Binance: a weight budget per IP and calendar minute (WeightPerMinute, scaled down from 6000
// so that the sync spans several minutes), reset at each minute's turn as Binance's
// REQUEST_WEIGHT 1 MINUTE limit is. A sync spending W weight needs k = ⌈W / budget⌉ minutes'
// budgets; the first is the minute the sync starts in, so its last request cannot be sent
// before the start of the k-th: the minimum is the rest of the starting minute plus k − 2
// whole minutes (zero when k = 1). It is a lower bound even for requests of indivisible
// weight; the ones here (1 and 20 into a multiple of 20) pack exactly.
//
// Elapsed time runs from the Enqueue to the instant the engine stamped the connection synced,
// both in simulated time, so it includes the engine's own overhead (job pickup, storage).
func BenchmarkSyncUnderRateLimits(b *testing.B) {
	// The clock factors. Only the waits the limit imposes should count in simulated time, but
	// the engine's own work (an HTTP round trip, decoding, normalizing and storing a page, the
	// final reconciliation) takes wall time that the factor multiplies too. A Binance page is
	// up to 1000 trades, about 60 ms of work on a busy two-core machine, 3 s simulated at × 50:
	// the sync would be bound by its own work, not by the limit. × 10 makes it 0.6 s against
	// the 4 s of budget a weight-20 call uses at 300 a minute. A Kraken page is 50 rows, a few
	// ms, against the 6 s a Ledgers call must wait for the counter, so × 50 is fine there.
	krakenFactor := benchEnvFloat(b, "OPENCALICO_BENCH_KRAKEN_CLOCK_FACTOR", 50)
	binanceFactor := benchEnvFloat(b, "OPENCALICO_BENCH_BINANCE_CLOCK_FACTOR", 10)
	b.Run("kraken", func(b *testing.B) {
		events := benchEnvInt(b, "OPENCALICO_BENCH_KRAKEN_EVENTS", 4000)
		var runs []rateRun
		for range b.N {
			x := krakenRateRun(b, krakenFactor, events)
			checkRatio(b, x)
			runs = append(runs, x)
		}
		reportRateRuns(b, "counter_points", runs)
	})
	perMinute := benchEnvInt(b, "OPENCALICO_BENCH_BINANCE_WEIGHT_PER_MINUTE", 300)
	trades := benchEnvInt(b, "OPENCALICO_BENCH_BINANCE_TRADES", 60000)
	// Two settings of the adapter: its default, no fixed reserve (the limiter charges a
	// request to every minute the server may count it in: in flight at the turn, or within
	// the clock's uncertainty of it), checked against the limit itself; and an explicit
	// reserve of 5 % of the limit for other users of the IP, checked against the minimum at
	// its own budget (the limit less the reserve), which at 300 a minute fits one call of 20
	// fewer a minute.
	variants := []struct {
		name               string
		adapterPerMinute   int
		adapterReserve     int
		checkAgainstBudget bool
	}{
		{"default", perMinute, 0, false},
		{"reserve=5pct", perMinute, perMinute / 20, true},
	}
	for _, v := range variants {
		b.Run("binance/"+v.name, func(b *testing.B) {
			var runs []rateRun
			for range b.N {
				x := binanceRateRun(b, binanceFactor, perMinute, v.adapterPerMinute, v.adapterReserve, trades)
				check := x
				if v.checkAgainstBudget {
					check.minimum = x.ownMinimum
				}
				checkRatio(b, check)
				runs = append(runs, x)
			}
			reportRateRuns(b, "weight", runs)
			var own float64
			for _, x := range runs {
				own += x.elapsed.Seconds() / x.ownMinimum.Seconds()
			}
			b.ReportMetric(own/float64(len(runs)), "ratio_own_budget")
		})
	}
}

// syncOnce enqueues a sync of c and waits until the engine marks it synced, returning the
// connection and the simulated start and end of the sync.
func syncOnce(b *testing.B, w *world, e *Engine, c *opencalico.Connection, clock simClock) (*opencalico.Connection, time.Time, time.Time) {
	b.Helper()
	wallStart := time.Now()
	start := clock.Now()
	if err := e.Enqueue(context.Background(), c.ID); err != nil {
		b.Fatal(err)
	}
	got := benchWait(b, w, c.ID, 5*time.Millisecond, 5*time.Minute, synced(wallStart.Add(-time.Millisecond)))
	if len(got.StatusDetail.Mismatches) > 0 || len(got.StatusDetail.Incomplete) > 0 {
		b.Errorf("sync ended with %+v", got.StatusDetail)
	}
	return got, start, clock.at(*got.TransactionsSyncedAt)
}

func krakenRateRun(b *testing.B, factor float64, events int) rateRun {
	b.StopTimer()
	clock := newSimClock(factor)
	sim := krakensim.New(krakensim.Options{Seed: 2, Clock: clock, Events: events}) // 20, 0.33: the defaults
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()
	rtt := &rttTransport{clock: clock}
	ad := kraken.New(kraken.Options{BaseURL: srv.URL, Clock: clock, BaseDelay: 50 * time.Millisecond,
		HTTP: &http.Client{Transport: rtt}})
	w := newBenchWorld(b, provider.NewRegistry(ad))
	c := benchConnect(b, w, kraken.ProviderID, sim.Credentials()[0])
	e := benchEngine(b, w, Config{Workers: 2, FetchPollInterval: benchPoll})
	b.StartTimer()
	_, start, end := syncOnce(b, w, e, c, clock)
	b.StopTimer()

	st := sim.Stats()
	cost := 0
	for m, n := range st.ByMethod {
		switch m {
		case "Ledgers", "TradesHistory", "QueryLedgers":
			cost += 2 * n
		default:
			cost += n
		}
	}
	const maxCounter, decay = 20.0, 0.33
	minimum := time.Duration(max(0, float64(cost)-maxCounter) / decay * float64(time.Second))
	return rateRun{elapsed: end.Sub(start), minimum: minimum, requests: int64(st.Requests),
		rateLimitErrors: int64(st.RateLimitErrors), startup: rtt.first.Sub(start), tail: end.Sub(rtt.last),
		inFlight: rtt.sum, cost: cost}
}

// binanceWeights are the simulator's request weights (provider/sim/binance keeps them
// unexported; these must follow it).
var binanceWeights = map[string]int{
	"/api/v3/time":                      1,
	"/api/v3/exchangeInfo":              20,
	"/api/v3/account":                   20,
	"/api/v3/myTrades":                  20,
	"/sapi/v1/capital/deposit/hisrec":   1,
	"/sapi/v1/capital/withdraw/history": 1,
}

func binanceRateRun(b *testing.B, factor float64, perMinute, adapterPerMinute, reserve, trades int) rateRun {
	b.StopTimer()
	clock := newSimClock(factor)
	sim := binancesim.New(binancesim.Options{Seed: 1, Clock: clock, WeightPerMinute: perMinute, Trades: trades})
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()
	rtt := &rttTransport{clock: clock}
	ad := binance.New(binance.Options{BaseURL: srv.URL, Clock: clock, BaseDelay: 50 * time.Millisecond,
		WeightPerMinute: adapterPerMinute, WeightReserve: reserve, HTTP: &http.Client{Transport: rtt}})
	w := newBenchWorld(b, provider.NewRegistry(ad))
	c := benchConnect(b, w, binance.ID, sim.Credentials()[0])
	e := benchEngine(b, w, Config{Workers: 2, FetchPollInterval: benchPoll})
	b.StartTimer()
	_, start, end := syncOnce(b, w, e, c, clock)
	b.StopTimer()

	weight := 0
	for path, wt := range binanceWeights {
		weight += wt * int(sim.RequestsTo(path))
	}
	if known := func() int64 {
		var n int64
		for path := range binanceWeights {
			n += sim.RequestsTo(path)
		}
		return n
	}(); known != sim.Requests() || known != int64(len(rtt.log)) {
		b.Errorf("%d requests served, %d of them to paths of known weight, %d sent", sim.Requests(), known, len(rtt.log))
	}
	sort.Slice(rtt.log, func(i, j int) bool { return rtt.log[i].sent.Before(rtt.log[j].sent) })
	minimum, k := binanceMinimum(start, rtt.log, perMinute)
	if k < 2 {
		b.Fatalf("the sync spent %d weight, within one minute's budget of %d: make the budget smaller", weight, perMinute)
	}
	budget := adapterPerMinute - effectiveReserve(adapterPerMinute, reserve)
	ownMinimum, ownK := binanceMinimum(start, rtt.log, budget)
	b.Logf("binance: start at second %.1f of its minute; %d weight: %d minutes of %d (the limit), %d minutes of %d (the adapter's budget)",
		secondsOf(start, start), weight, k, perMinute, ownK, budget)
	if testing.Verbose() || end.Sub(start) > time.Duration(1.15*float64(minimum)) {
		b.Logf("at the adapter's own budget the minimum is %.1f s: ratio %.3f", ownMinimum.Seconds(), end.Sub(start).Seconds()/ownMinimum.Seconds())
		logMinutes(b, start, end, rtt.log)
	}
	return rateRun{elapsed: end.Sub(start), minimum: minimum, requests: sim.Requests(),
		rateLimitErrors: sim.RateLimitErrors(), startup: rtt.first.Sub(start), tail: end.Sub(rtt.last),
		inFlight: rtt.sum, cost: weight, ownMinimum: ownMinimum}
}

// binanceMinimum is the least simulated time from start in which the requests of log, in their
// order and with their weights, fit a budget per calendar minute: packed greedily (which is
// optimal for items kept in order), they need k minutes' budgets, the first being start's
// own minute, so the last request cannot go before the k-th minute begins.
func binanceMinimum(start time.Time, log []rttEntry, budget int) (time.Duration, int) {
	k, used := 1, 0
	for _, e := range log {
		w := binanceWeights[e.path]
		if used+w > budget && used > 0 {
			k++
			used = 0
		}
		used += w
	}
	if k < 2 {
		return 0, k
	}
	next := start.Truncate(time.Minute).Add(time.Minute)
	return next.Sub(start) + time.Duration(k-2)*time.Minute, k
}

// logMinutes says, per simulated minute of a Binance sync, the weight sent in it, when its
// first and last requests were sent, and the highest weight the simulator reported — where
// the time of a slow sync went.
func logMinutes(b *testing.B, start, end time.Time, log []rttEntry) {
	type minute struct {
		weight, requests int
		first, last      time.Time
		used             int
	}
	byMinute := map[int64]*minute{}
	var order []int64
	for _, e := range log {
		m := e.sent.Unix() / 60
		x := byMinute[m]
		if x == nil {
			x = &minute{first: e.sent}
			byMinute[m] = x
			order = append(order, m)
		}
		x.weight += binanceWeights[e.path]
		x.requests++
		x.last = e.sent
		if u, err := strconv.Atoi(e.used); err == nil {
			x.used = max(x.used, u)
		}
	}
	b.Logf("sync from second %.1f to %.1f (simulated, from the start's minute)", secondsOf(start, start), secondsOf(start, end))
	for _, m := range order {
		x := byMinute[m]
		b.Logf("  minute %d: %3d requests, %4d weight (server count up to %d), sent from second %.1f to %.1f",
			m-start.Unix()/60, x.requests, x.weight, x.used, secondsOf(start, x.first), secondsOf(start, x.last))
	}
}

// secondsOf is t in seconds after the start of the minute of start.
func secondsOf(start, t time.Time) float64 {
	return t.Sub(start.Truncate(time.Minute)).Seconds()
}

// effectiveReserve is the reserve binance.NewWeightLimiter keeps for a given option: none
// unless 0 < reserve < perMinute.
func effectiveReserve(perMinute, reserve int) int {
	if reserve < 0 || reserve >= perMinute {
		return 0
	}
	return reserve
}

// procStatusKiB reads a field of /proc/self/status in KiB (VmHWM: peak RSS; VmRSS).
func procStatusKiB(field string) (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if ok && name == field {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/self/status", field)
}

// resetPeakRSS makes VmHWM start again from the current RSS (Linux: clear_refs 5).
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// memSample is the process's memory when txns transactions had been stored.
type memSample struct {
	txns         int
	hwmKiB       int64
	rssKiB       int64
	heapInuseKiB int64
	goSysKiB     int64 // all the memory the Go runtime holds; RSS beyond it is SQLite's (C memory)
}

// BenchmarkLedgerMillionRows syncs a Kraken ledger of OPENCALICO_BENCH_LEDGER_ROWS rows (one
// million by default) through the engine, without a rate limit, and shows that memory stays
// flat: peak RSS (VmHWM, reset when the sync starts) and the Go heap in use, sampled while the
// sync runs, at a tenth of the ledger and at its end. It reports ledger rows/s and
// transactions/s of the sync, and the store's own insert rate of the same transactions in the
// same run: the transactions read back and stored into a fresh database through
// UpsertTransactions, 1000 a call (as store's BenchmarkStoreTransactions does).
//
// The simulator runs in a child process (benchsim_test.go): it holds the whole ledger in
// memory, which would otherwise be most of this process's RSS.
func BenchmarkLedgerMillionRows(b *testing.B) {
	rows := benchEnvInt(b, "OPENCALICO_BENCH_LEDGER_ROWS", 1_000_000)
	info := startKrakenSimChild(b, rows)
	b.Logf("simulator child: %d ledger rows (%d events) generated in %.1f s, its peak RSS %.0f MiB",
		info.Rows, info.Events, info.GenSeconds, float64(info.HWMKiB)/1024)
	var syncTime, storeTime time.Duration
	var txnsTotal int
	var first, last memSample
	var heapMax int64
	for range b.N {
		b.StopTimer()
		ad := kraken.New(kraken.Options{BaseURL: info.URL, MaxCounter: 1e12, DecayPerSecond: 1e12,
			BaseDelay: 50 * time.Millisecond})
		w := newBenchWorld(b, provider.NewRegistry(ad))
		c := benchConnect(b, w, kraken.ProviderID, info.Credentials)

		// Memory is sampled every sampleEvery stored transactions, from the engine's AfterPage.
		const sampleEvery = 5000
		var samples []memSample // appended by the engine's worker, read once the sync is done
		var samplesMu sync.Mutex
		var stored atomic.Int64
		next := int64(sampleEvery)
		sample := func(n int) memSample {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			hwm, _ := procStatusKiB("VmHWM")
			rss, _ := procStatusKiB("VmRSS")
			return memSample{txns: n, hwmKiB: hwm, rssKiB: rss, heapInuseKiB: int64(ms.HeapInuse / 1024), goSysKiB: int64(ms.Sys / 1024)}
		}
		after := func(_ string, p provider.Page) error {
			samplesMu.Lock()
			defer samplesMu.Unlock()
			if n := stored.Add(int64(len(p.Transactions))); n >= next {
				next += sampleEvery
				samples = append(samples, sample(int(n)))
			}
			return nil
		}
		e := benchEngine(b, w, Config{Workers: 2, AfterPage: after})
		runtime.GC()
		debug.FreeOSMemory()
		if !resetPeakRSS() {
			b.Log("cannot reset VmHWM: peaks include the set-up")
		}
		start := sample(0)

		b.StartTimer()
		wallStart := time.Now()
		if err := e.Enqueue(context.Background(), c.ID); err != nil {
			b.Fatal(err)
		}
		got := benchWait(b, w, c.ID, 50*time.Millisecond, 2*time.Hour, synced(wallStart.Add(-time.Millisecond)))
		syncTime += got.TransactionsSyncedAt.Sub(wallStart)
		b.StopTimer()
		end := sample(int(stored.Load()))
		samplesMu.Lock()
		defer samplesMu.Unlock() // the engine is stopped by the cleanups; no page comes after the sync
		if len(got.StatusDetail.Mismatches) > 0 || len(got.StatusDetail.Incomplete) > 0 {
			b.Errorf("sync ended with %+v", got.StatusDetail)
		}
		var count int
		if err := w.store.DB().QueryRow(`SELECT COUNT(*) FROM transactions WHERE connection_id = ?`, c.ID).Scan(&count); err != nil {
			b.Fatal(err)
		}
		if int64(count) != stored.Load() {
			b.Errorf("%d transactions stored, %d handed over", count, stored.Load())
		}
		txnsTotal += count

		// The sample at a tenth of the ledger, and the end; the heap's highest sample.
		first, last = end, end
		for _, s := range samples {
			if s.txns >= count/10 {
				first = s
				break
			}
		}
		for _, s := range samples {
			heapMax = max(heapMax, s.heapInuseKiB)
		}
		b.Logf("memory at the start: RSS %.0f MiB, heap %.0f MiB", float64(start.rssKiB)/1024, float64(start.heapInuseKiB)/1024)
		for i, s := range samples {
			if i%max(1, len(samples)/10) == 0 || i == len(samples)-1 {
				b.Logf("after %7d transactions: peak RSS %4.0f MiB, RSS %4.0f MiB, heap in use %4.0f MiB, Go runtime total %4.0f MiB",
					s.txns, float64(s.hwmKiB)/1024, float64(s.rssKiB)/1024, float64(s.heapInuseKiB)/1024, float64(s.goSysKiB)/1024)
			}
		}

		storeTime += benchStoreBaseline(b, w, c.ID)
	}
	n := float64(b.N)
	b.ReportMetric(float64(info.Rows)*n/syncTime.Seconds(), "rows/s")
	b.ReportMetric(float64(txnsTotal)/syncTime.Seconds(), "txns/s")
	b.ReportMetric(float64(txnsTotal)/storeTime.Seconds(), "store_txns/s")
	b.ReportMetric(storeTime.Seconds()/syncTime.Seconds(), "sync/store")
	b.ReportMetric(float64(first.hwmKiB)/1024, "peakRSS_10pct_MiB")
	b.ReportMetric(float64(last.hwmKiB)/1024, "peakRSS_end_MiB")
	b.ReportMetric(float64(first.heapInuseKiB)/1024, "heap_10pct_MiB")
	b.ReportMetric(float64(heapMax)/1024, "heap_max_MiB")
}

// benchStoreBaseline reads the connection's transactions back and stores them into a fresh
// database through UpsertTransactions, 1000 a call, timing the stores only.
func benchStoreBaseline(b *testing.B, from *world, connID string) time.Duration {
	b.Helper()
	ctx := context.Background()
	to := newBenchWorld(b, from.adapters)
	c := benchConnect(b, to, kraken.ProviderID, map[string]string{"api_key": "x", "secret_key": "eA=="})
	runtime.GC()
	var took time.Duration
	var after *store.TransactionKey
	for {
		page, err := from.store.ListTransactions(ctx, store.TransactionFilter{
			UserID: from.user.ID, ConnectionIDs: []string{connID}, Limit: 1000, After: after, Order: store.Asc})
		if err != nil {
			b.Fatal(err)
		}
		if len(page) == 0 {
			return took
		}
		k := store.TransactionKeyOf(page[len(page)-1])
		after = &k
		for _, t := range page {
			t.ID, t.ConnectionID, t.UserID = "", c.ID, to.user.ID
		}
		b.StartTimer()
		start := time.Now()
		if _, err := to.store.UpsertTransactions(ctx, page); err != nil {
			b.Fatal(err)
		}
		took += time.Since(start)
		b.StopTimer()
		if len(page) < 1000 {
			return took
		}
	}
}
