// Package kraken reads Kraken accounts through the private REST API with a read-only API
// key: Balance for positions, Ledgers for the complete history.
//
// Every private call carries a nonce that Kraken requires to be strictly greater than the
// key's previous one, so the calls of one key are serialized (a mutex per key) and the
// nonce never repeats or goes back, even when the clock does. The key's rate-limit counter
// is modelled by Limiter, shared by all accounts of the adapter.
package kraken

import (
	"context"
	"net/http"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
	"github.com/shopspring/decimal"
)

// ProviderID is Kraken's provider id.
const ProviderID opencalico.ProviderID = "kraken"

// DefaultBaseURL is Kraken's REST API.
const DefaultBaseURL = "https://api.kraken.com"

// LedgerStream is the name of the only history stream: the ledger holds every movement.
const LedgerStream = "ledgers"

// Options configure the adapter. Zero values take Kraken's real settings.
type Options struct {
	BaseURL string // default provider.BaseURL("kraken", DefaultBaseURL)
	HTTP    *http.Client
	Clock   provider.Clock
	// MaxCounter and DecayPerSecond are the rate-limit policy: the key's counter maximum
	// (15–20 by verification tier; default 20) and its decay (0.33–1 per second; default
	// 0.33, the starter tier, the safe choice when the tier is unknown).
	MaxCounter     float64
	DecayPerSecond float64
	// Limiter replaces the limiter built from the two knobs above (to share one).
	Limiter provider.Limiter
	// Overlap is how far before its cursor an incremental read starts again, to catch rows
	// booked late with an earlier time (default 15 minutes). GroupSpan is the longest time
	// between the first and last rows of one refid that the reader expects (default 15
	// minutes): a group is handed over only when rows that much newer have been read.
	Overlap   time.Duration
	GroupSpan time.Duration
	// Client retry knobs (defaults of provider.Client when zero).
	MaxAttempts    int
	BaseDelay      time.Duration
	MaxDelay       time.Duration
	AttemptTimeout time.Duration
}

// Adapter reads Kraken. It is safe for concurrent use by many accounts.
type Adapter struct {
	baseURL   string
	clock     provider.Clock
	client    *provider.Client
	keys      keys
	overlap   decimal.Decimal // seconds
	groupSpan decimal.Decimal // seconds
}

var _ provider.Adapter = (*Adapter)(nil)

// New returns an adapter.
func New(opts Options) *Adapter {
	if opts.BaseURL == "" {
		opts.BaseURL = provider.BaseURL(ProviderID, DefaultBaseURL)
	}
	if opts.Clock == nil {
		opts.Clock = provider.RealClock{}
	}
	if opts.MaxCounter <= 0 {
		opts.MaxCounter = 20
	}
	if opts.DecayPerSecond <= 0 {
		opts.DecayPerSecond = 0.33
	}
	if opts.Limiter == nil {
		opts.Limiter = NewLimiter(opts.Clock, opts.MaxCounter, opts.DecayPerSecond)
	}
	if opts.Overlap <= 0 {
		opts.Overlap = 15 * time.Minute
	}
	if opts.GroupSpan <= 0 {
		opts.GroupSpan = 15 * time.Minute
	}
	return &Adapter{
		baseURL: opts.BaseURL,
		clock:   opts.Clock,
		client: &provider.Client{
			HTTP: opts.HTTP, Limiter: opts.Limiter, Classify: classify, Clock: opts.Clock,
			MaxAttempts: opts.MaxAttempts, BaseDelay: opts.BaseDelay, MaxDelay: opts.MaxDelay,
			AttemptTimeout: opts.AttemptTimeout, ProviderID: ProviderID,
		},
		overlap:   decimal.NewFromFloat(opts.Overlap.Seconds()),
		groupSpan: decimal.NewFromFloat(opts.GroupSpan.Seconds()),
	}
}

// Provider is Kraken's catalog entry.
func (ad *Adapter) Provider() opencalico.Provider {
	return opencalico.Provider{
		ID:        ProviderID,
		Name:      "Kraken",
		Kind:      opencalico.KindExchange,
		LogoURL:   "https://www.kraken.com/favicon.ico",
		AuthTypes: []opencalico.AuthType{opencalico.AuthAPIKey},
		AuthMetaData: []opencalico.AuthMetaData{{
			AuthType: opencalico.AuthAPIKey,
			Fields: []opencalico.AuthField{
				{Name: "api_key", Label: "API key", Secret: false},
				{Name: "secret_key", Label: "Private key", Secret: true},
			},
			// Make a key with only "Query Funds" and "Query Ledger Entries".
			HelpURL: "https://support.kraken.com/hc/en-us/articles/360000919966-How-to-create-an-API-key",
		}},
	}
}

// Verify checks the credentials with one Balance call (cost 1).
func (ad *Adapter) Verify(ctx context.Context, a provider.Account) error {
	_, err := ad.balance(ctx, a)
	return err
}

// Balances reads Balance and maps Kraken's codes to positions.
func (ad *Adapter) Balances(ctx context.Context, a provider.Account) ([]opencalico.Position, error) {
	raw, err := ad.balance(ctx, a)
	if err != nil {
		return nil, err
	}
	return NormalizeBalances(a.ConnectionID, raw, ad.clock.Now()), nil
}

func (ad *Adapter) balance(ctx context.Context, a provider.Account) (map[string]decimal.Decimal, error) {
	c, err := credentialsOf(a)
	if err != nil {
		return nil, err
	}
	var raw map[string]decimal.Decimal
	if err := ad.call(ctx, c, "Balance", nil, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}
