package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/opencalico/opencalico"
)

// The changes feed.
//
// Every user has a change counter (users.change_seq). A database transaction that adds,
// changes or removes some of a user's transactions first bumps the counter and stamps every
// row it touches with the new value: change_seq on the row, created_seq as well when the row
// is new, seq on the tombstone of a removed row. Bumping is an UPDATE of the user's row, which
// PostgreSQL locks until commit; so a second writer for the same user waits, takes the next
// value, and commits after the first. Commit order therefore equals sequence order per user,
// and a reader that has seen seq N will never later find a row committed with seq ≤ N. SQLite
// gets the same from its single writer. Many rows share one seq, so the feed pages on
// (seq, id).

// nextChangeSeq bumps the user's change counter inside tx and returns the new value.
func (s *Store) nextChangeSeq(ctx context.Context, tx *sql.Tx, userID string) (int64, error) {
	var seq int64
	err := tx.QueryRowContext(ctx, s.q(`UPDATE users SET change_seq = change_seq + 1 WHERE id = ? RETURNING change_seq`), userID).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, notFound("user", userID)
	} else if err != nil {
		return 0, fmt.Errorf("store: bumping change sequence: %w", err)
	}
	return seq, nil
}

// UpsertResult counts what UpsertTransactions did.
type UpsertResult struct {
	Added     int // new transactions
	Modified  int // transactions whose content changed, updated in place
	Unchanged int // transactions stored already, identical
}

// upsertBatch is the number of transactions per INSERT statement: 500 rows of 22 columns stay
// well below SQLite's 32766 and PostgreSQL's 65535 parameters per statement.
const upsertBatch = 500

// legBatch is the number of leg rows per INSERT statement (8 columns each).
const legBatch = 2000

const transactionInsertColumns = `id, user_id, connection_id, provider_id, external_id, type, category, subcategory,
	provider_type, status, ts, tx_hash, tx_hash_key, chain, from_address, to_address, description, transfer_id, content_hash,
	created_seq, change_seq, created_at, updated_at`

const transactionInsertColumnCount = 23

// UpsertTransactions stores transactions read from providers, idempotently, in one database
// transaction. Each is validated; its ID is derived from (ConnectionID, ExternalID) when empty;
// its UserID and ProviderID come from its connection. A transaction already stored with the same
// content (ContentHash) is left alone; one whose content changed (a pending transfer confirmed,
// a corrected amount) is updated in place, keeping its id and creation time, with its legs and
// fees replaced, and shows as modified in the changes feed.
//
// Timestamps are truncated to microseconds first, the precision they are stored with, so that
// what is read back hashes as what was written. If a natural key occurs twice in one call, the
// last occurrence wins and the earlier ones are not counted.
func (s *Store) UpsertTransactions(ctx context.Context, txns []*opencalico.Transaction) (UpsertResult, error) {
	var res UpsertResult
	err := s.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		res, err = s.UpsertTransactionsTx(ctx, tx, txns)
		return err
	})
	return res, err
}

// UpsertTransactionsTx is UpsertTransactions inside the caller's database transaction, so that
// a sync can store a page of transactions and the cursor after it atomically.
func (s *Store) UpsertTransactionsTx(ctx context.Context, tx *sql.Tx, txns []*opencalico.Transaction) (UpsertResult, error) {
	var res UpsertResult
	if len(txns) == 0 {
		return res, nil
	}
	type naturalKey struct{ connection, external string }
	last := make(map[naturalKey]int, len(txns))
	for i, t := range txns {
		if t == nil {
			return res, opencalico.Errorf(opencalico.EBadRequest, "nil transaction")
		}
		if err := t.Validate(); err != nil {
			return res, err
		}
		last[naturalKey{t.ConnectionID, t.ExternalID}] = i
	}
	batch := make([]*opencalico.Transaction, 0, len(last))
	for i, t := range txns {
		if last[naturalKey{t.ConnectionID, t.ExternalID}] == i {
			t.Timestamp = t.Timestamp.UTC().Truncate(time.Microsecond)
			if t.ID == "" {
				t.ID = opencalico.TransactionID(t.ConnectionID, t.ExternalID)
			}
			batch = append(batch, t)
		}
	}

	seqs, err := s.resolveConnections(ctx, tx, batch)
	if err != nil {
		return res, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	for start := 0; start < len(batch); start += upsertBatch {
		r, err := s.upsertChunk(ctx, tx, batch[start:min(start+upsertBatch, len(batch))], seqs, now)
		if err != nil {
			return UpsertResult{}, err
		}
		res.Added += r.Added
		res.Modified += r.Modified
		res.Unchanged += r.Unchanged
	}
	return res, nil
}

// resolveConnections fills UserID and ProviderID of the transactions from their connections
// (refusing unknown connections and contradicting user ids), then bumps the change counter of
// each user concerned, in id order so that two writers cannot deadlock, and returns the new
// sequence per user.
func (s *Store) resolveConnections(ctx context.Context, tx *sql.Tx, batch []*opencalico.Transaction) (map[string]int64, error) {
	type owner struct{ user, provider string }
	owners := map[string]owner{}
	for _, t := range batch {
		owners[t.ConnectionID] = owner{}
	}
	ids := make([]any, 0, len(owners))
	for id := range owners {
		ids = append(ids, id)
	}
	rows, err := tx.QueryContext(ctx, s.q(`SELECT id, user_id, provider_id FROM connections WHERE id IN (`+placeholders(len(ids))+`)`), ids...)
	if err != nil {
		return nil, fmt.Errorf("store: reading connections: %w", err)
	}
	found := 0
	for rows.Next() {
		var id string
		var o owner
		if err := rows.Scan(&id, &o.user, &o.provider); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: reading connections: %w", err)
		}
		owners[id] = o
		found++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: reading connections: %w", err)
	}
	var users []string
	for _, t := range batch {
		o := owners[t.ConnectionID]
		if o.user == "" {
			return nil, notFound("connection", t.ConnectionID)
		}
		if t.UserID != "" && t.UserID != o.user {
			return nil, opencalico.Errorf(opencalico.EBadRequest, "transaction %q: user does not own connection %q", t.ExternalID, t.ConnectionID)
		}
		t.UserID = o.user
		if t.ProviderID == "" {
			t.ProviderID = opencalico.ProviderID(o.provider)
		}
		if !slices.Contains(users, o.user) {
			users = append(users, o.user)
		}
	}
	slices.Sort(users)
	seqs := make(map[string]int64, len(users))
	for _, u := range users {
		if seqs[u], err = s.nextChangeSeq(ctx, tx, u); err != nil {
			return nil, err
		}
	}
	return seqs, nil
}

// upsertChunk writes one multi-row INSERT … ON CONFLICT … DO UPDATE … WHERE the hash differs.
// RETURNING yields exactly the rows inserted or changed; a row is new when its created_seq is
// this transaction's sequence (an older row keeps its own, smaller, created_seq).
func (s *Store) upsertChunk(ctx context.Context, tx *sql.Tx, chunk []*opencalico.Transaction, seqs map[string]int64, now time.Time) (UpsertResult, error) {
	var res UpsertResult
	v := valuesBuilder{dialect: s.dialect}
	args := make([]any, 0, len(chunk)*transactionInsertColumnCount)
	type naturalKey struct{ connection, external string }
	byKey := make(map[naturalKey]*opencalico.Transaction, len(chunk))
	for _, t := range chunk {
		seq := seqs[t.UserID]
		v.row(transactionInsertColumnCount)
		args = append(args, t.ID, t.UserID, t.ConnectionID, string(t.ProviderID), t.ExternalID, string(t.Type),
			string(t.Categorization.Category), t.Categorization.Subcategory, t.Categorization.ProviderType,
			string(t.Status), micros(t.Timestamp), t.TxHash, HashKey(t.TxHash), t.Chain, t.FromAddress, t.ToAddress, t.Description,
			t.TransferID, t.ContentHash(), seq, seq, micros(now), micros(now))
		byKey[naturalKey{t.ConnectionID, t.ExternalID}] = t
	}
	query := `INSERT INTO transactions (` + transactionInsertColumns + `) VALUES ` + v.b.String() + `
		ON CONFLICT (connection_id, external_id) DO UPDATE SET
			provider_id = excluded.provider_id, type = excluded.type,
			subcategory = excluded.subcategory, provider_type = excluded.provider_type, status = excluded.status,
			ts = excluded.ts, tx_hash = excluded.tx_hash, tx_hash_key = excluded.tx_hash_key, chain = excluded.chain, from_address = excluded.from_address,
			to_address = excluded.to_address, description = excluded.description,
			-- A side linked to a transfer stays linked when its provider corrects it: the link
			-- is ours, not the provider's, and the provider's category is kept aside.
			transfer_id = CASE WHEN transactions.transfer_id <> '' THEN transactions.transfer_id ELSE excluded.transfer_id END,
			category = CASE WHEN transactions.transfer_id <> '' THEN transactions.category ELSE excluded.category END,
			category_before_link = CASE WHEN transactions.transfer_id <> '' THEN excluded.category ELSE transactions.category_before_link END,
			content_hash = excluded.content_hash, change_seq = excluded.change_seq, updated_at = excluded.updated_at
		WHERE transactions.content_hash <> excluded.content_hash
		RETURNING id, connection_id, external_id, created_seq, created_at`
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return res, fmt.Errorf("store: upserting transactions: %w", err)
	}
	var written, modified []*opencalico.Transaction
	for rows.Next() {
		var (
			id, conn, ext       string
			createdSeq, created int64
		)
		if err := rows.Scan(&id, &conn, &ext, &createdSeq, &created); err != nil {
			rows.Close()
			return res, fmt.Errorf("store: upserting transactions: %w", err)
		}
		t := byKey[naturalKey{conn, ext}]
		if t == nil {
			rows.Close()
			return res, fmt.Errorf("store: upserting transactions: unexpected row %s", id)
		}
		t.ID, t.CreatedAt, t.UpdatedAt = id, fromMicros(created), now
		if createdSeq == seqs[t.UserID] {
			res.Added++
		} else {
			res.Modified++
			modified = append(modified, t)
		}
		written = append(written, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return res, fmt.Errorf("store: upserting transactions: %w", err)
	}
	res.Unchanged = len(chunk) - len(written)
	if len(modified) > 0 {
		ids := make([]any, len(modified))
		for i, t := range modified {
			ids[i] = t.ID
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM transaction_legs WHERE transaction_id IN (`+placeholders(len(ids))+`)`), ids...); err != nil {
			return res, fmt.Errorf("store: replacing legs: %w", err)
		}
	}
	if err := s.insertLegs(ctx, tx, written); err != nil {
		return res, err
	}
	return res, nil
}

// Leg sides as stored.
const (
	sideIn  = "in"
	sideOut = "out"
	sideFee = "fee"
)

const legColumnCount = 8

// insertLegs writes the legs and fees of txns, in multi-row INSERTs.
func (s *Store) insertLegs(ctx context.Context, tx *sql.Tx, txns []*opencalico.Transaction) error {
	v := valuesBuilder{dialect: s.dialect}
	args := make([]any, 0, legBatch*legColumnCount)
	rowsInStatement := 0
	flush := func() error {
		if rowsInStatement == 0 {
			return nil
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO transaction_legs (transaction_id, side, position, asset_symbol, asset_id,
			amount, address, fee_kind) VALUES `+v.b.String(), args...)
		if err != nil {
			return fmt.Errorf("store: inserting legs: %w", err)
		}
		v = valuesBuilder{dialect: s.dialect}
		args, rowsInStatement = args[:0], 0
		return nil
	}
	add := func(values ...any) error {
		v.row(legColumnCount)
		args = append(args, values...)
		rowsInStatement++
		if rowsInStatement == legBatch {
			return flush()
		}
		return nil
	}
	for _, t := range txns {
		for i, l := range t.Inputs {
			if err := add(t.ID, sideIn, i, l.AssetSymbol, l.AssetID, l.Amount.String(), l.Address, ""); err != nil {
				return err
			}
		}
		for i, l := range t.Outputs {
			if err := add(t.ID, sideOut, i, l.AssetSymbol, l.AssetID, l.Amount.String(), l.Address, ""); err != nil {
				return err
			}
		}
		for i, f := range t.Fees {
			if err := add(t.ID, sideFee, i, f.AssetSymbol, f.AssetID, f.Amount.String(), "", string(f.Kind)); err != nil {
				return err
			}
		}
	}
	return flush()
}

// Order is the direction of a transaction listing by (timestamp, id).
type Order string

// The orders.
const (
	Desc Order = "desc" // newest first, the default
	Asc  Order = "asc"
)

// TransactionKey is the position of a transaction in a listing, the keyset cursor of
// ListTransactions: ids break ties between equal timestamps.
type TransactionKey struct {
	Timestamp time.Time
	ID        string
}

// TransactionKeyOf returns the key of t, for building the next page's cursor.
func TransactionKeyOf(t *opencalico.Transaction) TransactionKey {
	return TransactionKey{Timestamp: t.Timestamp, ID: t.ID}
}

// TransactionFilter selects a user's transactions. Empty lists and zero times do not filter.
type TransactionFilter struct {
	UserID        string // required
	ConnectionIDs []string
	ProviderIDs   []opencalico.ProviderID
	// AssetSymbols matches a transaction with any leg or fee in one of the assets.
	AssetSymbols []string
	Types        []opencalico.TransactionType
	Categories   []opencalico.Category
	Start        time.Time // inclusive
	End          time.Time // exclusive
	Order        Order     // Desc when empty
	// After is the key of the last transaction of the previous page, nil for the first page.
	After *TransactionKey
	// Limit caps the page; zero or less means no limit.
	Limit int
}

const transactionColumns = `t.id, t.user_id, t.connection_id, t.provider_id, t.external_id, t.type, t.category,
	t.subcategory, t.provider_type, t.status, t.ts, t.tx_hash, t.chain, t.from_address, t.to_address, t.description,
	t.transfer_id, t.created_at, t.updated_at`

func scanTransaction(row interface{ Scan(...any) error }) (*opencalico.Transaction, error) {
	var (
		t                               opencalico.Transaction
		provider, typ, category, status string
		ts, created, updated            int64
	)
	err := row.Scan(&t.ID, &t.UserID, &t.ConnectionID, &provider, &t.ExternalID, &typ, &category,
		&t.Categorization.Subcategory, &t.Categorization.ProviderType, &status, &ts, &t.TxHash, &t.Chain,
		&t.FromAddress, &t.ToAddress, &t.Description, &t.TransferID, &created, &updated)
	if err != nil {
		return nil, err
	}
	t.ProviderID, t.Type = opencalico.ProviderID(provider), opencalico.TransactionType(typ)
	t.Categorization.Category, t.Status = opencalico.Category(category), opencalico.TransactionStatus(status)
	t.Timestamp, t.CreatedAt, t.UpdatedAt = fromMicros(ts), fromMicros(created), fromMicros(updated)
	return &t, nil
}

// ListTransactions returns the transactions that match f, ordered by (timestamp, id) in f.Order,
// starting after f.After. The cost is that of one page at any depth: the (user_id, ts, id)
// index gives the order and the keyset condition is a range on it.
func (s *Store) ListTransactions(ctx context.Context, f TransactionFilter) ([]*opencalico.Transaction, error) {
	if f.UserID == "" {
		return nil, opencalico.Errorf(opencalico.EBadRequest, "listing transactions needs a user")
	}
	var (
		where strings.Builder
		args  []any
	)
	where.WriteString(`t.user_id = ?`)
	args = append(args, f.UserID)
	in := func(column string, values []any) {
		if len(values) == 0 {
			return
		}
		where.WriteString(` AND ` + column + ` IN (` + placeholders(len(values)) + `)`)
		args = append(args, values...)
	}
	in("t.connection_id", anyStrings(f.ConnectionIDs))
	in("t.provider_id", anyStrings(f.ProviderIDs))
	in("t.type", anyStrings(f.Types))
	in("t.category", anyStrings(f.Categories))
	if !f.Start.IsZero() {
		where.WriteString(` AND t.ts >= ?`)
		args = append(args, micros(f.Start))
	}
	if !f.End.IsZero() {
		where.WriteString(` AND t.ts < ?`)
		args = append(args, micros(f.End))
	}
	if len(f.AssetSymbols) > 0 {
		where.WriteString(` AND EXISTS (SELECT 1 FROM transaction_legs l WHERE l.transaction_id = t.id AND l.asset_symbol IN (` +
			placeholders(len(f.AssetSymbols)) + `))`)
		args = append(args, anyStrings(f.AssetSymbols)...)
	}
	dir, cmp := "DESC", "<"
	switch f.Order {
	case "", Desc:
	case Asc:
		dir, cmp = "ASC", ">"
	default:
		return nil, opencalico.Errorf(opencalico.EBadRequest, "unknown order %q: use asc or desc", f.Order)
	}
	if k := f.After; k != nil {
		// (ts, id) after the key, written out so that both planners see a range on ts.
		ts := micros(k.Timestamp)
		where.WriteString(` AND t.ts ` + cmp + `= ? AND (t.ts ` + cmp + ` ? OR t.id ` + cmp + ` ?)`)
		args = append(args, ts, ts, k.ID)
	}
	query := `SELECT ` + transactionColumns + ` FROM transactions t WHERE ` + where.String() +
		` ORDER BY t.ts ` + dir + `, t.id ` + dir
	if f.Limit > 0 {
		query += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("store: listing transactions: %w", err)
	}
	var out []*opencalico.Transaction
	for rows.Next() {
		t, err := scanTransaction(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: listing transactions: %w", err)
		}
		out = append(out, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: listing transactions: %w", err)
	}
	if err := s.loadLegs(ctx, out); err != nil {
		return nil, err
	}
	return out, nil
}

// loadLegs fills the legs and fees of txns with one query for the whole page.
func (s *Store) loadLegs(ctx context.Context, txns []*opencalico.Transaction) error {
	if len(txns) == 0 {
		return nil
	}
	byID := make(map[string]*opencalico.Transaction, len(txns))
	ids := make([]any, len(txns))
	for i, t := range txns {
		byID[t.ID] = t
		ids[i] = t.ID
		t.Inputs, t.Outputs, t.Fees = nil, nil, nil
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT transaction_id, side, asset_symbol, asset_id, amount, address, fee_kind
		FROM transaction_legs WHERE transaction_id IN (`+placeholders(len(ids))+`) ORDER BY transaction_id, side, position`), ids...)
	if err != nil {
		return fmt.Errorf("store: reading legs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id, side, feeKind string
			l                 opencalico.Leg
		)
		if err := rows.Scan(&id, &side, &l.AssetSymbol, &l.AssetID, &l.Amount, &l.Address, &feeKind); err != nil {
			return fmt.Errorf("store: reading legs: %w", err)
		}
		t := byID[id]
		switch side {
		case sideIn:
			t.Inputs = append(t.Inputs, l)
		case sideOut:
			t.Outputs = append(t.Outputs, l)
		case sideFee:
			t.Fees = append(t.Fees, opencalico.Fee{AssetSymbol: l.AssetSymbol, AssetID: l.AssetID, Amount: l.Amount, Kind: opencalico.FeeKind(feeKind)})
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: reading legs: %w", err)
	}
	return nil
}

// ChangeKey is a position in a user's changes feed, the keyset cursor of Changes. The zero
// key is the beginning: everything is added.
type ChangeKey struct {
	Seq int64
	ID  string
	// Base is the sequence the reader was caught up to when it began the walk this key
	// belongs to: everything created up to Base it has seen, so a later change to such a
	// transaction is a modification, and anything created after Base is new to it. The
	// order of the feed is by change, not by creation, so the key's own Seq cannot tell:
	// a transaction created early and changed late comes late in the walk, never seen.
	Base int64
}

// ChangesFilter selects a page of a user's changes feed.
type ChangesFilter struct {
	UserID        string // required
	ConnectionIDs []string
	After         ChangeKey
	Limit         int // 100 when zero or less
}

// ChangeSet is one page of the changes feed.
type ChangeSet struct {
	// Added holds transactions created after the cursor, in their current state.
	Added []*opencalico.Transaction
	// Modified holds transactions created at or before the cursor and changed after it.
	Modified []*opencalico.Transaction
	// Removed holds the ids of transactions removed after the cursor.
	Removed []string
	// Next is the cursor for the following page: the position of the last change of this one,
	// or After when there was none.
	Next    ChangeKey
	HasMore bool
}

// Changes returns the changes to the user's transactions after f.After, in (seq, id) order.
// A transaction appears once, at its latest change; it is "added" if the client, having read
// up to the cursor, cannot have seen its creation, and "modified" otherwise.
func (s *Store) Changes(ctx context.Context, f ChangesFilter) (ChangeSet, error) {
	set := ChangeSet{Next: f.After}
	if f.UserID == "" {
		return set, opencalico.Errorf(opencalico.EBadRequest, "reading changes needs a user")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	var connFilter string
	var connArgs []any
	if len(f.ConnectionIDs) > 0 {
		connFilter = ` AND connection_id IN (` + placeholders(len(f.ConnectionIDs)) + `)`
		connArgs = anyStrings(f.ConnectionIDs)
	}
	// Each branch is limited on its own index before the merge, so the cost is one page.
	query := `SELECT seq, id, created_seq, removed FROM (
			SELECT change_seq AS seq, id, created_seq, 0 AS removed FROM transactions
			WHERE user_id = ? AND change_seq >= ? AND (change_seq > ? OR id > ?)` + connFilter + `
			ORDER BY change_seq, id LIMIT ?) a
		UNION ALL
		SELECT seq, id, created_seq, removed FROM (
			SELECT seq, transaction_id AS id, 0 AS created_seq, 1 AS removed FROM transaction_tombstones
			WHERE user_id = ? AND seq >= ? AND (seq > ? OR transaction_id > ?)` + connFilter + `
			ORDER BY seq, transaction_id LIMIT ?) b
		ORDER BY seq, id LIMIT ?`
	k := f.After
	args := []any{f.UserID, k.Seq, k.Seq, k.ID}
	args = append(args, connArgs...)
	args = append(args, limit+1, f.UserID, k.Seq, k.Seq, k.ID)
	args = append(args, connArgs...)
	args = append(args, limit+1, limit+1)
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return set, fmt.Errorf("store: reading changes: %w", err)
	}
	type change struct {
		key        ChangeKey
		createdSeq int64
		removed    bool
	}
	var changes []change
	for rows.Next() {
		var c change
		var removed int
		if err := rows.Scan(&c.key.Seq, &c.key.ID, &c.createdSeq, &removed); err != nil {
			rows.Close()
			return set, fmt.Errorf("store: reading changes: %w", err)
		}
		c.removed = removed == 1
		changes = append(changes, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return set, fmt.Errorf("store: reading changes: %w", err)
	}
	if len(changes) > limit {
		changes, set.HasMore = changes[:limit], true
	}
	if len(changes) == 0 {
		set.Next.Base = set.Next.Seq // caught up
		return set, nil
	}
	set.Next = changes[len(changes)-1].key
	set.Next.Base = k.Base
	if !set.HasMore {
		set.Next.Base = set.Next.Seq // the walk is over: the reader has everything up to here
	}

	var ids []any
	for _, c := range changes {
		if !c.removed {
			ids = append(ids, c.key.ID)
		}
	}
	byID := map[string]*opencalico.Transaction{}
	if len(ids) > 0 {
		rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+transactionColumns+` FROM transactions t WHERE t.id IN (`+placeholders(len(ids))+`)`), ids...)
		if err != nil {
			return set, fmt.Errorf("store: reading changes: %w", err)
		}
		var txns []*opencalico.Transaction
		for rows.Next() {
			t, err := scanTransaction(rows)
			if err != nil {
				rows.Close()
				return set, fmt.Errorf("store: reading changes: %w", err)
			}
			txns = append(txns, t)
			byID[t.ID] = t
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return set, fmt.Errorf("store: reading changes: %w", err)
		}
		if err := s.loadLegs(ctx, txns); err != nil {
			return set, err
		}
	}
	for _, c := range changes {
		if c.removed {
			set.Removed = append(set.Removed, c.key.ID)
			continue
		}
		t := byID[c.key.ID]
		if t == nil {
			// Removed between the two queries; its tombstone lies after this page's end
			// and will be reported on a later page.
			continue
		}
		// The reader has seen the creation iff it happened by the start of its walk.
		if c.createdSeq > k.Base {
			set.Added = append(set.Added, t)
		} else {
			set.Modified = append(set.Modified, t)
		}
	}
	return set, nil
}
