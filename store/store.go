// Package store keeps opencalico's state in a SQL database: SQLite for a single binary with no
// moving parts, PostgreSQL for several processes sharing one database.
//
// One Store serves both through database/sql. The SQL is written once, with `?` placeholders,
// and rewritten to `$n` for PostgreSQL; the two dialects differ only in their migrations
// (column types) and in the few places marked so in the code.
//
// Conventions that hold on both backends, so that the Go code never branches on them:
//   - times are BIGINT unix microseconds (UTC). Integers compare, index and page identically
//     everywhere, unlike SQLite's text dates versus PostgreSQL's TIMESTAMPTZ, and microseconds
//     are what PostgreSQL keeps anyway;
//   - amounts are exact decimals: TEXT on SQLite, NUMERIC on PostgreSQL; both scan into
//     decimal.Decimal, never through a float;
//   - secret material is BLOB/BYTEA, sealed before it reaches the store.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/opencalico/opencalico"
)

// Dialect names the SQL database behind a Store.
type Dialect string

// The supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DefaultSQLiteFile is the name of the database file made in the data directory when no
// database URL is given.
const DefaultSQLiteFile = "opencalico.db"

// Store is the database of opencalico. It is safe for concurrent use.
type Store struct {
	db      *sql.DB
	dialect Dialect
	pool    *pgxpool.Pool // PostgreSQL only; closed after db
	path    string        // SQLite only: the database file
	// now is the clock, replaceable in tests.
	now func() time.Time
}

// Open opens the database named by databaseURL, without migrating it (call Migrate):
//
//   - ""                               SQLite file <dataDir>/opencalico.db (dataDir made 0700)
//   - postgres://… or postgresql://…   PostgreSQL
//   - sqlite:PATH or file:PATH         SQLite file at PATH
//
// Errors never contain the URL's password: they may be logged or printed by `serve`.
func Open(ctx context.Context, databaseURL, dataDir string) (*Store, error) {
	switch {
	case databaseURL == "":
		if dataDir == "" {
			return nil, errors.New("store: no database URL and no data directory")
		}
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("store: making data directory: %w", err)
		}
		return openSQLite(ctx, filepath.Join(dataDir, DefaultSQLiteFile))
	case strings.HasPrefix(databaseURL, "postgres://"), strings.HasPrefix(databaseURL, "postgresql://"):
		return openPostgres(ctx, databaseURL)
	case strings.HasPrefix(databaseURL, "sqlite:"):
		return openSQLite(ctx, strings.TrimPrefix(strings.TrimPrefix(databaseURL, "sqlite:"), "//"))
	case strings.HasPrefix(databaseURL, "file:"):
		return openSQLite(ctx, strings.TrimPrefix(databaseURL, "file:"))
	}
	// Only the scheme is named: an unknown form may put a password anywhere.
	return nil, fmt.Errorf("store: unsupported database URL (scheme %q): use postgres://…, sqlite:PATH or file:PATH",
		urlScheme(databaseURL))
}

// urlScheme returns the scheme of a URL-like string, or "" when it has none.
func urlScheme(raw string) string {
	i := strings.IndexByte(raw, ':')
	if i <= 0 {
		return ""
	}
	for _, r := range raw[:i] {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.') {
			return ""
		}
	}
	return raw[:i]
}

// openSQLite opens the SQLite file at path. The pragmas make several connections cooperate:
// WAL lets readers run beside the writer, busy_timeout makes a writer wait instead of failing
// with SQLITE_BUSY, and _txlock=immediate takes the write lock at BEGIN, so that two writers
// never both read under a shared lock and then deadlock on upgrading it. A 64 MiB page cache per
// connection (the default is 2 MiB) keeps the indexes of a large transactions table in memory:
// transaction ids are hashes, so inserts land all over the primary key, and with the default
// cache storing 100,000 transactions ran at less than half the speed. synchronous(NORMAL) is
// the usual WAL setting: durable against a crash of the process, not of the machine.
func openSQLite(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("store: empty SQLite path")
	}
	if i := strings.IndexByte(path, '?'); i >= 0 {
		return nil, errors.New("store: SQLite path must not carry options; the store sets its own")
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("store: making database directory: %w", err)
		}
	}
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)" +
		"&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_pragma=cache_size(-65536)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: opening SQLite %s: %w", path, err)
	}
	s := &Store{db: db, dialect: SQLite, path: path, now: time.Now}
	if err := s.Ping(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: opening SQLite %s: %w", path, err)
	}
	return s, nil
}

// openPostgres opens a pgx pool and wraps it as a *sql.DB, so the same database/sql code path
// serves both backends while the pool stays available to pgx-native users (River's listener).
func openPostgres(ctx context.Context, databaseURL string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		// pgx's parse errors may quote the connection string; keep only our own words.
		return nil, fmt.Errorf("store: invalid PostgreSQL URL %q", redactURL(databaseURL))
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: connecting to PostgreSQL %s: %w", redactURL(databaseURL), scrub(err, cfg.ConnConfig.Password))
	}
	s := &Store{db: stdlib.OpenDBFromPool(pool), dialect: Postgres, pool: pool, now: time.Now}
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("store: connecting to PostgreSQL %s: %w", redactURL(databaseURL), scrub(err, cfg.ConnConfig.Password))
	}
	return s, nil
}

// redactURL replaces the password of a URL, so that the URL can appear in an error.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		// An unparsable URL may still hold a password; show only its scheme.
		if i := strings.Index(raw, ":"); i > 0 && i < 16 {
			return raw[:i] + ":…"
		}
		return "…"
	}
	return u.Redacted()
}

// scrub returns err, or a plain error without the password when err's text contains it.
func scrub(err error, password string) error {
	if err == nil || password == "" || !strings.Contains(err.Error(), password) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), password, "xxxxx"))
}

// Close closes the database.
func (s *Store) Close() error {
	err := s.db.Close()
	if s.pool != nil {
		s.pool.Close()
	}
	return err
}

// Ping checks that the database answers (for /readyz).
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// DB returns the underlying database, for code that must share it (the job queue).
func (s *Store) DB() *sql.DB { return s.db }

// Pool returns the pgx pool of a PostgreSQL store (for LISTEN/NOTIFY), nil on SQLite.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Dialect returns which database the store runs on.
func (s *Store) Dialect() Dialect { return s.dialect }

// InTx runs fn in one database transaction, committed if fn returns nil and rolled back
// otherwise. It lets other packages (the job queue) write in the same transaction as the data
// that caused the write.
func (s *Store) InTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// q rewrites a query written with `?` placeholders for the store's dialect. Queries in this
// package never contain a literal question mark, so a plain scan is enough.
func (s *Store) q(query string) string {
	if s.dialect != Postgres {
		return query
	}
	return rebindDollar(query)
}

func rebindDollar(query string) string {
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// valuesBuilder writes the placeholders of a multi-row VALUES list in the store's dialect,
// numbering PostgreSQL's parameters as it goes.
type valuesBuilder struct {
	b       strings.Builder
	dialect Dialect
	n       int
}

// row appends one row of cols placeholders.
func (v *valuesBuilder) row(cols int) {
	if v.n > 0 {
		v.b.WriteByte(',')
	}
	v.b.WriteByte('(')
	for i := 0; i < cols; i++ {
		if i > 0 {
			v.b.WriteByte(',')
		}
		v.n++
		if v.dialect == Postgres {
			v.b.WriteByte('$')
			v.b.WriteString(strconv.Itoa(v.n))
		} else {
			v.b.WriteByte('?')
		}
	}
	v.b.WriteByte(')')
}

// placeholders returns "?,?,?" for n values (rewritten later by q); n must be positive.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// micros converts a time to the stored form, unix microseconds.
func micros(t time.Time) int64 { return t.UnixMicro() }

// fromMicros converts a stored time back, in UTC.
func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// nullMicros stores an optional time as NULL or microseconds.
func nullMicros(t *time.Time) sql.NullInt64 {
	if t == nil || t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

// fromNullMicros reads an optional stored time.
func fromNullMicros(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMicros(v.Int64)
	return &t
}

// notFound is the error for a missing row. The message names the kind and id the caller
// asked for, which it already knows, and nothing else.
func notFound(kind, id string) error {
	return opencalico.Errorf(opencalico.ENotFound, "%s %q not found", kind, id)
}

// anyStrings converts values for a query's argument list.
func anyStrings[S ~string](values []S) []any {
	out := make([]any, len(values))
	for i, v := range values {
		out[i] = string(v)
	}
	return out
}
