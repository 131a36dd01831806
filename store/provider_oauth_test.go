package store

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/opencalico/opencalico"
)

func TestProviderOAuthState(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		u := mustUser(t, s, "state@example.com")
		other := mustUser(t, s, "other@example.com")
		mk := func(hash string) *ProviderOAuthState {
			return &ProviderOAuthState{Hash: hash, UserID: u.ID, ClientID: "cli_p", ProviderID: "coinbase",
				Verifier:     opencalico.SealedSecret{KeyID: "k1", WrappedKey: []byte("w"), Ciphertext: []byte{0, 1, 0xff}},
				DisplayLabel: "My Coinbase", ReturnURL: "https://p.example/done", CreatedAt: t0, ExpiresAt: t0.Add(10 * time.Minute)}
		}
		for _, h := range []string{"s1", "s2", "s3"} {
			if err := s.CreateProviderOAuthState(ctx, mk(h)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.CreateProviderOAuthState(ctx, mk("s1")); err == nil {
			t.Fatal("a state hash was stored twice")
		}
		if err := s.CreateProviderOAuthState(ctx, &ProviderOAuthState{Hash: "x", UserID: u.ID, ProviderID: "coinbase"}); opencalico.ErrorCodeOf(err) != opencalico.EBadRequest {
			t.Fatalf("a state without a verifier: %v", err)
		}

		// Peeking does not consume.
		got, err := s.ProviderOAuthState(ctx, "s1", t0.Add(time.Minute))
		if err != nil || got.ClientID != "cli_p" || got.ReturnURL != "https://p.example/done" || got.UsedAt != nil {
			t.Fatalf("peek = %+v, %v", got, err)
		}

		// Another user, another provider, an unknown hash: invalid_state, nothing consumed.
		_, err = s.ConsumeProviderOAuthState(ctx, "s1", other.ID, "coinbase", t0.Add(time.Minute))
		wantCode(t, err, opencalico.EInvalidState)
		_, err = s.ConsumeProviderOAuthState(ctx, "s1", u.ID, "kraken", t0.Add(time.Minute))
		wantCode(t, err, opencalico.EInvalidState)
		_, err = s.ConsumeProviderOAuthState(ctx, "nope", u.ID, "coinbase", t0.Add(time.Minute))
		wantCode(t, err, opencalico.EInvalidState)

		got, err = s.ConsumeProviderOAuthState(ctx, "s1", u.ID, "coinbase", t0.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if got.UsedAt == nil || !got.UsedAt.Equal(t0.Add(time.Minute)) || got.DisplayLabel != "My Coinbase" ||
			got.Verifier.ConnectionID != "oauth-state:s1" || string(got.Verifier.Ciphertext) != string([]byte{0, 1, 0xff}) ||
			got.Verifier.KeyID != "k1" || !got.ExpiresAt.Equal(t0.Add(10*time.Minute)) {
			t.Fatalf("consumed = %+v", got)
		}
		// Replayed.
		_, err = s.ConsumeProviderOAuthState(ctx, "s1", u.ID, "coinbase", t0.Add(2*time.Minute))
		wantCode(t, err, opencalico.EInvalidState)
		_, err = s.ProviderOAuthState(ctx, "s1", t0.Add(2*time.Minute))
		wantCode(t, err, opencalico.EInvalidState)

		// Expired: at expires_at exactly it is gone.
		_, err = s.ConsumeProviderOAuthState(ctx, "s2", u.ID, "coinbase", t0.Add(10*time.Minute))
		wantCode(t, err, opencalico.EInvalidState)
		_, err = s.ProviderOAuthState(ctx, "s2", t0.Add(10*time.Minute))
		wantCode(t, err, opencalico.EInvalidState)

		// Concurrent consumers: exactly one wins.
		var wg sync.WaitGroup
		wins := make(chan bool, 8)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.ConsumeProviderOAuthState(ctx, "s3", u.ID, "coinbase", t0.Add(time.Minute))
				wins <- err == nil
			}()
		}
		wg.Wait()
		close(wins)
		n := 0
		for w := range wins {
			if w {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d concurrent consumers won, want 1", n)
		}

		// A day after expiry, creating a state purges the old ones.
		late := mk("s4")
		late.CreatedAt, late.ExpiresAt = t0.Add(48*time.Hour), t0.Add(48*time.Hour+10*time.Minute)
		if err := s.CreateProviderOAuthState(ctx, late); err != nil {
			t.Fatal(err)
		}
		var left int
		if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM provider_oauth_states`).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left != 1 {
			t.Fatalf("%d states left after the purge, want 1", left)
		}
	})
}
