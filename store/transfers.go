package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/shopspring/decimal"
)

// TransferSide is a transaction that may be one side of a movement between two of a user's
// connections: an unlinked send or receive of a positive amount of one asset that did not fail
// and is not spam (address poisoning sends look-alike zero transfers and fake tokens to many
// wallets at once, two of which may be the user's).
type TransferSide struct {
	ID           string
	ConnectionID string
	Type         opencalico.TransactionType // send or receive
	Timestamp    time.Time
	TxHash       string
	AssetSymbol  string
	Amount       decimal.Decimal
	// Fee is what the side's fees took of the same asset (an exchange's withdrawal fee).
	Fee decimal.Decimal
}

// transferSideSelect reads transfer sides with their legs; one row per leg. The WHERE
// clauses that follow repeat the partial indexes' predicates so that the planners use them.
const transferSideSelect = `SELECT t.id, t.connection_id, t.type, t.ts, t.tx_hash, l.side, l.asset_symbol, l.amount
	FROM transactions t JOIN transaction_legs l ON l.transaction_id = t.id
	WHERE t.user_id = ? AND t.transfer_id = '' AND t.type IN ('send', 'receive') AND t.status <> 'failed'
		AND t.category <> 'spam'`

// UnlinkedTransferSides returns the connection's unlinked sends and receives changed after
// the user's change sequence afterSeq (0: all of them).
func (s *Store) UnlinkedTransferSides(ctx context.Context, userID, connectionID string, afterSeq int64) ([]TransferSide, error) {
	return s.transferSides(ctx, transferSideSelect+` AND t.connection_id = ? AND t.change_seq > ?`, userID, connectionID, afterSeq)
}

// TransferLinkMark returns the user's change sequence now and the one the connection's
// transfers were last matched at: a pass takes the sides changed after the second, and
// records the first (SetTransferLinkMark) when it is done.
func (s *Store) TransferLinkMark(ctx context.Context, userID, connectionID string) (now, last int64, err error) {
	err = s.db.QueryRowContext(ctx, s.q(`SELECT u.change_seq, c.transfers_linked_seq FROM users u JOIN connections c ON c.user_id = u.id
		WHERE u.id = ? AND c.id = ?`), userID, connectionID).Scan(&now, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, notFound("connection", connectionID)
	} else if err != nil {
		return 0, 0, fmt.Errorf("store: reading the transfer mark: %w", err)
	}
	return now, last, nil
}

// SetTransferLinkMark records the user's change sequence a pass over the connection's
// transfers began at.
func (s *Store) SetTransferLinkMark(ctx context.Context, connectionID string, seq int64) error {
	if _, err := s.db.ExecContext(ctx, s.q(`UPDATE connections SET transfers_linked_seq = ? WHERE id = ?`), seq, connectionID); err != nil {
		return fmt.Errorf("store: recording the transfer mark: %w", err)
	}
	return nil
}

// UnlinkedTransferSidesByHash returns the user's unlinked sends and receives outside the
// connection whose hash is one of hashes, compared by HashKey.
func (s *Store) UnlinkedTransferSidesByHash(ctx context.Context, userID, exceptConnection string, hashes []string) ([]TransferSide, error) {
	var keys []string
	seen := map[string]bool{}
	for _, h := range hashes {
		if k := HashKey(h); k != "" && !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	var out []TransferSide
	const chunk = 500
	for start := 0; start < len(keys); start += chunk {
		part := keys[start:min(start+chunk, len(keys))]
		args := []any{userID, exceptConnection}
		for _, k := range part {
			args = append(args, k)
		}
		got, err := s.transferSides(ctx, transferSideSelect+` AND t.tx_hash_key <> '' AND t.connection_id <> ? AND t.tx_hash_key IN (`+placeholders(len(part))+`)`, args...)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	return out, nil
}

// UnlinkedTransferSidesBetween returns the user's unlinked sends and receives outside the
// connection with a timestamp in [from, to]; with hashless, only those without a tx_hash.
func (s *Store) UnlinkedTransferSidesBetween(ctx context.Context, userID, exceptConnection string, from, to time.Time, hashless bool) ([]TransferSide, error) {
	q := transferSideSelect + ` AND t.connection_id <> ? AND t.ts >= ? AND t.ts <= ?`
	if hashless {
		q += ` AND t.tx_hash = ''`
	}
	return s.transferSides(ctx, q, userID, exceptConnection, micros(from), micros(to))
}

// transferSides assembles sides from rows of transferSideSelect; a transaction with more
// than one value leg (or a leg of the wrong side) is not a side.
func (s *Store) transferSides(ctx context.Context, query string, args ...any) ([]TransferSide, error) {
	rows, err := s.db.QueryContext(ctx, s.q(query+` ORDER BY t.id`), args...)
	if err != nil {
		return nil, fmt.Errorf("store: reading transfer sides: %w", err)
	}
	defer rows.Close()
	type acc struct {
		side      TransferSide
		legs      int
		badLeg    bool
		feeByAsst map[string]decimal.Decimal
	}
	var order []*acc
	byID := map[string]*acc{}
	for rows.Next() {
		var (
			id, conn, typ, hash, legSide, asset, amount string
			ts                                          int64
		)
		if err := rows.Scan(&id, &conn, &typ, &ts, &hash, &legSide, &asset, &amount); err != nil {
			return nil, fmt.Errorf("store: reading transfer sides: %w", err)
		}
		a := byID[id]
		if a == nil {
			a = &acc{side: TransferSide{ID: id, ConnectionID: conn, Type: opencalico.TransactionType(typ), Timestamp: fromMicros(ts), TxHash: hash},
				feeByAsst: map[string]decimal.Decimal{}}
			byID[id] = a
			order = append(order, a)
		}
		amt, err := decimal.NewFromString(amount)
		if err != nil {
			return nil, fmt.Errorf("store: reading transfer sides: amount of %s: %w", id, err)
		}
		switch {
		case legSide == sideFee:
			a.feeByAsst[asset] = a.feeByAsst[asset].Add(amt)
		case (legSide == sideIn) == (a.side.Type == opencalico.TypeSend):
			a.legs++
			a.side.AssetSymbol, a.side.Amount = asset, amt
		default:
			a.badLeg = true
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: reading transfer sides: %w", err)
	}
	out := make([]TransferSide, 0, len(order))
	for _, a := range order {
		if a.legs != 1 || a.badLeg || !a.side.Amount.IsPositive() {
			continue
		}
		a.side.Fee = a.feeByAsst[a.side.AssetSymbol]
		out = append(out, a.side)
	}
	return out, nil
}

// LinkTransfer links two unlinked transactions of the user as the two sides of one movement:
// both get transferID and the category transfer (their own category kept aside), and both
// count as modified in the changes feed. It reports false, changing nothing, when either was
// linked meanwhile (by a sync of another connection) or is gone.
func (s *Store) LinkTransfer(ctx context.Context, userID, a, b, transferID string) (bool, error) {
	linked := false
	err := s.InTx(ctx, func(tx *sql.Tx) error {
		seq, err := s.nextChangeSeq(ctx, tx, userID)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.q(`UPDATE transactions SET transfer_id = ?, category_before_link = category,
			category = 'transfer', change_seq = ?, updated_at = ?
			WHERE user_id = ? AND id IN (?, ?) AND transfer_id = ''`), transferID, seq, micros(s.now()), userID, a, b)
		if err != nil {
			return fmt.Errorf("store: linking a transfer: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("store: linking a transfer: %w", err)
		}
		if n != 2 {
			return errNotLinked
		}
		linked = true
		return nil
	})
	if errors.Is(err, errNotLinked) {
		return false, nil
	}
	return linked, err
}

var errNotLinked = errors.New("store: transfer not linked")

// unlinkTransfersOfTx undoes the links of a connection's transactions on the other sides
// (the connection is being removed): they get their own category back.
func (s *Store) unlinkTransfersOfTx(ctx context.Context, tx *sql.Tx, userID, connectionID string, seq int64) error {
	_, err := tx.ExecContext(ctx, s.q(`UPDATE transactions SET transfer_id = '', category = category_before_link,
		category_before_link = '', change_seq = ?, updated_at = ?
		WHERE user_id = ? AND connection_id <> ? AND transfer_id <> '' AND transfer_id IN
			(SELECT transfer_id FROM transactions WHERE connection_id = ? AND transfer_id <> '')`),
		seq, micros(s.now()), userID, connectionID, connectionID)
	if err != nil {
		return fmt.Errorf("store: unlinking transfers: %w", err)
	}
	return nil
}

// UnlinkBrokenTransfers undoes the links of the connection's transactions that a provider's
// correction made unfit to be a side of a transfer — now failed, of another type than send or
// receive, or spam by its own category — on both sides, which get their own category back.
// It returns how many transactions it unlinked.
func (s *Store) UnlinkBrokenTransfers(ctx context.Context, userID, connectionID string) (int, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT DISTINCT transfer_id FROM transactions
		WHERE user_id = ? AND connection_id = ? AND transfer_id <> ''
		AND (status = 'failed' OR type NOT IN ('send', 'receive') OR category_before_link = 'spam')`), userID, connectionID)
	if err != nil {
		return 0, fmt.Errorf("store: finding broken transfers: %w", err)
	}
	var ids []any
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("store: finding broken transfers: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("store: finding broken transfers: %w", err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	var n int64
	err = s.InTx(ctx, func(tx *sql.Tx) error {
		seq, err := s.nextChangeSeq(ctx, tx, userID)
		if err != nil {
			return err
		}
		args := append([]any{seq, micros(s.now()), userID}, ids...)
		res, err := tx.ExecContext(ctx, s.q(`UPDATE transactions SET transfer_id = '', category = category_before_link,
			category_before_link = '', change_seq = ?, updated_at = ?
			WHERE user_id = ? AND transfer_id IN (`+placeholders(len(ids))+`)`), args...)
		if err != nil {
			return fmt.Errorf("store: unlinking broken transfers: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// HashKey is an on-chain hash as transfers are matched by: trimmed, lower case, without the
// 0x prefix of EVM chains ("" for none), so that the spellings providers use are one key.
func HashKey(h string) string {
	return strings.TrimPrefix(strings.ToLower(strings.TrimSpace(h)), "0x")
}
