package syncer

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
	"github.com/opencalico/opencalico/provider/ethereum"
	etherscansim "github.com/opencalico/opencalico/provider/sim/etherscan"
	"github.com/opencalico/opencalico/store"
)

// BenchmarkWalletsUnderKeyLimit syncs many Ethereum wallets at once through the engine, on
// SQLite, against the Etherscan simulator enforcing the free key's limit of 3 requests a
// second for the whole key, and compares the simulated time the syncs took with the least
// that limit allows for the requests the simulator served. It fails on any rate-limit
// error, on a wallet whose history does not reconcile or is short, or when the syncs take
// more than 15 % over the minimum.
//
// The minimum: a key allowed 3 requests in any second can answer its first 3 at once and
// each further 3 a second later, so N requests span at least (N − 3) / 3 seconds from the
// first to the last. Elapsed time runs from the enqueue of the first wallet to the instant
// the last one was stamped synced, so it includes the engine's own work (job pickup, storing
// 100,000 transactions, reconciliation and transfer linking).
//
// Sizes (defaults 100 wallets × 1,000 transactions) and the clock factor (default 4: the
// limit's 133 simulated seconds take about 33 wall seconds, which is still more than the
// engine needs to store the rows) are overridable:
//
//	OPENCALICO_BENCH_WALLETS=20 OPENCALICO_BENCH_WALLET_TXS=200 go test -run '^$' -bench WalletsUnderKeyLimit ./syncer/
func BenchmarkWalletsUnderKeyLimit(b *testing.B) {
	wallets := benchEnvInt(b, "OPENCALICO_BENCH_WALLETS", 100)
	txs := benchEnvInt(b, "OPENCALICO_BENCH_WALLET_TXS", 1000)
	factor := benchEnvFloat(b, "OPENCALICO_BENCH_WALLET_CLOCK_FACTOR", 4)
	var runs []rateRun
	for range b.N {
		x := walletsRateRun(b, factor, wallets, txs)
		checkRatio(b, x)
		runs = append(runs, x)
	}
	reportRateRuns(b, "rpc_calls", runs)
	b.ReportMetric(float64(wallets*txs), "txns_per_run")
}

func walletsRateRun(b *testing.B, factor float64, wallets, txs int) rateRun {
	b.Helper()
	ctx := context.Background()
	clock := newSimClock(factor)
	sim := etherscansim.NewBenchmark(1, clock, wallets, txs)
	srv := httptest.NewServer(sim.Handler())
	b.Cleanup(srv.Close)
	rtt := &rttTransport{clock: clock}
	// The nodes' JSON-RPC (head block, balances) has a limit of its own, not the key's: it is
	// left wide here so that the figure is the Etherscan key's alone.
	adapter := ethereum.New(ethereum.Options{BaseURL: srv.URL, APIKey: sim.APIKey(), Clock: clock,
		HTTP:                 &http.Client{Transport: rtt},
		RPCURL:               func(chain string) string { return srv.URL + "/rpc/" + chain },
		RPCRequestsPerSecond: 10_000, BaseDelay: 50 * time.Millisecond})
	w := newBenchWorld(b, provider.NewRegistry(adapter))
	conns := make([]*opencalico.Connection, wallets)
	for i := range conns {
		c := &opencalico.Connection{ID: opencalico.NewID("conn"), UserID: w.user.ID, ProviderID: ethereum.ProviderID,
			Type: opencalico.AuthWallet, Fingerprint: opencalico.NewID("fp"), Address: sim.Wallet(i), Chain: "ethereum"}
		if err := w.store.CreateConnection(ctx, c, nil); err != nil {
			b.Fatal(err)
		}
		conns[i] = c
	}
	e := benchEngine(b, w, Config{Workers: 16, FetchPollInterval: benchPoll})

	b.ResetTimer()
	wallStart := time.Now()
	start := clock.Now()
	for _, c := range conns {
		if err := e.Enqueue(ctx, c.ID); err != nil {
			b.Fatal(err)
		}
	}
	var end time.Time
	for i, c := range conns {
		got := benchWait(b, w, c.ID, 20*time.Millisecond, 20*time.Minute, synced(wallStart.Add(-time.Millisecond)))
		if len(got.StatusDetail.Mismatches) > 0 || len(got.StatusDetail.Incomplete) > 0 {
			b.Errorf("wallet %d: %+v", i, got.StatusDetail)
		}
		if at := clock.at(*got.TransactionsSyncedAt); at.After(end) {
			end = at
		}
	}
	b.StopTimer()
	// Counted once every wallet is done, so that the check takes nothing from the syncs.
	total := 0
	for i, c := range conns {
		n, err := countTransactions(ctx, w.store, w.user.ID, c.ID)
		if err != nil {
			b.Fatal(err)
		}
		if want := sim.Truth("ethereum", i).Count; n != want {
			b.Errorf("wallet %d: %d transactions stored, the simulator has %d", i, n, want)
		}
		total += n
	}
	st := sim.Stats()
	rtt.mu.Lock()
	first, last, inFlight := rtt.first, rtt.last, rtt.sum
	rtt.mu.Unlock()
	x := rateRun{
		elapsed:         end.Sub(start),
		minimum:         time.Duration(float64(max(st.Requests-3, 0)) / 3 * float64(time.Second)),
		requests:        int64(st.Requests),
		rateLimitErrors: int64(st.RateLimited),
		startup:         first.Sub(start),
		tail:            end.Sub(last),
		inFlight:        inFlight,
		cost:            st.RPCCalls,
	}
	b.Logf("%d wallets × %d transactions: %d stored; Etherscan requests %d (%.2f a wallet: %v), JSON-RPC %d requests carrying %d calls",
		wallets, txs, total, st.Requests, float64(st.Requests)/float64(wallets), st.ByAction, st.RPCRequests, st.RPCCalls)
	return x
}

// countTransactions counts a connection's stored transactions.
func countTransactions(ctx context.Context, st *store.Store, userID, connID string) (int, error) {
	n := 0
	var after *store.TransactionKey
	for {
		page, err := st.ListTransactions(ctx, store.TransactionFilter{UserID: userID, ConnectionIDs: []string{connID}, Limit: 1000, After: after, Order: store.Asc})
		if err != nil {
			return 0, fmt.Errorf("counting: %w", err)
		}
		n += len(page)
		if len(page) < 1000 {
			return n, nil
		}
		k := store.TransactionKeyOf(page[len(page)-1])
		after = &k
	}
}
