package oauth

import (
	"context"
	"net/http"
	"testing"

	"golang.org/x/oauth2"
)

// TestIssueTokensForUser checks that directly issued tokens work like those of the code flow:
// the access token reads the API, the consent is reused, the refresh token rotates, and
// revoking the refresh token stops the grant's access token.
func TestIssueTokensForUser(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	c := h.client(false, false)

	access, refresh, expiresIn, err := h.srv.IssueTokensForUser(ctx, c, h.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	if expiresIn != int(AccessTokenTTL.Seconds()) || refresh == "" {
		t.Fatalf("expires_in = %d, refresh = %q", expiresIn, refresh)
	}
	if status, body, _ := h.whoami("/accounts/v2/whoami", access); status != http.StatusOK {
		t.Fatalf("whoami = %d %s", status, body)
	}
	consent, err := h.db.ActiveConsent(ctx, h.user.ID, c.ID)
	if err != nil {
		t.Fatal(err)
	}

	// A second issue reuses the consent and makes another grant.
	access2, _, _, err := h.srv.IssueTokensForUser(ctx, c, h.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	again, err := h.db.ActiveConsent(ctx, h.user.ID, c.ID)
	if err != nil || again.ID != consent.ID {
		t.Fatalf("consent = %v %v, want %s reused", again, err, consent.ID)
	}

	// The refresh token rotates at the token endpoint.
	tok, err := h.config(c).TokenSource(ctx, &oauth2.Token{RefreshToken: refresh}).Token()
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" || tok.RefreshToken == refresh {
		t.Fatalf("refresh token not rotated: %q", tok.RefreshToken)
	}
	// Reusing the spent refresh token revokes the family: the first access token stops, the
	// second grant's does not.
	if _, err := h.config(c).TokenSource(ctx, &oauth2.Token{RefreshToken: refresh}).Token(); err == nil {
		t.Fatal("a spent refresh token was accepted")
	}
	h.wantUnauthorized(t, "/accounts/v2/whoami", access)
	if status, body, _ := h.whoami("/accounts/v2/whoami", access2); status != http.StatusOK {
		t.Fatalf("whoami with the other grant = %d %s", status, body)
	}

	if _, _, _, err := h.srv.IssueTokensForUser(ctx, nil, h.user.ID); err == nil {
		t.Fatal("no client: want an error")
	}
}
