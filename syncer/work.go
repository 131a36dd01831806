package syncer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
	"github.com/opencalico/opencalico/store"
	"github.com/opencalico/opencalico/transfer"
)

type balancesWorker struct {
	river.WorkerDefaults[balancesArgs]
	e *Engine
}

func (w *balancesWorker) Work(ctx context.Context, job *river.Job[balancesArgs]) error {
	e := w.e
	return e.run(ctx, job.Args.ConnectionID, StageBalances, job.JobRow,
		func(ctx context.Context, c *opencalico.Connection, a provider.Adapter, acct provider.Account) error {
			positions, err := a.Balances(ctx, acct)
			if err != nil {
				return err
			}
			if v := e.valuer(); v != nil {
				// Which assets to keep current prices for; a failure here only delays values.
				if err := v.TrackPositions(ctx, positions); err != nil {
					e.log.WarnContext(ctx, "tracking prices of positions", "connection_id", c.ID, "err", err.Error())
				}
			}
			now := time.Now().UTC()
			return e.store.InTx(ctx, func(tx *sql.Tx) error {
				if err := e.store.ReplacePositionsTx(ctx, tx, c.ID, positions); err != nil {
					return err
				}
				if err := e.store.UpdateConnectionTx(ctx, tx, c.ID, store.ConnectionUpdate{AssetsSyncedAt: &now}); err != nil {
					return err
				}
				// The history stage follows in the same transaction as the positions it will be
				// reconciled with. It is queued without the uniqueness check: a history job that
				// has just finished may still count as running until River records its
				// completion, and a unique insert would then be dropped, leaving the sync
				// half done.
				if _, err := e.river.InsertTx(ctx, tx, historyArgs{ConnectionID: c.ID}, nil); err != nil {
					return fmt.Errorf("syncer: queueing the history stage: %w", err)
				}
				if e.valuer() != nil {
					// Current prices for the assets just tracked, so positions carry values now
					// rather than at the next periodic refresh.
					if _, err := e.river.InsertTx(ctx, tx, priceRefreshArgs{}, nil); err != nil {
						return fmt.Errorf("syncer: queueing a price refresh: %w", err)
					}
				}
				// Completing the job in the same transaction means a worker that dies right
				// after the commit does not run the stage (and queue the history) twice.
				return completeTx(ctx, e, tx, job)
			})
		})
}

type historyWorker struct {
	river.WorkerDefaults[historyArgs]
	e *Engine
}

func (w *historyWorker) Work(ctx context.Context, job *river.Job[historyArgs]) error {
	return w.e.run(ctx, job.Args.ConnectionID, StageHistory, job.JobRow,
		func(ctx context.Context, c *opencalico.Connection, a provider.Adapter, acct provider.Account) error {
			return w.e.readHistory(ctx, c, a, acct, func(tx *sql.Tx) error { return completeTx(ctx, w.e, tx, job) })
		})
}

// completeTx marks the job completed inside tx. River needs the driver's type, which depends
// on the database.
func completeTx[T river.JobArgs](ctx context.Context, e *Engine, tx *sql.Tx, job *river.Job[T]) error {
	var err error
	if e.store.Dialect() == store.Postgres {
		_, err = river.JobCompleteTx[*riverdatabasesql.Driver](ctx, tx, job)
	} else {
		_, err = river.JobCompleteTx[*riversqlite.Driver](ctx, tx, job)
	}
	if err != nil {
		return fmt.Errorf("syncer: completing job %d: %w", job.ID, err)
	}
	return nil
}

// readHistory reads every page the adapter has beyond the saved cursors, storing each page
// and its cursor in one transaction, then reconciles the history with the positions.
// complete runs in the transaction of the final status update: the job is done exactly when
// its result is recorded.
func (e *Engine) readHistory(ctx context.Context, c *opencalico.Connection, a provider.Adapter, acct provider.Account, complete func(*sql.Tx) error) error {
	cursors, err := e.store.Cursors(ctx, c.ID)
	if err != nil {
		return err
	}
	var total store.UpsertResult
	sink := func(ctx context.Context, p provider.Page) error {
		for _, t := range p.Transactions {
			t.ConnectionID = c.ID
		}
		err := e.store.InTx(ctx, func(tx *sql.Tx) error {
			r, err := e.store.UpsertTransactionsTx(ctx, tx, p.Transactions)
			if err != nil {
				return err
			}
			if v := e.valuer(); v != nil {
				if err := v.QueueTx(ctx, tx, c.ID, p.Transactions); err != nil {
					return err
				}
			}
			total.Added += r.Added
			total.Modified += r.Modified
			total.Unchanged += r.Unchanged
			if p.Stream == "" {
				return nil
			}
			return e.store.SaveCursorTx(ctx, tx, c.ID, p.Stream, p.Cursor)
		})
		if err != nil {
			return err
		}
		if e.cfg.AfterPage != nil {
			return e.cfg.AfterPage(c.ID, p)
		}
		return nil
	}
	histErr := a.History(ctx, acct, provider.Cursors(cursors), sink)
	var incomplete *provider.IncompleteError
	if histErr != nil && !errors.As(histErr, &incomplete) {
		return histErr
	}

	// Link this connection's sends and receives with the user's other connections'. A
	// failure here costs only the links, which the next sync makes.
	linker := transfer.Linker{Store: e.store, Log: e.log}
	if _, err := linker.Link(ctx, c.UserID, c.ID); err != nil {
		if ctx.Err() != nil {
			return err
		}
		e.log.WarnContext(ctx, "linking transfers", "connection_id", c.ID, "err", err.Error())
	}

	detail := opencalico.StatusDetail{}
	if incomplete != nil {
		detail.Incomplete = incomplete.Streams
		detail.Cause = opencalico.ErrorCodeOf(incomplete.Err)
		detail.Message = "Part of the history could not be read; it is retried at the next sync."
	} else if c.AssetsSyncedAt != nil {
		// Reconciliation only means something over a complete history, and against balances
		// that were read (a history stage queued on its own before any balances stage would
		// otherwise compare with nothing and report every asset).
		positions, err := e.store.ListPositions(ctx, store.PositionFilter{UserID: c.UserID, ConnectionIDs: []string{c.ID}, Limit: 100_000})
		if err != nil {
			return err
		}
		pc, ok := a.(provider.PendingCreditor)
		net, err := e.store.NetByAsset(ctx, c.ID, ok && pc.PendingCredited())
		if err != nil {
			return err
		}
		detail.Mismatches = reconcile(positions, net)
		if len(detail.Mismatches) > 0 {
			detail.Message = "The history does not add up to the reported balance of some assets."
		}
	}
	now := time.Now().UTC()
	status := opencalico.StatusActive
	err = e.store.InTx(ctx, func(tx *sql.Tx) error {
		if err := e.store.UpdateConnectionTx(ctx, tx, c.ID, store.ConnectionUpdate{
			Status: &status, StatusDetail: &detail, TransactionsSyncedAt: &now, LastSyncedAt: &now,
		}); err != nil {
			return err
		}
		if e.valuer() != nil {
			if _, err := e.river.InsertTx(ctx, tx, priceFillArgs{}, nil); err != nil {
				return fmt.Errorf("syncer: queueing price fill: %w", err)
			}
		}
		return complete(tx)
	})
	if err != nil {
		return err
	}
	e.log.InfoContext(ctx, "history synced", "connection_id", c.ID, "provider", c.ProviderID,
		"added", total.Added, "modified", total.Modified, "unchanged", total.Unchanged,
		"incomplete", len(detail.Incomplete), "mismatches", len(detail.Mismatches))
	return nil
}

// stageFunc does one stage's provider reads and writes.
type stageFunc func(ctx context.Context, c *opencalico.Connection, a provider.Adapter, acct provider.Account) error

// run is what every stage shares: the lease, the account with its credentials, and the
// typed outcome — bad credentials end in reauth_required without retry; other failures are
// retried with backoff and shown on the connection meanwhile.
func (e *Engine) run(ctx context.Context, connectionID string, stage Stage, job *rivertype.JobRow, do stageFunc) error {
	// The holder names this very job, so that two jobs of one connection never share a lease,
	// even in one process.
	holder := fmt.Sprintf("%s/%s/%d", e.cfg.Holder, stage, job.ID)
	attempt, maxAttempts := job.Attempt, job.MaxAttempts
	got, err := e.store.AcquireSyncLease(ctx, connectionID, holder, e.cfg.LeaseTTL)
	if opencalico.ErrorCodeOf(err) == opencalico.ENotFound {
		return nil // the connection was removed after the job was queued: nothing to do
	} else if err != nil {
		return err
	}
	if !got {
		// Another stage of this connection runs (here or in another process): wait for it.
		// Snoozing does not use up an attempt.
		return river.JobSnooze(time.Second)
	}
	leaseCtx, stopRenewing := context.WithCancel(ctx)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		e.renewLease(leaseCtx, connectionID, holder)
	}()
	defer func() {
		stopRenewing()
		<-renewed
		// Released with a context of its own: the job's may be cancelled by a shutdown.
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.store.ReleaseSyncLease(rctx, connectionID, holder); err != nil {
			e.log.Warn("releasing a sync lease", "connection_id", connectionID, "err", err.Error())
		}
	}()

	c, err := e.store.ConnectionByID(ctx, connectionID)
	if opencalico.ErrorCodeOf(err) == opencalico.ENotFound {
		return nil
	} else if err != nil {
		return err
	}
	a, err := e.adapters.Adapter(c.ProviderID)
	if err != nil {
		return river.JobCancel(err)
	}
	acct, err := e.account(ctx, c)
	if err != nil {
		return err
	}
	syncing, started := opencalico.StatusSyncing, time.Now().UTC()
	if _, err := e.store.UpdateConnection(ctx, c.ID, store.ConnectionUpdate{Status: &syncing, SyncAttemptedAt: &started}); err != nil {
		return err
	}

	// The slice ends a little before River's timeout, so that the stage stops cleanly between
	// pages and is queued again rather than cancelled and counted as a failure.
	sliceCtx, endSlice := context.WithTimeout(ctx, e.cfg.JobTimeout*9/10)
	defer endSlice()
	err = do(sliceCtx, c, a, acct)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return err // shutting down: River retries the job, which resumes from its cursors
	}
	if errors.Is(sliceCtx.Err(), context.DeadlineExceeded) {
		e.log.InfoContext(ctx, "sync stage continues in a new slice", "connection_id", c.ID, "stage", stage)
		return river.JobSnooze(0)
	}
	e.log.WarnContext(ctx, "sync stage failed", "connection_id", c.ID, "provider", c.ProviderID,
		"stage", stage, "attempt", attempt, "cause", opencalico.ErrorCodeOf(err), "err", err.Error())
	detail := opencalico.StatusDetail{Cause: opencalico.ErrorCodeOf(err), Message: opencalico.ErrorMessage(err)}
	status := opencalico.StatusError
	if provider.IsAuthError(err) {
		status = opencalico.StatusReauthRequired
		detail.Cause = opencalico.EReauthRequired
		detail.Message = "The provider refused the credentials: connect the account again."
	}
	if _, uerr := e.store.UpdateConnection(context.WithoutCancel(ctx), c.ID, store.ConnectionUpdate{Status: &status, StatusDetail: &detail}); uerr != nil {
		return errors.Join(err, uerr)
	}
	if status == opencalico.StatusReauthRequired {
		return river.JobCancel(err)
	}
	if attempt >= maxAttempts {
		return river.JobCancel(fmt.Errorf("giving up after %d attempts: %w", attempt, err))
	}
	return err
}

// renewLease extends the lease every third of its lifetime until ctx ends.
func (e *Engine) renewLease(ctx context.Context, connectionID, holder string) {
	t := time.NewTicker(e.cfg.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := e.store.AcquireSyncLease(ctx, connectionID, holder, e.cfg.LeaseTTL); err != nil && ctx.Err() == nil {
				e.log.Warn("renewing a sync lease", "connection_id", connectionID, "err", err.Error())
			}
		}
	}
}

// account opens the connection's credentials into the account an adapter reads. The
// credentials live in memory for the duration of the job only.
func (e *Engine) account(ctx context.Context, c *opencalico.Connection) (provider.Account, error) {
	acct := provider.Account{ConnectionID: c.ID, UserID: c.UserID, Address: c.Address, Chain: c.Chain}
	if c.Type == opencalico.AuthWallet {
		return acct, nil
	}
	sealed, err := e.store.Secret(ctx, c.ID)
	if err != nil {
		return acct, err
	}
	creds, err := e.sealer.OpenCredentials(sealed)
	if err != nil {
		return acct, fmt.Errorf("syncer: opening the credentials of %s: %w", c.ID, err)
	}
	acct.Credentials = creds
	return acct, nil
}
