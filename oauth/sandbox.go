package oauth

import (
	"context"
	"errors"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/store"
)

// IssueTokensForUser issues tokens to client for userID as if the user had just approved an
// authorization in the widget: it records (or reuses) the user's consent to the client, makes
// a grant the way a code exchange does (an authorization code, made and spent at once, that
// nobody ever sees), and returns the grant's first access and refresh tokens. The tokens
// behave exactly like those of the code flow: they refresh, rotate and are revoked the same
// way, and revoking the consent stops them.
//
// It skips the user's approval, so it is for the sandbox (POST /sandbox/users) and tests only:
// a production server must never expose it.
func (s *Server) IssueTokensForUser(ctx context.Context, client *opencalico.Client, userID string) (access, refresh string, expiresIn int, err error) {
	if client == nil || client.ID == "" || userID == "" {
		return "", "", 0, errors.New("oauth: IssueTokensForUser needs a client and a user")
	}
	consent, err := s.consentFor(ctx, userID, client.ID, ScopeAccountsRead)
	if err != nil {
		return "", "", 0, err
	}
	now := s.now()
	codeHash := hashSecret(newSecret("occ_"))
	if err := s.store.CreateOAuthCode(ctx, &store.OAuthCode{
		Hash: codeHash, ClientID: client.ID, UserID: userID, ConsentID: consent.ID,
		Scope: ScopeAccountsRead, CreatedAt: now, ExpiresAt: now.Add(CodeTTL),
	}); err != nil {
		return "", "", 0, err
	}
	grantID := opencalico.NewID("grt")
	if _, err := s.store.ConsumeOAuthCode(ctx, codeHash, grantID, now); err != nil {
		return "", "", 0, err
	}
	resp, err := s.issueUserTokens(ctx, client, userID, consent.ID, grantID, ScopeAccountsRead, now)
	if err != nil {
		return "", "", 0, err
	}
	return resp.AccessToken, resp.RefreshToken, resp.ExpiresIn, nil
}
