package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// The price cache (package price is its only user).
//
// Prices are kept in one reference currency, USD, by the price source's id ("bitcoin"); a fiat
// currency is a price id of its own ("fiat:eur": the USD value of one euro). Historical points
// are kept as the source gives them; price_days records which UTC days were fetched, so each
// day is asked for once. Values are not stored: they are computed when read, in the currency
// the reader asks for.

// PricePoint is the USD price of a price id at a time.
type PricePoint struct {
	PriceID string
	At      time.Time
	Price   decimal.Decimal
}

// PriceNeed is an (asset, day) pair a connection's sync touched: the history of the asset on
// that day is wanted. Day is the UTC day number, unix seconds / 86400.
type PriceNeed struct {
	AssetKey     string
	Day          int64
	ConnectionID string
}

// PriceAsset is the mapping of an asset key to a price id. Resolved is false while the
// mapping has not been looked up; a resolved asset with an empty PriceID has no price.
type PriceAsset struct {
	AssetKey   string
	PriceID    string
	Resolved   bool
	ResolvedAt time.Time
}

// Day returns the UTC day number of t.
func Day(t time.Time) int64 {
	s := t.Unix()
	if s < 0 {
		return (s - 86399) / 86400
	}
	return s / 86400
}

// DayStart returns the start of a UTC day number.
func DayStart(day int64) time.Time { return time.Unix(day*86400, 0).UTC() }

// priceBatch is the number of rows per multi-row INSERT of the price tables (at most 4 columns).
const priceBatch = 1000

// insertRows runs a multi-row INSERT of rows (each of cols values) in batches; head is the
// statement up to VALUES, tail what follows the list (an ON CONFLICT clause).
func (s *Store) insertRows(ctx context.Context, tx *sql.Tx, head, tail string, cols int, rows [][]any) error {
	for start := 0; start < len(rows); start += priceBatch {
		chunk := rows[start:min(start+priceBatch, len(rows))]
		v := valuesBuilder{dialect: s.dialect}
		args := make([]any, 0, len(chunk)*cols)
		for _, r := range chunk {
			v.row(cols)
			args = append(args, r...)
		}
		if _, err := tx.ExecContext(ctx, head+` VALUES `+v.b.String()+` `+tail, args...); err != nil {
			return err
		}
	}
	return nil
}

// AddPriceNeeds records (asset, day) pairs whose history is wanted; pairs recorded already
// are left alone.
func (s *Store) AddPriceNeeds(ctx context.Context, needs []PriceNeed) error {
	return s.InTx(ctx, func(tx *sql.Tx) error { return s.AddPriceNeedsTx(ctx, tx, needs) })
}

// AddPriceNeedsTx is AddPriceNeeds in the caller's transaction: a sync records what it
// touched in the transaction of the rows themselves.
func (s *Store) AddPriceNeedsTx(ctx context.Context, tx *sql.Tx, needs []PriceNeed) error {
	now := micros(s.now())
	rows := make([][]any, 0, len(needs))
	seen := make(map[PriceNeed]bool, len(needs))
	for _, n := range needs {
		if seen[n] {
			continue
		}
		seen[n] = true
		rows = append(rows, []any{n.AssetKey, n.Day, n.ConnectionID, now})
	}
	if err := s.insertRows(ctx, tx, `INSERT INTO price_needs (asset_key, day, connection_id, created_at)`,
		`ON CONFLICT (asset_key, day, connection_id) DO NOTHING`, 4, rows); err != nil {
		return fmt.Errorf("store: recording price needs: %w", err)
	}
	return nil
}

// PriceNeeds returns the recorded needs of days before beforeDay, by asset key and day.
func (s *Store) PriceNeeds(ctx context.Context, beforeDay int64) ([]PriceNeed, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT asset_key, day, connection_id FROM price_needs
		WHERE day < ? ORDER BY asset_key, day, connection_id`), beforeDay)
	if err != nil {
		return nil, fmt.Errorf("store: reading price needs: %w", err)
	}
	defer rows.Close()
	var out []PriceNeed
	for rows.Next() {
		var n PriceNeed
		if err := rows.Scan(&n.AssetKey, &n.Day, &n.ConnectionID); err != nil {
			return nil, fmt.Errorf("store: reading price needs: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// DeletePriceNeeds forgets needs (met already, or of an asset without a price).
func (s *Store) DeletePriceNeeds(ctx context.Context, needs []PriceNeed) error {
	return s.InTx(ctx, func(tx *sql.Tx) error { return s.deletePriceNeeds(ctx, tx, needs) })
}

func (s *Store) deletePriceNeeds(ctx context.Context, tx *sql.Tx, needs []PriceNeed) error {
	stmt, err := tx.PrepareContext(ctx, s.q(`DELETE FROM price_needs WHERE asset_key = ? AND day = ? AND connection_id = ?`))
	if err != nil {
		return fmt.Errorf("store: deleting price needs: %w", err)
	}
	defer stmt.Close()
	for _, n := range needs {
		if _, err := stmt.ExecContext(ctx, n.AssetKey, n.Day, n.ConnectionID); err != nil {
			return fmt.Errorf("store: deleting price needs: %w", err)
		}
	}
	return nil
}

// TrackPriceAssets adds asset keys to the mapping, unresolved, unless present already.
func (s *Store) TrackPriceAssets(ctx context.Context, keys []string) error {
	rows := make([][]any, 0, len(keys))
	for _, k := range uniqueStrings(keys) {
		rows = append(rows, []any{k})
	}
	return s.InTx(ctx, func(tx *sql.Tx) error {
		if err := s.insertRows(ctx, tx, `INSERT INTO price_assets (asset_key)`, `ON CONFLICT (asset_key) DO NOTHING`, 1, rows); err != nil {
			return fmt.Errorf("store: tracking price assets: %w", err)
		}
		return nil
	})
}

// SavePriceAssets stores resolved mappings, replacing earlier ones.
func (s *Store) SavePriceAssets(ctx context.Context, assets []PriceAsset) error {
	now := s.now()
	rows := make([][]any, 0, len(assets))
	for _, a := range assets {
		at := a.ResolvedAt
		if at.IsZero() {
			at = now
		}
		rows = append(rows, []any{a.AssetKey, a.PriceID, micros(at)})
	}
	return s.InTx(ctx, func(tx *sql.Tx) error {
		if err := s.insertRows(ctx, tx, `INSERT INTO price_assets (asset_key, price_id, resolved_at)`,
			`ON CONFLICT (asset_key) DO UPDATE SET price_id = excluded.price_id, resolved_at = excluded.resolved_at`, 3, rows); err != nil {
			return fmt.Errorf("store: saving price assets: %w", err)
		}
		return nil
	})
}

// PriceAssets returns the mappings of the given keys (all of them when keys is nil); keys
// never tracked are absent.
func (s *Store) PriceAssets(ctx context.Context, keys []string) (map[string]PriceAsset, error) {
	out := map[string]PriceAsset{}
	query := `SELECT asset_key, price_id, resolved_at FROM price_assets`
	var chunks [][]string
	if keys == nil {
		chunks = [][]string{nil}
	} else {
		keys = uniqueStrings(keys)
		for start := 0; start < len(keys); start += priceBatch {
			chunks = append(chunks, keys[start:min(start+priceBatch, len(keys))])
		}
	}
	for _, chunk := range chunks {
		q, args := query, anyStrings(chunk)
		if keys != nil {
			q += ` WHERE asset_key IN (` + placeholders(len(chunk)) + `)`
		}
		rows, err := s.db.QueryContext(ctx, s.q(q), args...)
		if err != nil {
			return nil, fmt.Errorf("store: reading price assets: %w", err)
		}
		for rows.Next() {
			var (
				a  PriceAsset
				id sql.NullString
				at sql.NullInt64
			)
			if err := rows.Scan(&a.AssetKey, &id, &at); err != nil {
				rows.Close()
				return nil, fmt.Errorf("store: reading price assets: %w", err)
			}
			a.PriceID, a.Resolved = id.String, id.Valid
			if at.Valid {
				a.ResolvedAt = fromMicros(at.Int64)
			}
			out[a.AssetKey] = a
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("store: reading price assets: %w", err)
		}
	}
	return out, nil
}

// PriceDays returns which days of [fromDay, toDay] have been fetched for a price id.
func (s *Store) PriceDays(ctx context.Context, priceID string, fromDay, toDay int64) (map[int64]bool, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT day FROM price_days WHERE price_id = ? AND day >= ? AND day <= ?`), priceID, fromDay, toDay)
	if err != nil {
		return nil, fmt.Errorf("store: reading price days: %w", err)
	}
	defer rows.Close()
	out := map[int64]bool{}
	for rows.Next() {
		var d int64
		if err := rows.Scan(&d); err != nil {
			return nil, fmt.Errorf("store: reading price days: %w", err)
		}
		out[d] = true
	}
	return out, rows.Err()
}

// PriceHistory is the result of one fetch of a price id's history.
type PriceHistory struct {
	PriceID string
	// FromDay and ToDay are the days fetched, inclusive; each is recorded as fetched.
	FromDay, ToDay int64
	Points         []PricePoint
	// Met are the needs the fetch answers; they are deleted. Each transaction of a need's
	// connection that has a leg or fee of the need's asset on a day that received points is
	// marked modified in the changes feed, since its values changed from null to known.
	Met []PriceNeed
}

// SavePriceHistory stores a fetched history in one database transaction: the points, the
// days as fetched, and the needs met (see PriceHistory). It returns the number of
// transactions marked modified.
func (s *Store) SavePriceHistory(ctx context.Context, h PriceHistory) (int, error) {
	marked := 0
	err := s.InTx(ctx, func(tx *sql.Tx) error {
		marked = 0
		if err := s.savePoints(ctx, tx, h.Points); err != nil {
			return err
		}
		now := micros(s.now())
		days := make([][]any, 0, h.ToDay-h.FromDay+1)
		for d := h.FromDay; d <= h.ToDay; d++ {
			days = append(days, []any{h.PriceID, d, now})
		}
		if err := s.insertRows(ctx, tx, `INSERT INTO price_days (price_id, day, fetched_at)`,
			`ON CONFLICT (price_id, day) DO UPDATE SET fetched_at = excluded.fetched_at`, 3, days); err != nil {
			return fmt.Errorf("store: saving price days: %w", err)
		}
		if err := s.deletePriceNeeds(ctx, tx, h.Met); err != nil {
			return err
		}
		withPoints := map[int64]bool{}
		for _, p := range h.Points {
			withPoints[Day(p.At)] = true
		}
		n, err := s.markValued(ctx, tx, h.Met, withPoints)
		marked = n
		return err
	})
	return marked, err
}

func (s *Store) savePoints(ctx context.Context, tx *sql.Tx, points []PricePoint) error {
	rows := make([][]any, 0, len(points))
	for _, p := range points {
		rows = append(rows, []any{p.PriceID, micros(p.At), p.Price})
	}
	if err := s.insertRows(ctx, tx, `INSERT INTO price_points (price_id, ts, price)`,
		`ON CONFLICT (price_id, ts) DO UPDATE SET price = excluded.price`, 3, rows); err != nil {
		return fmt.Errorf("store: saving price points: %w", err)
	}
	return nil
}

// markValued bumps the change sequence of the transactions whose values the met needs
// completed: per connection, those on a day with points that have a leg or fee of the need's
// asset (any transaction of the day for an exchange rate, "fx:…", which values every leg).
func (s *Store) markValued(ctx context.Context, tx *sql.Tx, met []PriceNeed, withPoints map[int64]bool) (int, error) {
	type group struct{ connection, key string }
	byGroup := map[group][]int64{}
	var groups []group
	for _, n := range met {
		if !withPoints[n.Day] {
			continue
		}
		g := group{n.ConnectionID, n.AssetKey}
		if _, ok := byGroup[g]; !ok {
			groups = append(groups, g)
		}
		byGroup[g] = append(byGroup[g], n.Day)
	}
	marked := 0
	for _, g := range groups {
		var userID string
		err := tx.QueryRowContext(ctx, s.q(`SELECT user_id FROM connections WHERE id = ?`), g.connection).Scan(&userID)
		if err == sql.ErrNoRows {
			continue // removed meanwhile
		} else if err != nil {
			return 0, fmt.Errorf("store: marking valued transactions: %w", err)
		}
		legFilter, legArgs := "", []any(nil)
		switch {
		case strings.HasPrefix(g.key, "fx:"):
		case strings.HasPrefix(g.key, "symbol:"):
			legFilter = ` AND EXISTS (SELECT 1 FROM transaction_legs l WHERE l.transaction_id = transactions.id
				AND l.asset_id = '' AND l.asset_symbol = ?)`
			legArgs = []any{strings.TrimPrefix(g.key, "symbol:")}
		default:
			legFilter = ` AND EXISTS (SELECT 1 FROM transaction_legs l WHERE l.transaction_id = transactions.id AND l.asset_id = ?)`
			legArgs = []any{g.key}
		}
		var seq int64
		for _, span := range daySpans(byGroup[g]) {
			if seq == 0 {
				var err error
				if seq, err = s.nextChangeSeq(ctx, tx, userID); err != nil {
					return 0, err
				}
			}
			args := []any{seq, micros(s.now()), userID, g.connection, micros(DayStart(span[0])), micros(DayStart(span[1] + 1))}
			res, err := tx.ExecContext(ctx, s.q(`UPDATE transactions SET change_seq = ?, updated_at = ?
				WHERE user_id = ? AND connection_id = ? AND ts >= ? AND ts < ?`+legFilter), append(args, legArgs...)...)
			if err != nil {
				return 0, fmt.Errorf("store: marking valued transactions: %w", err)
			}
			n, _ := res.RowsAffected()
			marked += int(n)
		}
	}
	return marked, nil
}

// daySpans turns days into sorted runs of consecutive days, [first, last] each.
func daySpans(days []int64) [][2]int64 {
	days = append([]int64(nil), days...)
	sort.Slice(days, func(i, j int) bool { return days[i] < days[j] })
	var out [][2]int64
	for _, d := range days {
		if n := len(out); n > 0 && d <= out[n-1][1]+1 {
			out[n-1][1] = max(out[n-1][1], d)
			continue
		}
		out = append(out, [2]int64{d, d})
	}
	return out
}

// PricePoints returns the points of the price ids in [from, to], by id, sorted by time.
func (s *Store) PricePoints(ctx context.Context, priceIDs []string, from, to time.Time) (map[string][]PricePoint, error) {
	out := map[string][]PricePoint{}
	priceIDs = uniqueStrings(priceIDs)
	for start := 0; start < len(priceIDs); start += priceBatch {
		chunk := priceIDs[start:min(start+priceBatch, len(priceIDs))]
		args := append(anyStrings(chunk), micros(from), micros(to))
		rows, err := s.db.QueryContext(ctx, s.q(`SELECT price_id, ts, price FROM price_points
			WHERE price_id IN (`+placeholders(len(chunk))+`) AND ts >= ? AND ts <= ? ORDER BY price_id, ts`), args...)
		if err != nil {
			return nil, fmt.Errorf("store: reading price points: %w", err)
		}
		for rows.Next() {
			var (
				p  PricePoint
				ts int64
			)
			if err := rows.Scan(&p.PriceID, &ts, &p.Price); err != nil {
				rows.Close()
				return nil, fmt.Errorf("store: reading price points: %w", err)
			}
			p.At = fromMicros(ts)
			out[p.PriceID] = append(out[p.PriceID], p)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("store: reading price points: %w", err)
		}
	}
	return out, nil
}

// SaveCurrentPrices replaces the current prices of the points' ids.
func (s *Store) SaveCurrentPrices(ctx context.Context, points []PricePoint) error {
	rows := make([][]any, 0, len(points))
	for _, p := range points {
		rows = append(rows, []any{p.PriceID, p.Price, micros(p.At)})
	}
	return s.InTx(ctx, func(tx *sql.Tx) error {
		if err := s.insertRows(ctx, tx, `INSERT INTO price_current (price_id, price, updated_at)`,
			`ON CONFLICT (price_id) DO UPDATE SET price = excluded.price, updated_at = excluded.updated_at`, 3, rows); err != nil {
			return fmt.Errorf("store: saving current prices: %w", err)
		}
		return nil
	})
}

// CurrentPrices returns the current prices of the given ids that are known.
func (s *Store) CurrentPrices(ctx context.Context, priceIDs []string) (map[string]PricePoint, error) {
	out := map[string]PricePoint{}
	priceIDs = uniqueStrings(priceIDs)
	for start := 0; start < len(priceIDs); start += priceBatch {
		chunk := priceIDs[start:min(start+priceBatch, len(priceIDs))]
		rows, err := s.db.QueryContext(ctx, s.q(`SELECT price_id, price, updated_at FROM price_current
			WHERE price_id IN (`+placeholders(len(chunk))+`)`), anyStrings(chunk)...)
		if err != nil {
			return nil, fmt.Errorf("store: reading current prices: %w", err)
		}
		for rows.Next() {
			var (
				p  PricePoint
				at int64
			)
			if err := rows.Scan(&p.PriceID, &p.Price, &at); err != nil {
				rows.Close()
				return nil, fmt.Errorf("store: reading current prices: %w", err)
			}
			p.At = fromMicros(at)
			out[p.PriceID] = p
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("store: reading current prices: %w", err)
		}
	}
	return out, nil
}

// uniqueStrings returns the distinct non-empty values, sorted.
func uniqueStrings(values []string) []string {
	out := make([]string, 0, len(values))
	seen := make(map[string]bool, len(values))
	for _, v := range values {
		if v != "" && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}
