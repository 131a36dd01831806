// Package syncer is the sync engine: it reads each connection's balances and history through
// its provider adapter and stores them, as River jobs in the application's own database.
//
// The package is not called "sync" so that it does not shadow the standard library's.
//
// A sync is two jobs per connection, one per stage: balances, then history (the balances job
// queues the history job in the transaction that stores the positions, so that
// reconciliation compares the history with fresh balances). Jobs are unique per connection
// and stage while waiting or running, and a lease on the connection row keeps any two jobs of
// one connection, in this process or another, from running at once. History pages are stored
// together with the cursor after them, in one database transaction, so that a worker that
// dies at any point resumes without losing or doubling a row.
package syncer

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"
	"github.com/shopspring/decimal"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/price"
	"github.com/opencalico/opencalico/provider"
	"github.com/opencalico/opencalico/secrets"
	"github.com/opencalico/opencalico/store"
)

// Config tunes the engine. The zero value works.
type Config struct {
	// Workers is how many jobs run at once in this process (default 10). Zero workers with
	// InsertOnly makes an engine that only queues (the api role).
	Workers    int
	InsertOnly bool
	// LeaseTTL is how long a connection stays claimed by a worker that stops renewing it (a
	// dead process). Default 60 s; the lease is renewed every third of it.
	LeaseTTL time.Duration
	// MaxAttempts is how many times a failing stage is tried (default 8), with River's
	// exponential backoff between attempts.
	MaxAttempts int
	// JobTimeout bounds one run of a job (default 10 min). A history read that takes longer
	// stops a little before it, with its pages and cursors stored, and is queued again at
	// once to go on where it stopped: long syncs proceed in slices, and a job is never
	// unbounded, which River needs in order to tell a dead worker's job from a slow one.
	JobTimeout time.Duration
	// RescueAfter is when River gives a job whose worker vanished to another (default
	// JobTimeout + 1 min; at least JobTimeout).
	RescueAfter time.Duration
	// FetchPollInterval is how often idle workers look for jobs where the database has no
	// notifications (SQLite). Default 200 ms.
	FetchPollInterval time.Duration
	// AfterPage, when set, is called after each stored page; an error fails the job as a
	// crash would. Tests use it to stop a sync between pages.
	AfterPage func(connectionID string, p provider.Page) error
	// Holder names this process in sync leases (default hostname:pid).
	Holder string
	// Valuer, when set, puts fiat values on what the syncs store (see prices.go);
	// PriceRefreshEvery is how often current prices are refreshed (default 5 min).
	Valuer            *price.Valuer
	PriceRefreshEvery time.Duration
}

func (c Config) withDefaults() Config {
	if c.Workers <= 0 {
		c.Workers = 10
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 60 * time.Second
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 8
	}
	if c.JobTimeout <= 0 {
		c.JobTimeout = 10 * time.Minute
	}
	if c.RescueAfter < c.JobTimeout {
		c.RescueAfter = c.JobTimeout + time.Minute
	}
	if c.FetchPollInterval <= 0 {
		c.FetchPollInterval = 200 * time.Millisecond
	}
	if c.Holder == "" {
		host, _ := os.Hostname()
		c.Holder = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	return c
}

// Engine queues and runs syncs.
type Engine struct {
	cfg      Config
	store    *store.Store
	adapters *provider.Registry
	sealer   *secrets.Sealer
	log      *slog.Logger
	river    *river.Client[*sql.Tx]
}

// Stage names a part of a sync.
type Stage string

// The stages.
const (
	StageBalances Stage = "balances"
	StageHistory  Stage = "history"
)

// balancesArgs and historyArgs are the two job kinds. Only the connection id is in the
// arguments: everything else is read fresh when the job runs.
type balancesArgs struct {
	ConnectionID string `json:"connection_id"`
	// FollowsJob, when set, is a sync that was running when this one was asked for: this
	// one runs after it (the connection's lease orders them), because the running one may
	// have read the provider before the request.
	FollowsJob int64 `json:"follows_job,omitempty"`
}

func (balancesArgs) Kind() string { return "sync.balances" }

type historyArgs struct {
	ConnectionID string `json:"connection_id"`
}

func (historyArgs) Kind() string { return "sync.history" }

// newDriver picks River's driver for the store's database.
func newDriver(st *store.Store) riverdriver.Driver[*sql.Tx] {
	if st.Dialect() == store.Postgres {
		return riverdatabasesql.NewWithPgxListener(st.DB(), st.Pool())
	}
	return riversqlite.New(st.DB())
}

// Migrate applies River's own migrations (its job tables) to the store's database.
func Migrate(ctx context.Context, st *store.Store) error {
	m, err := rivermigrate.New(newDriver(st), nil)
	if err != nil {
		return fmt.Errorf("syncer: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("syncer: migrating the job queue: %w", err)
	}
	return nil
}

// New builds an engine. Start runs its workers; an InsertOnly engine only queues.
func New(cfg Config, st *store.Store, adapters *provider.Registry, sealer *secrets.Sealer, log *slog.Logger) (*Engine, error) {
	cfg = cfg.withDefaults()
	e := &Engine{cfg: cfg, store: st, adapters: adapters, sealer: sealer, log: log}
	rc := &river.Config{
		Logger:               log.With("component", "river"),
		JobTimeout:           cfg.JobTimeout,
		RescueStuckJobsAfter: cfg.RescueAfter,
		FetchPollInterval:    cfg.FetchPollInterval,
		FetchCooldown:        min(cfg.FetchPollInterval, 100*time.Millisecond),
		MaxAttempts:          cfg.MaxAttempts,
	}
	if !cfg.InsertOnly {
		workers := river.NewWorkers()
		river.AddWorker(workers, &balancesWorker{e: e})
		river.AddWorker(workers, &historyWorker{e: e})
		if cfg.Valuer != nil {
			addPriceWorkers(e, workers, rc)
		}
		rc.Workers = workers
		rc.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cfg.Workers}}
	}
	client, err := river.NewClient(newDriver(st), rc)
	if err != nil {
		return nil, fmt.Errorf("syncer: %w", err)
	}
	e.river = client
	return e, nil
}

// Start runs the workers until Stop.
func (e *Engine) Start(ctx context.Context) error {
	if e.cfg.InsertOnly {
		return nil
	}
	return e.river.Start(ctx)
}

// Stop lets running jobs finish their current step and stops the workers. A job stopped
// mid-history has stored its pages and cursors; it resumes where it was when retried.
func (e *Engine) Stop(ctx context.Context) error {
	if e.cfg.InsertOnly {
		return nil
	}
	return e.river.StopAndCancel(ctx)
}

// uniqueWhileQueued makes a second request for the same stage of a connection a no-op while
// one is waiting or running. Completed jobs are left out so that a later refresh runs.
var uniqueWhileQueued = &river.InsertOpts{UniqueOpts: river.UniqueOpts{
	ByArgs: true,
	ByState: []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending,
		rivertype.JobStateRunning, rivertype.JobStateScheduled, rivertype.JobStateRetryable},
}}

// EnqueueTx queues a sync of the connection inside the caller's transaction: the one that
// created the connection or recorded the refresh, so that neither exists without the other.
// The balances stage runs first and queues the history stage.
//
// A request while a sync waits joins it. A request while one runs gets a sync of its own
// after it — one for any number of requests during that run — since the running one may have
// read the provider before the request and a refresh must see data read after it was asked.
func (e *Engine) EnqueueTx(ctx context.Context, tx *sql.Tx, connectionID string) error {
	res, err := e.river.InsertTx(ctx, tx, balancesArgs{ConnectionID: connectionID}, uniqueWhileQueued)
	if err != nil {
		return fmt.Errorf("syncer: queueing a sync: %w", err)
	}
	if res.UniqueSkippedAsDuplicate && res.Job != nil && res.Job.State == rivertype.JobStateRunning {
		follow := balancesArgs{ConnectionID: connectionID, FollowsJob: res.Job.ID}
		if _, err := e.river.InsertTx(ctx, tx, follow, uniqueWhileQueued); err != nil {
			return fmt.Errorf("syncer: queueing a sync: %w", err)
		}
	}
	return nil
}

// EnqueueHistoryTx queues a transactions refresh. It is the whole sync, balances first:
// the history is reconciled against the balances, and balances read at another time than the
// history would make reconciliation report differences that are only the activity between the
// two reads. The balances read costs one request.
func (e *Engine) EnqueueHistoryTx(ctx context.Context, tx *sql.Tx, connectionID string) error {
	return e.EnqueueTx(ctx, tx, connectionID)
}

// Enqueue queues a sync of the connection in a transaction of its own.
func (e *Engine) Enqueue(ctx context.Context, connectionID string) error {
	return e.store.InTx(ctx, func(tx *sql.Tx) error { return e.EnqueueTx(ctx, tx, connectionID) })
}

// Subscribe returns River's events of finished jobs (tests and progress displays use it).
func (e *Engine) Subscribe() (<-chan *river.Event, func()) {
	return e.river.Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed, river.EventKindJobCancelled, river.EventKindJobSnoozed)
}

// reconcile compares, per asset, the net of the stored history with the stored balances and
// returns every difference, sorted by asset. Assets on either side only count against zero.
func reconcile(positions []opencalico.Position, net map[string]decimal.Decimal) []opencalico.BalanceMismatch {
	reported := map[string]decimal.Decimal{}
	for _, p := range positions {
		reported[p.AssetSymbol] = reported[p.AssetSymbol].Add(p.Quantity)
	}
	assets := map[string]bool{}
	for a := range reported {
		assets[a] = true
	}
	for a := range net {
		assets[a] = true
	}
	var out []opencalico.BalanceMismatch
	for a := range assets {
		computed, rep := net[a], reported[a]
		if !computed.Equal(rep) {
			out = append(out, opencalico.BalanceMismatch{AssetSymbol: a, Computed: computed, Reported: rep, Difference: computed.Sub(rep)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].AssetSymbol < out[j].AssetSymbol })
	return out
}

// MigrationsCurrent reports whether every migration of the job queue is applied, for
// readiness checks: a server whose queue tables are behind cannot run syncs.
func MigrationsCurrent(ctx context.Context, st *store.Store) (bool, error) {
	m, err := rivermigrate.New(newDriver(st), nil)
	if err != nil {
		return false, fmt.Errorf("syncer: %w", err)
	}
	applied, err := m.ExistingVersions(ctx)
	if err != nil {
		return false, fmt.Errorf("syncer: reading the job queue's migrations: %w", err)
	}
	all := m.AllVersions()
	if len(all) == 0 {
		return true, nil
	}
	want := all[len(all)-1].Version
	for _, v := range applied {
		if v.Version == want {
			return true, nil
		}
	}
	return false, nil
}
