// Package coinbase reads Coinbase accounts through the v2 API (wallets and their
// transactions), authenticated by a CDP API key (a fresh ES256 or EdDSA JWT per request) or,
// later, by an OAuth2 access token.
package coinbase

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
	"github.com/shopspring/decimal"
)

// ID is the provider id.
const ID opencalico.ProviderID = "coinbase"

// DefaultBaseURL is Coinbase's API.
const DefaultBaseURL = "https://api.coinbase.com"

// Options configure an Adapter. Zero values take Coinbase's real figures.
type Options struct {
	BaseURL string // default provider.BaseURL("coinbase", DefaultBaseURL)
	HTTP    *http.Client
	Clock   provider.Clock
	// The rate-limit policy: RequestsPerWindow per Window per key (10,000 an hour), with
	// Burst tokens of headroom. Limiter, when set, is used instead (to share one policy
	// between adapters of the same process).
	RequestsPerWindow int
	Window            time.Duration
	Burst             int
	Limiter           *Limiter
	// PageLimit is the page size asked of Coinbase (max 100).
	PageLimit int
	// EventsPerPage bounds the transactions of one provider.Page (default 100).
	EventsPerPage int
	// PairingGrace is how long a half of a paired event (conversion, buy/sell, fill) waits for
	// its other half before it is reported alone (default 10 minutes). Coinbase books both
	// rows together, so a partner is normally read in the same sync; the grace covers a
	// listing that lags, and a card buy (which has no fiat row) is reported once it passes.
	PairingGrace time.Duration
	// Retry knobs of provider.Client.
	MaxAttempts    int
	BaseDelay      time.Duration
	MaxDelay       time.Duration
	AttemptTimeout time.Duration
	// Nonce makes JWT nonces; tests fix it. Default: 16 random bytes in hex.
	Nonce func() string
}

// Adapter reads Coinbase. It is safe for concurrent use.
type Adapter struct {
	base          string
	clock         provider.Clock
	client        *provider.Client
	pageLimit     int
	eventsPerPage int
	grace         time.Duration
	nonce         func() string
}

var _ provider.Adapter = (*Adapter)(nil)

// New returns an adapter.
func New(opts Options) *Adapter {
	if opts.BaseURL == "" {
		opts.BaseURL = provider.BaseURL(ID, DefaultBaseURL)
	}
	if opts.Clock == nil {
		opts.Clock = provider.RealClock{}
	}
	if opts.PageLimit <= 0 || opts.PageLimit > 100 {
		opts.PageLimit = 100
	}
	if opts.EventsPerPage <= 0 {
		opts.EventsPerPage = 100
	}
	if opts.PairingGrace <= 0 {
		opts.PairingGrace = 10 * time.Minute
	}
	lim := opts.Limiter
	if lim == nil {
		lim = NewLimiter(opts.RequestsPerWindow, opts.Window, opts.Burst, opts.Clock)
	}
	return &Adapter{
		base:          opts.BaseURL,
		clock:         opts.Clock,
		pageLimit:     opts.PageLimit,
		eventsPerPage: opts.EventsPerPage,
		grace:         opts.PairingGrace,
		nonce:         opts.Nonce,
		client: &provider.Client{
			HTTP: opts.HTTP, Limiter: lim, Classify: Classify, Clock: opts.Clock,
			MaxAttempts: opts.MaxAttempts, BaseDelay: opts.BaseDelay, MaxDelay: opts.MaxDelay,
			AttemptTimeout: opts.AttemptTimeout, ProviderID: ID,
		},
	}
}

// Provider is the catalog entry.
func (a *Adapter) Provider() opencalico.Provider {
	return opencalico.Provider{
		ID:        ID,
		Name:      "Coinbase",
		Kind:      opencalico.KindExchange,
		LogoURL:   "https://www.coinbase.com/favicon.ico",
		AuthTypes: []opencalico.AuthType{opencalico.AuthAPIKey},
		AuthMetaData: []opencalico.AuthMetaData{{
			AuthType: opencalico.AuthAPIKey,
			Fields: []opencalico.AuthField{
				{Name: FieldAPIKey, Label: "API key name (organizations/…/apiKeys/…)"},
				{Name: FieldSecretKey, Label: "Private key", Secret: true},
			},
			// Make a Secret API key with the "View" permission only.
			HelpURL: "https://portal.cdp.coinbase.com/projects/api-keys",
		}},
	}
}

// Classify maps Coinbase's answers: 401/403 are bad, revoked or under-privileged keys (never
// retried); 429 and 5xx are transient with Retry-After honoured; a 2xx body that is not
// whole JSON (truncated, malformed) is transient too; other 4xx are provider errors.
func Classify(r *provider.Response) error {
	switch {
	case r.Status == http.StatusUnauthorized:
		return &opencalico.Error{Code: opencalico.EInvalidCredentials, ProviderID: ID,
			Message: "Coinbase rejected the API key (" + errorID(r.Body, "authentication_error") + "): check that the key exists, is not revoked, and that the key name and private key belong together."}
	case r.Status == http.StatusForbidden:
		return &opencalico.Error{Code: opencalico.EInvalidCredentials, ProviderID: ID,
			Message: "Coinbase refused the API key (" + errorID(r.Body, "forbidden") + "): give it the View permission on the portfolio."}
	case r.Status == http.StatusTooManyRequests:
		return provider.Transient(fmt.Errorf("coinbase: HTTP 429 %s", errorID(r.Body, "rate_limit_exceeded")), provider.RetryAfter(r.Header))
	case r.Status >= 500:
		return provider.Transient(fmt.Errorf("coinbase: HTTP %d", r.Status), provider.RetryAfter(r.Header))
	case r.Status == http.StatusNotFound:
		return &opencalico.Error{Code: opencalico.ENotFound, ProviderID: ID,
			Message: "Coinbase does not know the wallet or transaction (" + errorID(r.Body, "not_found") + ")."}
	case r.Status >= 400:
		return &opencalico.Error{Code: opencalico.EProviderError, ProviderID: ID,
			Message: fmt.Sprintf("Coinbase answered HTTP %d (%s).", r.Status, errorID(r.Body, "unknown"))}
	case !json.Valid(r.Body):
		return provider.Transient(errors.New("coinbase: truncated or malformed JSON body"), 0)
	}
	return nil
}

// errorID reads the first error id of a Coinbase error body. Ids are fixed words, safe to
// show; messages are left out.
func errorID(body []byte, def string) string {
	var e errorBody
	if json.Unmarshal(body, &e) == nil && len(e.Errors) > 0 && e.Errors[0].ID != "" && len(e.Errors[0].ID) < 64 {
		return e.Errors[0].ID
	}
	return def
}

// get fetches pathAndQuery (a path under the base URL, or a next_uri) into dst.
func (a *Adapter) get(ctx context.Context, auth authorizer, pathAndQuery string, dst any) error {
	res, err := a.client.Do(ctx, provider.Request{
		Method:   http.MethodGet,
		URL:      a.base + pathAndQuery,
		LimitKey: auth.limitKey(),
		Cost:     1,
		Sign:     func(r *http.Request) error { return auth.authorize(r, a.clock.Now()) },
	})
	if err != nil {
		return err
	}
	if err := json.Unmarshal(res.Body, dst); err != nil {
		// The body was valid JSON of the wrong shape: not something a retry cures.
		return &opencalico.Error{Code: opencalico.EProviderError, ProviderID: ID,
			Message: "Coinbase answered in an unexpected format.", Err: err}
	}
	return nil
}

// Verify reads the user: the cheapest authenticated call.
func (a *Adapter) Verify(ctx context.Context, acct provider.Account) error {
	auth, err := newAuthorizer(acct.Credentials, a.nonce)
	if err != nil {
		return err
	}
	var u wireUser
	return a.get(ctx, auth, "/v2/user", &u)
}

// accounts lists every wallet, following next_uri.
func (a *Adapter) accounts(ctx context.Context, auth authorizer) ([]wireAccount, error) {
	var out []wireAccount
	next := fmt.Sprintf("/v2/accounts?limit=%d", a.pageLimit)
	for next != "" {
		var p accountsPage
		if err := a.get(ctx, auth, next, &p); err != nil {
			return nil, err
		}
		out = append(out, p.Data...)
		next = nextURI(p.Pagination)
	}
	return out, nil
}

func nextURI(p pagination) string {
	if p.NextURI == nil {
		return ""
	}
	return *p.NextURI
}

// Balances sums the wallets per asset (a user may hold several wallets of one currency, such
// as a vault). Empty wallets are left out.
func (a *Adapter) Balances(ctx context.Context, acct provider.Account) ([]opencalico.Position, error) {
	auth, err := newAuthorizer(acct.Credentials, a.nonce)
	if err != nil {
		return nil, err
	}
	wallets, err := a.accounts(ctx, auth)
	if err != nil {
		return nil, err
	}
	now := a.clock.Now().UTC()
	byAsset := map[string]*opencalico.Position{}
	for _, w := range wallets {
		q, err := decimal.NewFromString(w.Balance.Amount)
		if err != nil {
			return nil, &opencalico.Error{Code: opencalico.EProviderError, ProviderID: ID,
				Message: "Coinbase reported an unreadable balance.", Err: err}
		}
		sym := w.Balance.Currency
		if sym == "" {
			sym = w.Currency.Code
		}
		p, ok := byAsset[sym]
		if !ok {
			p = &opencalico.Position{ConnectionID: acct.ConnectionID, ProviderID: ID, AssetSymbol: sym,
				AssetName: w.Currency.Name, UpdatedAt: now}
			byAsset[sym] = p
		}
		p.Quantity = p.Quantity.Add(q)
		p.Available = p.Available.Add(q)
	}
	out := make([]opencalico.Position, 0, len(byAsset))
	for _, p := range byAsset {
		if !p.Quantity.IsZero() {
			out = append(out, *p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].AssetSymbol < out[j].AssetSymbol })
	return out, nil
}

// txPath is the list path of a wallet's transactions.
func txPath(walletID string) string {
	return "/v2/accounts/" + url.PathEscape(walletID) + "/transactions"
}

// PendingCredited says that Coinbase's wallet balance already includes pending rows, credits
// as well as debits, so reconciliation must count them (provider.PendingCreditor).
func (a *Adapter) PendingCredited() bool { return true }
