package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/opencalico/opencalico"
)

// PositionKey is the unique key of a position, and the keyset cursor of ListPositions: a
// connection may hold one symbol on several chains or as several asset ids.
type PositionKey struct {
	ConnectionID string
	AssetSymbol  string
	Chain        string
	AssetID      string
}

// positionKey returns the unique key of a position.
func positionKey(p opencalico.Position) PositionKey {
	return PositionKey{ConnectionID: p.ConnectionID, AssetSymbol: p.AssetSymbol, Chain: p.Chain, AssetID: p.AssetID}
}

// PositionFilter selects a user's positions. Empty lists do not filter.
type PositionFilter struct {
	UserID        string // required
	ConnectionIDs []string
	ProviderIDs   []opencalico.ProviderID
	AssetSymbols  []string
	// After is the key of the last position of the previous page, nil for the first page.
	After *PositionKey
	// Limit caps the page; zero or less means no limit.
	Limit int
}

// ReplacePositions makes the connection's positions exactly ps, in one database transaction:
// a sync reads whole balances, and an asset no longer reported must disappear.
func (s *Store) ReplacePositions(ctx context.Context, connectionID string, ps []opencalico.Position) error {
	return s.InTx(ctx, func(tx *sql.Tx) error { return s.ReplacePositionsTx(ctx, tx, connectionID, ps) })
}

// ReplacePositionsTx is ReplacePositions inside the caller's transaction.
func (s *Store) ReplacePositionsTx(ctx context.Context, tx *sql.Tx, connectionID string, ps []opencalico.Position) error {
	seen := make(map[PositionKey]bool, len(ps))
	for i := range ps {
		p := &ps[i]
		if p.ConnectionID == "" {
			p.ConnectionID = connectionID
		}
		if p.ConnectionID != connectionID {
			return opencalico.Errorf(opencalico.EBadRequest, "position of %s belongs to connection %q, not %q", p.AssetSymbol, p.ConnectionID, connectionID)
		}
		if p.AssetSymbol == "" {
			return opencalico.Errorf(opencalico.EBadRequest, "a position has no asset symbol")
		}
		k := positionKey(*p)
		if seen[k] {
			return opencalico.Errorf(opencalico.EBadRequest, "position of %s on %q listed twice", p.AssetSymbol, p.Chain)
		}
		seen[k] = true
	}
	{
		var userID, providerID string
		err := tx.QueryRowContext(ctx, s.q(`SELECT user_id, provider_id FROM connections WHERE id = ?`), connectionID).Scan(&userID, &providerID)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("connection", connectionID)
		} else if err != nil {
			return fmt.Errorf("store: replacing positions: %w", err)
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM positions WHERE connection_id = ?`), connectionID); err != nil {
			return fmt.Errorf("store: replacing positions: %w", err)
		}
		now := s.now()
		const cols, batch = 12, 500
		for start := 0; start < len(ps); start += batch {
			chunk := ps[start:min(start+batch, len(ps))]
			v := valuesBuilder{dialect: s.dialect}
			args := make([]any, 0, len(chunk)*cols)
			for i := range chunk {
				p := &chunk[i]
				if p.ProviderID == "" {
					p.ProviderID = opencalico.ProviderID(providerID)
				}
				if p.UpdatedAt.IsZero() {
					p.UpdatedAt = now
				}
				p.UpdatedAt = p.UpdatedAt.UTC().Truncate(time.Microsecond)
				v.row(cols)
				args = append(args, connectionID, userID, string(p.ProviderID), p.AssetSymbol, p.Chain, p.AssetID, p.AssetName,
					p.Quantity.String(), p.Available.String(), p.Locked.String(), p.Staked.String(), micros(p.UpdatedAt))
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO positions (connection_id, user_id, provider_id, asset_symbol, chain, asset_id,
				asset_name, quantity, available, locked, staked, updated_at) VALUES `+v.b.String(), args...)
			if err != nil {
				return fmt.Errorf("store: replacing positions: %w", err)
			}
		}
	}
	return nil
}

// ListPositions returns the positions that match f, ordered by connection id, asset symbol,
// chain and asset id, starting after f.After.
func (s *Store) ListPositions(ctx context.Context, f PositionFilter) ([]opencalico.Position, error) {
	if f.UserID == "" {
		return nil, opencalico.Errorf(opencalico.EBadRequest, "listing positions needs a user")
	}
	var (
		where strings.Builder
		args  []any
	)
	where.WriteString(`user_id = ?`)
	args = append(args, f.UserID)
	in := func(column string, values []any) {
		if len(values) == 0 {
			return
		}
		where.WriteString(` AND ` + column + ` IN (` + placeholders(len(values)) + `)`)
		args = append(args, values...)
	}
	in("connection_id", anyStrings(f.ConnectionIDs))
	in("provider_id", anyStrings(f.ProviderIDs))
	in("asset_symbol", anyStrings(f.AssetSymbols))
	if k := f.After; k != nil {
		// Written out rather than as a row-value comparison so that both planners see a range
		// on the leading column of the index.
		where.WriteString(` AND connection_id >= ? AND (connection_id > ? OR asset_symbol > ?
			OR (asset_symbol = ? AND (chain > ? OR (chain = ? AND asset_id > ?))))`)
		args = append(args, k.ConnectionID, k.ConnectionID, k.AssetSymbol, k.AssetSymbol, k.Chain, k.Chain, k.AssetID)
	}
	query := `SELECT connection_id, provider_id, asset_symbol, asset_name, asset_id, chain, quantity, available, locked, staked, updated_at
		FROM positions WHERE ` + where.String() + ` ORDER BY connection_id, asset_symbol, chain, asset_id`
	if f.Limit > 0 {
		query += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("store: listing positions: %w", err)
	}
	defer rows.Close()
	var out []opencalico.Position
	for rows.Next() {
		var (
			p        opencalico.Position
			provider string
			updated  int64
		)
		if err := rows.Scan(&p.ConnectionID, &provider, &p.AssetSymbol, &p.AssetName, &p.AssetID, &p.Chain,
			&p.Quantity, &p.Available, &p.Locked, &p.Staked, &updated); err != nil {
			return nil, fmt.Errorf("store: listing positions: %w", err)
		}
		p.ProviderID = opencalico.ProviderID(provider)
		p.UpdatedAt = fromMicros(updated)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: listing positions: %w", err)
	}
	return out, nil
}

// PositionKeyOf returns the keyset key of a position, for building the next page's cursor.
func PositionKeyOf(p opencalico.Position) PositionKey { return positionKey(p) }
