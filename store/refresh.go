package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/opencalico/opencalico"
)

// Refresh is a partner's request to read some connections again.
type Refresh struct {
	ID          string // "rfr_…"
	UserID      string
	ClientID    string
	Kind        string // "assets" or "transactions"
	CreatedAt   time.Time
	Connections []RefreshConnection
}

// RefreshConnection is one connection of a refresh.
type RefreshConnection struct {
	ConnectionID string
	ProviderID   opencalico.ProviderID
	RequestedAt  time.Time
}

// CreateRefreshTx records a refresh inside the caller's transaction: the one that queues its
// sync jobs.
func (s *Store) CreateRefreshTx(ctx context.Context, tx *sql.Tx, r *Refresh) error {
	if r.ID == "" {
		r.ID = opencalico.NewID("rfr")
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = s.now()
	}
	r.CreatedAt = r.CreatedAt.UTC().Truncate(time.Microsecond)
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO refreshes (id, user_id, client_id, kind, created_at) VALUES (?, ?, ?, ?, ?)`),
		r.ID, r.UserID, r.ClientID, r.Kind, micros(r.CreatedAt)); err != nil {
		return fmt.Errorf("store: creating refresh: %w", err)
	}
	for i := range r.Connections {
		c := &r.Connections[i]
		c.RequestedAt = r.CreatedAt
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO refresh_connections (refresh_id, connection_id, provider_id, requested_at)
			VALUES (?, ?, ?, ?)`), r.ID, c.ConnectionID, string(c.ProviderID), micros(c.RequestedAt)); err != nil {
			return fmt.Errorf("store: creating refresh: %w", err)
		}
	}
	return nil
}

// Refresh returns the user's refresh with the id; another user's is not_found.
func (s *Store) Refresh(ctx context.Context, userID, id string) (*Refresh, error) {
	r := &Refresh{ID: id}
	var created int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT user_id, client_id, kind, created_at FROM refreshes WHERE id = ? AND user_id = ?`),
		id, userID).Scan(&r.UserID, &r.ClientID, &r.Kind, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("refresh", id)
	} else if err != nil {
		return nil, fmt.Errorf("store: reading refresh: %w", err)
	}
	r.CreatedAt = fromMicros(created)
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT connection_id, provider_id, requested_at FROM refresh_connections
		WHERE refresh_id = ? ORDER BY connection_id`), id)
	if err != nil {
		return nil, fmt.Errorf("store: reading refresh: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c RefreshConnection
		var provider string
		var at int64
		if err := rows.Scan(&c.ConnectionID, &provider, &at); err != nil {
			return nil, fmt.Errorf("store: reading refresh: %w", err)
		}
		c.ProviderID, c.RequestedAt = opencalico.ProviderID(provider), fromMicros(at)
		r.Connections = append(r.Connections, c)
	}
	return r, rows.Err()
}

// LastRefreshRequested returns, per connection, when a refresh of the kind was last asked for
// (connections never refreshed are absent), for the refresh cooldown.
func (s *Store) LastRefreshRequested(ctx context.Context, kind string, connectionIDs []string) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	if len(connectionIDs) == 0 {
		return out, nil
	}
	args := []any{kind}
	for _, id := range connectionIDs {
		args = append(args, id)
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT rc.connection_id, max(rc.requested_at) FROM refresh_connections rc
		JOIN refreshes r ON r.id = rc.refresh_id
		WHERE r.kind = ? AND rc.connection_id IN (`+placeholders(len(connectionIDs))+`) GROUP BY rc.connection_id`), args...)
	if err != nil {
		return nil, fmt.Errorf("store: reading refreshes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var at int64
		if err := rows.Scan(&id, &at); err != nil {
			return nil, fmt.Errorf("store: reading refreshes: %w", err)
		}
		out[id] = fromMicros(at)
	}
	return out, rows.Err()
}

// TransactionsWrittenSince counts a connection's transactions first stored, and those
// changed, at or after since: what a refresh added and updated.
func (s *Store) TransactionsWrittenSince(ctx context.Context, connectionID string, since time.Time) (added, updated int, err error) {
	err = s.db.QueryRowContext(ctx, s.q(`SELECT
			COALESCE(SUM(CASE WHEN created_at >= ? THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN created_at < ? AND updated_at >= ? THEN 1 ELSE 0 END), 0)
		FROM transactions WHERE connection_id = ? AND updated_at >= ?`),
		micros(since), micros(since), micros(since), connectionID, micros(since)).Scan(&added, &updated)
	if err != nil {
		return 0, 0, fmt.Errorf("store: counting written transactions: %w", err)
	}
	return added, updated, nil
}

// IdempotentResponse is a stored answer to a request made with an Idempotency-Key.
type IdempotentResponse struct {
	RequestHash string
	Status      int
	Body        []byte
}

// IdempotentResponse returns the answer stored for the caller's key, if any.
func (s *Store) IdempotentResponse(ctx context.Context, caller, key string) (*IdempotentResponse, error) {
	r := &IdempotentResponse{}
	err := s.db.QueryRowContext(ctx, s.q(`SELECT request_hash, status, body FROM idempotent_requests WHERE caller = ? AND key = ?`),
		caller, key).Scan(&r.RequestHash, &r.Status, &r.Body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("store: reading an idempotent request: %w", err)
	}
	return r, nil
}

// SaveIdempotentResponse stores the answer to the caller's key. If another request with the
// key got there first, its answer stays and is returned.
func (s *Store) SaveIdempotentResponse(ctx context.Context, caller, key string, r IdempotentResponse) (*IdempotentResponse, error) {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO idempotent_requests (caller, key, request_hash, status, body, created_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (caller, key) DO NOTHING`),
		caller, key, r.RequestHash, r.Status, r.Body, micros(s.now()))
	if err != nil {
		return nil, fmt.Errorf("store: saving an idempotent request: %w", err)
	}
	return s.IdempotentResponse(ctx, caller, key)
}
