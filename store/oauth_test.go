package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/opencalico/opencalico"
)

// oauthFixture makes a user, a client and a consent between them.
func oauthFixture(t *testing.T, s *Store) (*opencalico.User, *opencalico.Client, *opencalico.Consent) {
	t.Helper()
	ctx := context.Background()
	u := mustUser(t, s, "oauth@example.com")
	c := &opencalico.Client{ID: opencalico.NewID("cli"), Name: "Partner", RedirectURIs: []string{"https://p.example/cb"}}
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	cns := &opencalico.Consent{UserID: u.ID, ClientID: c.ID, Scope: "accounts:read"}
	if err := s.CreateConsent(ctx, cns); err != nil {
		t.Fatal(err)
	}
	return u, c, cns
}

func TestConsumeOAuthCode(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		u, c, cns := oauthFixture(t, s)
		code := &OAuthCode{Hash: "h1", ClientID: c.ID, UserID: u.ID, ConsentID: cns.ID, RedirectURI: "https://p.example/cb",
			Scope: "accounts:read", CodeChallenge: "ch", CodeChallengeMethod: "S256", CreatedAt: t0, ExpiresAt: t0.Add(5 * time.Minute)}
		if err := s.CreateOAuthCode(ctx, code); err != nil {
			t.Fatal(err)
		}
		got, err := s.ConsumeOAuthCode(ctx, "h1", "grt_1", t0.Add(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if got.UsedAt == nil || got.CodeChallenge != "ch" || got.ConsentID != cns.ID || !got.ExpiresAt.Equal(code.ExpiresAt) {
			t.Fatalf("consumed code = %+v", got)
		}
		g, err := s.OAuthGrantByID(ctx, "grt_1")
		if err != nil || g.RevokedAt != nil || g.CodeHash != "h1" || g.UserID != u.ID {
			t.Fatalf("grant = %+v, %v", g, err)
		}

		// The second use fails and revokes the grant made by the first.
		if _, err := s.ConsumeOAuthCode(ctx, "h1", "grt_2", t0.Add(2*time.Second)); !errors.Is(err, ErrCodeReused) {
			t.Fatalf("second use: err = %v, want ErrCodeReused", err)
		}
		if g, _ := s.OAuthGrantByID(ctx, "grt_1"); g.RevokedAt == nil {
			t.Fatal("grant of a reused code not revoked")
		}
		if _, err := s.OAuthGrantByID(ctx, "grt_2"); opencalico.ErrorCodeOf(err) != opencalico.ENotFound {
			t.Fatalf("a reused code made a grant: %v", err)
		}
		_, err = s.ConsumeOAuthCode(ctx, "nope", "grt_3", t0)
		wantCode(t, err, opencalico.ENotFound)
	})
}

func TestRotateRefreshToken(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		u, c, cns := oauthFixture(t, s)
		if err := s.CreateOAuthCode(ctx, &OAuthCode{Hash: "code", ClientID: c.ID, UserID: u.ID, ConsentID: cns.ID,
			Scope: "accounts:read", CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ConsumeOAuthCode(ctx, "code", "grt_f", t0); err != nil {
			t.Fatal(err)
		}
		tok := func(hash string) *RefreshToken {
			return &RefreshToken{Hash: hash, GrantID: "grt_f", UserID: u.ID, ClientID: c.ID, ConsentID: cns.ID,
				Scope: "accounts:read", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
		}
		if err := s.CreateRefreshToken(ctx, tok("r1")); err != nil {
			t.Fatal(err)
		}
		if err := s.RotateRefreshToken(ctx, "r1", tok("r2"), t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		r2, err := s.RefreshTokenByHash(ctx, "r2")
		if err != nil || r2.ParentHash != "r1" || r2.GrantID != "grt_f" || r2.UsedAt != nil {
			t.Fatalf("r2 = %+v, %v", r2, err)
		}
		if ok, _ := s.UserTokenActive(ctx, u.ID, c.ID, cns.ID, "grt_f", "jti1"); !ok {
			t.Fatal("token of a live grant is not active")
		}
		// Reusing r1 revokes the family: r2 is revoked and cannot be rotated.
		if err := s.RotateRefreshToken(ctx, "r1", tok("r3"), t0.Add(2*time.Minute)); !errors.Is(err, ErrRefreshTokenReused) {
			t.Fatalf("reuse: err = %v, want ErrRefreshTokenReused", err)
		}
		if r2, _ := s.RefreshTokenByHash(ctx, "r2"); r2.RevokedAt == nil {
			t.Fatal("the newer token of a reused family is not revoked")
		}
		if err := s.RotateRefreshToken(ctx, "r2", tok("r4"), t0.Add(3*time.Minute)); !errors.Is(err, ErrRefreshTokenReused) {
			t.Fatalf("newer token after reuse: err = %v, want ErrRefreshTokenReused", err)
		}
		if ok, _ := s.UserTokenActive(ctx, u.ID, c.ID, cns.ID, "grt_f", "jti1"); ok {
			t.Fatal("access token of a revoked grant is active")
		}
		err = s.RotateRefreshToken(ctx, "unknown", tok("r5"), t0)
		wantCode(t, err, opencalico.ENotFound)
	})
}

func TestUserTokenActive(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		u, c, cns := oauthFixture(t, s)
		tests := []struct {
			name                         string
			user, client, consent, grant string
			jti                          string
			want                         bool
		}{
			{"active", u.ID, c.ID, cns.ID, "", "j1", true},
			{"other user", "usr_other", c.ID, cns.ID, "", "j1", false},
			{"other client", u.ID, "cli_other", cns.ID, "", "j1", false},
			{"unknown consent", u.ID, c.ID, "cns_nope", "", "j1", false},
			{"unknown grant", u.ID, c.ID, cns.ID, "grt_nope", "j1", false},
			{"revoked jti", u.ID, c.ID, cns.ID, "", "jrevoked", false},
		}
		if err := s.RevokeAccessToken(ctx, "jrevoked", t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeAccessToken(ctx, "jrevoked", t0.Add(time.Hour)); err != nil {
			t.Fatalf("revoking twice: %v", err)
		}
		for _, tt := range tests {
			got, err := s.UserTokenActive(ctx, tt.user, tt.client, tt.consent, tt.grant, tt.jti)
			if err != nil || got != tt.want {
				t.Errorf("%s: active = %v, %v; want %v", tt.name, got, err, tt.want)
			}
		}
		if err := s.RevokeConsent(ctx, cns.ID); err != nil {
			t.Fatal(err)
		}
		if ok, _ := s.UserTokenActive(ctx, u.ID, c.ID, cns.ID, "", "j1"); ok {
			t.Fatal("token of a revoked consent is active")
		}
		if _, err := s.ActiveConsent(ctx, u.ID, c.ID); opencalico.ErrorCodeOf(err) != opencalico.ENotFound {
			t.Fatalf("ActiveConsent after revocation: %v", err)
		}
		if ok, _ := s.ClientTokenActive(ctx, c.ID, "j1"); !ok {
			t.Fatal("client token inactive")
		}
		if ok, _ := s.ClientTokenActive(ctx, c.ID, "jrevoked"); ok {
			t.Fatal("revoked client token active")
		}
	})
}

func TestSigningKeys(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		sealed := opencalico.SealedSecret{KeyID: "mk1", WrappedKey: []byte{1, 2}, Ciphertext: []byte{3, 4}}
		k1 := &SigningKey{ID: "k1", Algorithm: "EdDSA", PublicKey: []byte{9}, PrivateKey: sealed, CreatedAt: t0}
		k2 := &SigningKey{ID: "k2", Algorithm: "EdDSA", PublicKey: []byte{8}, PrivateKey: sealed, CreatedAt: t0.Add(time.Hour)}
		for _, k := range []*SigningKey{k1, k2} {
			if err := s.CreateSigningKey(ctx, k); err != nil {
				t.Fatal(err)
			}
		}
		keys, err := s.SigningKeys(ctx, t0)
		if err != nil || len(keys) != 2 || keys[0].ID != "k2" || keys[0].RetiredAt != nil ||
			keys[1].RetiredAt == nil || !keys[1].RetiredAt.Equal(k2.CreatedAt) || string(keys[1].PrivateKey.Ciphertext) != "\x03\x04" {
			t.Fatalf("keys = %+v, %v", keys, err)
		}
		// Keys retired before `since` are no longer listed.
		if keys, _ := s.SigningKeys(ctx, t0.Add(2*time.Hour)); len(keys) != 1 || keys[0].ID != "k2" {
			t.Fatalf("keys since retirement = %+v", keys)
		}
	})
}
