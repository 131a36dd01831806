package store

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/opencalico/opencalico"
)

// TestCursorCommitsWithItsRows checks that a page's rows and its cursor are stored together
// or not at all.
func TestCursorCommitsWithItsRows(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		u := mustUser(t, s, "c@x")
		c := mustConnection(t, s, u.ID, "kraken")
		page := func(cursor string, txns ...*opencalico.Transaction) func(*sql.Tx) error {
			return func(tx *sql.Tx) error {
				if _, err := s.UpsertTransactionsTx(ctx, tx, txns); err != nil {
					return err
				}
				return s.SaveCursorTx(ctx, tx, c.ID, "ledger", cursor)
			}
		}
		if err := s.InTx(ctx, page("1", trade(c.ID, "a", t0, "1"))); err != nil {
			t.Fatal(err)
		}
		crash := errors.New("worker died")
		err := s.InTx(ctx, func(tx *sql.Tx) error {
			if err := page("2", trade(c.ID, "b", t0, "1"))(tx); err != nil {
				return err
			}
			return crash
		})
		if !errors.Is(err, crash) {
			t.Fatalf("InTx returned %v", err)
		}
		cursors, err := s.Cursors(ctx, c.ID)
		if err != nil || cursors["ledger"] != "1" || len(cursors) != 1 {
			t.Fatalf("cursors %v, %v", cursors, err)
		}
		if n := countRows(t, s, "transactions"); n != 1 {
			t.Fatalf("%d transactions after a rolled back page", n)
		}
		if err := s.InTx(ctx, page("2", trade(c.ID, "b", t0, "1"))); err != nil {
			t.Fatal(err)
		}
		if cursors, _ := s.Cursors(ctx, c.ID); cursors["ledger"] != "2" {
			t.Fatalf("cursor %v", cursors)
		}
	})
}

func TestSyncLease(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := t0
		s.now = func() time.Time { return now }
		u := mustUser(t, s, "l@x")
		c := mustConnection(t, s, u.ID, "binance")
		steps := []struct {
			holder string
			at     time.Duration
			want   bool
		}{
			{"w1", 0, true},
			{"w2", time.Second, false},      // w1 holds it
			{"w1", 20 * time.Second, true},  // w1 renews until 50 s
			{"w2", 45 * time.Second, false}, // still w1's
			{"w2", 51 * time.Second, true},  // w1's lease ran out: w1 died
			{"w1", 52 * time.Second, false}, // and w1 cannot take it back
		}
		for _, st := range steps {
			now = t0.Add(st.at)
			got, err := s.AcquireSyncLease(ctx, c.ID, st.holder, 30*time.Second)
			if err != nil || got != st.want {
				t.Fatalf("%s at %v: %v %v, want %v", st.holder, st.at, got, err, st.want)
			}
		}
		if err := s.ReleaseSyncLease(ctx, c.ID, "w1"); err != nil { // not the holder: no effect
			t.Fatal(err)
		}
		if got, _ := s.AcquireSyncLease(ctx, c.ID, "w3", time.Second); got {
			t.Fatal("a release by a non-holder freed the lease")
		}
		if err := s.ReleaseSyncLease(ctx, c.ID, "w2"); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.AcquireSyncLease(ctx, c.ID, "w3", time.Second); !got {
			t.Fatal("the released lease was not free")
		}
		_, err := s.AcquireSyncLease(ctx, "conn_missing", "w1", time.Second)
		wantCode(t, err, opencalico.ENotFound)
	})
}

func TestNetByAssetIsExact(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		u := mustUser(t, s, "n@x")
		c := mustConnection(t, s, u.ID, "kraken")
		var txns []*opencalico.Transaction
		// 0.1 a thousand times: float addition would drift off 100.
		for i := range 1000 {
			r := receive(c.ID, "r"+time.Duration(i).String(), t0, "ETH", "0.1")
			r.Status = opencalico.TxConfirmed
			txns = append(txns, r)
		}
		buy := trade(c.ID, "t", t0, "0.00000001") // -100.10 USD, +0.00000001 BTC, -0.25 USD fee
		failed := trade(c.ID, "f", t0, "5")
		failed.Status = opencalico.TxFailed
		pendingIn := receive(c.ID, "pending-deposit", t0, "ETH", "7") // not credited yet
		pendingOut := trade(c.ID, "pending-sell", t0, "3")            // debited already: -100.10 USD, -0.25 USD fee
		pendingOut.Status = opencalico.TxPending
		if _, err := s.UpsertTransactions(ctx, append(txns, buy, failed, pendingIn, pendingOut)); err != nil {
			t.Fatal(err)
		}
		for _, credited := range []bool{false, true} {
			net, err := s.NetByAsset(ctx, c.ID, credited)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"ETH": "100", "BTC": "0.00000001", "USD": "-200.70"}
			if credited {
				want["ETH"], want["BTC"] = "107", "3.00000001"
			}
			for asset, want := range want {
				if !net[asset].Equal(dec(want)) {
					t.Errorf("pending credited %v: %s: %s, want %s", credited, asset, net[asset], want)
				}
			}
		}
	})
}

// TestChangesWalkFromTheStart reads the feed from the beginning, a row at a time, after some
// transactions were changed: each is new to this reader, so each must come as added, even
// those whose change comes late in the walk; once caught up, a change is a modification.
func TestChangesWalkFromTheStart(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		u := mustUser(t, s, "w@x")
		c := mustConnection(t, s, u.ID, "kraken")
		if _, err := s.UpsertTransactions(ctx, []*opencalico.Transaction{trade(c.ID, "a", t0, "1"), trade(c.ID, "b", t0, "1"), trade(c.ID, "c", t0, "1")}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UpsertTransactions(ctx, []*opencalico.Transaction{trade(c.ID, "a", t0, "2")}); err != nil {
			t.Fatal(err)
		}
		var key ChangeKey
		added, modified := 0, 0
		for {
			set, err := s.Changes(ctx, ChangesFilter{UserID: u.ID, After: key, Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			added, modified, key = added+len(set.Added), modified+len(set.Modified), set.Next
			if !set.HasMore {
				break
			}
		}
		if added != 3 || modified != 0 {
			t.Fatalf("walk from the start: %d added, %d modified; want 3 added", added, modified)
		}
		if _, err := s.UpsertTransactions(ctx, []*opencalico.Transaction{trade(c.ID, "b", t0, "3")}); err != nil {
			t.Fatal(err)
		}
		set, err := s.Changes(ctx, ChangesFilter{UserID: u.ID, After: key})
		if err != nil || len(set.Added) != 0 || len(set.Modified) != 1 {
			t.Fatalf("after catching up: %+v %v", set, err)
		}
	})
}
