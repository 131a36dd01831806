package store

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/internal/pgtest"
)

// Benchmark sizes, overridable for a quick smoke run:
//
//	OPENCALICO_BENCH_TXNS=2000 OPENCALICO_BENCH_LIST_TXNS=5000 go test -run '^$' -bench . ./store/
func benchSize(b *testing.B, env string, def int) int {
	if v := os.Getenv(env); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("%s=%q: want a positive integer", env, v)
		}
		return n
	}
	return def
}

// benchCallSize is the number of transactions per UpsertTransactions call: about one provider
// page, what a sync job stores at once.
const benchCallSize = 1000

// BenchmarkStoreTransactions stores N transactions (two legs and a fee each) through
// UpsertTransactions, and the same rows through a raw batched INSERT into the same tables (same
// statement sizes, one database transaction per call, no conflict handling, no RETURNING), in
// the same run, each into a fresh database. It reports rows/s of both and their ratio.
func BenchmarkStoreTransactions(b *testing.B) {
	n := benchSize(b, "OPENCALICO_BENCH_TXNS", 100_000)
	for _, d := range backends {
		b.Run(string(d), func(b *testing.B) {
			ctx := context.Background()
			var storeTime, rawTime time.Duration
			timeStore := func() {
				b.StopTimer()
				s, conn := benchStore(b, d)
				txns := benchTransactions(conn.ID, n)
				runtime.GC()
				b.StartTimer()
				start := time.Now()
				for i := 0; i < n; i += benchCallSize {
					if _, err := s.UpsertTransactions(ctx, txns[i:min(i+benchCallSize, n)]); err != nil {
						b.Fatal(err)
					}
				}
				storeTime += time.Since(start)
			}
			timeRaw := func() {
				b.StopTimer()
				s, conn := benchStore(b, d)
				txns := benchTransactions(conn.ID, n)
				runtime.GC()
				b.StartTimer()
				start := time.Now()
				for i := 0; i < n; i += benchCallSize {
					if err := rawInsert(ctx, s, conn.UserID, txns[i:min(i+benchCallSize, n)]); err != nil {
						b.Fatal(err)
					}
				}
				rawTime += time.Since(start)
			}
			// Alternate which goes first, so that neither always meets a warmer or colder
			// machine (file cache, WAL checkpoints, autovacuum of the previous run).
			for i := range b.N {
				if i%2 == 0 {
					timeRaw()
					timeStore()
				} else {
					timeStore()
					timeRaw()
				}
			}
			rows := float64(n * b.N)
			b.ReportMetric(rows/storeTime.Seconds(), "store_rows/s")
			b.ReportMetric(rows/rawTime.Seconds(), "raw_rows/s")
			b.ReportMetric(rawTime.Seconds()/storeTime.Seconds(), "store/raw")
		})
	}
}

// benchStore opens a fresh, migrated store with one user and one connection.
func benchStore(b *testing.B, d Dialect) (*Store, *opencalico.Connection) {
	s := openStore(b, d)
	u := mustUser(b, s, "bench@x")
	return s, mustConnection(b, s, u.ID, "kraken")
}

func benchTransactions(conn string, n int) []*opencalico.Transaction {
	txns := make([]*opencalico.Transaction, n)
	for i := range txns {
		txns[i] = trade(conn, "fill-"+strconv.Itoa(i), t0.Add(time.Duration(i)*time.Second), "0.0012345")
	}
	return txns
}

// rawInsert is the baseline: the same rows into the same tables with plain multi-row INSERTs of
// the same sizes, in one database transaction per call. It still derives the ids and hashes,
// which any writer must, but skips validation, the connection lookup, the change counter, the
// conflict clause and RETURNING.
func rawInsert(ctx context.Context, s *Store, userID string, txns []*opencalico.Transaction) error {
	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	now := micros(time.Now())
	for start := 0; start < len(txns); start += upsertBatch {
		chunk := txns[start:min(start+upsertBatch, len(txns))]
		v := valuesBuilder{dialect: s.dialect}
		args := make([]any, 0, len(chunk)*transactionInsertColumnCount)
		for _, t := range chunk {
			t.ID = opencalico.TransactionID(t.ConnectionID, t.ExternalID)
			v.row(transactionInsertColumnCount)
			args = append(args, t.ID, userID, t.ConnectionID, "kraken", t.ExternalID, string(t.Type),
				string(t.Categorization.Category), t.Categorization.Subcategory, t.Categorization.ProviderType,
				string(t.Status), micros(t.Timestamp), t.TxHash, HashKey(t.TxHash), t.Chain, t.FromAddress, t.ToAddress, t.Description,
				t.TransferID, t.ContentHash(), 1, 1, now, now)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO transactions (`+transactionInsertColumns+`) VALUES `+v.b.String(), args...); err != nil {
			return err
		}
		if err := s.insertLegs(ctx, tx, chunk); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// BenchmarkListTransactionsPage reads a 100-transaction page at the start and at the end of a
// user with N transactions (one million by default), newest first, and reports the time of
// each and their ratio, which keyset paging should keep near 1 at any depth.
func BenchmarkListTransactionsPage(b *testing.B) {
	n := benchSize(b, "OPENCALICO_BENCH_LIST_TXNS", 1_000_000)
	const page = 100
	for _, d := range backends {
		// The data set is built once per backend, in this parent benchmark, which runs once;
		// the sub-benchmark below runs b.N times over it.
		s, userID, deepKey := benchListData(b, d, n, page)
		b.Run(string(d), func(b *testing.B) {
			ctx := context.Background()
			var firstTime, deepTime time.Duration
			for range b.N {
				start := time.Now()
				first, err := s.ListTransactions(ctx, TransactionFilter{UserID: userID, Limit: page})
				firstTime += time.Since(start)
				if err != nil || len(first) != page || len(first[0].Fees) != 1 {
					b.Fatalf("first page: %d rows, %v", len(first), err)
				}
				start = time.Now()
				deep, err := s.ListTransactions(ctx, TransactionFilter{UserID: userID, Limit: page, After: &deepKey})
				deepTime += time.Since(start)
				if err != nil || len(deep) != min(page, n-1) || len(deep[0].Outputs) != 1 {
					b.Fatalf("deep page: %d rows, %v", len(deep), err)
				}
			}
			b.ReportMetric(float64(firstTime.Nanoseconds())/float64(b.N), "ns/first_page")
			b.ReportMetric(float64(deepTime.Nanoseconds())/float64(b.N), "ns/deep_page")
			b.ReportMetric(deepTime.Seconds()/firstTime.Seconds(), "deep/first")
		})
	}
}

// benchListData fills a fresh database with n transactions of one user, three legs each, in
// SQL (a recursive CTE or generate_series), and returns the key after which the last page
// of the newest-first listing starts.
func benchListData(b *testing.B, d Dialect, n, page int) (*Store, string, TransactionKey) {
	ctx := context.Background()
	var (
		s   *Store
		err error
	)
	switch d {
	case SQLite:
		s, err = Open(ctx, "", b.TempDir())
	case Postgres:
		var drop func() error
		var u string
		u, drop, err = pgtest.NewDatabase(ctx)
		if err == nil {
			b.Cleanup(func() { _ = drop() })
			s, err = Open(ctx, u, "")
		}
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	u := mustUser(b, s, "deep@x")
	c := mustConnection(b, s, u.ID, "kraken")
	base := micros(t0)
	start := time.Now()
	// Transaction i has id txn_<i, 10 digits> and timestamp t0 + i seconds.
	cols := `(id, user_id, connection_id, provider_id, external_id, type, category, subcategory, provider_type, status, ts,
		tx_hash, chain, from_address, to_address, description, transfer_id, content_hash, created_seq, change_seq, created_at, updated_at)`
	row := `'input_output', 'trade', 'buy', 'fill', 'confirmed', CAST(? AS BIGINT) + CAST(i AS BIGINT) * 1000000, '', '', '', '', '', '', 'hash', 1, 1, ?, ?`
	var insert string
	if d == SQLite {
		insert = `WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i + 1 < ?)
			INSERT INTO transactions ` + cols + ` SELECT printf('txn_%010d', i), ?, ?, 'kraken', 'ext' || i, ` + row + ` FROM seq`
	} else {
		insert = `INSERT INTO transactions ` + cols + ` SELECT 'txn_' || lpad(i::text, 10, '0'), ?, ?, 'kraken', 'ext' || i, ` +
			row + ` FROM generate_series(0, ? - 1) AS i`
	}
	args := []any{u.ID, c.ID, base, base, base}
	if d == SQLite {
		args = append([]any{n}, args...)
	} else {
		args = append(args, n)
	}
	if _, err := s.DB().ExecContext(ctx, s.q(insert), args...); err != nil {
		b.Fatalf("filling transactions: %v", err)
	}
	for _, leg := range []string{
		`SELECT id, 'in', 0, 'USD', '', '100.1', '', '' FROM transactions`,
		`SELECT id, 'out', 0, 'BTC', '', '0.0012345', 'addr', '' FROM transactions`,
		`SELECT id, 'fee', 0, 'USD', '', '0.25', '', 'trading' FROM transactions`,
	} {
		if d == Postgres {
			// PostgreSQL wants the text literal typed for the NUMERIC column.
			leg = replaceAmountLiteral(leg)
		}
		if _, err := s.DB().ExecContext(ctx, `INSERT INTO transaction_legs (transaction_id, side, position, asset_symbol, asset_id, amount, address, fee_kind) `+leg); err != nil {
			b.Fatalf("filling legs: %v", err)
		}
	}
	if _, err := s.DB().ExecContext(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	b.Logf("%s: %d transactions and %d legs made in %v", d, n, 3*n, time.Since(start).Round(time.Millisecond))
	// Newest first, the last page holds transactions page-1 … 0; it starts after transaction page.
	return s, u.ID, TransactionKey{Timestamp: fromMicros(base + int64(page)*1_000_000), ID: fmt.Sprintf("txn_%010d", page)}
}

// replaceAmountLiteral casts the amount literal of a legs SELECT for PostgreSQL.
func replaceAmountLiteral(q string) string {
	for _, a := range []string{"'100.1'", "'0.0012345'", "'0.25'"} {
		if i := strings.Index(q, a); i >= 0 {
			return q[:i] + a + "::numeric" + q[i+len(a):]
		}
	}
	return q
}
