package syncer

import (
	"context"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/opencalico/opencalico/price"
)

// Valuation runs beside the syncs when the engine has a price.Valuer: each history page
// queues the (asset, day) prices it needs in the transaction that stores it; a fill job,
// queued when a history stage ends and every few minutes, fetches what is missing in as few
// requests as the price source allows; the periodic job also refreshes current prices. A
// price source outage fails the fill job, which River retries with backoff: values already
// known stay, and the missing ones are filled when the source answers again.

// priceFillArgs is the job that fetches missing prices.
type priceFillArgs struct{}

func (priceFillArgs) Kind() string { return "price.fill" }

// InsertOpts keeps one fill job waiting at a time: a fill covers every need queued so far.
func (priceFillArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
		rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
		rivertype.JobStateScheduled, rivertype.JobStateRetryable}}}
}

type priceFillWorker struct {
	river.WorkerDefaults[priceFillArgs]
	e *Engine
}

func (w *priceFillWorker) Work(ctx context.Context, job *river.Job[priceFillArgs]) error {
	stats, err := w.e.cfg.Valuer.Fill(ctx)
	w.e.log.InfoContext(ctx, "prices filled", "stats", stats, "attempt", job.Attempt)
	return err
}

// priceRefreshArgs is the periodic job that refreshes current prices and fills history.
type priceRefreshArgs struct{}

func (priceRefreshArgs) Kind() string { return "price.refresh" }

// InsertOpts keeps one refresh waiting at a time.
func (priceRefreshArgs) InsertOpts() river.InsertOpts { return priceFillArgs{}.InsertOpts() }

type priceRefreshWorker struct {
	river.WorkerDefaults[priceRefreshArgs]
	e *Engine
}

func (w *priceRefreshWorker) Work(ctx context.Context, _ *river.Job[priceRefreshArgs]) error {
	if err := w.e.cfg.Valuer.RefreshCurrent(ctx); err != nil {
		return err
	}
	_, err := w.e.cfg.Valuer.Fill(ctx)
	return err
}

// addPriceWorkers registers the valuation jobs on a worker engine.
func addPriceWorkers(e *Engine, workers *river.Workers, rc *river.Config) {
	river.AddWorker(workers, &priceFillWorker{e: e})
	river.AddWorker(workers, &priceRefreshWorker{e: e})
	every := e.cfg.PriceRefreshEvery
	if every <= 0 {
		every = 5 * time.Minute
	}
	rc.PeriodicJobs = append(rc.PeriodicJobs, river.NewPeriodicJob(river.PeriodicInterval(every),
		func() (river.JobArgs, *river.InsertOpts) { return priceRefreshArgs{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true}))
}

// valuer is the engine's price.Valuer, or nil.
func (e *Engine) valuer() *price.Valuer { return e.cfg.Valuer }
