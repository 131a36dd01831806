// Package connections adds, lists and removes a user's connections: the service behind the
// Connect widget and, later, POST/GET/DELETE /accounts/v2/providers. It knows nothing of HTML
// or HTTP: callers hand it a request and get a connection or an *opencalico.Error whose
// message is safe to show (it never repeats a submitted value).
//
// Adding a connection checks the provider and the auth type, requires the fields the
// provider's AuthMetaData names, verifies the credentials live through the adapter (nothing is
// stored when they are refused), computes a keyed fingerprint so that the same key linked
// twice is already_connected, seals the credentials bound to the new connection's id, and
// stores the connection with its first sync queued in one database transaction.
package connections

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
	"github.com/opencalico/opencalico/store"
)

// Store is what the service asks of the database (*store.Store).
type Store interface {
	InTx(ctx context.Context, fn func(*sql.Tx) error) error
	CreateConnectionTx(ctx context.Context, tx *sql.Tx, c *opencalico.Connection, secret *opencalico.SealedSecret) error
	ListConnections(ctx context.Context, userID string) ([]*opencalico.Connection, error)
	DeleteConnection(ctx context.Context, userID, id string) error
}

// Sealer seals credentials bound to a connection id, and opens them (*secrets.Sealer). The
// PKCE verifier of a provider consent is sealed too, under "oauth-state:<state hash>".
type Sealer interface {
	SealCredentials(connectionID string, creds map[string]string) (opencalico.SealedSecret, error)
	OpenCredentials(sealed opencalico.SealedSecret) (map[string]string, error)
}

// Enqueuer queues a connection's first sync inside the caller's transaction (*syncer.Engine).
type Enqueuer interface {
	EnqueueTx(ctx context.Context, tx *sql.Tx, connectionID string) error
}

// Config is what the service is built from. Every field but Log and VerifyTimeout is required.
type Config struct {
	Store     Store
	Sealer    Sealer
	Providers *provider.Registry
	Sync      Enqueuer
	// FingerprintKey keys the fingerprints (at least 32 bytes; see LoadKey). It must be the
	// same for every process of a deployment and never change, or the same key could be
	// linked twice.
	FingerprintKey []byte
	// VerifyTimeout bounds the live check of credentials (default 20 s), and the token
	// exchange of a provider consent.
	VerifyTimeout time.Duration
	Log           *slog.Logger
	// OAuth are the OAuth2 clients this server has registered with providers, by provider
	// id: the providers that can be connected through their own consent (see oauth.go).
	OAuth map[opencalico.ProviderID]OAuthClient
	// OAuthStore keeps the states of provider consents; default Store when it has them
	// (*store.Store does). Required with OAuth.
	OAuthStore OAuthStore
	// Now is the clock of consent states; nil is time.Now.
	Now func() time.Time
}

// Service adds, lists and removes connections. It is safe for concurrent use.
type Service struct {
	cfg Config
	log *slog.Logger
}

// New returns the service.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Store == nil || cfg.Sealer == nil || cfg.Providers == nil || cfg.Sync == nil:
		return nil, errors.New("connections: a store, a sealer, a provider registry and a sync queue are required")
	case len(cfg.FingerprintKey) < KeySize:
		return nil, fmt.Errorf("connections: the fingerprint key must have at least %d bytes", KeySize)
	}
	if cfg.OAuthStore == nil {
		cfg.OAuthStore, _ = cfg.Store.(OAuthStore)
	}
	if len(cfg.OAuth) > 0 && cfg.OAuthStore == nil {
		return nil, errors.New("connections: OAuth clients need a store for consent states")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.VerifyTimeout <= 0 {
		cfg.VerifyTimeout = 20 * time.Second
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg.FingerprintKey = append([]byte(nil), cfg.FingerprintKey...)
	return &Service{cfg: cfg, log: log}, nil
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// The field names of AuthMetaData that the service knows how to use.
const (
	FieldAPIKey     = "api_key"
	FieldSecretKey  = "secret_key"
	FieldPassphrase = "passphrase"
	FieldAddress    = "address"
)

// maxFieldLen bounds a submitted field (a PEM private key is the longest credential we take).
const maxFieldLen = 8 << 10

// maxLabelLen bounds a display label, in characters.
const maxLabelLen = 100

// AddRequest asks to connect an account.
type AddRequest struct {
	UserID     string
	ProviderID opencalico.ProviderID
	// Type is the auth type; empty means the provider's only one (an error if it has several).
	Type opencalico.AuthType
	// DisplayLabel tells this connection from the user's others; empty means the provider's
	// name.
	DisplayLabel string
	// Fields are the values the provider's AuthMetaData names ("api_key", "secret_key",
	// "passphrase", "address"). Values are trimmed of surrounding space.
	Fields map[string]string
	// Chain is the chain of a wallet address, when the provider reads several.
	Chain string
}

// Catalog returns the providers offered, sorted by id.
func (s *Service) Catalog() []opencalico.Provider { return s.cfg.Providers.Catalog() }

// Provider returns a provider's catalog entry, or unsupported_provider.
func (s *Service) Provider(id opencalico.ProviderID) (opencalico.Provider, error) {
	a, err := s.cfg.Providers.Adapter(id)
	if err != nil {
		return opencalico.Provider{}, err
	}
	return a.Provider(), nil
}

// Fields returns the fields a user fills to connect to p with auth type t, and the help link.
func Fields(p opencalico.Provider, t opencalico.AuthType) (opencalico.AuthMetaData, bool) {
	for _, m := range p.AuthMetaData {
		if m.AuthType == t {
			return m, true
		}
	}
	return opencalico.AuthMetaData{}, false
}

// Add verifies and stores a new connection, with its first sync queued, and returns it.
func (s *Service) Add(ctx context.Context, req AddRequest) (*opencalico.Connection, error) {
	if req.UserID == "" {
		return nil, errors.New("connections: add: no user")
	}
	adapter, err := s.cfg.Providers.Adapter(req.ProviderID)
	if err != nil {
		return nil, err
	}
	p := adapter.Provider()
	fail := func(code opencalico.ErrorCode, format string, args ...any) error {
		e := opencalico.Errorf(code, format, args...)
		e.ProviderID = p.ID
		return e
	}
	t := req.Type
	if t == "" {
		if len(p.AuthTypes) != 1 {
			return nil, fail(opencalico.EBadRequest, "Say how to connect to %s: the connection type is one of %s.", p.Name, authTypeList(p.AuthTypes))
		}
		t = p.AuthTypes[0]
	}
	if !t.Valid() || !p.Supports(t) {
		return nil, fail(opencalico.EUnsupportedConnectionType, "%s does not accept connections of this type; use one of %s.", p.Name, authTypeList(p.AuthTypes))
	}
	if t == opencalico.AuthOAuth2 {
		return nil, fail(opencalico.EUnsupportedConnectionType, "A connection to %s through its own sign-in page is made with StartOAuth, not Add.", p.Name)
	}
	meta, ok := Fields(p, t)
	if !ok {
		return nil, fail(opencalico.EUnsupportedConnectionType, "%s does not say which fields a connection of this type needs.", p.Name)
	}

	label := strings.TrimSpace(req.DisplayLabel)
	if label == "" {
		label = p.Name
	}
	if utf8.RuneCountInString(label) > maxLabelLen {
		return nil, fail(opencalico.EBadRequest, "The display label is longer than %d characters.", maxLabelLen)
	}
	// Only the fields the provider names are kept: anything else submitted is dropped, so
	// that nothing unexpected is sealed or sent.
	creds := provider.Credentials{}
	for _, f := range meta.Fields {
		v := strings.TrimSpace(req.Fields[f.Name])
		if v == "" {
			if f.Optional {
				continue
			}
			return nil, fail(opencalico.EBadRequest, "The field %s (%s) is required to connect %s.", f.Name, f.Label, p.Name)
		}
		if len(v) > maxFieldLen {
			return nil, fail(opencalico.EBadRequest, "The field %s (%s) is too long.", f.Name, f.Label)
		}
		creds[f.Name] = v
	}
	acct := provider.Account{UserID: req.UserID, Chain: strings.ToLower(strings.TrimSpace(req.Chain))}
	var identity string
	switch t {
	case opencalico.AuthWallet:
		if acct.Chain, err = walletChain(p, acct.Chain); err != nil {
			return nil, err
		}
		acct.Address = creds[FieldAddress]
		// The address is checked here, before the provider is called or anything stored,
		// and kept in its canonical spelling.
		if v, ok := adapter.(provider.AddressValidator); ok {
			canonical, err := v.ValidateAddress(acct.Chain, acct.Address)
			if err != nil {
				return nil, withProvider(err, p.ID)
			}
			acct.Address = canonical
		}
		identity = acct.Address
		delete(creds, FieldAddress)
	default:
		acct.Credentials = creds
		identity = creds[FieldAPIKey]
		if identity == "" {
			// A provider whose key has no public half: the first field names the credential.
			identity = creds[meta.Fields[0].Name]
		}
	}
	fp := s.fingerprint(p.ID, t, acct.Chain, identity)

	// Refuse a known key before calling the provider; the store's unique index still decides
	// a race between two requests.
	existing, err := s.cfg.Store.ListConnections(ctx, req.UserID)
	if err != nil {
		return nil, err
	}
	for _, c := range existing {
		if c.ProviderID == p.ID && c.Fingerprint == fp {
			return nil, fail(opencalico.EAlreadyConnected, "This %s account is already connected (as %q).", p.Name, c.DisplayLabel)
		}
	}

	if err := s.verify(ctx, adapter, acct); err != nil {
		return nil, err
	}

	c := &opencalico.Connection{
		ID: opencalico.NewID("conn"), UserID: req.UserID, ProviderID: p.ID, DisplayLabel: label,
		Type: t, Status: opencalico.StatusPending, Fingerprint: fp, Address: acct.Address, Chain: acct.Chain,
	}
	var sealed *opencalico.SealedSecret
	if len(creds) > 0 {
		sec, err := s.cfg.Sealer.SealCredentials(c.ID, creds)
		if err != nil {
			return nil, err
		}
		sealed = &sec
	}
	err = s.cfg.Store.InTx(ctx, func(tx *sql.Tx) error {
		if err := s.cfg.Store.CreateConnectionTx(ctx, tx, c, sealed); err != nil {
			return err
		}
		return s.cfg.Sync.EnqueueTx(ctx, tx, c.ID)
	})
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "connection added", "connection_id", c.ID, "user_id", c.UserID, "provider_id", string(p.ID), "type", string(t))
	return c, nil
}

// walletChain resolves the chain of a wallet connection: the one asked for, which the provider
// must read, or the provider's first (its main chain) when none is named.
func walletChain(p opencalico.Provider, chain string) (string, error) {
	if chain == "" {
		if len(p.Chains) > 0 {
			return p.Chains[0], nil
		}
		return "", nil
	}
	if len(p.Chains) > 0 && !slices.Contains(p.Chains, chain) {
		e := opencalico.Errorf(opencalico.EBadRequest, "%s reads the chains %s, not %q.", p.Name, strings.Join(p.Chains, ", "), opencalico.Excerpt(chain, 40))
		e.ProviderID = p.ID
		return "", e
	}
	return chain, nil
}

// withProvider names the provider on an application error that does not name one yet.
func withProvider(err error, id opencalico.ProviderID) error {
	var ae *opencalico.Error
	if errors.As(err, &ae) && ae.ProviderID == "" {
		out := *ae
		out.ProviderID = id
		return &out
	}
	return err
}

// verify checks the credentials with the provider. Its errors are the adapter's when they
// are application errors (invalid_credentials, rate_limited, …); anything else is logged
// without its text reaching the user and becomes provider_unavailable.
func (s *Service) verify(ctx context.Context, adapter provider.Adapter, acct provider.Account) error {
	p := adapter.Provider()
	vctx, cancel := context.WithTimeout(ctx, s.cfg.VerifyTimeout)
	defer cancel()
	err := adapter.Verify(vctx, acct)
	if err == nil {
		return nil
	}
	var ae *opencalico.Error
	if errors.As(err, &ae) {
		s.log.InfoContext(ctx, "connection refused by the provider", "provider_id", string(p.ID), "cause", string(ae.Code))
		out := *ae
		out.Err = nil // the cause may quote a provider's answer; keep it out of callers' logs
		if out.ProviderID == "" {
			out.ProviderID = p.ID
		}
		if out.Code == opencalico.EInvalidCredentials {
			out.Message = fmt.Sprintf("%s refused these credentials. Check that you copied the whole key and secret, and that the key allows reading.", p.Name)
		}
		return &out
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// The error of a transport may name the provider's host but never a credential; it is
	// still kept to the log.
	s.log.WarnContext(ctx, "verifying credentials", "provider_id", string(p.ID), "err", err.Error())
	return &opencalico.Error{Code: opencalico.EProviderUnavailable, ProviderID: p.ID, RetryAfter: time.Minute,
		Message: fmt.Sprintf("%s could not be reached to check the credentials; try again in a minute.", p.Name)}
}

// List returns the user's connections, oldest first.
func (s *Service) List(ctx context.Context, userID string) ([]*opencalico.Connection, error) {
	return s.cfg.Store.ListConnections(ctx, userID)
}

// Remove deletes the user's connection, its sealed credentials and everything read through
// it. Another user's connection is not_found.
func (s *Service) Remove(ctx context.Context, userID, connectionID string) error {
	if err := s.cfg.Store.DeleteConnection(ctx, userID, connectionID); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "connection removed", "connection_id", connectionID, "user_id", userID)
	return nil
}

// fingerprint is HMAC-SHA256 under the install's fingerprint key of what identifies the
// credential: the API key (its public half), or the normalized wallet address. The secret
// half of a key is never part of it, so a key whose secret was re-issued is the same key.
func (s *Service) fingerprint(id opencalico.ProviderID, t opencalico.AuthType, chain, identity string) string {
	if t == opencalico.AuthWallet {
		identity = normalizeAddress(identity)
		chain = strings.ToLower(chain)
	} else {
		chain = ""
	}
	m := hmac.New(sha256.New, s.cfg.FingerprintKey)
	for _, part := range []string{"opencalico/fingerprint/v1", string(id), string(t), chain, identity} {
		m.Write([]byte(part))
		m.Write([]byte{0})
	}
	return "fp1_" + hex.EncodeToString(m.Sum(nil))
}

// normalizeAddress folds the case of addresses whose case carries no meaning (0x-hex EVM
// addresses, bech32 segwit addresses), so that one address typed two ways is one account.
// Base58 addresses are case-sensitive and are kept as they are.
func normalizeAddress(a string) string {
	l := strings.ToLower(a)
	for _, prefix := range []string{"0x", "bc1", "tb1", "bcrt1", "ltc1"} {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return a
}

func authTypeList(ts []opencalico.AuthType) string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}

var _ Store = (*store.Store)(nil)
