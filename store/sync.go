package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/shopspring/decimal"
)

// Cursors returns the saved cursor of every stream of a connection's history.
func (s *Store) Cursors(ctx context.Context, connectionID string) (map[string]string, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT stream, cursor FROM sync_cursors WHERE connection_id = ?`), connectionID)
	if err != nil {
		return nil, fmt.Errorf("store: reading cursors: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var stream, cursor string
		if err := rows.Scan(&stream, &cursor); err != nil {
			return nil, fmt.Errorf("store: reading cursors: %w", err)
		}
		out[stream] = cursor
	}
	return out, rows.Err()
}

// SaveCursorTx sets the cursor of one stream inside the caller's transaction: the one that
// stores the rows the cursor moves past.
func (s *Store) SaveCursorTx(ctx context.Context, tx *sql.Tx, connectionID, stream, cursor string) error {
	_, err := tx.ExecContext(ctx, s.q(`INSERT INTO sync_cursors (connection_id, stream, cursor, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (connection_id, stream) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at`),
		connectionID, stream, cursor, micros(s.now()))
	if err != nil {
		return fmt.Errorf("store: saving cursor: %w", err)
	}
	return nil
}

// AcquireSyncLease makes holder the only syncer of a connection until the lease expires,
// unless another holder has an unexpired lease. A holder that already has the lease extends
// it. It reports whether holder has the lease. A lease that a dead worker left behind
// expires by itself, so its connection is picked up again.
func (s *Store) AcquireSyncLease(ctx context.Context, connectionID, holder string, ttl time.Duration) (bool, error) {
	now := s.now()
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE connections SET sync_holder = ?, sync_lease_until = ?
		WHERE id = ? AND (sync_holder = '' OR sync_holder = ? OR sync_lease_until < ?)`),
		holder, micros(now.Add(ttl)), connectionID, holder, micros(now))
	if err != nil {
		return false, fmt.Errorf("store: acquiring sync lease: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: acquiring sync lease: %w", err)
	}
	if n == 0 {
		if _, err := s.ConnectionByID(ctx, connectionID); err != nil {
			return false, err
		}
	}
	return n == 1, nil
}

// ReleaseSyncLease gives up holder's lease, if it still has it.
func (s *Store) ReleaseSyncLease(ctx context.Context, connectionID, holder string) error {
	_, err := s.db.ExecContext(ctx, s.q(`UPDATE connections SET sync_holder = '', sync_lease_until = 0
		WHERE id = ? AND sync_holder = ?`), connectionID, holder)
	if err != nil {
		return fmt.Errorf("store: releasing sync lease: %w", err)
	}
	return nil
}

// NetByAsset returns, per asset symbol, the net of a connection's whole history: outputs
// minus inputs minus fees, as a provider's balance reflects it: failed transactions moved
// nothing and are left out (an adapter reports a fee that a failed on-chain transaction still
// paid as a transaction of its own); a pending transaction has debited its inputs and fees
// but not yet credited its outputs, as exchanges book a withdrawal when it is requested and a
// deposit when it is credited; some providers (Coinbase) book pending credits at once, and
// pendingCredited counts them too. Sums are exact: rows are streamed and added as decimals,
// because SQLite would add TEXT amounts as floating point.
func (s *Store) NetByAsset(ctx context.Context, connectionID string, pendingCredited bool) (map[string]decimal.Decimal, error) {
	statuses := `t.status = 'confirmed' OR (t.status = 'pending' AND l.side <> 'out')`
	if pendingCredited {
		statuses = `t.status IN ('confirmed', 'pending')`
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT l.asset_symbol, l.side, l.amount
		FROM transaction_legs l JOIN transactions t ON t.id = l.transaction_id
		WHERE t.connection_id = ? AND (`+statuses+`)`), connectionID)
	if err != nil {
		return nil, fmt.Errorf("store: summing history: %w", err)
	}
	defer rows.Close()
	net := map[string]decimal.Decimal{}
	for rows.Next() {
		var asset, side string
		var amount decimal.Decimal
		if err := rows.Scan(&asset, &side, &amount); err != nil {
			return nil, fmt.Errorf("store: summing history: %w", err)
		}
		switch side {
		case "out":
			net[asset] = net[asset].Add(amount)
		case "in", "fee":
			net[asset] = net[asset].Sub(amount)
		default:
			return nil, errors.New("store: unknown leg side " + side)
		}
	}
	return net, rows.Err()
}
