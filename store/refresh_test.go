package store

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/opencalico/opencalico"
)

func TestRefreshes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := t0
		s.now = func() time.Time { return now }
		u, other := mustUser(t, s, "r@x"), mustUser(t, s, "o@x")
		a, b := mustConnection(t, s, u.ID, "kraken"), mustConnection(t, s, u.ID, "binance")
		if _, err := s.UpsertTransactions(ctx, []*opencalico.Transaction{trade(a.ID, "old", t0, "1"), trade(a.ID, "changes", t0, "1")}); err != nil {
			t.Fatal(err)
		}
		now = t0.Add(time.Minute)
		r := &Refresh{UserID: u.ID, ClientID: "cli", Kind: "assets", Connections: []RefreshConnection{
			{ConnectionID: a.ID, ProviderID: "kraken"}, {ConnectionID: b.ID, ProviderID: "binance"}}}
		if err := s.InTx(ctx, func(tx *sql.Tx) error { return s.CreateRefreshTx(ctx, tx, r) }); err != nil {
			t.Fatal(err)
		}
		got, err := s.Refresh(ctx, u.ID, r.ID)
		if err != nil || got.Kind != "assets" || len(got.Connections) != 2 || !got.Connections[0].RequestedAt.Equal(now) {
			t.Fatalf("refresh %+v %v", got, err)
		}
		_, err = s.Refresh(ctx, other.ID, r.ID)
		wantCode(t, err, opencalico.ENotFound)

		last, err := s.LastRefreshRequested(ctx, "assets", []string{a.ID, b.ID, "conn_never"})
		if err != nil || len(last) != 2 || !last[a.ID].Equal(now) {
			t.Fatalf("last refreshes %v %v", last, err)
		}
		if last, _ := s.LastRefreshRequested(ctx, "transactions", []string{a.ID}); len(last) != 0 {
			t.Fatalf("an assets refresh counted as a transactions one: %v", last)
		}

		now = t0.Add(2 * time.Minute)
		changed := trade(a.ID, "changes", t0, "2")
		if _, err := s.UpsertTransactions(ctx, []*opencalico.Transaction{trade(a.ID, "new", t0, "1"), changed, trade(a.ID, "old", t0, "1")}); err != nil {
			t.Fatal(err)
		}
		added, updated, err := s.TransactionsWrittenSince(ctx, a.ID, t0.Add(time.Minute))
		if err != nil || added != 1 || updated != 1 {
			t.Fatalf("written since the refresh: %d added, %d updated, %v", added, updated, err)
		}

		stored, err := s.SaveIdempotentResponse(ctx, "usr/cli", "key-1", IdempotentResponse{RequestHash: "h1", Status: 201, Body: []byte(`{"a":1}`)})
		if err != nil || stored.Status != 201 {
			t.Fatalf("save: %+v %v", stored, err)
		}
		again, err := s.SaveIdempotentResponse(ctx, "usr/cli", "key-1", IdempotentResponse{RequestHash: "h2", Status: 400, Body: []byte(`{}`)})
		if err != nil || again.RequestHash != "h1" || string(again.Body) != `{"a":1}` {
			t.Fatalf("the first answer must stay: %+v %v", again, err)
		}
		if none, err := s.IdempotentResponse(ctx, "usr/other", "key-1"); err != nil || none != nil {
			t.Fatalf("keys are per caller: %+v %v", none, err)
		}
	})
}
