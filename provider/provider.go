// Package provider defines what a provider adapter is, and what adapters share: the catalog
// registry, the HTTP client with deadlines and retries, rate-limit policies and the clock.
//
// Each provider lives in a package of its own (provider/binance, provider/kraken, …) that
// speaks the provider's wire format and normalizes it into the domain. Simulators for tests
// and sandbox mode live under provider/sim.
package provider

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/opencalico/opencalico"
)

// Credentials are a connection's opened secrets, by field name as the provider's
// AuthMetaData names them: "api_key", "secret_key", "passphrase", "access_token", …
//
// They exist in clear only in memory, for the duration of a call.
type Credentials map[string]string

// String hides the values, so that a Credentials printed by mistake leaks nothing.
func (c Credentials) String() string {
	names := make([]string, 0, len(c))
	for k := range c {
		names = append(names, k)
	}
	sort.Strings(names)
	return "Credentials{" + strings.Join(names, ",") + "}"
}

// GoString hides the values from %#v too.
func (c Credentials) GoString() string { return c.String() }

// Account is what an adapter reads: one connection, with its credentials or address.
type Account struct {
	ConnectionID string
	UserID       string
	Credentials  Credentials
	Address      string
	Chain        string
}

// Cursors hold, per sub-resource ("stream") of an account, where the history was read up
// to: per Binance symbol and endpoint window, per Coinbase wallet, the Kraken ledger offset.
// A cursor is opaque to everyone but its adapter (JSON is fine).
type Cursors map[string]string

// Page is a step of a history read: transactions of one stream and the cursor of that stream
// after them. The sync engine stores the transactions and the cursor in one database
// transaction, so a crash between pages neither loses nor doubles a row.
type Page struct {
	Stream       string
	Cursor       string
	Transactions []*opencalico.Transaction
}

// Sink receives the pages of a history read, in order. An error from the sink stops the read.
type Sink func(ctx context.Context, p Page) error

// Adapter reads one provider. Implementations are safe for concurrent use by many accounts;
// they share the provider's rate-limit policy.
type Adapter interface {
	// Provider is the catalog entry, with its AuthMetaData.
	Provider() opencalico.Provider
	// Verify checks the account's credentials with one cheap authenticated call. Bad
	// credentials are an *opencalico.Error with code EInvalidCredentials.
	Verify(ctx context.Context, a Account) error
	// Balances reads the account's current positions.
	Balances(ctx context.Context, a Account) ([]opencalico.Position, error)
	// History reads every event not yet read, resuming each stream from its cursor, and
	// hands them to sink page by page. Events the provider may still change (pending ones)
	// are read again until they settle; the store's idempotent upsert makes that harmless.
	History(ctx context.Context, a Account, from Cursors, sink Sink) error
}

// AddressValidator is implemented by the adapters of wallet connections. ValidateAddress
// checks what a user gives on one of the provider's chains — format, checksum and network —
// before anything is stored or called, and returns its canonical spelling (so that one
// address typed two ways is one connection), or an error with code EInvalidAddress.
type AddressValidator interface {
	ValidateAddress(chain, address string) (string, error)
}

// PendingCreditor is implemented by adapters whose provider books a pending credit in the
// reported balance at once (Coinbase does). Reconciliation then counts pending outputs; by
// default it counts a pending transaction's inputs and fees only, as most exchanges debit a
// withdrawal when it is requested and credit a deposit when it settles.
type PendingCreditor interface {
	PendingCredited() bool
}

// IncompleteError says that a history read finished except for some streams, which are
// named so that the connection's status can say what is missing.
type IncompleteError struct {
	Streams []string
	Err     error
}

func (e *IncompleteError) Error() string {
	return fmt.Sprintf("history incomplete for %s: %v", strings.Join(e.Streams, ", "), e.Err)
}

func (e *IncompleteError) Unwrap() error { return e.Err }

// IsAuthError reports whether err says the credentials are bad or revoked: such errors are
// never retried and put the connection in reauth_required.
func IsAuthError(err error) bool {
	switch opencalico.ErrorCodeOf(err) {
	case opencalico.EInvalidCredentials, opencalico.EReauthRequired:
		return true
	}
	return false
}

// Registry holds the adapters a server offers, by provider id.
type Registry struct {
	adapters map[opencalico.ProviderID]Adapter
}

// NewRegistry returns a registry of the given adapters.
func NewRegistry(adapters ...Adapter) *Registry {
	r := &Registry{adapters: map[opencalico.ProviderID]Adapter{}}
	for _, a := range adapters {
		r.adapters[a.Provider().ID] = a
	}
	return r
}

// Adapter returns the adapter of a provider, or EUnsupportedProvider.
func (r *Registry) Adapter(id opencalico.ProviderID) (Adapter, error) {
	if a, ok := r.adapters[id]; ok {
		return a, nil
	}
	return nil, opencalico.Errorf(opencalico.EUnsupportedProvider, "Provider %q is not supported; see GET /accounts/v2/providers/supported.", id)
}

// Catalog returns every provider's catalog entry, sorted by id.
func (r *Registry) Catalog() []opencalico.Provider {
	out := make([]opencalico.Provider, 0, len(r.adapters))
	for _, a := range r.adapters {
		out = append(out, a.Provider())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// BaseURL returns the base URL for a provider: OPENCALICO_PROVIDER_<ID>_BASE_URL when set,
// otherwise def. An explicit variable always wins, also over sandbox simulators, so that any
// adapter can be pointed at another endpoint.
func BaseURL(id opencalico.ProviderID, def string) string {
	if v := os.Getenv(BaseURLEnv(id)); v != "" {
		return strings.TrimRight(v, "/")
	}
	return strings.TrimRight(def, "/")
}

// BaseURLEnv is the name of the variable that overrides a provider's base URL.
func BaseURLEnv(id opencalico.ProviderID) string {
	return "OPENCALICO_PROVIDER_" + strings.ToUpper(strings.ReplaceAll(string(id), "-", "_")) + "_BASE_URL"
}

// ErrNoCredentials is returned when an account lacks a field its auth type needs.
var ErrNoCredentials = errors.New("provider: missing credential field")
