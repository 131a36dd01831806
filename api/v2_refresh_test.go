package api

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/store"
)

type recordingSyncs struct {
	mu    sync.Mutex
	queue []string
}

func (s *recordingSyncs) EnqueueTx(_ context.Context, _ *sql.Tx, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, "sync:"+id)
	return nil
}

func (s *recordingSyncs) EnqueueHistoryTx(_ context.Context, _ *sql.Tx, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, "history:"+id)
	return nil
}

func (s *recordingSyncs) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

func (w *v2World) post(t *testing.T, user *opencalico.User, path, body string, header http.Header) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	req := httptest.NewRequest("POST", path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+user.ID+"/cli_partner")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	w.srv.ServeHTTP(rec, req)
	validateExchange(t, w.doc, req, []byte(body), rec)
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("POST %s: %q", path, rec.Body.String())
	}
	component := "RefreshResponse"
	if rec.Code >= 400 {
		component = "CalicoErrorResponse"
	}
	checkSchema(t, w.doc, component, out)
	return rec, out
}

func newRefreshWorld(t *testing.T) (*v2World, *recordingSyncs) {
	w := newV2World(t)
	syncs := &recordingSyncs{}
	w.srv = NewServer(DefaultConfig(), w.srv.log, &fakeDB{current: true}, nil)
	w.srv.MountV2(V2{Store: w.st, Authenticate: testAuth, CursorKey: []byte("test cursor key, 32 bytes long!"),
		Catalog: w.srvCatalog(), Syncs: syncs})
	return w, syncs
}

func TestV2Refresh(t *testing.T) {
	w, syncs := newRefreshWorld(t)
	ctx := context.Background()
	rec, body := w.post(t, w.alice, "/accounts/v2/assets/refresh", "", nil)
	if rec.Code != 202 || syncs.count() != 2 {
		t.Fatalf("refresh: %d %v, %d queued", rec.Code, body, syncs.count())
	}
	data := body["data"].(map[string]any)
	refreshID := data["refresh_id"].(string)
	if data["status"] != "queued" || len(data["connections"].([]any)) != 2 {
		t.Fatalf("refresh answer %v", data)
	}
	rec, body = w.post(t, w.alice, "/accounts/v2/assets/refresh", "", nil)
	if rec.Code != 429 || errorCause(body) != "rate_limited" || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("second refresh within the cooldown: %d %v Retry-After=%q", rec.Code, body, rec.Header().Get("Retry-After"))
	}
	// A transactions refresh has its own cooldown.
	if rec, body := w.post(t, w.alice, "/accounts/v2/transactions/refresh", `{"connection_ids":["`+w.conns["alice-binance"].ID+`"]}`, nil); rec.Code != 202 {
		t.Fatalf("transactions refresh: %d %v", rec.Code, body)
	}

	// Progress, as the sync engine records it on the connections.
	status := func() map[string]any {
		t.Helper()
		code, body := w.get(t, w.alice, "/accounts/v2/refresh/"+refreshID, nil, "RefreshResponse")
		if code != 200 {
			t.Fatalf("status: %d %v", code, body)
		}
		return body["data"].(map[string]any)
	}
	if s := status()["status"]; s != "queued" {
		t.Fatalf("before any sync: %v", s)
	}
	later := time.Now().Add(time.Second)
	syncing := opencalico.StatusSyncing
	if _, err := w.st.UpdateConnection(ctx, w.conns["alice-binance"].ID, store.ConnectionUpdate{Status: &syncing, SyncAttemptedAt: &later}); err != nil {
		t.Fatal(err)
	}
	if s := status()["status"]; s != "running" {
		t.Fatalf("while syncing: %v", s)
	}
	active, reauth := opencalico.StatusActive, opencalico.StatusReauthRequired
	done := later.Add(time.Second)
	if _, err := w.st.UpdateConnection(ctx, w.conns["alice-binance"].ID, store.ConnectionUpdate{Status: &active, AssetsSyncedAt: &done}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.st.UpdateConnection(ctx, w.conns["alice-kraken"].ID, store.ConnectionUpdate{Status: &reauth, SyncAttemptedAt: &later}); err != nil {
		t.Fatal(err)
	}
	final := status()
	if final["status"] != "partial" {
		t.Fatalf("one succeeded, one failed: %v", final)
	}
	for _, c := range final["connections"].([]any) {
		c := c.(map[string]any)
		want := "succeeded"
		if c["connection_id"] == w.conns["alice-kraken"].ID {
			want = "failed"
			if c["error"].(map[string]any)["cause"] != "reauth_required" {
				t.Errorf("failed connection error %v", c["error"])
			}
		}
		if c["status"] != want {
			t.Errorf("%v: %v, want %s", c["connection_id"], c["status"], want)
		}
	}
	if code, body := w.get(t, w.bob, "/accounts/v2/refresh/"+refreshID, nil, ""); code != 404 || errorCause(body) != "not_found" {
		t.Fatalf("bob reads alice's refresh: %d %v", code, body)
	}
	before := syncs.count()
	for name, b := range map[string]struct {
		user   *opencalico.User
		body   string
		status int
		cause  string
	}{
		"another user's connection": {w.bob, `{"connection_ids":["` + w.conns["alice-binance"].ID + `"]}`, 404, "not_found"},
		"malformed":                 {w.bob, `{"connection_ids":`, 400, "bad_request"},
		"unknown field":             {w.bob, `{"connections":[]}`, 400, "bad_request"},
	} {
		rec, body := w.post(t, b.user, "/accounts/v2/assets/refresh", b.body, nil)
		if rec.Code != b.status || errorCause(body) != b.cause {
			t.Errorf("%s: %d %v", name, rec.Code, body)
		}
	}
	if syncs.count() != before {
		t.Fatal("a refused refresh queued a sync")
	}
}

func TestV2IdempotencyKey(t *testing.T) {
	w, syncs := newRefreshWorld(t)
	key := http.Header{"Idempotency-Key": {"k-1"}}
	first, body1 := w.post(t, w.bob, "/accounts/v2/transactions/refresh", `{}`, key)
	second, body2 := w.post(t, w.bob, "/accounts/v2/transactions/refresh", `{}`, key)
	if first.Code != 202 || second.Code != 202 || syncs.count() != 1 {
		t.Fatalf("same key twice: %d then %d, %d queued", first.Code, second.Code, syncs.count())
	}
	if second.Header().Get("Idempotent-Replayed") != "true" || body1["data"].(map[string]any)["refresh_id"] != body2["data"].(map[string]any)["refresh_id"] {
		t.Fatal("the second answer is not the first one replayed")
	}
	rec, body := w.post(t, w.bob, "/accounts/v2/transactions/refresh", `{"connection_ids":[]}`, key)
	if rec.Code != 400 || errorCause(body) != "bad_request" {
		t.Fatalf("same key, other request: %d %v", rec.Code, body)
	}
	// Keys are per caller: alice's k-1 is a new request (and within no cooldown of hers).
	if rec, _ := w.post(t, w.alice, "/accounts/v2/transactions/refresh", `{}`, key); rec.Code != 202 || syncs.count() != 3 {
		t.Fatalf("alice with bob's key: %d, %d queued", rec.Code, syncs.count())
	}
}

func TestRefreshProgress(t *testing.T) {
	req := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	before, after, later := req.Add(-time.Minute), req.Add(time.Second), req.Add(time.Minute)
	conn := func(status opencalico.ConnectionStatus, attempted, assets *time.Time, incomplete ...string) *opencalico.Connection {
		return &opencalico.Connection{Status: status, SyncAttemptedAt: attempted, AssetsSyncedAt: assets,
			StatusDetail: opencalico.StatusDetail{Incomplete: incomplete}}
	}
	tests := []struct {
		name string
		c    *opencalico.Connection
		want string
	}{
		{"removed", nil, refreshFailed},
		{"not started", conn(opencalico.StatusActive, &before, &before), refreshQueued},
		{"old failure is not this refresh's", conn(opencalico.StatusError, &before, &before), refreshQueued},
		{"running", conn(opencalico.StatusSyncing, &after, &before), refreshRunning},
		{"balances done, history running", conn(opencalico.StatusSyncing, &after, &later), refreshRunning},
		{"done", conn(opencalico.StatusActive, &after, &later), refreshSucceeded},
		{"done but incomplete", conn(opencalico.StatusActive, &after, &later, "myTrades"), refreshPartial},
		{"failed", conn(opencalico.StatusError, &after, &before), refreshFailed},
		{"needs reauth", conn(opencalico.StatusReauthRequired, &after, nil), refreshFailed},
	}
	for _, tt := range tests {
		if got, _, _, _, _ := connectionProgress("assets", req, tt.c); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
	for statuses, want := range map[string]string{
		"":                    refreshSucceeded,
		"queued,queued":       refreshQueued,
		"queued,succeeded":    refreshRunning,
		"running,failed":      refreshRunning,
		"succeeded,failed":    refreshPartial,
		"failed,failed":       refreshFailed,
		"partial,succeeded":   refreshPartial,
		"succeeded,succeeded": refreshSucceeded,
	} {
		var list []string
		if statuses != "" {
			list = strings.Split(statuses, ",")
		}
		if got := overallStatus(list); got != want {
			t.Errorf("%q: %s, want %s", statuses, got, want)
		}
	}
}
