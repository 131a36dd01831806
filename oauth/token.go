package oauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/store"
)

// tokenResponse is the success body of the token endpoint (RFC 6749 §5.1).
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope"`
}

// accessClaims are the claims of an access token beyond the registered ones.
type accessClaims struct {
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
	// ConsentID ("cns") ties a user's token to the consent it was issued under, so that
	// revoking the consent stops the token at once.
	ConsentID string `json:"cns,omitempty"`
	// GrantID ("sid") names the grant (refresh-token family) the token belongs to, so that
	// revoking the family (refresh token reuse, a reused code) stops it too.
	GrantID string `json:"sid,omitempty"`
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if err := parsePostForm(r); err != nil {
		s.writeTokenError(w, r, err)
		return
	}
	client, authenticated, err := s.authenticateClient(r)
	if err != nil {
		s.writeTokenError(w, r, err)
		return
	}
	var resp *tokenResponse
	switch gt := r.PostForm.Get("grant_type"); gt {
	case "authorization_code":
		resp, err = s.exchangeCode(r.Context(), client, r.PostForm)
	case "refresh_token":
		resp, err = s.refresh(r.Context(), client, r.PostForm)
	case "client_credentials":
		resp, err = s.clientCredentials(r.Context(), client, authenticated, r.PostForm)
	case "":
		err = oauthError(ErrInvalidRequest, "The grant_type parameter is missing.")
	default:
		err = oauthError(ErrUnsupportedGrantType, "The grant_type is not supported.")
	}
	if err != nil {
		s.writeTokenError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// parsePostForm reads a form-encoded body. Parameters in the query are ignored: secrets do not
// belong in URLs.
func parsePostForm(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	if !strings.EqualFold(strings.TrimSpace(ct), "application/x-www-form-urlencoded") {
		return oauthError(ErrInvalidRequest, "Send the request as application/x-www-form-urlencoded.")
	}
	if err := r.ParseForm(); err != nil {
		return oauthError(ErrInvalidRequest, "The request body is not a valid form.")
	}
	for k, v := range r.PostForm {
		if len(v) > 1 {
			return oauthError(ErrInvalidRequest, "The parameter "+k+" is repeated.")
		}
	}
	return nil
}

var errInvalidClient = oauthError(ErrInvalidClient, "Client authentication failed.")

// authenticateClient identifies the client by client_secret_basic, client_secret_post, or, for
// a public client, client_id alone. authenticated tells whether a secret was checked.
func (s *Server) authenticateClient(r *http.Request) (client *opencalico.Client, authenticated bool, err error) {
	id, secret, basic := r.BasicAuth()
	if basic {
		if r.PostForm.Get("client_secret") != "" {
			return nil, false, oauthError(ErrInvalidRequest, "Use one client authentication method, not two.")
		}
		// RFC 6749 §2.3.1: the credentials are form-encoded before Basic encoding.
		var e1, e2 error
		id, e1 = url.QueryUnescape(id)
		secret, e2 = url.QueryUnescape(secret)
		if e1 != nil || e2 != nil {
			return nil, false, errInvalidClient
		}
		if formID := r.PostForm.Get("client_id"); formID != "" && formID != id {
			return nil, false, errInvalidClient
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id == "" {
		return nil, false, errInvalidClient
	}
	client, err = s.store.ClientByID(r.Context(), id)
	if opencalico.ErrorCodeOf(err) == opencalico.ENotFound {
		return nil, false, errInvalidClient
	} else if err != nil {
		return nil, false, err
	}
	if client.Public {
		if secret != "" {
			// A public client has no secret; one sent is a misconfiguration worth refusing.
			return nil, false, errInvalidClient
		}
		return client, false, nil
	}
	if secret == "" || !SecretMatches(client.SecretHash, secret) {
		return nil, false, errInvalidClient
	}
	return client, true, nil
}

// SecretMatches reports, in constant time, whether secret is the one whose hash is stored.
func SecretMatches(storedHash, secret string) bool {
	if storedHash == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(storedHash), []byte(hashSecret(secret))) == 1
}

// exchangeCode is the authorization_code grant.
func (s *Server) exchangeCode(ctx context.Context, client *opencalico.Client, form url.Values) (*tokenResponse, error) {
	code := form.Get("code")
	if code == "" {
		return nil, oauthError(ErrInvalidRequest, "The code parameter is missing.")
	}
	now := s.now()
	grantID := opencalico.NewID("grt")
	stored, err := s.store.ConsumeOAuthCode(ctx, hashSecret(code), grantID, now)
	switch {
	case errors.Is(err, store.ErrCodeReused):
		s.log.WarnContext(ctx, "oauth: authorization code reused; its tokens are revoked", "client_id", client.ID)
		return nil, oauthError(ErrInvalidGrant, "The authorization code was already used.")
	case opencalico.ErrorCodeOf(err) == opencalico.ENotFound:
		return nil, oauthError(ErrInvalidGrant, "The authorization code is invalid.")
	case err != nil:
		return nil, err
	}
	// The code is spent now whatever happens next; a failed check also revokes the grant
	// made with it, which has issued nothing yet.
	fail := func(e *Error) (*tokenResponse, error) {
		if err := s.store.RevokeOAuthGrant(ctx, grantID, now); err != nil {
			return nil, err
		}
		return nil, e
	}
	if !now.Before(stored.ExpiresAt) {
		return fail(oauthError(ErrInvalidGrant, "The authorization code has expired."))
	}
	if stored.ClientID != client.ID {
		return fail(oauthError(ErrInvalidGrant, "The authorization code was issued to another client."))
	}
	if !redirectURIMatches(stored.RedirectURI, form.Get("redirect_uri"), client) {
		return fail(oauthError(ErrInvalidGrant, "The redirect_uri does not match the authorization request."))
	}
	if e := checkVerifier(stored, form.Get("code_verifier")); e != nil {
		return fail(e)
	}
	consent, err := s.store.ConsentByID(ctx, stored.ConsentID)
	if err != nil && opencalico.ErrorCodeOf(err) != opencalico.ENotFound {
		return nil, err
	}
	if err != nil || !consent.Active() {
		return fail(oauthError(ErrInvalidGrant, "The user's consent was revoked."))
	}
	return s.issueUserTokens(ctx, client, stored.UserID, consent.ID, grantID, stored.Scope, now)
}

// redirectURIMatches applies RFC 6749 §4.1.3: when the authorization request had a
// redirect_uri, the token request must repeat it exactly; when it had none, the token
// request may omit it or name the client's only registered URI.
func redirectURIMatches(requested, given string, client *opencalico.Client) bool {
	if requested != "" {
		return given == requested
	}
	return given == "" || (len(client.RedirectURIs) == 1 && given == client.RedirectURIs[0])
}

// checkVerifier checks the PKCE code_verifier against the code's challenge (RFC 7636 §4.6).
func checkVerifier(code *store.OAuthCode, verifier string) *Error {
	if code.CodeChallenge == "" {
		if verifier != "" {
			return oauthError(ErrInvalidGrant, "A code_verifier was sent for a code issued without a code_challenge.")
		}
		return nil
	}
	if verifier == "" {
		return oauthError(ErrInvalidRequest, "The code_verifier parameter is missing.")
	}
	if !pkceChallenge.MatchString(verifier) {
		return oauthError(ErrInvalidGrant, "The code_verifier does not match the code_challenge.")
	}
	computed := verifier
	if code.CodeChallengeMethod == "S256" {
		sum := sha256.Sum256([]byte(verifier))
		computed = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	if subtle.ConstantTimeCompare([]byte(computed), []byte(code.CodeChallenge)) != 1 {
		return oauthError(ErrInvalidGrant, "The code_verifier does not match the code_challenge.")
	}
	return nil
}

// issueUserTokens makes an access token and the first refresh token of the user's grant;
// later refresh tokens come from refresh.
func (s *Server) issueUserTokens(ctx context.Context, client *opencalico.Client, userID, consentID, grantID, scope string, now time.Time) (*tokenResponse, error) {
	refresh := newSecret("ocr_")
	if err := s.store.CreateRefreshToken(ctx, &store.RefreshToken{
		Hash: hashSecret(refresh), GrantID: grantID, UserID: userID, ClientID: client.ID, ConsentID: consentID,
		Scope: scope, CreatedAt: now, ExpiresAt: now.Add(RefreshTokenTTL),
	}); err != nil {
		return nil, err
	}
	access, err := s.signAccessToken(ctx, userID, s.AccountsAudience(), accessClaims{ClientID: client.ID, Scope: scope, ConsentID: consentID, GrantID: grantID}, now)
	if err != nil {
		return nil, err
	}
	return &tokenResponse{AccessToken: access, TokenType: "Bearer", ExpiresIn: int(AccessTokenTTL.Seconds()), RefreshToken: refresh, Scope: scope}, nil
}

// refresh is the refresh_token grant, with rotation.
func (s *Server) refresh(ctx context.Context, client *opencalico.Client, form url.Values) (*tokenResponse, error) {
	presented := form.Get("refresh_token")
	if presented == "" {
		return nil, oauthError(ErrInvalidRequest, "The refresh_token parameter is missing.")
	}
	hash := hashSecret(presented)
	old, err := s.store.RefreshTokenByHash(ctx, hash)
	if opencalico.ErrorCodeOf(err) == opencalico.ENotFound {
		return nil, oauthError(ErrInvalidGrant, "The refresh token is invalid.")
	} else if err != nil {
		return nil, err
	}
	if old.ClientID != client.ID {
		// Not treated as reuse: another client cannot spend (or burn) this client's token.
		return nil, oauthError(ErrInvalidGrant, "The refresh token was issued to another client.")
	}
	now := s.now()
	if !now.Before(old.ExpiresAt) {
		return nil, oauthError(ErrInvalidGrant, "The refresh token has expired.")
	}
	scope := old.Scope
	if requested := form.Get("scope"); requested != "" {
		// RFC 6749 §6: the scope may narrow, never widen.
		for _, sc := range strings.Fields(requested) {
			if !slices.Contains(strings.Fields(old.Scope), sc) {
				return nil, oauthError(ErrInvalidScope, "The requested scope exceeds the granted one.")
			}
		}
		scope = requested
	}
	consent, err := s.store.ConsentByID(ctx, old.ConsentID)
	if err != nil && opencalico.ErrorCodeOf(err) != opencalico.ENotFound {
		return nil, err
	}
	if err != nil || !consent.Active() {
		return nil, oauthError(ErrInvalidGrant, "The user's consent was revoked.")
	}
	next := newSecret("ocr_")
	err = s.store.RotateRefreshToken(ctx, hash, &store.RefreshToken{
		Hash: hashSecret(next), UserID: old.UserID, ClientID: client.ID, ConsentID: old.ConsentID,
		Scope: scope, CreatedAt: now, ExpiresAt: now.Add(RefreshTokenTTL),
	}, now)
	switch {
	case errors.Is(err, store.ErrRefreshTokenReused):
		s.log.WarnContext(ctx, "oauth: refresh token reused; its family is revoked", "client_id", client.ID, "grant_id", old.GrantID)
		return nil, oauthError(ErrInvalidGrant, "The refresh token was already used or revoked.")
	case errors.Is(err, store.ErrGrantRevoked):
		return nil, oauthError(ErrInvalidGrant, "The refresh token was revoked.")
	case err != nil:
		return nil, err
	}
	access, err := s.signAccessToken(ctx, old.UserID, s.AccountsAudience(),
		accessClaims{ClientID: client.ID, Scope: scope, ConsentID: old.ConsentID, GrantID: old.GrantID}, now)
	if err != nil {
		return nil, err
	}
	return &tokenResponse{AccessToken: access, TokenType: "Bearer", ExpiresIn: int(AccessTokenTTL.Seconds()), RefreshToken: next, Scope: scope}, nil
}

// clientCredentials is the client_credentials grant, for the Enterprise API.
func (s *Server) clientCredentials(ctx context.Context, client *opencalico.Client, authenticated bool, form url.Values) (*tokenResponse, error) {
	if client.Public || !authenticated {
		return nil, oauthError(ErrUnauthorizedClient, "client_credentials is for confidential clients only.")
	}
	scope := form.Get("scope")
	if scope == "" {
		scope = ScopeEnterprise
	}
	if scope != ScopeEnterprise {
		return nil, oauthError(ErrInvalidScope, "client_credentials grants only the enterprise scope.")
	}
	access, err := s.signAccessToken(ctx, client.ID, s.EnterpriseAudience(), accessClaims{ClientID: client.ID, Scope: scope}, s.now())
	if err != nil {
		return nil, err
	}
	return &tokenResponse{AccessToken: access, TokenType: "Bearer", ExpiresIn: int(AccessTokenTTL.Seconds()), Scope: scope}, nil
}

// signAccessToken signs a JWT access token (RFC 9068) with the current key.
func (s *Server) signAccessToken(ctx context.Context, subject, audience string, extra accessClaims, now time.Time) (string, error) {
	key, err := s.keys.current(ctx)
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: key.private},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader(jose.HeaderKey("kid"), key.id))
	if err != nil {
		return "", err
	}
	std := jwt.Claims{
		Issuer: s.issuer, Subject: subject, Audience: jwt.Audience{audience},
		ID: opencalico.NewID("at"), IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
		Expiry: jwt.NewNumericDate(now.Add(AccessTokenTTL)),
	}
	return jwt.Signed(signer).Claims(std).Claims(extra).Serialize()
}

// handleRevoke is RFC 7009. The client must authenticate (public clients by client_id) and
// may only revoke its own tokens; an unknown or foreign token still gets 200, so that the
// endpoint tells nothing about tokens.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	if err := parsePostForm(r); err != nil {
		s.writeTokenError(w, r, err)
		return
	}
	client, _, err := s.authenticateClient(r)
	if err != nil {
		s.writeTokenError(w, r, err)
		return
	}
	token := r.PostForm.Get("token")
	if token == "" {
		s.writeTokenError(w, r, oauthError(ErrInvalidRequest, "The token parameter is missing."))
		return
	}
	if err := s.revoke(r.Context(), client, token); err != nil {
		s.writeTokenError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

func (s *Server) revoke(ctx context.Context, client *opencalico.Client, token string) error {
	now := s.now()
	if strings.Count(token, ".") == 2 {
		// An access token: revoked by jti until it expires. Expired or unverifiable tokens
		// need nothing.
		claims, err := s.verify(ctx, token, "", true)
		if err != nil || claims.ClientID != client.ID {
			return nil
		}
		return s.store.RevokeAccessToken(ctx, claims.ID, claims.Expiry.Time())
	}
	rt, err := s.store.RefreshTokenByHash(ctx, hashSecret(token))
	if opencalico.ErrorCodeOf(err) == opencalico.ENotFound {
		return nil
	} else if err != nil {
		return err
	}
	if rt.ClientID != client.ID {
		return nil
	}
	// RFC 7009 §2.1: revoking a refresh token revokes the grant, access tokens included.
	return s.store.RevokeOAuthGrant(ctx, rt.GrantID, now)
}

// handleMetadata is RFC 8414.
func (s *Server) handleMetadata(w http.ResponseWriter, _ *http.Request) {
	authMethods := []string{"client_secret_basic", "client_secret_post", "none"}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                     s.issuer,
		"authorization_endpoint":                     s.issuer + "/oauth/authorize",
		"token_endpoint":                             s.issuer + "/oauth/token",
		"revocation_endpoint":                        s.issuer + "/oauth/revoke",
		"jwks_uri":                                   s.issuer + "/.well-known/jwks.json",
		"response_types_supported":                   []string{"code"},
		"response_modes_supported":                   []string{"query"},
		"grant_types_supported":                      []string{"authorization_code", "refresh_token", "client_credentials"},
		"token_endpoint_auth_methods_supported":      authMethods,
		"revocation_endpoint_auth_methods_supported": authMethods,
		// plain is accepted only from clients registered with --allow-plain-pkce.
		"code_challenge_methods_supported":               []string{"S256", "plain"},
		"scopes_supported":                               []string{ScopeAccountsRead, ScopeEnterprise},
		"authorization_response_iss_parameter_supported": true,
	})
}

// handleJWKS publishes the signing keys.
func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	set, err := s.keys.jwks(r.Context())
	if err != nil {
		s.writeTokenError(w, r, err)
		return
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	writeJSON(w, http.StatusOK, set)
}
