// Package solana reads Solana wallets through the JSON-RPC API of a Solana node (the public
// api.mainnet-beta.solana.com, or any RPC provider's URL): SOL and SPL token balances, and the
// wallet's transaction history as the net effect of each transaction on the wallet.
//
// A wallet is a public key (base58, 32 bytes); no credentials. History reads the signatures
// of the wallet and of each token account it owns (getSignaturesForAddress) newest first,
// down to the newest one already handed over, then fetches each transaction (getTransaction,
// jsonParsed) and hands them over oldest first, so that each page's cursor — its newest
// signature — resumes exactly. See History for why the token accounts are read too.
package solana

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
	"github.com/shopspring/decimal"
)

// ProviderID is Solana's provider id.
const ProviderID opencalico.ProviderID = "solana"

// DefaultBaseURL is the public mainnet RPC endpoint of the Solana Foundation.
const DefaultBaseURL = "https://api.mainnet-beta.solana.com"

// The token programs whose accounts a wallet owns: SPL Token, and Token-2022 (token
// extensions), whose accounts parse alike.
const (
	TokenProgramID     = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
	Token2022ProgramID = "TokenzQdBNbLqP5VEhdkAS6EjFbhs3K8ZaJk8SKvJ3Ln4WLp6Eb"
)

// TokenPrograms are the programs whose token accounts are read, in this order.
var TokenPrograms = []string{TokenProgramID, Token2022ProgramID}

// MaxSignaturesLimit is the largest limit getSignaturesForAddress accepts.
const MaxSignaturesLimit = 1000

// TxsPerPage is how many signatures a history page covers by default: a crash loses at most
// that many getTransaction calls.
const TxsPerPage = 100

// Options configure the adapter. Zero values take the defaults.
type Options struct {
	BaseURL string // default provider.BaseURL("solana", DefaultBaseURL)
	HTTP    *http.Client
	Clock   provider.Clock
	// RequestsPerSecond and Burst are the per-host token bucket (defaults 4 and 1): the public
	// endpoint allows about 100 requests per 10 s per IP, 40 for one method, and answers 429
	// beyond.
	RequestsPerSecond float64
	Burst             int
	// Limiter replaces the limiter built from the two knobs above (to share one).
	Limiter provider.Limiter
	// SignaturesLimit is the limit of each getSignaturesForAddress call (default and at most
	// 1000).
	SignaturesLimit int
	// PageSize is how many signatures a history page covers (default TxsPerPage).
	PageSize int
	// Client retry knobs (defaults of provider.Client when zero).
	MaxAttempts    int
	BaseDelay      time.Duration
	MaxDelay       time.Duration
	AttemptTimeout time.Duration
}

// Adapter reads Solana wallets. It is safe for concurrent use by many accounts.
type Adapter struct {
	baseURL  string
	limitKey string
	clock    provider.Clock
	client   *provider.Client
	sigLimit int
	pageSize int
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
	if opts.RequestsPerSecond <= 0 {
		opts.RequestsPerSecond = 4
	}
	if opts.Limiter == nil {
		opts.Limiter = NewLimiter(opts.Clock, opts.RequestsPerSecond, opts.Burst)
	}
	if opts.SignaturesLimit <= 0 || opts.SignaturesLimit > MaxSignaturesLimit {
		opts.SignaturesLimit = MaxSignaturesLimit
	}
	if opts.PageSize <= 0 {
		opts.PageSize = TxsPerPage
	}
	key := opts.BaseURL
	if u, err := url.Parse(opts.BaseURL); err == nil && u.Host != "" {
		key = u.Host
	}
	return &Adapter{
		baseURL:  opts.BaseURL,
		limitKey: key,
		clock:    opts.Clock,
		sigLimit: opts.SignaturesLimit,
		pageSize: opts.PageSize,
		client: &provider.Client{
			HTTP: opts.HTTP, Limiter: opts.Limiter, Classify: classify, Clock: opts.Clock,
			MaxAttempts: opts.MaxAttempts, BaseDelay: opts.BaseDelay, MaxDelay: opts.MaxDelay,
			AttemptTimeout: opts.AttemptTimeout, ProviderID: ProviderID,
		},
	}
}

// Provider is Solana's catalog entry: a wallet connection by address.
func (ad *Adapter) Provider() opencalico.Provider {
	return opencalico.Provider{
		ID:        ProviderID,
		Name:      "Solana",
		Kind:      opencalico.KindBlockchain,
		LogoURL:   "https://solana.com/favicon.png",
		AuthTypes: []opencalico.AuthType{opencalico.AuthWallet},
		Chains:    []string{Chain},
		AuthMetaData: []opencalico.AuthMetaData{{
			AuthType: opencalico.AuthWallet,
			Fields: []opencalico.AuthField{
				{Name: "address", Label: "Solana wallet address (base58 public key)", Secret: false},
			},
			// Where wallets show the account's address.
			HelpURL: "https://solana.com/docs/intro/wallets",
		}},
	}
}

func resolveAccount(a provider.Account) (string, error) {
	if a.Chain != "" && a.Chain != Chain {
		return "", opencalico.Errorf(opencalico.EBadRequest, "The solana provider reads the chain %q only, not %q.", Chain, a.Chain)
	}
	return ValidateAddress(a.Address)
}

// call sends one JSON-RPC request and decodes its result into out. JSON-RPC errors were
// classified by the client already.
func (ad *Adapter) call(ctx context.Context, method string, params []any, out any) error {
	body, err := json.Marshal(rpcRequest{JSONRPC: "2.0", ID: 1, Method: method, Params: params})
	if err != nil {
		return err
	}
	res, err := ad.client.Do(ctx, provider.Request{
		Method: http.MethodPost, URL: ad.baseURL, Body: body,
		Header:   http.Header{"Content-Type": {"application/json"}},
		LimitKey: ad.limitKey, Cost: 1,
	})
	if err != nil {
		return err
	}
	var env rpcResponse
	if err := json.Unmarshal(res.Body, &env); err == nil {
		err = json.Unmarshal(env.Result, out)
		if err == nil {
			return nil
		}
	}
	return &opencalico.Error{Code: opencalico.EProviderError, ProviderID: ProviderID,
		Message: "The Solana RPC endpoint answered " + method + " with an unexpected shape."}
}

var finalized = map[string]any{"commitment": "finalized"}

// Verify checks the address and that the RPC endpoint answers for it, with one call.
func (ad *Adapter) Verify(ctx context.Context, a provider.Account) error {
	addr, err := resolveAccount(a)
	if err != nil {
		return err
	}
	var bal balanceResult
	return ad.call(ctx, "getBalance", []any{addr, finalized}, &bal)
}

// tokenAccounts lists the token accounts the wallet owns, of every token program. On an
// error it returns those listed before it too, which History still reads.
func (ad *Adapter) tokenAccounts(ctx context.Context, owner string) ([]tokenAccount, error) {
	var all []tokenAccount
	for _, program := range TokenPrograms {
		var accs tokenAccountsResult
		if err := ad.call(ctx, "getTokenAccountsByOwner", []any{owner,
			map[string]any{"programId": program},
			map[string]any{"encoding": "jsonParsed", "commitment": "finalized"}}, &accs); err != nil {
			return all, err // those of the programs listed so far, with the error
		}
		all = append(all, accs.Value...)
	}
	return all, nil
}

// Balances is the wallet's SOL (its own account's lamports) and its SPL tokens (the token
// accounts it owns, of SPL Token and Token-2022, summed per mint), at finalized commitment
// like the history.
func (ad *Adapter) Balances(ctx context.Context, a provider.Account) ([]opencalico.Position, error) {
	addr, err := resolveAccount(a)
	if err != nil {
		return nil, err
	}
	var bal balanceResult
	if err := ad.call(ctx, "getBalance", []any{addr, finalized}, &bal); err != nil {
		return nil, err
	}
	accs, err := ad.tokenAccounts(ctx, addr)
	if err != nil {
		return nil, err
	}
	now := ad.clock.Now().UTC()
	position := func(symbol, name, assetID string, qty decimal.Decimal) opencalico.Position {
		return opencalico.Position{ConnectionID: a.ConnectionID, ProviderID: ProviderID, AssetSymbol: symbol,
			AssetName: name, AssetID: assetID, Chain: Chain, Quantity: qty, Available: qty,
			Locked: decimal.Zero, Staked: decimal.Zero, UpdatedAt: now}
	}
	out := []opencalico.Position{position(SOLSymbol, "Solana", SOLAssetID, Lamports(int64(bal.Value)))}
	perMint := map[string]decimal.Decimal{}
	for _, acc := range accs {
		info := acc.Account.Data.Parsed.Info
		amt, err := baseUnits(info.TokenAmount.Amount, info.TokenAmount.Decimals)
		if err != nil {
			return nil, &opencalico.Error{Code: opencalico.EProviderError, ProviderID: ProviderID,
				Message: "The Solana RPC endpoint answered a token amount that is not a number.", Err: err}
		}
		perMint[info.Mint] = perMint[info.Mint].Add(amt)
	}
	mints := make([]string, 0, len(perMint))
	for m, q := range perMint {
		if !q.IsZero() {
			mints = append(mints, m)
		}
	}
	sort.Strings(mints)
	for _, m := range mints {
		out = append(out, position(TokenSymbol(m), TokenSymbol(m), TokenAssetID(m), perMint[m]))
	}
	return out, nil
}

// ValidateAddress implements provider.AddressValidator: a public key of 32 bytes in base58.
func (ad *Adapter) ValidateAddress(chain, address string) (string, error) {
	if chain != "" && chain != Chain {
		return "", opencalico.Errorf(opencalico.EBadRequest, "The solana provider reads the chain %q only, not %q.", Chain, chain)
	}
	return ValidateAddress(address)
}

var _ provider.AddressValidator = (*Adapter)(nil)
