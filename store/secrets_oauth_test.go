package store

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"sync"
	"testing"

	"github.com/opencalico/opencalico"
)

func sealedVersion(conn string, n int) opencalico.SealedSecret {
	return opencalico.SealedSecret{ConnectionID: conn, KeyID: "k1", WrappedKey: []byte("wrapped"),
		Ciphertext: []byte(fmt.Sprintf("ciphertext-%d\x00\xff", n))}
}

func TestReplaceSecretCompareAndSet(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		u := mustUser(t, s, "a@x")
		c := mustConnection(t, s, u.ID, "coinbase")
		v0, err := s.Secret(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		v1 := sealedVersion(c.ID, 1)
		if ok, err := s.ReplaceSecret(ctx, v0, v1); err != nil || !ok {
			t.Fatalf("ReplaceSecret(v0→v1) = %v, %v; want true", ok, err)
		}
		// A second writer that read v0 too loses: its refresh started from a dead pair.
		if ok, err := s.ReplaceSecret(ctx, v0, sealedVersion(c.ID, 2)); err != nil || ok {
			t.Fatalf("stale ReplaceSecret = %v, %v; want false", ok, err)
		}
		got, err := s.Secret(ctx, c.ID)
		if err != nil || !bytes.Equal(got.Ciphertext, v1.Ciphertext) {
			t.Fatalf("after CAS: %q, %v", got.Ciphertext, err)
		}
		// A key rotation re-wraps the data key without changing the ciphertext: a refresh
		// that read the secret before the rotation still applies.
		if ok, err := s.RewrapSecret(ctx, c.ID, "k1", "k2", []byte("rewrapped")); err != nil || !ok {
			t.Fatalf("RewrapSecret = %v, %v", ok, err)
		}
		v3 := sealedVersion(c.ID, 3)
		if ok, err := s.ReplaceSecret(ctx, v1, v3); err != nil || !ok {
			t.Fatalf("ReplaceSecret after a rewrap = %v, %v; want true", ok, err)
		}
		got, err = s.Secret(ctx, c.ID)
		if err != nil || got.KeyID != "k1" || string(got.WrappedKey) != "wrapped" || !bytes.Equal(got.Ciphertext, v3.Ciphertext) {
			t.Fatalf("after replace: %+v, %v", got, err)
		}
		// Inside a transaction that rolls back, nothing changes.
		errRollback := fmt.Errorf("roll back")
		err = s.InTx(ctx, func(tx *sql.Tx) error {
			if ok, err := s.ReplaceSecretTx(ctx, tx, v3, sealedVersion(c.ID, 4)); err != nil || !ok {
				t.Fatalf("ReplaceSecretTx = %v, %v", ok, err)
			}
			return errRollback
		})
		if err != errRollback {
			t.Fatal(err)
		}
		if got, _ := s.Secret(ctx, c.ID); !bytes.Equal(got.Ciphertext, v3.Ciphertext) {
			t.Fatalf("rolled back replace applied: %q", got.Ciphertext)
		}
		// Malformed calls and missing rows.
		if _, err := s.ReplaceSecret(ctx, v3, opencalico.SealedSecret{ConnectionID: c.ID}); opencalico.ErrorCodeOf(err) != opencalico.EBadRequest {
			t.Fatalf("incomplete next: %v", err)
		}
		if _, err := s.ReplaceSecret(ctx, sealedVersion("other", 3), sealedVersion(c.ID, 5)); opencalico.ErrorCodeOf(err) != opencalico.EBadRequest {
			t.Fatalf("cross-connection replace: %v", err)
		}
		if ok, err := s.ReplaceSecret(ctx, sealedVersion("conn_missing", 0), sealedVersion("conn_missing", 1)); err != nil || ok {
			t.Fatalf("missing secret: %v, %v", ok, err)
		}
		// After the connection is deleted, a late refresher cannot resurrect its secret.
		if err := s.DeleteConnection(ctx, u.ID, c.ID); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.ReplaceSecret(ctx, v3, sealedVersion(c.ID, 6)); err != nil || ok {
			t.Fatalf("replace after delete: %v, %v", ok, err)
		}
	})
}

// TestReplaceSecretRace has many writers start from the same version: exactly one wins.
func TestReplaceSecretRace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		u := mustUser(t, s, "a@x")
		c := mustConnection(t, s, u.ID, "coinbase")
		v0, err := s.Secret(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		const writers = 8
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			wins []int
		)
		for i := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := s.ReplaceSecret(ctx, v0, sealedVersion(c.ID, 100+i))
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					mu.Lock()
					wins = append(wins, i)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(wins) != 1 {
			t.Fatalf("%d writers won, want exactly 1", len(wins))
		}
		got, err := s.Secret(ctx, c.ID)
		if err != nil || !bytes.Equal(got.Ciphertext, sealedVersion(c.ID, 100+wins[0]).Ciphertext) {
			t.Fatalf("stored %q, %v; winner %d", got.Ciphertext, err, wins[0])
		}
	})
}
