package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/opencalico/opencalico"
)

// CreateConnection stores a new connection and its sealed secret (nil for a wallet, which has
// none) in one database transaction, so that a connection never exists without the
// credentials it needs, nor credentials without their connection. ID, CreatedAt and Status
// are filled when empty. The same credential (user, provider, fingerprint) linked twice is an
// already_connected error.
func (s *Store) CreateConnection(ctx context.Context, c *opencalico.Connection, secret *opencalico.SealedSecret) error {
	return s.InTx(ctx, func(tx *sql.Tx) error { return s.CreateConnectionTx(ctx, tx, c, secret) })
}

// CreateConnectionTx is CreateConnection inside the caller's transaction (to queue the first
// sync job atomically with the connection).
func (s *Store) CreateConnectionTx(ctx context.Context, tx *sql.Tx, c *opencalico.Connection, secret *opencalico.SealedSecret) error {
	if c.UserID == "" || c.ProviderID == "" || !c.Type.Valid() {
		return opencalico.Errorf(opencalico.EBadRequest, "a connection needs a user, a provider and a valid type")
	}
	if c.ID == "" {
		c.ID = opencalico.NewID("conn")
	}
	if c.Status == "" {
		c.Status = opencalico.StatusPending
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = s.now()
	}
	c.CreatedAt = c.CreatedAt.UTC().Truncate(time.Microsecond)
	detail, err := json.Marshal(c.StatusDetail)
	if err != nil {
		return fmt.Errorf("store: encoding status detail: %w", err)
	}
	// ON CONFLICT on the partial unique index, rather than catching the driver's unique
	// violation, keeps the check free of SQLite- and pgx-specific error codes.
	res, err := tx.ExecContext(ctx, s.q(`INSERT INTO connections (id, user_id, provider_id, display_label, type, status,
			status_detail, fingerprint, address, chain, created_at, last_synced_at, assets_synced_at, transactions_synced_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (user_id, provider_id, fingerprint) WHERE fingerprint <> '' DO NOTHING`),
		c.ID, c.UserID, string(c.ProviderID), c.DisplayLabel, string(c.Type), string(c.Status),
		string(detail), c.Fingerprint, c.Address, c.Chain, micros(c.CreatedAt),
		nullMicros(c.LastSyncedAt), nullMicros(c.AssetsSyncedAt), nullMicros(c.TransactionsSyncedAt))
	if err != nil {
		return fmt.Errorf("store: creating connection: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: creating connection: %w", err)
	} else if n == 0 {
		e := opencalico.Errorf(opencalico.EAlreadyConnected, "this account is already connected")
		e.ProviderID = c.ProviderID
		return e
	}
	if secret != nil {
		secret.ConnectionID = c.ID
		if err := s.putSecret(ctx, tx, *secret); err != nil {
			return err
		}
	}
	return nil
}

const connectionColumns = `id, user_id, provider_id, display_label, type, status, status_detail, fingerprint,
	address, chain, created_at, last_synced_at, assets_synced_at, transactions_synced_at, sync_attempted_at`

func scanConnection(row interface{ Scan(...any) error }) (*opencalico.Connection, error) {
	var (
		c                       opencalico.Connection
		provider, typ, status   string
		detail                  []byte
		created                 int64
		lastSync, assets, trans sql.NullInt64
		attempted               sql.NullInt64
	)
	err := row.Scan(&c.ID, &c.UserID, &provider, &c.DisplayLabel, &typ, &status, &detail, &c.Fingerprint,
		&c.Address, &c.Chain, &created, &lastSync, &assets, &trans, &attempted)
	if err != nil {
		return nil, err
	}
	c.ProviderID, c.Type, c.Status = opencalico.ProviderID(provider), opencalico.AuthType(typ), opencalico.ConnectionStatus(status)
	if len(detail) > 0 {
		if err := json.Unmarshal(detail, &c.StatusDetail); err != nil {
			return nil, fmt.Errorf("decoding status detail of %s: %w", c.ID, err)
		}
	}
	c.CreatedAt = fromMicros(created)
	c.LastSyncedAt, c.AssetsSyncedAt, c.TransactionsSyncedAt = fromNullMicros(lastSync), fromNullMicros(assets), fromNullMicros(trans)
	c.SyncAttemptedAt = fromNullMicros(attempted)
	return &c, nil
}

// Connection returns the user's connection with the id. Another user's connection is
// not_found, exactly like a missing one, so that ids cannot be probed.
func (s *Store) Connection(ctx context.Context, userID, id string) (*opencalico.Connection, error) {
	c, err := scanConnection(s.db.QueryRowContext(ctx,
		s.q(`SELECT `+connectionColumns+` FROM connections WHERE id = ? AND user_id = ?`), id, userID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("connection", id)
	} else if err != nil {
		return nil, fmt.Errorf("store: reading connection: %w", err)
	}
	return c, nil
}

// ConnectionByID returns a connection whoever owns it. It is for the sync worker, which holds
// connection ids from its own jobs; request handlers use Connection.
func (s *Store) ConnectionByID(ctx context.Context, id string) (*opencalico.Connection, error) {
	c, err := scanConnection(s.db.QueryRowContext(ctx,
		s.q(`SELECT `+connectionColumns+` FROM connections WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("connection", id)
	} else if err != nil {
		return nil, fmt.Errorf("store: reading connection: %w", err)
	}
	return c, nil
}

// ListConnections returns the user's connections, oldest first.
func (s *Store) ListConnections(ctx context.Context, userID string) ([]*opencalico.Connection, error) {
	rows, err := s.db.QueryContext(ctx,
		s.q(`SELECT `+connectionColumns+` FROM connections WHERE user_id = ? ORDER BY created_at, id`), userID)
	if err != nil {
		return nil, fmt.Errorf("store: listing connections: %w", err)
	}
	defer rows.Close()
	var out []*opencalico.Connection
	for rows.Next() {
		c, err := scanConnection(rows)
		if err != nil {
			return nil, fmt.Errorf("store: listing connections: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: listing connections: %w", err)
	}
	return out, nil
}

// ConnectionUpdate changes some fields of a connection; nil fields are left as they are.
type ConnectionUpdate struct {
	DisplayLabel         *string
	Status               *opencalico.ConnectionStatus
	StatusDetail         *opencalico.StatusDetail
	LastSyncedAt         *time.Time
	AssetsSyncedAt       *time.Time
	TransactionsSyncedAt *time.Time
	SyncAttemptedAt      *time.Time
}

// UpdateConnection applies u to the connection with the id (whoever owns it: the sync worker
// calls it), and returns the connection as stored afterwards.
func (s *Store) UpdateConnection(ctx context.Context, id string, u ConnectionUpdate) (*opencalico.Connection, error) {
	if err := s.updateConnection(ctx, s.db, id, u); err != nil {
		return nil, err
	}
	return s.ConnectionByID(ctx, id)
}

// UpdateConnectionTx is UpdateConnection inside the caller's transaction.
func (s *Store) UpdateConnectionTx(ctx context.Context, tx *sql.Tx, id string, u ConnectionUpdate) error {
	return s.updateConnection(ctx, tx, id, u)
}

func (s *Store) updateConnection(ctx context.Context, db execer, id string, u ConnectionUpdate) error {
	var (
		sets []string
		args []any
	)
	set := func(column string, value any) {
		sets = append(sets, column+" = ?")
		args = append(args, value)
	}
	if u.DisplayLabel != nil {
		set("display_label", *u.DisplayLabel)
	}
	if u.Status != nil {
		if !u.Status.Valid() {
			return opencalico.Errorf(opencalico.EBadRequest, "unknown connection status %q", *u.Status)
		}
		set("status", string(*u.Status))
	}
	if u.StatusDetail != nil {
		detail, err := json.Marshal(u.StatusDetail)
		if err != nil {
			return fmt.Errorf("store: encoding status detail: %w", err)
		}
		set("status_detail", string(detail))
	}
	if u.LastSyncedAt != nil {
		set("last_synced_at", micros(*u.LastSyncedAt))
	}
	if u.AssetsSyncedAt != nil {
		set("assets_synced_at", micros(*u.AssetsSyncedAt))
	}
	if u.TransactionsSyncedAt != nil {
		set("transactions_synced_at", micros(*u.TransactionsSyncedAt))
	}
	if u.SyncAttemptedAt != nil {
		set("sync_attempted_at", micros(*u.SyncAttemptedAt))
	}
	if len(sets) > 0 {
		query := "UPDATE connections SET "
		for i, s := range sets {
			if i > 0 {
				query += ", "
			}
			query += s
		}
		res, err := db.ExecContext(ctx, s.q(query+" WHERE id = ?"), append(args, id)...)
		if err != nil {
			return fmt.Errorf("store: updating connection: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound("connection", id)
		}
	}
	return nil
}

// DeleteConnection removes the user's connection and everything read through it, in one
// database transaction: its sealed secret (unrecoverably), its positions, its transactions
// and their legs. Each removed transaction leaves a tombstone so that the changes feed can
// tell partners to drop it. Another user's connection is not_found.
func (s *Store) DeleteConnection(ctx context.Context, userID, id string) error {
	return s.InTx(ctx, func(tx *sql.Tx) error {
		var owner string
		err := tx.QueryRowContext(ctx, s.q(`SELECT user_id FROM connections WHERE id = ? AND user_id = ?`), id, userID).Scan(&owner)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("connection", id)
		} else if err != nil {
			return fmt.Errorf("store: deleting connection: %w", err)
		}
		seq, err := s.nextChangeSeq(ctx, tx, userID)
		if err != nil {
			return err
		}
		if err := s.unlinkTransfersOfTx(ctx, tx, userID, id, seq); err != nil {
			return err
		}
		now := micros(s.now())
		// Children before parents: the foreign keys are checked even though they cascade, and
		// explicit deletes do not depend on SQLite's foreign_keys pragma being on.
		steps := []struct {
			query string
			args  []any
		}{
			{`INSERT INTO transaction_tombstones (user_id, seq, transaction_id, connection_id, removed_at)
				SELECT user_id, ?, id, connection_id, ? FROM transactions WHERE connection_id = ?`, []any{seq, now, id}},
			{`DELETE FROM transaction_legs WHERE transaction_id IN (SELECT id FROM transactions WHERE connection_id = ?)`, []any{id}},
			{`DELETE FROM transactions WHERE connection_id = ?`, []any{id}},
			{`DELETE FROM positions WHERE connection_id = ?`, []any{id}},
			{`DELETE FROM sync_cursors WHERE connection_id = ?`, []any{id}},
			{`DELETE FROM connection_secrets WHERE connection_id = ?`, []any{id}},
			{`DELETE FROM connections WHERE id = ?`, []any{id}},
		}
		for _, st := range steps {
			if _, err := tx.ExecContext(ctx, s.q(st.query), st.args...); err != nil {
				return fmt.Errorf("store: deleting connection: %w", err)
			}
		}
		return nil
	})
}

// Secret returns the sealed secret of a connection, or not_found (a wallet has none).
func (s *Store) Secret(ctx context.Context, connectionID string) (opencalico.SealedSecret, error) {
	sec := opencalico.SealedSecret{ConnectionID: connectionID}
	err := s.db.QueryRowContext(ctx, s.q(`SELECT key_id, wrapped_key, ciphertext FROM connection_secrets WHERE connection_id = ?`),
		connectionID).Scan(&sec.KeyID, &sec.WrappedKey, &sec.Ciphertext)
	if errors.Is(err, sql.ErrNoRows) {
		return opencalico.SealedSecret{}, notFound("secret of connection", connectionID)
	} else if err != nil {
		return opencalico.SealedSecret{}, fmt.Errorf("store: reading secret: %w", err)
	}
	return sec, nil
}

// PutSecret stores the sealed secret of an existing connection, replacing any previous one
// (a refreshed OAuth token, re-entered credentials).
func (s *Store) PutSecret(ctx context.Context, sec opencalico.SealedSecret) error {
	return s.putSecret(ctx, s.db, sec)
}

// execer is what *sql.DB and *sql.Tx share.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (s *Store) putSecret(ctx context.Context, db execer, sec opencalico.SealedSecret) error {
	if sec.ConnectionID == "" || sec.KeyID == "" || len(sec.WrappedKey) == 0 || len(sec.Ciphertext) == 0 {
		return opencalico.Errorf(opencalico.EBadRequest, "incomplete sealed secret")
	}
	_, err := db.ExecContext(ctx, s.q(`INSERT INTO connection_secrets (connection_id, key_id, wrapped_key, ciphertext, updated_at)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (connection_id) DO UPDATE SET key_id = excluded.key_id, wrapped_key = excluded.wrapped_key,
			ciphertext = excluded.ciphertext, updated_at = excluded.updated_at`),
		sec.ConnectionID, sec.KeyID, sec.WrappedKey, sec.Ciphertext, micros(s.now()))
	if err != nil {
		// No argument goes into the message: they are ciphertexts, and the id is in the caller's hands.
		return fmt.Errorf("store: storing secret: %w", err)
	}
	return nil
}

// ListSealedSecrets returns up to limit sealed secrets whose connection id sorts after
// afterConnectionID ("" to start), in connection id order, for walking every secret during
// key rotation without holding a long transaction.
func (s *Store) ListSealedSecrets(ctx context.Context, afterConnectionID string, limit int) ([]opencalico.SealedSecret, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT connection_id, key_id, wrapped_key, ciphertext FROM connection_secrets
		WHERE connection_id > ? ORDER BY connection_id LIMIT ?`), afterConnectionID, limit)
	if err != nil {
		return nil, fmt.Errorf("store: listing secrets: %w", err)
	}
	defer rows.Close()
	var out []opencalico.SealedSecret
	for rows.Next() {
		var sec opencalico.SealedSecret
		if err := rows.Scan(&sec.ConnectionID, &sec.KeyID, &sec.WrappedKey, &sec.Ciphertext); err != nil {
			return nil, fmt.Errorf("store: listing secrets: %w", err)
		}
		out = append(out, sec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: listing secrets: %w", err)
	}
	return out, nil
}

// RewrapSecret replaces the wrapped data key of a connection's secret, only if that secret is
// still wrapped by oldKeyID (compare-and-set), and reports whether it did. The ciphertext is
// untouched: rotation re-wraps the data key, not the credentials. The condition makes a
// rotation safe against a concurrent PutSecret or a second rotation: a lost race is simply
// not applied.
func (s *Store) RewrapSecret(ctx context.Context, connectionID, oldKeyID, newKeyID string, wrappedKey []byte) (bool, error) {
	if newKeyID == "" || len(wrappedKey) == 0 {
		return false, opencalico.Errorf(opencalico.EBadRequest, "a rewrapped secret needs a key id and a wrapped key")
	}
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE connection_secrets SET key_id = ?, wrapped_key = ?, updated_at = ?
		WHERE connection_id = ? AND key_id = ?`), newKeyID, wrappedKey, micros(s.now()), connectionID, oldKeyID)
	if err != nil {
		return false, fmt.Errorf("store: rewrapping secret: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: rewrapping secret: %w", err)
	}
	return n == 1, nil
}
