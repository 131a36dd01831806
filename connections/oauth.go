package connections

// Connecting through a provider's own OAuth consent ("Sign in with Coinbase").
//
// StartOAuth makes a state (32 random bytes) and a PKCE code verifier, stores the state's
// SHA-256 bound to the user, the partner (none from the Connect widget) and the provider, with
// the verifier sealed and the label and return URL the connection will get, for ten minutes;
// and returns the provider's consent URL. The provider sends the browser back to the
// server's return page with the code and the state. CompleteOAuth consumes the state by
// compare-and-set (a replayed, expired, foreign or unknown state is invalid_state and nothing
// else happens), exchanges the code with the verifier, reads who the provider user is (the
// fingerprint: the same provider account connected twice is already_connected), seals the
// tokens bound to the new connection's id, and stores the connection with its first sync
// queued in one transaction.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
	"github.com/opencalico/opencalico/store"
)

// StateLifetime is how long a consent at a provider may take.
const StateLifetime = 10 * time.Minute

// maxReturnURLLen bounds the return URL kept with a state.
const maxReturnURLLen = 2048

// OAuthClient is a provider's OAuth2 client, as the service uses it. NewOAuthClient makes one
// of a provider package's client (*coinbase.OAuth) and adapter (*coinbase.OAuthAdapter).
type OAuthClient interface {
	// ConsentURL is where to send the user, carrying the state and the PKCE challenge of
	// codeVerifier.
	ConsentURL(state, codeVerifier string) string
	// Exchange trades the code for the credentials to seal. A code the provider does not take
	// is invalid_credentials.
	Exchange(ctx context.Context, code, codeVerifier string) (map[string]string, error)
	// UserID names the provider's user that the credentials read (the fingerprint's identity).
	UserID(ctx context.Context, creds map[string]string) (string, error)
}

// Tokens are what a provider's token endpoint returned (coinbase.Tokens).
type Tokens interface {
	Credentials() map[string]string
}

// Exchanger is a provider package's OAuth2 client (*coinbase.OAuth is an
// Exchanger[coinbase.Tokens]).
type Exchanger[T Tokens] interface {
	ConsentURL(state, codeVerifier string) string
	Exchange(ctx context.Context, code, codeVerifier string) (T, error)
}

// Identifier reads the provider's user id through an adapter (*coinbase.OAuthAdapter).
type Identifier interface {
	UserID(ctx context.Context, acct provider.Account) (string, error)
}

// NewOAuthClient joins a provider's OAuth2 client and the adapter that names its user. The
// user is read with the access token alone (credentials field "access_token"), before any
// connection exists.
func NewOAuthClient[T Tokens](ex Exchanger[T], id Identifier) OAuthClient {
	return oauthClient[T]{ex: ex, id: id}
}

type oauthClient[T Tokens] struct {
	ex Exchanger[T]
	id Identifier
}

func (c oauthClient[T]) ConsentURL(state, codeVerifier string) string {
	return c.ex.ConsentURL(state, codeVerifier)
}

func (c oauthClient[T]) Exchange(ctx context.Context, code, codeVerifier string) (map[string]string, error) {
	t, err := c.ex.Exchange(ctx, code, codeVerifier)
	if err != nil {
		return nil, err
	}
	return t.Credentials(), nil
}

func (c oauthClient[T]) UserID(ctx context.Context, creds map[string]string) (string, error) {
	return c.id.UserID(ctx, provider.Account{Credentials: provider.Credentials{"access_token": creds["access_token"]}})
}

// OAuthStore is what the OAuth part of the service asks of the database (*store.Store).
type OAuthStore interface {
	CreateProviderOAuthState(ctx context.Context, st *store.ProviderOAuthState) error
	ProviderOAuthState(ctx context.Context, hash string, now time.Time) (*store.ProviderOAuthState, error)
	ConsumeProviderOAuthState(ctx context.Context, hash, userID string, providerID opencalico.ProviderID, now time.Time) (*store.ProviderOAuthState, error)
}

var _ OAuthStore = (*store.Store)(nil)

// OAuthReady reports whether p can be connected through its consent here: it offers oauth2
// and this server has an OAuth client for it. origin is the consent page's origin
// (scheme://host), for a Content-Security-Policy.
func (s *Service) OAuthReady(id opencalico.ProviderID) (origin string, ok bool) {
	c, ok := s.cfg.OAuth[id]
	if !ok {
		return "", false
	}
	a, err := s.cfg.Providers.Adapter(id)
	if err != nil || !a.Provider().Supports(opencalico.AuthOAuth2) {
		return "", false
	}
	u, err := url.Parse(c.ConsentURL("xxxxxxxxxxxxxxxx", "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"))
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", false
	}
	return u.Scheme + "://" + u.Host, true
}

// OAuthStart asks to connect an account through the provider's consent.
type OAuthStart struct {
	UserID     string
	ClientID   string // the partner asking through the API; "" for the Connect widget
	ProviderID opencalico.ProviderID
	// DisplayLabel is the connection's label; empty means the provider's name.
	DisplayLabel string
	// ReturnURL is where the user goes once connected (the caller has checked it).
	ReturnURL string
}

// StartOAuth records a state for the consent and returns the provider's consent URL. A
// provider without oauth2, or without an OAuth client configured here, is
// unsupported_connection_type.
func (s *Service) StartOAuth(ctx context.Context, req OAuthStart) (string, error) {
	if req.UserID == "" {
		return "", errors.New("connections: start OAuth: no user")
	}
	adapter, err := s.cfg.Providers.Adapter(req.ProviderID)
	if err != nil {
		return "", err
	}
	p := adapter.Provider()
	client, ok := s.cfg.OAuth[p.ID]
	if !p.Supports(opencalico.AuthOAuth2) || !ok {
		e := opencalico.Errorf(opencalico.EUnsupportedConnectionType,
			"%s cannot be connected through its own sign-in page on this server; use one of %s.", p.Name, authTypeList(without(p.AuthTypes, opencalico.AuthOAuth2)))
		if p.Supports(opencalico.AuthOAuth2) {
			e.Message = fmt.Sprintf("This server has no OAuth client registered with %s, so it cannot be connected through %s's sign-in page; use one of %s.",
				p.Name, p.Name, authTypeList(without(p.AuthTypes, opencalico.AuthOAuth2)))
		}
		e.ProviderID = p.ID
		return "", e
	}
	label := strings.TrimSpace(req.DisplayLabel)
	if label == "" {
		label = p.Name
	}
	if utf8.RuneCountInString(label) > maxLabelLen {
		e := opencalico.Errorf(opencalico.EBadRequest, "The display label is longer than %d characters.", maxLabelLen)
		e.ProviderID = p.ID
		return "", e
	}
	if len(req.ReturnURL) > maxReturnURLLen {
		return "", opencalico.Errorf(opencalico.EBadRequest, "The redirect URI is longer than %d bytes.", maxReturnURLLen)
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	state := base64.RawURLEncoding.EncodeToString(raw)
	verifier := newVerifier()
	hash := StateHash(state)
	sealed, err := s.cfg.Sealer.SealCredentials("oauth-state:"+hash, map[string]string{"code_verifier": verifier})
	if err != nil {
		return "", err
	}
	now := s.now()
	if err := s.cfg.OAuthStore.CreateProviderOAuthState(ctx, &store.ProviderOAuthState{
		Hash: hash, UserID: req.UserID, ClientID: req.ClientID, ProviderID: p.ID, Verifier: sealed,
		DisplayLabel: label, ReturnURL: req.ReturnURL, CreatedAt: now, ExpiresAt: now.Add(StateLifetime),
	}); err != nil {
		return "", err
	}
	s.log.InfoContext(ctx, "provider consent started", "user_id", req.UserID, "client_id", req.ClientID, "provider_id", string(p.ID))
	return client.ConsentURL(state, verifier), nil
}

// StateHash is how a state is stored: hex SHA-256.
func StateHash(state string) string {
	sum := sha256.Sum256([]byte(state))
	return hex.EncodeToString(sum[:])
}

// newVerifier is a PKCE code verifier: 32 random bytes, base64url (43 characters).
func newVerifier() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// PendingOAuth is what a state that can still be used says of itself.
type PendingOAuth struct {
	UserID     string
	ClientID   string
	ProviderID opencalico.ProviderID
	ReturnURL  string
}

// PendingOAuth reads a state that can still be completed without using it: the return page
// learns from it whether the consent was started in the widget or by a partner, and where to
// send the browser. An unusable state is invalid_state.
func (s *Service) PendingOAuth(ctx context.Context, state string) (*PendingOAuth, error) {
	if state == "" || len(state) > 512 {
		return nil, stateError()
	}
	st, err := s.cfg.OAuthStore.ProviderOAuthState(ctx, StateHash(state), s.now())
	if err != nil {
		return nil, err
	}
	return &PendingOAuth{UserID: st.UserID, ClientID: st.ClientID, ProviderID: st.ProviderID, ReturnURL: st.ReturnURL}, nil
}

// CancelOAuth uses up the user's state for a consent that was refused at the provider, and
// returns where the user was to go back to.
func (s *Service) CancelOAuth(ctx context.Context, userID string, providerID opencalico.ProviderID, state string) (string, error) {
	if state == "" || len(state) > 512 {
		return "", stateError()
	}
	st, err := s.cfg.OAuthStore.ConsumeProviderOAuthState(ctx, StateHash(state), userID, providerID, s.now())
	if err != nil {
		return "", err
	}
	s.log.InfoContext(ctx, "provider consent refused", "user_id", userID, "provider_id", string(providerID))
	return st.ReturnURL, nil
}

// OAuthResult is a connection made through a provider's consent.
type OAuthResult struct {
	Connection *opencalico.Connection
	// ReturnURL is the return URL given when the consent started ("" for none).
	ReturnURL string
}

// OAuthCompletion is a consent that came back from the provider.
type OAuthCompletion struct {
	UserID string
	// ClientID is the partner completing it through the API; "" for the Connect widget. A
	// state started by one is not completed by the other.
	ClientID   string
	ProviderID opencalico.ProviderID
	State      string
	Code       string
}

func stateError() error {
	return opencalico.Errorf(opencalico.EInvalidState,
		"This sign-in at the provider is unknown, expired or was already used: start connecting again.")
}

// CompleteOAuth consumes the state and makes the connection from the code. The state is used
// up whatever happens next: a code the provider refuses means starting again.
func (s *Service) CompleteOAuth(ctx context.Context, req OAuthCompletion) (*OAuthResult, error) {
	if req.UserID == "" {
		return nil, errors.New("connections: complete OAuth: no user")
	}
	if req.State == "" || len(req.State) > 512 {
		return nil, stateError()
	}
	adapter, err := s.cfg.Providers.Adapter(req.ProviderID)
	if err != nil {
		return nil, err
	}
	p := adapter.Provider()
	client, ok := s.cfg.OAuth[p.ID]
	if !ok || !p.Supports(opencalico.AuthOAuth2) {
		return nil, stateError() // no state can have been issued for it
	}
	st, err := s.cfg.OAuthStore.ConsumeProviderOAuthState(ctx, StateHash(req.State), req.UserID, p.ID, s.now())
	if err != nil {
		return nil, err
	}
	if st.ClientID != req.ClientID {
		s.log.WarnContext(ctx, "provider consent completed by the wrong party", "user_id", req.UserID,
			"provider_id", string(p.ID), "client_id", req.ClientID)
		return nil, stateError()
	}
	fail := func(code opencalico.ErrorCode, format string, args ...any) error {
		e := opencalico.Errorf(code, format, args...)
		e.ProviderID = p.ID
		return e
	}
	if strings.TrimSpace(req.Code) == "" || len(req.Code) > maxFieldLen {
		return nil, fail(opencalico.EBadRequest, "%s sent no usable authorization code: connect %s again.", p.Name, p.Name)
	}
	opened, err := s.cfg.Sealer.OpenCredentials(st.Verifier)
	if err != nil {
		return nil, err
	}
	vctx, cancel := context.WithTimeout(ctx, s.cfg.VerifyTimeout)
	defer cancel()
	creds, err := client.Exchange(vctx, req.Code, opened["code_verifier"])
	if err != nil {
		return nil, s.providerError(ctx, p, err, "The authorization from %s was not accepted (it expired or was already used): connect %s again.")
	}
	identity, err := client.UserID(vctx, creds)
	if err != nil {
		return nil, s.providerError(ctx, p, err, "%s did not accept the new authorization: connect %s again.")
	}
	fp := s.fingerprint(p.ID, opencalico.AuthOAuth2, "", identity)
	existing, err := s.cfg.Store.ListConnections(ctx, req.UserID)
	if err != nil {
		return nil, err
	}
	for _, c := range existing {
		if c.ProviderID == p.ID && c.Fingerprint == fp {
			return nil, fail(opencalico.EAlreadyConnected, "This %s account is already connected (as %q).", p.Name, c.DisplayLabel)
		}
	}
	c := &opencalico.Connection{
		ID: opencalico.NewID("conn"), UserID: req.UserID, ProviderID: p.ID, DisplayLabel: st.DisplayLabel,
		Type: opencalico.AuthOAuth2, Status: opencalico.StatusPending, Fingerprint: fp,
	}
	if c.DisplayLabel == "" {
		c.DisplayLabel = p.Name
	}
	sealed, err := s.cfg.Sealer.SealCredentials(c.ID, creds)
	if err != nil {
		return nil, err
	}
	err = s.cfg.Store.InTx(ctx, func(tx *sql.Tx) error {
		if err := s.cfg.Store.CreateConnectionTx(ctx, tx, c, &sealed); err != nil {
			return err
		}
		return s.cfg.Sync.EnqueueTx(ctx, tx, c.ID)
	})
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "connection added", "connection_id", c.ID, "user_id", c.UserID, "provider_id", string(p.ID), "type", string(c.Type))
	return &OAuthResult{Connection: c, ReturnURL: st.ReturnURL}, nil
}

// providerError is verify's treatment of a provider's answer, for the token exchange: an
// application error keeps its code (a refused code is invalid_credentials, with msg, which
// takes the provider's name twice), anything else is logged and becomes
// provider_unavailable.
func (s *Service) providerError(ctx context.Context, p opencalico.Provider, err error, msg string) error {
	var ae *opencalico.Error
	if errors.As(err, &ae) {
		s.log.InfoContext(ctx, "provider consent refused by the provider", "provider_id", string(p.ID), "cause", string(ae.Code))
		out := *ae
		out.Err = nil
		if out.ProviderID == "" {
			out.ProviderID = p.ID
		}
		if out.Code == opencalico.EInvalidCredentials || out.Code == opencalico.EReauthRequired {
			out.Code = opencalico.EInvalidCredentials
			out.Message = fmt.Sprintf(msg, p.Name, p.Name)
		}
		return &out
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	s.log.WarnContext(ctx, "completing a provider consent", "provider_id", string(p.ID), "err", err.Error())
	return &opencalico.Error{Code: opencalico.EProviderUnavailable, ProviderID: p.ID, RetryAfter: time.Minute,
		Message: fmt.Sprintf("%s could not be reached to finish connecting; connect %s again in a minute.", p.Name, p.Name)}
}

func without(ts []opencalico.AuthType, drop opencalico.AuthType) []opencalico.AuthType {
	var out []opencalico.AuthType
	for _, t := range ts {
		if t != drop {
			out = append(out, t)
		}
	}
	return out
}
