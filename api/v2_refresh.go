package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/store"
)

// Syncs queues syncs in the caller's transaction (the sync engine).
type Syncs interface {
	EnqueueTx(ctx context.Context, tx *sql.Tx, connectionID string) error
	EnqueueHistoryTx(ctx context.Context, tx *sql.Tx, connectionID string) error
}

// DefaultRefreshCooldown is how soon a connection may be refreshed again.
const DefaultRefreshCooldown = time.Minute

// The refresh statuses.
const (
	refreshQueued    = "queued"
	refreshRunning   = "running"
	refreshSucceeded = "succeeded"
	refreshPartial   = "partial"
	refreshFailed    = "failed"
)

type refreshConnectionView struct {
	ConnectionID string     `json:"connection_id"`
	ProviderID   string     `json:"provider_id"`
	Status       string     `json:"status"`
	RowsAdded    int        `json:"rows_added"`
	RowsUpdated  int        `json:"rows_updated"`
	Error        *ErrorItem `json:"error"`
	StartedAt    *string    `json:"started_at"`
	FinishedAt   *string    `json:"finished_at"`
}

type refreshView struct {
	RefreshID   string                  `json:"refresh_id"`
	Kind        string                  `json:"kind"`
	Status      string                  `json:"status"`
	CreatedAt   string                  `json:"created_at"`
	Connections []refreshConnectionView `json:"connections"`
}

// connectionProgress says how far one connection of a refresh got, from the connection as it
// is now: the refresh's progress is derived, never stored, so it cannot disagree with the
// data. A stage that started after the request and a sync time after it mean done; a failure
// status set by a stage that started after the request means failed.
func connectionProgress(kind string, requested time.Time, c *opencalico.Connection) (status string, started, finished *time.Time, cause opencalico.ErrorCode, message string) {
	if c == nil {
		return refreshFailed, nil, nil, opencalico.ENotFound, "The connection was removed."
	}
	if c.SyncAttemptedAt != nil && !c.SyncAttemptedAt.Before(requested) {
		started = c.SyncAttemptedAt
	}
	done := c.AssetsSyncedAt
	if kind == "transactions" {
		done = c.TransactionsSyncedAt
	}
	switch {
	case done != nil && !done.Before(requested) && c.Status != opencalico.StatusSyncing:
		if len(c.StatusDetail.Incomplete) > 0 {
			return refreshPartial, started, done, c.StatusDetail.Cause, statusDetailText(c.StatusDetail)
		}
		return refreshSucceeded, started, done, "", ""
	case started != nil && (c.Status == opencalico.StatusError || c.Status == opencalico.StatusReauthRequired):
		cause = c.StatusDetail.Cause
		if c.Status == opencalico.StatusReauthRequired {
			cause = opencalico.EReauthRequired
		}
		return refreshFailed, started, nil, cause, statusDetailText(c.StatusDetail)
	case started != nil:
		return refreshRunning, started, nil, "", ""
	}
	return refreshQueued, nil, nil, "", ""
}

// overallStatus combines the connections' statuses.
func overallStatus(statuses []string) string {
	count := map[string]int{}
	for _, s := range statuses {
		count[s]++
	}
	n := len(statuses)
	switch {
	case n == 0 || count[refreshSucceeded] == n:
		return refreshSucceeded
	case count[refreshQueued] == n:
		return refreshQueued
	case count[refreshQueued]+count[refreshRunning] > 0:
		return refreshRunning
	case count[refreshFailed] == n:
		return refreshFailed
	}
	return refreshPartial
}

func (h *v2Handlers) refreshView(ctx context.Context, r *store.Refresh) (refreshView, error) {
	v := refreshView{RefreshID: r.ID, Kind: r.Kind, CreatedAt: timeString(r.CreatedAt), Connections: []refreshConnectionView{}}
	var statuses []string
	for _, rc := range r.Connections {
		c, err := h.d.Store.Connection(ctx, r.UserID, rc.ConnectionID)
		if opencalico.ErrorCodeOf(err) == opencalico.ENotFound {
			c, err = nil, nil
		} else if err != nil {
			return v, err
		}
		status, started, finished, cause, msg := connectionProgress(r.Kind, rc.RequestedAt, c)
		cv := refreshConnectionView{ConnectionID: rc.ConnectionID, ProviderID: string(rc.ProviderID), Status: status,
			StartedAt: optionalTime(started), FinishedAt: optionalTime(finished)}
		if cause != "" {
			cv.Error = &ErrorItem{ProviderID: string(rc.ProviderID), Cause: string(cause), Message: msg}
		}
		if c != nil && r.Kind == "transactions" {
			if cv.RowsAdded, cv.RowsUpdated, err = h.d.Store.TransactionsWrittenSince(ctx, c.ID, rc.RequestedAt); err != nil {
				return v, err
			}
		}
		statuses = append(statuses, status)
		v.Connections = append(v.Connections, cv)
	}
	v.Status = overallStatus(statuses)
	return v, nil
}

func (h *v2Handlers) refreshAssets(w http.ResponseWriter, r *http.Request) { h.refresh(w, r, "assets") }
func (h *v2Handlers) refreshTransactions(w http.ResponseWriter, r *http.Request) {
	h.refresh(w, r, "transactions")
}

// refresh queues a fresh read of the caller's connections (or of those named), except those
// refreshed within the cooldown: when every requested connection is cooling down the answer
// is 429 with Retry-After; otherwise the cooling ones are named in errors[].
func (h *v2Handlers) refresh(w http.ResponseWriter, r *http.Request, kind string) {
	if err := h.refreshFor(w, r, kind); err != nil {
		h.s.writeError(w, r, err)
	}
}

func (h *v2Handlers) refreshFor(w http.ResponseWriter, r *http.Request, kind string) error {
	ctx := r.Context()
	p, err := principal(r)
	if err != nil {
		return err
	}
	var in struct {
		ConnectionIDs []string `json:"connection_ids"`
	}
	if r.ContentLength != 0 {
		if err := h.s.decodeJSON(r, &in); err != nil {
			return err
		}
	}
	conns, err := h.d.Store.ListConnections(ctx, p.UserID)
	if err != nil {
		return err
	}
	var chosen []*opencalico.Connection
	for _, id := range in.ConnectionIDs {
		i := slices.IndexFunc(conns, func(c *opencalico.Connection) bool { return c.ID == id })
		if i < 0 {
			return opencalico.Errorf(opencalico.ENotFound, "Connection %q is not one of this user's connections.", opencalico.Excerpt(id, 64))
		}
		chosen = append(chosen, conns[i])
	}
	if len(in.ConnectionIDs) == 0 {
		chosen = conns
	}
	if len(chosen) == 0 {
		return opencalico.Errorf(opencalico.EBadRequest, "The user has no connections to refresh.")
	}
	ids := connectionIDs(chosen)
	last, err := h.d.Store.LastRefreshRequested(ctx, kind, ids)
	if err != nil {
		return err
	}
	cooldown := h.d.RefreshCooldown
	if cooldown <= 0 {
		cooldown = DefaultRefreshCooldown
	}
	now := time.Now()
	var ready []*opencalico.Connection
	var cooling []ErrorItem
	wait := time.Duration(math.MaxInt64)
	for _, c := range chosen {
		if at, ok := last[c.ID]; ok && now.Sub(at) < cooldown {
			left := cooldown - now.Sub(at)
			wait = min(wait, left)
			cooling = append(cooling, ErrorItem{ProviderID: string(c.ProviderID), Cause: string(opencalico.ERateLimited),
				Message: "Connection " + c.ID + " was refreshed less than " + cooldown.String() + " ago; try again in " +
					strconv.Itoa(int(math.Ceil(left.Seconds()))) + " s."})
			continue
		}
		ready = append(ready, c)
	}
	if len(ready) == 0 {
		return &opencalico.Error{Code: opencalico.ERateLimited, RetryAfter: wait,
			Message: "Every requested connection was refreshed less than " + cooldown.String() + " ago."}
	}
	ref := &store.Refresh{UserID: p.UserID, ClientID: p.ClientID, Kind: kind}
	for _, c := range ready {
		ref.Connections = append(ref.Connections, store.RefreshConnection{ConnectionID: c.ID, ProviderID: c.ProviderID})
	}
	err = h.d.Store.InTx(ctx, func(tx *sql.Tx) error {
		if err := h.d.Store.CreateRefreshTx(ctx, tx, ref); err != nil {
			return err
		}
		for _, c := range ready {
			enqueue := h.d.Syncs.EnqueueTx
			if kind == "transactions" {
				enqueue = h.d.Syncs.EnqueueHistoryTx
			}
			if err := enqueue(ctx, tx, c.ID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	view, err := h.refreshView(ctx, ref)
	if err != nil {
		return err
	}
	writeData(w, http.StatusAccepted, view, cooling, nil)
	return nil
}

func (h *v2Handlers) refreshStatus(w http.ResponseWriter, r *http.Request) {
	p, err := principal(r)
	if err != nil {
		h.s.writeError(w, r, err)
		return
	}
	ref, err := h.d.Store.Refresh(r.Context(), p.UserID, r.PathValue("refresh_id"))
	if err != nil {
		h.s.writeError(w, r, err)
		return
	}
	view, err := h.refreshView(r.Context(), ref)
	if err != nil {
		h.s.writeError(w, r, err)
		return
	}
	writeData(w, http.StatusOK, view, nil, nil)
}

// idempotent honours Idempotency-Key on a POST: the first answer to a key (other than a
// server error) is stored, and the same request with the same key gets it again instead of
// acting twice; the same key with another request is refused.
func (h *v2Handlers) idempotent(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Idempotency-Key")
		if key == "" {
			next(w, r)
			return
		}
		p, err := principal(r)
		if err != nil {
			h.s.writeError(w, r, err)
			return
		}
		if len(key) > 255 {
			h.s.writeError(w, r, opencalico.Errorf(opencalico.EBadRequest, "Idempotency-Key is longer than 255 characters."))
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			h.s.writeError(w, r, errBodyTooLarge(h.s.cfg.MaxBodyBytes))
			return
		}
		sum := sha256.Sum256(append([]byte(r.Method+" "+r.URL.Path+"\x00"), body...))
		hash := hex.EncodeToString(sum[:])
		who := caller(p)
		prev, err := h.d.Store.IdempotentResponse(r.Context(), who, key)
		if err != nil {
			h.s.writeError(w, r, err)
			return
		}
		if prev == nil {
			rec := httptest.NewRecorder()
			r.Body = io.NopCloser(bytes.NewReader(body))
			next(rec, r)
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			if rec.Code >= 500 {
				w.WriteHeader(rec.Code)
				_, _ = w.Write(rec.Body.Bytes())
				return
			}
			prev, err = h.d.Store.SaveIdempotentResponse(r.Context(), who, key,
				store.IdempotentResponse{RequestHash: hash, Status: rec.Code, Body: rec.Body.Bytes()})
			if err != nil {
				h.s.writeError(w, r, err)
				return
			}
			if prev.RequestHash == hash && bytes.Equal(prev.Body, rec.Body.Bytes()) {
				w.WriteHeader(rec.Code)
				_, _ = w.Write(rec.Body.Bytes())
				return
			}
		}
		if prev.RequestHash != hash {
			h.s.writeError(w, r, opencalico.Errorf(opencalico.EBadRequest,
				"This Idempotency-Key was used with a different request; use a new key for a new request."))
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Idempotent-Replayed", "true")
		w.WriteHeader(prev.Status)
		_, _ = w.Write(prev.Body)
	}
}
