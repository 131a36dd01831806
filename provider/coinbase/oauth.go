package coinbase

// OAuth2 ("Sign in with Coinbase") for the adapter: the consent URL with PKCE, the code
// exchange, refresh and revocation at login.coinbase.com, and a TokenSource that keeps a
// connection's single-use refresh token alive across workers, processes and crashes.
//
// Where the login service is: OPENCALICO_PROVIDER_COINBASE_LOGIN_URL when set; otherwise, when
// the API base URL is not Coinbase's (OPENCALICO_PROVIDER_COINBASE_BASE_URL pointing at the
// simulator, or sandbox mode), that same base URL, since the simulator serves /oauth2/* beside
// the API; otherwise https://login.coinbase.com.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
)

// The OAuth credential fields of a connection's sealed secret, beside FieldAccessToken.
const (
	FieldRefreshToken = "refresh_token"
	FieldExpiresAt    = "expires_at" // the access token's expiry, RFC 3339
	FieldScope        = "scope"
	// The refresh bookkeeping of TokenSource: the intent marker written before calling the
	// provider, and the reason a refresh failed for good.
	fieldRefreshingSince = "refreshing_since"
	fieldRefreshingOwner = "refreshing_owner"
	fieldRefreshFailed   = "refresh_failed"
)

// DefaultLoginURL is Coinbase's OAuth2 server.
const DefaultLoginURL = "https://login.coinbase.com"

// LoginURLEnv names the variable that overrides the login service's base URL.
const LoginURLEnv = "OPENCALICO_PROVIDER_COINBASE_LOGIN_URL"

// DefaultScopes are what opencalico asks for: read the user, wallets and transactions, and a
// refresh token.
var DefaultScopes = []string{"wallet:user:read", "wallet:accounts:read", "wallet:transactions:read", "offline_access"}

// LoginURL returns the login service's base URL for an API base URL (see the file comment).
func LoginURL(apiBase string) string {
	if v := os.Getenv(LoginURLEnv); v != "" {
		return strings.TrimRight(v, "/")
	}
	apiBase = strings.TrimRight(apiBase, "/")
	if apiBase != "" && apiBase != DefaultBaseURL {
		return apiBase
	}
	return DefaultLoginURL
}

// OAuthConfig configures the OAuth2 client of an opencalico server registered with Coinbase.
type OAuthConfig struct {
	ClientID     string
	ClientSecret string
	RedirectURI  string // the return page registered with Coinbase
	// LoginURL is the login service's base URL; default LoginURL(APIBaseURL).
	LoginURL string
	// APIBaseURL is the API's base URL; default provider.BaseURL("coinbase", DefaultBaseURL).
	APIBaseURL string
	Scopes     []string // default DefaultScopes
	HTTP       *http.Client
	Clock      provider.Clock
	// Retry knobs of provider.Client (defaults: 3 attempts, 30 s per attempt).
	MaxAttempts    int
	BaseDelay      time.Duration
	MaxDelay       time.Duration
	AttemptTimeout time.Duration
}

// OAuth speaks to Coinbase's OAuth2 server. It is safe for concurrent use.
type OAuth struct {
	cfg    OAuthConfig
	login  string
	clock  provider.Clock
	client *provider.Client
}

// NewOAuth returns the OAuth2 client; ClientID and RedirectURI are required.
func NewOAuth(cfg OAuthConfig) (*OAuth, error) {
	if cfg.ClientID == "" || cfg.RedirectURI == "" {
		return nil, errors.New("coinbase: OAuth needs a client id and a redirect URI")
	}
	if u, err := url.Parse(cfg.RedirectURI); err != nil || !u.IsAbs() {
		return nil, errors.New("coinbase: the OAuth redirect URI must be an absolute URL")
	}
	if cfg.APIBaseURL == "" {
		cfg.APIBaseURL = provider.BaseURL(ID, DefaultBaseURL)
	}
	if cfg.LoginURL == "" {
		cfg.LoginURL = LoginURL(cfg.APIBaseURL)
	}
	cfg.LoginURL = strings.TrimRight(cfg.LoginURL, "/")
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = DefaultScopes
	}
	if cfg.Clock == nil {
		cfg.Clock = provider.RealClock{}
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	return &OAuth{cfg: cfg, login: cfg.LoginURL, clock: cfg.Clock, client: &provider.Client{
		HTTP: cfg.HTTP, Classify: classifyToken, Clock: cfg.Clock, MaxAttempts: cfg.MaxAttempts,
		BaseDelay: cfg.BaseDelay, MaxDelay: cfg.MaxDelay, AttemptTimeout: cfg.AttemptTimeout, ProviderID: ID,
	}}, nil
}

// Tokens are what the token endpoint returns.
type Tokens struct {
	AccessToken  string
	RefreshToken string
	Expiry       time.Time // of the access token
	Scope        string
}

// Credentials are the fields to seal for a connection made of these tokens.
func (t Tokens) Credentials() map[string]string {
	c := map[string]string{FieldAccessToken: t.AccessToken, FieldRefreshToken: t.RefreshToken,
		FieldExpiresAt: t.Expiry.UTC().Format(time.RFC3339Nano)}
	if t.Scope != "" {
		c[FieldScope] = t.Scope
	}
	return c
}

// String hides the tokens.
func (t Tokens) String() string {
	return fmt.Sprintf("Tokens{expiry %s, refresh token %t}", t.Expiry.UTC().Format(time.RFC3339), t.RefreshToken != "")
}

// GoString hides the tokens from %#v too.
func (t Tokens) GoString() string { return t.String() }

// tokensOf reads tokens from opened credentials; a missing or bad expiry reads as expired.
func tokensOf(c map[string]string) Tokens {
	t := Tokens{AccessToken: c[FieldAccessToken], RefreshToken: c[FieldRefreshToken], Scope: c[FieldScope]}
	t.Expiry, _ = time.Parse(time.RFC3339Nano, c[FieldExpiresAt])
	return t
}

// NewCodeVerifier returns a PKCE code verifier: 32 random bytes, base64url (43 characters).
func NewCodeVerifier() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// CodeChallenge is the S256 challenge of a verifier (RFC 7636).
func CodeChallenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// ConsentURL is where to send the user to grant access. state must be unguessable (Coinbase
// wants at least 8 characters); codeVerifier is kept server-side with the state and given
// back to Exchange.
func (o *OAuth) ConsentURL(state, codeVerifier string) string {
	q := url.Values{
		"client_id":             {o.cfg.ClientID},
		"response_type":         {"code"},
		"redirect_uri":          {o.cfg.RedirectURI},
		"scope":                 {strings.Join(o.cfg.Scopes, ",")},
		"state":                 {state},
		"code_challenge":        {CodeChallenge(codeVerifier)},
		"code_challenge_method": {"S256"},
	}
	return o.login + "/oauth2/auth?" + q.Encode()
}

// Exchange trades the code the consent returned for tokens. A code that is bad, expired or
// already used is EInvalidCredentials (start the consent again).
func (o *OAuth) Exchange(ctx context.Context, code, codeVerifier string) (Tokens, error) {
	t, err := o.token(ctx, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {o.cfg.RedirectURI}, "code_verifier": {codeVerifier}})
	if err != nil && opencalico.ErrorCodeOf(err) == opencalico.EReauthRequired {
		return Tokens{}, &opencalico.Error{Code: opencalico.EInvalidCredentials, ProviderID: ID,
			Message: "Coinbase did not accept the authorization code (expired, already used, or not issued for this server): connect Coinbase again.",
			Err:     err}
	}
	return t, err
}

// Refresh trades a refresh token for a new pair. The refresh token is dead afterwards,
// whatever happens to the answer: store the new pair before using it (see TokenSource). A
// refresh token Coinbase no longer accepts is EReauthRequired and never retried.
func (o *OAuth) Refresh(ctx context.Context, refreshToken string) (Tokens, error) {
	if refreshToken == "" {
		return Tokens{}, &opencalico.Error{Code: opencalico.EReauthRequired, ProviderID: ID,
			Message: "This Coinbase connection has no refresh token (offline_access was not granted): connect Coinbase again."}
	}
	return o.token(ctx, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}})
}

func (o *OAuth) token(ctx context.Context, form url.Values) (Tokens, error) {
	form.Set("client_id", o.cfg.ClientID)
	form.Set("client_secret", o.cfg.ClientSecret)
	res, err := o.client.Do(ctx, provider.Request{
		Method: http.MethodPost, URL: o.login + "/oauth2/token",
		Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Accept": {"application/json"}},
		Body:   []byte(form.Encode()),
	})
	if err != nil {
		return Tokens{}, err
	}
	var body struct {
		AccessToken  string `json:"access_token"`
		TokenType    string `json:"token_type"`
		ExpiresIn    int64  `json:"expires_in"`
		RefreshToken string `json:"refresh_token"`
		Scope        string `json:"scope"`
	}
	if err := json.Unmarshal(res.Body, &body); err != nil || body.AccessToken == "" || !strings.EqualFold(body.TokenType, "bearer") {
		return Tokens{}, &opencalico.Error{Code: opencalico.EProviderError, ProviderID: ID,
			Message: "Coinbase's token endpoint answered in an unexpected format."}
	}
	if body.ExpiresIn <= 0 {
		body.ExpiresIn = 3600
	}
	return Tokens{AccessToken: body.AccessToken, RefreshToken: body.RefreshToken, Scope: body.Scope,
		Expiry: o.clock.Now().Add(time.Duration(body.ExpiresIn) * time.Second).UTC()}, nil
}

// Revoke revokes the grant of an access or refresh token (Coinbase answers 200 even for a
// token it does not know).
func (o *OAuth) Revoke(ctx context.Context, token string) error {
	form := url.Values{"token": {token}, "client_id": {o.cfg.ClientID}, "client_secret": {o.cfg.ClientSecret}}
	_, err := o.client.Do(ctx, provider.Request{
		Method: http.MethodPost, URL: o.login + "/oauth2/revoke",
		Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
		Body:   []byte(form.Encode()),
	})
	return err
}

// classifyToken maps the OAuth server's answers (RFC 6749 §5.2 bodies): invalid_grant is a
// dead code or refresh token, never retried; a rejected client is this server's
// configuration; 429 and 5xx are transient.
func classifyToken(r *provider.Response) error {
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &e)
	switch {
	case r.Status >= 200 && r.Status < 300:
		// Revocation answers 200 with an empty body.
		if len(r.Body) > 0 && !json.Valid(r.Body) {
			return provider.Transient(errors.New("coinbase oauth: truncated or malformed JSON body"), 0)
		}
		return nil
	case r.Status == http.StatusTooManyRequests || r.Status >= 500:
		return provider.Transient(fmt.Errorf("coinbase oauth: HTTP %d", r.Status), provider.RetryAfter(r.Header))
	case e.Error == "invalid_grant":
		return &opencalico.Error{Code: opencalico.EReauthRequired, ProviderID: ID,
			Message: "Coinbase no longer accepts this connection's authorization (invalid_grant: the grant was revoked, expired or its refresh token already used): connect Coinbase again."}
	case e.Error == "invalid_client" || e.Error == "unauthorized_client" || r.Status == http.StatusUnauthorized:
		return &opencalico.Error{Code: opencalico.EProviderError, ProviderID: ID,
			Message: "Coinbase rejected this server's OAuth client (" + safeWord(e.Error, "invalid_client") + "): check the configured client id, secret and redirect URI."}
	}
	return &opencalico.Error{Code: opencalico.EProviderError, ProviderID: ID,
		Message: fmt.Sprintf("Coinbase's token endpoint answered HTTP %d (%s).", r.Status, safeWord(e.Error, "unknown"))}
}

// safeWord returns an OAuth error code if it looks like one (a short snake_case word).
func safeWord(s, def string) string {
	if s == "" || len(s) > 40 || strings.Trim(s, "abcdefghijklmnopqrstuvwxyz_") != "" {
		return def
	}
	return s
}

// SecretStore is what a TokenSource needs of the store (*store.Store has it).
type SecretStore interface {
	Secret(ctx context.Context, connectionID string) (opencalico.SealedSecret, error)
	// ReplaceSecret stores next only if the stored secret is still prev (compare-and-set).
	ReplaceSecret(ctx context.Context, prev, next opencalico.SealedSecret) (bool, error)
}

// CredentialSealer seals and opens credential maps (*secrets.Sealer is one).
type CredentialSealer interface {
	SealCredentials(connectionID string, creds map[string]string) (opencalico.SealedSecret, error)
	OpenCredentials(sealed opencalico.SealedSecret) (map[string]string, error)
}

// TokenSourceOptions tune a TokenSource; zero values take the defaults.
type TokenSourceOptions struct {
	// Skew: refresh this long before the access token expires (default 2 minutes).
	Skew time.Duration
	// Lease: a refresh marker older than this belongs to a refresher that crashed or stalled,
	// and may be taken over (default 2 minutes). It must exceed RefreshTimeout.
	Lease time.Duration
	// RefreshTimeout bounds one refresh at the provider, retries included (default Lease/2).
	RefreshTimeout time.Duration
	// PollInterval is the real time between reads of the secret while another process
	// refreshes it (default 100 ms).
	PollInterval time.Duration
	Clock        provider.Clock // default: the OAuth client's clock
}

// TokenSource hands out a valid access token for a connection, refreshing it when it is
// about to expire. It is safe for concurrent use, and several TokenSources (processes) may
// share one database.
//
// Coinbase refresh tokens are single use, and Coinbase documents no grace period in which a
// just-used refresh token is accepted again (the simulator treats such a replay as theft and
// revokes the grant). So the new pair exists only in the refresher's memory between the
// provider's answer and the commit, and the design is:
//
//  1. One refresher per connection. Within a process, concurrent callers share one refresh
//     (single flight). Across processes, a refresher first replaces the sealed secret, by
//     compare-and-set on its ciphertext, with the same tokens plus an intent marker
//     (refreshing_since, refreshing_owner). Only the winner of that CAS calls Coinbase; the
//     others wait for the marker to go away, using the current access token meanwhile if it
//     is still valid.
//  2. The new pair is stored by compare-and-set against the marked secret the refresher wrote,
//     so nothing that changed the secret meanwhile (a re-consent, a takeover) is overwritten by
//     a stale pair. Store errors are retried while the refresh timeout allows.
//  3. A crash (or a failed commit) between the provider's answer and the commit leaves the
//     marker. After Lease, the next caller takes over and refreshes with the old token: if the
//     crashed refresher never reached Coinbase, that succeeds and nothing is lost; if it did,
//     Coinbase answers invalid_grant and the connection is put, for good, in a clear state:
//     the secret records refresh_failed and every call returns EReauthRequired with a message
//     saying that a refresh was interrupted, until the user connects Coinbase again (which
//     replaces the secret).
//
// It guarantees: no refresh token is ever presented twice by opencalico except in that
// recovery, never two refreshes of one connection run at once (given clocks within Lease of
// each other and refreshes bounded by RefreshTimeout), a stored pair is never overwritten by
// an older one, and a lost pair always ends in reauth_required with a message, never in a
// connection that silently keeps failing.
type TokenSource struct {
	oauth  *OAuth
	store  SecretStore
	sealer CredentialSealer
	opts   TokenSourceOptions
	owner  string

	mu      sync.Mutex
	flights map[string]*flight
}

type flight struct {
	done  chan struct{}
	token string
	err   error
}

// NewTokenSource returns a token source over the store's sealed secrets.
func NewTokenSource(o *OAuth, st SecretStore, se CredentialSealer, opts TokenSourceOptions) *TokenSource {
	if opts.Skew <= 0 {
		opts.Skew = 2 * time.Minute
	}
	if opts.Lease <= 0 {
		opts.Lease = 2 * time.Minute
	}
	if opts.RefreshTimeout <= 0 || opts.RefreshTimeout >= opts.Lease {
		opts.RefreshTimeout = opts.Lease / 2
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 100 * time.Millisecond
	}
	if opts.Clock == nil {
		opts.Clock = o.clock
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return &TokenSource{oauth: o, store: st, sealer: se, opts: opts, owner: hex.EncodeToString(b), flights: map[string]*flight{}}
}

// Token returns a valid access token for the connection.
func (ts *TokenSource) Token(ctx context.Context, connectionID string) (string, error) {
	return ts.shared(ctx, connectionID, "")
}

// TokenAfterRejection returns an access token other than rejected, which the API refused
// (401 expired_token or revoked_token): the stored token if another worker has replaced it,
// or a refreshed one.
func (ts *TokenSource) TokenAfterRejection(ctx context.Context, connectionID, rejected string) (string, error) {
	return ts.shared(ctx, connectionID, rejected)
}

// shared runs one token lookup per connection at a time in this process; the callers that
// arrive meanwhile get its result.
func (ts *TokenSource) shared(ctx context.Context, connectionID, rejected string) (string, error) {
	for {
		ts.mu.Lock()
		f, busy := ts.flights[connectionID]
		if !busy {
			f = &flight{done: make(chan struct{})}
			ts.flights[connectionID] = f
			ts.mu.Unlock()
			f.token, f.err = ts.token(ctx, connectionID, rejected)
			ts.mu.Lock()
			delete(ts.flights, connectionID)
			ts.mu.Unlock()
			close(f.done)
			return f.token, f.err
		}
		ts.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return "", ctx.Err()
		}
		// The leader's context may have ended, or its token be the rejected one: look again.
		if f.err == nil && f.token != rejected {
			return f.token, nil
		}
		if f.err != nil && ctx.Err() == nil && !errors.Is(f.err, context.Canceled) && !errors.Is(f.err, context.DeadlineExceeded) {
			return "", f.err
		}
	}
}

func (ts *TokenSource) reauth(msg string, err error) error {
	return &opencalico.Error{Code: opencalico.EReauthRequired, ProviderID: ID, Message: msg, Err: err}
}

func (ts *TokenSource) read(ctx context.Context, connectionID string) (opencalico.SealedSecret, map[string]string, error) {
	sealed, err := ts.store.Secret(ctx, connectionID)
	if err != nil {
		return sealed, nil, err
	}
	creds, err := ts.sealer.OpenCredentials(sealed)
	if err != nil {
		return sealed, nil, err
	}
	return sealed, creds, nil
}

func without(c map[string]string, fields ...string) map[string]string {
	out := make(map[string]string, len(c))
	for k, v := range c {
		if !slices.Contains(fields, k) {
			out[k] = v
		}
	}
	return out
}

func (ts *TokenSource) token(ctx context.Context, connectionID, rejected string) (string, error) {
	for {
		sealed, creds, err := ts.read(ctx, connectionID)
		if err != nil {
			return "", err
		}
		if msg := creds[fieldRefreshFailed]; msg != "" {
			return "", ts.reauth(msg, nil)
		}
		tok := tokensOf(creds)
		now := ts.opts.Clock.Now()
		usable := tok.AccessToken != "" && tok.AccessToken != rejected && now.Before(tok.Expiry)
		var takeover *time.Time
		if since, marked := creds[fieldRefreshingSince]; marked {
			at, _ := time.Parse(time.RFC3339Nano, since)
			if now.Sub(at) < ts.opts.Lease {
				// Another worker refreshes: use the current token while it lasts, or wait.
				if usable && tok.Expiry.Sub(now) > ts.opts.PollInterval {
					return tok.AccessToken, nil
				}
				if err := sleep(ctx, ts.opts.PollInterval); err != nil {
					return "", err
				}
				continue
			}
			takeover = &at
		} else if usable && tok.Expiry.Sub(now) > ts.opts.Skew {
			return tok.AccessToken, nil
		}
		if tok.RefreshToken == "" {
			return "", ts.reauth("This Coinbase connection's access expired and it has no refresh token (offline_access was not granted): connect Coinbase again.", nil)
		}
		// Record the intent; only the worker whose compare-and-set wins calls Coinbase.
		marked := without(creds, fieldRefreshingSince, fieldRefreshingOwner)
		marked[fieldRefreshingSince] = now.UTC().Format(time.RFC3339Nano)
		marked[fieldRefreshingOwner] = ts.owner
		sealedMarked, err := ts.sealer.SealCredentials(connectionID, marked)
		if err != nil {
			return "", err
		}
		if ok, err := ts.store.ReplaceSecret(ctx, sealed, sealedMarked); err != nil {
			return "", err
		} else if !ok {
			continue // someone else changed it: look again
		}
		return ts.refresh(ctx, connectionID, creds, sealedMarked, takeover)
	}
}

// refresh calls Coinbase for the connection whose stored secret is sealedMarked (creds plus
// this worker's marker) and stores the new pair.
func (ts *TokenSource) refresh(ctx context.Context, connectionID string, creds map[string]string,
	sealedMarked opencalico.SealedSecret, takeover *time.Time) (string, error) {
	old := tokensOf(creds)
	rctx, cancel := context.WithTimeout(ctx, ts.opts.RefreshTimeout)
	defer cancel()
	fresh, err := ts.oauth.Refresh(rctx, old.RefreshToken)
	if err != nil {
		if opencalico.ErrorCodeOf(err) != opencalico.EReauthRequired {
			// Coinbase may or may not have used the token; clear the marker so that the next
			// attempt need not wait for the lease (it will learn which from Coinbase).
			cleared, serr := ts.sealer.SealCredentials(connectionID, without(creds, fieldRefreshingSince, fieldRefreshingOwner))
			if serr == nil {
				cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				_, _ = ts.store.ReplaceSecret(cctx, sealedMarked, cleared)
				ccancel()
			}
			return "", err
		}
		msg := "Coinbase no longer accepts this connection's authorization (the grant was revoked or expired): connect Coinbase again."
		if takeover != nil {
			msg = fmt.Sprintf("A refresh of this connection's Coinbase token, started at %s, was interrupted before the new tokens were stored, and Coinbase refresh tokens are single use: connect Coinbase again.",
				takeover.UTC().Format(time.RFC3339))
		}
		failed := without(creds, fieldRefreshingSince, fieldRefreshingOwner)
		failed[fieldRefreshFailed] = msg
		if sealedFailed, serr := ts.sealer.SealCredentials(connectionID, failed); serr == nil {
			cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			ok, _ := ts.store.ReplaceSecret(cctx, sealedMarked, sealedFailed)
			ccancel()
			if !ok {
				// Someone replaced the secret meanwhile (a re-consent, or a stalled refresher
				// that stored its pair): that secret may be good, so look at it.
				return ts.token(ctx, connectionID, "")
			}
		}
		return "", ts.reauth(msg, err)
	}
	if fresh.RefreshToken == "" {
		// Keep the old one rather than losing the ability to refresh (Coinbase always sends one
		// with offline_access; a provider that does not rotate would send none).
		fresh.RefreshToken = old.RefreshToken
	}
	next := without(creds, fieldRefreshingSince, fieldRefreshingOwner, FieldAccessToken, FieldRefreshToken, FieldExpiresAt, FieldScope)
	for k, v := range fresh.Credentials() {
		next[k] = v
	}
	sealedNext, err := ts.sealer.SealCredentials(connectionID, next)
	if err != nil {
		return "", err
	}
	// The new pair is the only live one: try hard to store it. The context is detached from
	// the caller's, whose cancellation must not lose the pair, and bounded by the lease.
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), ts.opts.Lease-ts.opts.RefreshTimeout)
	defer scancel()
	prev := sealedMarked
	for attempt := 0; ; attempt++ {
		ok, err := ts.store.ReplaceSecret(sctx, prev, sealedNext)
		if err == nil && ok {
			return fresh.AccessToken, nil
		}
		if err == nil {
			// Our marker was replaced. If the stored secret still holds the refresh token we
			// used (a takeover after our lease ran out, not yet finished), our pair is the
			// newer one: replace it. Otherwise someone stored another grant: keep theirs.
			cur, curCreds, rerr := ts.read(sctx, connectionID)
			if rerr != nil {
				return "", rerr
			}
			if tokensOf(curCreds).RefreshToken != old.RefreshToken {
				return ts.token(ctx, connectionID, "")
			}
			prev = cur
			continue
		}
		if attempt >= 4 || sleep(sctx, time.Duration(50<<attempt)*time.Millisecond) != nil {
			return "", fmt.Errorf("coinbase: storing refreshed tokens: %w", err)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// OAuthAdapter is the Coinbase adapter for connections made either way: CDP key credentials
// go to the adapter as they are; OAuth connections (credentials with a refresh_token, or
// none) get their access token from the TokenSource by connection id, and a call the API
// refuses with 401 is retried once with a token from TokenAfterRejection. A History read
// retried that way resumes from the cursors its sink already accepted.
type OAuthAdapter struct {
	*Adapter
	Tokens *TokenSource
}

var _ provider.Adapter = (*OAuthAdapter)(nil)

// Provider adds oauth2 to the catalog entry.
func (a *OAuthAdapter) Provider() opencalico.Provider {
	p := a.Adapter.Provider()
	p.AuthTypes = append(slices.Clone(p.AuthTypes), opencalico.AuthOAuth2)
	p.AuthMetaData = append(slices.Clone(p.AuthMetaData), opencalico.AuthMetaData{AuthType: opencalico.AuthOAuth2})
	return p
}

func isOAuth(c provider.Credentials) bool {
	return c[FieldRefreshToken] != "" || len(c) == 0
}

// with runs call with the connection's access token, once more after a 401.
func (a *OAuthAdapter) with(ctx context.Context, acct provider.Account, call func(provider.Account) error) error {
	if !isOAuth(acct.Credentials) {
		return call(acct)
	}
	tok, err := a.Tokens.Token(ctx, acct.ConnectionID)
	for attempt := 0; err == nil; attempt++ {
		acct.Credentials = provider.Credentials{FieldAccessToken: tok}
		err = call(acct)
		if attempt > 0 || opencalico.ErrorCodeOf(err) != opencalico.EInvalidCredentials {
			return err
		}
		tok, err = a.Tokens.TokenAfterRejection(ctx, acct.ConnectionID, tok)
	}
	return err
}

// UserID reads the Coinbase user id of the account (GET /v2/user): the fingerprint that makes
// a second connection of the same Coinbase user already_connected.
func (a *OAuthAdapter) UserID(ctx context.Context, acct provider.Account) (string, error) {
	var u wireUser
	err := a.with(ctx, acct, func(x provider.Account) error {
		auth, err := newAuthorizer(x.Credentials, a.nonce)
		if err != nil {
			return err
		}
		return a.get(ctx, auth, "/v2/user", &u)
	})
	if err == nil && u.Data.ID == "" {
		err = &opencalico.Error{Code: opencalico.EProviderError, ProviderID: ID, Message: "Coinbase did not name the user."}
	}
	return u.Data.ID, err
}

// Verify checks the connection's token with one call.
func (a *OAuthAdapter) Verify(ctx context.Context, acct provider.Account) error {
	return a.with(ctx, acct, func(x provider.Account) error { return a.Adapter.Verify(ctx, x) })
}

// Balances reads the positions.
func (a *OAuthAdapter) Balances(ctx context.Context, acct provider.Account) ([]opencalico.Position, error) {
	var out []opencalico.Position
	err := a.with(ctx, acct, func(x provider.Account) error {
		var err error
		out, err = a.Adapter.Balances(ctx, x)
		return err
	})
	return out, err
}

// History reads the history; a retry after a 401 starts from the cursors already accepted.
func (a *OAuthAdapter) History(ctx context.Context, acct provider.Account, from provider.Cursors, sink provider.Sink) error {
	cursors := provider.Cursors{}
	for k, v := range from {
		cursors[k] = v
	}
	track := func(ctx context.Context, p provider.Page) error {
		if err := sink(ctx, p); err != nil {
			return err
		}
		cursors[p.Stream] = p.Cursor
		return nil
	}
	return a.with(ctx, acct, func(x provider.Account) error {
		resume := provider.Cursors{}
		for k, v := range cursors {
			resume[k] = v
		}
		return a.Adapter.History(ctx, x, resume, track)
	})
}
