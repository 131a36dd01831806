// Package bitcoin reads Bitcoin wallets through an Esplora API (blockstream.info,
// mempool.space, or a self-hosted electrs): a single address, or an xpub/ypub/zpub whose
// receive and change addresses are derived locally (BIP32 public derivation, gap limit 20).
//
// A wallet's transactions are read per address, newest first as Esplora pages them, and
// handed over oldest first so that each page's cursor is safe; a transaction that touches
// several of the wallet's addresses becomes one transaction with the wallet's net effect.
// Addresses and extended keys are checked here (checksum and network) with code of this
// package: base58check, bech32/bech32m and secp256k1 point arithmetic are small, and owning
// them avoids btcutil's trap of accepting testnet addresses under mainnet parameters.
package bitcoin

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
)

// ProviderID is Bitcoin's provider id.
const ProviderID opencalico.ProviderID = "bitcoin"

// DefaultBaseURL is Blockstream's public Esplora instance.
const DefaultBaseURL = "https://blockstream.info/api"

// ChainPageSize is how many confirmed transactions Esplora returns per page of
// /address/{a}/txs/chain; a shorter page is the last.
const ChainPageSize = 25

// Options configure the adapter. Zero values take the defaults.
type Options struct {
	BaseURL string // default provider.BaseURL("bitcoin", DefaultBaseURL)
	HTTP    *http.Client
	Clock   provider.Clock
	// RequestsPerSecond and Burst are the per-host token bucket (defaults 10 and 1): public
	// Esplora instances limit requests per second per IP and answer 429 beyond it.
	RequestsPerSecond float64
	Burst             int
	// Limiter replaces the limiter built from the two knobs above (to share one).
	Limiter provider.Limiter
	// GapLimit is how many consecutive unused addresses end the scan of an extended key's
	// receive or change chain (default 20, as BIP44 wallets use).
	GapLimit int
	// Client retry knobs (defaults of provider.Client when zero).
	MaxAttempts    int
	BaseDelay      time.Duration
	MaxDelay       time.Duration
	AttemptTimeout time.Duration
}

// Adapter reads Bitcoin wallets. It is safe for concurrent use by many accounts.
type Adapter struct {
	baseURL  string
	limitKey string
	clock    provider.Clock
	client   *provider.Client
	gapLimit int
	derived  derivedCache
}

// derivedCache keeps the addresses derived from each extended key: a derivation costs a
// scalar multiplication, and every sync walks the same indices again.
type derivedCache struct {
	mu   sync.Mutex
	keys map[string]*[2][]string // by extended key, the addresses of each chain by index
}

// maxCachedKeys bounds the cache; past it, it starts afresh (a cache miss only costs time).
const maxCachedKeys = 10_000

func (c *derivedCache) address(k *ExtendedKey, branch *ExtendedKey, chain uint32, i int) (string, error) {
	id := k.String()
	c.mu.Lock()
	if c.keys == nil || len(c.keys) >= maxCachedKeys {
		c.keys = map[string]*[2][]string{}
	}
	chains := c.keys[id]
	if chains == nil {
		chains = &[2][]string{}
		c.keys[id] = chains
	}
	if i < len(chains[chain]) && chains[chain][i] != "" {
		a := chains[chain][i]
		c.mu.Unlock()
		return a, nil
	}
	c.mu.Unlock()
	leaf, err := branch.Child(uint32(i))
	if err != nil {
		return "", err
	}
	a := leaf.Address()
	c.mu.Lock()
	for len(chains[chain]) <= i {
		chains[chain] = append(chains[chain], "")
	}
	chains[chain][i] = a
	c.mu.Unlock()
	return a, nil
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
		opts.RequestsPerSecond = 10
	}
	if opts.Limiter == nil {
		opts.Limiter = NewLimiter(opts.Clock, opts.RequestsPerSecond, opts.Burst)
	}
	if opts.GapLimit <= 0 {
		opts.GapLimit = 20
	}
	key := opts.BaseURL
	if u, err := url.Parse(opts.BaseURL); err == nil && u.Host != "" {
		key = u.Host
	}
	return &Adapter{
		baseURL:  opts.BaseURL,
		limitKey: key,
		clock:    opts.Clock,
		gapLimit: opts.GapLimit,
		client: &provider.Client{
			HTTP: opts.HTTP, Limiter: opts.Limiter, Classify: classify, Clock: opts.Clock,
			MaxAttempts: opts.MaxAttempts, BaseDelay: opts.BaseDelay, MaxDelay: opts.MaxDelay,
			AttemptTimeout: opts.AttemptTimeout, ProviderID: ProviderID,
		},
	}
}

// Provider is Bitcoin's catalog entry: a wallet connection by address or extended public key.
func (ad *Adapter) Provider() opencalico.Provider {
	return opencalico.Provider{
		ID:        ProviderID,
		Name:      "Bitcoin",
		Kind:      opencalico.KindBlockchain,
		LogoURL:   "https://bitcoin.org/favicon.png",
		AuthTypes: []opencalico.AuthType{opencalico.AuthWallet},
		Chains:    []string{Chain},
		AuthMetaData: []opencalico.AuthMetaData{{
			AuthType: opencalico.AuthWallet,
			Fields: []opencalico.AuthField{
				{Name: "address", Label: "Bitcoin address or extended public key (xpub, ypub, zpub)", Secret: false},
			},
			// Where wallets show the account's extended public key.
			HelpURL: "https://bitcoin.design/guide/glossary/#extended-public-key",
		}},
	}
}

// ValidateWallet checks what a user gives for a wallet connection: an address (see
// ValidateAddress) or an xpub/ypub/zpub (see ParseExtendedKey). It returns the canonical
// form, or an error with code EInvalidAddress.
func ValidateWallet(s string) (string, error) {
	if IsExtendedKey(s) {
		return ValidateExtendedKey(s)
	}
	return ValidateAddress(s)
}

// ValidateAddress implements provider.AddressValidator: an address or an extended public key
// on the bitcoin chain, in canonical form.
func (ad *Adapter) ValidateAddress(chain, address string) (string, error) {
	if chain != "" && chain != Chain {
		return "", opencalico.Errorf(opencalico.EBadRequest, "The bitcoin provider reads the chain %q only, not %q.", Chain, chain)
	}
	return ValidateWallet(address)
}

var _ provider.AddressValidator = (*Adapter)(nil)

// wallet is an account resolved: one address, or an extended key and the addresses derived
// from it so far.
type wallet struct {
	key       *ExtendedKey // nil for a single address
	addresses []*walletAddress
	mine      map[string]bool
}

type walletAddress struct {
	address string
	// chain and index locate a derived address (0 receive, 1 change); a single address has
	// chain -1.
	chain, index int
	info         addressInfo
}

func (w *wallet) isMine(a string) bool { return w.mine[a] }

func (w *wallet) add(address string, chain, index int, info addressInfo) {
	w.addresses = append(w.addresses, &walletAddress{address: address, chain: chain, index: index, info: info})
	w.mine[address] = true
}

func resolveAccount(a provider.Account) (*wallet, string, error) {
	if a.Chain != "" && a.Chain != Chain {
		return nil, "", opencalico.Errorf(opencalico.EBadRequest, "The bitcoin provider reads the chain %q only, not %q.", Chain, a.Chain)
	}
	w := &wallet{mine: map[string]bool{}}
	if IsExtendedKey(a.Address) {
		k, err := ParseExtendedKey(a.Address)
		if err != nil {
			return nil, "", err
		}
		w.key = k
		return w, "", nil
	}
	addr, err := ValidateAddress(a.Address)
	if err != nil {
		return nil, "", err
	}
	return w, addr, nil
}

func (ad *Adapter) get(ctx context.Context, path string, v any) error {
	res, err := ad.client.Do(ctx, provider.Request{Method: http.MethodGet, URL: ad.baseURL + path, LimitKey: ad.limitKey, Cost: 1})
	if err != nil {
		return err
	}
	if err := json.Unmarshal(res.Body, v); err != nil {
		// Valid JSON of the wrong shape: the instance is not speaking Esplora.
		return &opencalico.Error{Code: opencalico.EProviderError, ProviderID: ProviderID,
			Message: "Esplora answered with an unexpected shape.", Err: err}
	}
	return nil
}

func (ad *Adapter) addressInfo(ctx context.Context, address string) (addressInfo, error) {
	var info addressInfo
	err := ad.get(ctx, "/address/"+address, &info)
	return info, err
}

// discover resolves the account's addresses with their stats. For an extended key it walks
// the receive (0) and change (1) chains until GapLimit consecutive addresses are unused, and
// never stops before an index known used from a previous read (usedAtLeast).
func (ad *Adapter) discover(ctx context.Context, a provider.Account, usedAtLeast [2]int) (*wallet, error) {
	w, single, err := resolveAccount(a)
	if err != nil {
		return nil, err
	}
	if w.key == nil {
		info, err := ad.addressInfo(ctx, single)
		if err != nil {
			return nil, err
		}
		w.add(single, -1, 0, info)
		return w, nil
	}
	for chain := uint32(0); chain < 2; chain++ {
		branch, err := w.key.Child(chain)
		if err != nil {
			return nil, err
		}
		lastUsed := usedAtLeast[chain]
		for i := 0; i <= lastUsed+ad.gapLimit; i++ {
			addr, err := ad.derived.address(w.key, branch, chain, i)
			if err != nil {
				continue // BIP32: an invalid child is skipped
			}
			info, err := ad.addressInfo(ctx, addr)
			if err != nil {
				return nil, err
			}
			w.add(addr, int(chain), i, info)
			if info.ChainStats.TxCount > 0 || info.MempoolStats.TxCount > 0 {
				lastUsed = max(lastUsed, i)
			}
		}
	}
	return w, nil
}

// Verify checks the address or extended key (checksum, network) and that the Esplora
// instance answers for it, with one call.
func (ad *Adapter) Verify(ctx context.Context, a provider.Account) error {
	w, single, err := resolveAccount(a)
	if err != nil {
		return err
	}
	if w.key != nil {
		if single, err = w.key.DeriveAddress(0, 0); err != nil {
			return err
		}
	}
	_, err = ad.addressInfo(ctx, single)
	return err
}

// Balances is the wallet's confirmed balance (funded − spent over its addresses' confirmed
// outputs) less what its unconfirmed transactions spend (their inputs and fees): the same
// sum the history reconciles to, as a pending debit counts and a pending credit waits for
// its confirmation.
func (ad *Adapter) Balances(ctx context.Context, a provider.Account) ([]opencalico.Position, error) {
	w, err := ad.discover(ctx, a, [2]int{-1, -1})
	if err != nil {
		return nil, err
	}
	var confirmed int64
	seen := map[string]bool{}
	pendingDebit := Sats(0)
	for _, wa := range w.addresses {
		confirmed += wa.info.ChainStats.FundedTxoSum - wa.info.ChainStats.SpentTxoSum
		if wa.info.MempoolStats.TxCount == 0 {
			continue
		}
		var txs []Tx
		if err := ad.get(ctx, "/address/"+wa.address+"/txs/mempool", &txs); err != nil {
			return nil, err
		}
		for _, tx := range txs {
			if seen[tx.TxID] || tx.Status.Confirmed {
				continue
			}
			seen[tx.TxID] = true
			t := Normalize(a.ConnectionID, tx, w.isMine, ad.clock.Now())
			if t == nil {
				continue
			}
			for _, l := range t.Inputs {
				pendingDebit = pendingDebit.Add(l.Amount)
			}
			for _, f := range t.Fees {
				pendingDebit = pendingDebit.Add(f.Amount)
			}
		}
	}
	qty := Sats(confirmed).Sub(pendingDebit)
	return []opencalico.Position{{
		ConnectionID: a.ConnectionID, ProviderID: ProviderID, AssetSymbol: AssetSymbol, AssetName: "Bitcoin",
		AssetID: AssetID, Chain: Chain, Quantity: qty, Available: qty, Locked: Sats(0), Staked: Sats(0),
		UpdatedAt: ad.clock.Now().UTC(),
	}}, nil
}
