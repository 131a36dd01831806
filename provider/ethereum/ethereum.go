// Package ethereum reads EVM wallets (Ethereum, Arbitrum One, Base, Polygon PoS) by address:
// the history through the Etherscan v2 API (one API key for every chain, a server setting),
// the balances through each chain's JSON-RPC node.
//
// A transaction reaches a wallet through up to three Etherscan lists: its own transactions
// (txlist), native value moved by contracts (txlistinternal) and ERC-20 transfers (tokentx).
// The history merges the three by transaction hash into one transaction with the wallet's
// net effect per asset, reading the lists side by side by block range so that a transaction
// is never handed over in parts (see History). On an OP Stack chain (Base) the fee of a
// transaction the wallet sent also counts the L1 data fee of its receipt, read by JSON-RPC.
package ethereum

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
	"github.com/shopspring/decimal"
)

// ProviderID is the provider id of every EVM chain.
const ProviderID opencalico.ProviderID = "ethereum"

// DefaultBaseURL is Etherscan's API (v2 serves every chain by chainid).
const DefaultBaseURL = "https://api.etherscan.io"

// APIKeyEnv names the variable holding the server's Etherscan API key.
const APIKeyEnv = "OPENCALICO_ETHERSCAN_API_KEY"

// RPCProviderID names the RPC base URL override: OPENCALICO_PROVIDER_ETHEREUM_RPC_BASE_URL,
// to which "/<chain>" is appended.
const RPCProviderID opencalico.ProviderID = "ethereum-rpc"

// Paging limits of Etherscan's account lists.
const (
	DefaultOffset = 1000
	// MaxOffset is the most rows a page is asked for. Since 1 July 2026 a free key gets at
	// most 1,000 rows a request whatever the offset (5,000 on paid plans); a page shorter
	// than the offset asked for reads as the list's end, so asking for more than the plan
	// gives would lose history without a word. 1,000 is right for every plan.
	MaxOffset = 1000
	// MaxResultWindow is the cap of page × offset.
	MaxResultWindow = 10000
	// EndBlock is the "no upper bound" Etherscan's examples use.
	EndBlock = 99999999
)

// DefaultRequestsPerSecond is the free plan's limit of an Etherscan API key.
const DefaultRequestsPerSecond = 3

// DefaultRateMargin widens the limiter's window (see Limiter).
const DefaultRateMargin = 20 * time.Millisecond

// NativeDecimals: a wei is 10⁻¹⁸ of the native coin on every supported chain.
const NativeDecimals = 18

// Chain is one supported EVM chain.
type Chain struct {
	Name    string
	ChainID int64
	Symbol  string // the native coin
	Coin    string // its name
	SLIP44  int    // its SLIP-44 coin type, for CAIP-19
	RPCURL  string // a public JSON-RPC endpoint
	// Confirmations is how far behind the chain head history reads stop: far enough for
	// Etherscan's three lists to have indexed every block read (so that none of them lacks a
	// row the others have) and for a reorganization to be unlikely.
	Confirmations int64
	// L1DataFee says the chain is an OP Stack rollup that charges every transaction, on top
	// of gasUsed × gasPrice, a fee for posting its data to Ethereum. Etherscan's lists leave
	// it out; the receipt (eth_getTransactionReceipt) gives it as l1Fee, in hex wei. The
	// history fetches the receipts of the wallet's own transactions to add it to their fee.
	L1DataFee bool
}

var chains = []Chain{
	{Name: "ethereum", ChainID: 1, Symbol: "ETH", Coin: "Ether", SLIP44: 60, RPCURL: "https://ethereum-rpc.publicnode.com", Confirmations: 12},
	{Name: "arbitrum", ChainID: 42161, Symbol: "ETH", Coin: "Ether", SLIP44: 60, RPCURL: "https://arb1.arbitrum.io/rpc", Confirmations: 240},
	{Name: "base", ChainID: 8453, Symbol: "ETH", Coin: "Ether", SLIP44: 60, RPCURL: "https://mainnet.base.org", Confirmations: 60, L1DataFee: true},
	{Name: "polygon", ChainID: 137, Symbol: "POL", Coin: "Polygon Ecosystem Token", SLIP44: 966, RPCURL: "https://polygon-rpc.com", Confirmations: 64},
}

// DefaultChain is the chain of an account that names none.
const DefaultChain = "ethereum"

// Chains lists the supported chain names.
func Chains() []string {
	out := make([]string, len(chains))
	for i, c := range chains {
		out[i] = c.Name
	}
	return out
}

// LookupChain returns a supported chain by name ("" is DefaultChain).
func LookupChain(name string) (Chain, bool) {
	if name == "" {
		name = DefaultChain
	}
	for _, c := range chains {
		if c.Name == name {
			return c, true
		}
	}
	return Chain{}, false
}

// ChainID returns the EIP-155 chain id of a supported chain.
func ChainID(name string) (int64, bool) {
	c, ok := LookupChain(name)
	return c.ChainID, ok
}

// NativeAssetID is the CAIP-19 id of the chain's native coin.
func (c Chain) NativeAssetID() string {
	return fmt.Sprintf("eip155:%d/slip44:%d", c.ChainID, c.SLIP44)
}

// TokenAssetID is the CAIP-19 id of an ERC-20 token of the chain.
func (c Chain) TokenAssetID(contract string) string {
	return fmt.Sprintf("eip155:%d/erc20:%s", c.ChainID, strings.ToLower(contract))
}

// Options configure the adapter. Zero values take the defaults.
type Options struct {
	// BaseURL is Etherscan's (default provider.BaseURL("ethereum", DefaultBaseURL)).
	BaseURL string
	// APIKey is the server's Etherscan key (default the OPENCALICO_ETHERSCAN_API_KEY variable).
	// It is an operator setting, not a user's credential, and never appears in an error.
	APIKey string
	// RPCURL gives each chain's JSON-RPC endpoint. Default: the RPC override variable
	// (provider.BaseURL("ethereum-rpc", "")) + "/" + chain when set, else Chain.RPCURL.
	RPCURL func(chain string) string
	HTTP   *http.Client
	Clock  provider.Clock
	// RequestsPerSecond is the Etherscan key's limit (default 3) and RateMargin the widening
	// of its window (default 100 ms); Limiter replaces the limiter they build (to share one
	// between adapters of a process that use the same key).
	RequestsPerSecond float64
	RateMargin        time.Duration
	Limiter           *Limiter
	// RPCRequestsPerSecond and RPCBurst are the per-host token bucket of the RPC endpoints
	// (defaults 5 and 1); RPCLimiter replaces it.
	RPCRequestsPerSecond float64
	RPCBurst             int
	RPCLimiter           provider.Limiter
	// Offset is the rows per Etherscan page (default and at most MaxOffset, 1000).
	Offset int
	// Confirmations, when positive, replaces every chain's Chain.Confirmations.
	Confirmations int64
	// Client retry knobs (defaults of provider.Client when zero).
	MaxAttempts    int
	BaseDelay      time.Duration
	MaxDelay       time.Duration
	AttemptTimeout time.Duration
}

// Adapter reads EVM wallets. It is safe for concurrent use by many accounts.
type Adapter struct {
	baseURL       string
	apiKey        string
	limitKey      string
	rpcURL        func(chain string) string
	clock         provider.Clock
	offset        int
	confirmations int64
	etherscan     *provider.Client
	rpc           *provider.Client
	tokenLists    tokenListCache
}

var _ provider.Adapter = (*Adapter)(nil)

// New returns an adapter.
func New(opts Options) *Adapter {
	if opts.BaseURL == "" {
		opts.BaseURL = provider.BaseURL(ProviderID, DefaultBaseURL)
	}
	opts.BaseURL = strings.TrimRight(opts.BaseURL, "/")
	if opts.APIKey == "" {
		opts.APIKey = os.Getenv(APIKeyEnv)
	}
	if opts.Clock == nil {
		opts.Clock = provider.RealClock{}
	}
	if opts.RequestsPerSecond <= 0 {
		opts.RequestsPerSecond = DefaultRequestsPerSecond
	}
	if opts.RateMargin == 0 {
		opts.RateMargin = DefaultRateMargin
	}
	if opts.Limiter == nil {
		opts.Limiter = NewLimiter(opts.Clock, opts.RequestsPerSecond, opts.RateMargin)
	}
	if opts.RPCRequestsPerSecond <= 0 {
		opts.RPCRequestsPerSecond = 5
	}
	if opts.RPCLimiter == nil {
		opts.RPCLimiter = provider.NewBucketLimiter(opts.Clock, opts.RPCRequestsPerSecond, opts.RPCBurst)
	}
	if opts.RPCURL == nil {
		override := provider.BaseURL(RPCProviderID, "")
		opts.RPCURL = func(chain string) string {
			if override != "" {
				return override + "/" + chain
			}
			c, _ := LookupChain(chain)
			return c.RPCURL
		}
	}
	if opts.Offset <= 0 {
		opts.Offset = DefaultOffset
	}
	opts.Offset = min(opts.Offset, MaxOffset)
	ad := &Adapter{
		baseURL: opts.BaseURL, apiKey: opts.APIKey, rpcURL: opts.RPCURL, clock: opts.Clock,
		offset: opts.Offset, confirmations: opts.Confirmations,
	}
	// The key's budget is named by a digest of the key: the limiter shares it between every
	// account, and the key itself stays out of every map a debugger might print.
	sum := sha256.Sum256([]byte(opts.APIKey))
	ad.limitKey = "etherscan:" + hex.EncodeToString(sum[:8])
	limiter := opts.Limiter
	ad.etherscan = &provider.Client{
		HTTP: opts.HTTP, Limiter: limiter, Clock: opts.Clock,
		Classify:    classifyEtherscan(ad.redact, func() { limiter.Pause(ad.limitKey, time.Second) }),
		MaxAttempts: opts.MaxAttempts, BaseDelay: opts.BaseDelay, MaxDelay: opts.MaxDelay,
		AttemptTimeout: opts.AttemptTimeout, ProviderID: ProviderID,
	}
	ad.rpc = &provider.Client{
		HTTP: opts.HTTP, Limiter: opts.RPCLimiter, Classify: classifyRPC, Clock: opts.Clock,
		MaxAttempts: opts.MaxAttempts, BaseDelay: opts.BaseDelay, MaxDelay: opts.MaxDelay,
		AttemptTimeout: opts.AttemptTimeout, ProviderID: ProviderID,
	}
	return ad
}

// Provider is the catalog entry: a wallet connection by address, on one of the chains.
func (ad *Adapter) Provider() opencalico.Provider {
	return opencalico.Provider{
		ID:        ProviderID,
		Name:      "Ethereum & EVM chains",
		Kind:      opencalico.KindBlockchain,
		LogoURL:   "https://ethereum.org/favicon-32x32.png",
		AuthTypes: []opencalico.AuthType{opencalico.AuthWallet},
		Chains:    Chains(),
		AuthMetaData: []opencalico.AuthMetaData{{
			AuthType: opencalico.AuthWallet,
			Fields: []opencalico.AuthField{
				{Name: "address", Label: "Wallet address (0x…)", Secret: false},
			},
			// Where wallets show the account's address.
			HelpURL: "https://ethereum.org/en/wallets/",
		}},
	}
}

// redact removes the API key from a text, should a message ever echo it.
func (ad *Adapter) redact(s string) string {
	if ad.apiKey == "" {
		return s
	}
	return strings.ReplaceAll(s, ad.apiKey, "[redacted]")
}

// resolveAccount checks the chain and the address, and returns the chain and the address in
// lower case (the spelling Etherscan answers in).
func resolveAccount(a provider.Account) (Chain, string, error) {
	c, ok := LookupChain(a.Chain)
	if !ok {
		return Chain{}, "", opencalico.Errorf(opencalico.EBadRequest, "The chain %q is not supported; the supported chains are %s.", a.Chain, strings.Join(Chains(), ", "))
	}
	addr, err := ValidateAddress(a.Address)
	if err != nil {
		return Chain{}, "", err
	}
	return c, strings.ToLower(addr), nil
}

// ValidateAddress implements provider.AddressValidator: a supported chain (empty: the
// default) and an address passing EIP-55 when its case is mixed, returned checksummed.
func (ad *Adapter) ValidateAddress(chain, address string) (string, error) {
	_, _, err := resolveAccount(provider.Account{Chain: chain, Address: address})
	if err != nil {
		return "", err
	}
	return ValidateAddress(address)
}

var _ provider.AddressValidator = (*Adapter)(nil)

// account is a resolved account.
type account struct {
	chain   Chain
	address string // lower case
	checked string // EIP-55
}

func (ad *Adapter) resolve(a provider.Account) (account, error) {
	c, addr, err := resolveAccount(a)
	if err != nil {
		return account{}, err
	}
	return account{chain: c, address: addr, checked: ChecksumAddress(addr)}, nil
}

// etherscanList reads one page of an account list. Rows come back decoded into out (a
// pointer to a slice); "No transactions found" leaves it empty.
func (ad *Adapter) etherscanList(ctx context.Context, acc account, action string, startBlock, endBlock int64, page, offset int, out any) error {
	q := url.Values{}
	q.Set("chainid", strconv.FormatInt(acc.chain.ChainID, 10))
	q.Set("module", "account")
	q.Set("action", action)
	q.Set("address", acc.address)
	q.Set("startblock", strconv.FormatInt(startBlock, 10))
	q.Set("endblock", strconv.FormatInt(endBlock, 10))
	q.Set("page", strconv.Itoa(page))
	q.Set("offset", strconv.Itoa(offset))
	q.Set("sort", "asc")
	if ad.apiKey != "" {
		q.Set("apikey", ad.apiKey)
	}
	res, err := ad.etherscan.Do(ctx, provider.Request{Method: http.MethodGet, URL: ad.baseURL + "/v2/api?" + q.Encode(), LimitKey: ad.limitKey, Cost: 1})
	if errors.Is(err, errPlanExcludesChain) {
		// Classify cannot tell which chain was asked; here the message can name it.
		return paidPlanError(acc.chain)
	}
	if err != nil {
		return ad.redactErr(err)
	}
	var env envelope
	if err := json.Unmarshal(res.Body, &env); err != nil {
		return ad.shapeErr(action, err)
	}
	if env.Status != "1" {
		return nil // classify let only the empty answer through
	}
	if err := json.Unmarshal(env.Result, out); err != nil {
		return ad.shapeErr(action, err)
	}
	return nil
}

// paidPlanError tells the operator that the server's Etherscan key cannot read a chain: the
// free plan leaves some chains out (Base among them) and only a paid plan serves them.
func paidPlanError(c Chain) error {
	return &opencalico.Error{Code: opencalico.EProviderError, ProviderID: ProviderID, Err: errPlanExcludesChain,
		Message: fmt.Sprintf("The %s chain needs a paid Etherscan API plan: Etherscan's free plan does not serve it (chain id %d). "+
			"The operator must upgrade the plan of the server's Etherscan API key (%s; see https://etherscan.io/apis) before wallets on %s can be read.",
			c.Name, c.ChainID, APIKeyEnv, c.Name)}
}

func (ad *Adapter) shapeErr(what string, err error) error {
	return &opencalico.Error{Code: opencalico.EProviderError, ProviderID: ProviderID,
		Message: "Etherscan answered " + what + " with an unexpected shape.", Err: errors.New(ad.redact(err.Error()))}
}

// redactErr keeps err as it is unless its text holds the key (a transport error quoting the
// URL): then it is replaced by one that does not, with the same code.
func (ad *Adapter) redactErr(err error) error {
	if ad.apiKey == "" || !strings.Contains(err.Error(), ad.apiKey) {
		return err
	}
	code := opencalico.ErrorCodeOf(err)
	if code == opencalico.EInternal {
		code = opencalico.EProviderUnavailable
	}
	return &opencalico.Error{Code: code, ProviderID: ProviderID,
		Message: "Etherscan could not be reached.", Err: errors.New(ad.redact(err.Error()))}
}

// rpcBatch sends JSON-RPC calls as one batch (a single call goes alone) and returns the
// results in the order of calls; an error answered to any call fails the batch.
func (ad *Adapter) rpcBatch(ctx context.Context, chain string, calls []rpcRequest) ([]json.RawMessage, error) {
	results, refused, err := ad.rpcCalls(ctx, chain, calls)
	if err != nil {
		return nil, err
	}
	for _, e := range refused {
		if e != nil {
			return nil, rpcErr(e)
		}
	}
	return results, nil
}

// rpcCalls is rpcBatch that hands back the error each call was answered with (nil for a
// result), for the caller that can do something about one call's refusal.
func (ad *Adapter) rpcCalls(ctx context.Context, chain string, calls []rpcRequest) ([]json.RawMessage, []*rpcError, error) {
	endpoint := ad.rpcURL(chain)
	limitKey := endpoint
	if u, err := url.Parse(endpoint); err == nil && u.Host != "" {
		limitKey = u.Host
	}
	for i := range calls {
		calls[i].JSONRPC, calls[i].ID = "2.0", i+1
	}
	var body []byte
	var err error
	if len(calls) == 1 {
		body, err = json.Marshal(calls[0])
	} else {
		body, err = json.Marshal(calls)
	}
	if err != nil {
		return nil, nil, err
	}
	res, err := ad.rpc.Do(ctx, provider.Request{Method: http.MethodPost, URL: endpoint, Body: body,
		Header: http.Header{"Content-Type": {"application/json"}}, LimitKey: limitKey, Cost: 1})
	var refusal *rpcError
	if err != nil && len(calls) == 1 && errors.As(err, &refusal) {
		// classifyRPC turned the single call's error answer into the request's error.
		return []json.RawMessage{nil}, []*rpcError{refusal}, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var answers []rpcResponse
	if len(calls) == 1 {
		var one rpcResponse
		if err := json.Unmarshal(res.Body, &one); err != nil {
			return nil, nil, rpcShapeErr(err)
		}
		answers = []rpcResponse{one}
	} else if err := json.Unmarshal(res.Body, &answers); err != nil {
		return nil, nil, rpcShapeErr(err)
	}
	out := make([]json.RawMessage, len(calls))
	refused := make([]*rpcError, len(calls))
	for _, a := range answers {
		if a.ID < 1 || a.ID > len(calls) {
			continue
		}
		if a.Error != nil {
			refused[a.ID-1] = a.Error
			continue
		}
		out[a.ID-1] = a.Result
	}
	for i, r := range out {
		if r == nil && refused[i] == nil {
			return nil, nil, rpcShapeErr(fmt.Errorf("no answer to %s", calls[i].Method))
		}
	}
	return out, refused, nil
}

func rpcShapeErr(err error) error {
	return &opencalico.Error{Code: opencalico.EProviderError, ProviderID: ProviderID,
		Message: "The EVM RPC endpoint answered with an unexpected shape.", Err: err}
}

// hexQuantity decodes a JSON-RPC quantity or a 32-byte word ("0x…") to an integer.
func hexQuantity(raw json.RawMessage) (*big.Int, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, rpcShapeErr(err)
	}
	digits := strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if digits == "" {
		return new(big.Int), nil
	}
	n, ok := new(big.Int).SetString(digits, 16)
	if !ok {
		return nil, rpcShapeErr(fmt.Errorf("not a hex quantity: %.20q", s))
	}
	return n, nil
}

// headBlock is the chain's newest block number.
func (ad *Adapter) headBlock(ctx context.Context, chain string) (int64, error) {
	res, err := ad.rpcBatch(ctx, chain, []rpcRequest{{Method: "eth_blockNumber", Params: []any{}}})
	if err != nil {
		return 0, err
	}
	n, err := hexQuantity(res[0])
	if err != nil {
		return 0, err
	}
	if !n.IsInt64() {
		return 0, rpcShapeErr(errors.New("block number out of range"))
	}
	return n.Int64(), nil
}

// Verify checks the chain and the address (with its EIP-55 checksum), that Etherscan serves
// the chain's history to the server's key (one txlist row: a free key is refused some
// chains, and a connection whose history cannot be read is better refused now), and that
// the chain's node answers for the wallet, with one eth_getBalance.
func (ad *Adapter) Verify(ctx context.Context, a provider.Account) error {
	acc, err := ad.resolve(a)
	if err != nil {
		return err
	}
	var probe []NormalTx
	if err := ad.etherscanList(ctx, acc, ActionTxList, 0, EndBlock, 1, 1, &probe); err != nil {
		return err
	}
	res, err := ad.rpcBatch(ctx, acc.chain.Name, []rpcRequest{{Method: "eth_getBalance", Params: []any{acc.address, "latest"}}})
	if err != nil {
		return err
	}
	_, err = hexQuantity(res[0])
	return err
}

// tokenInfo is what the token lists say about a contract.
type tokenInfo struct {
	contract string
	symbol   string
	name     string
	decimals int32
}

// balanceOfSelector is the first 4 bytes of Keccak-256("balanceOf(address)").
const balanceOfSelector = "0x70a08231"

// rpcBatchSize bounds a JSON-RPC batch: public endpoints refuse large ones.
const rpcBatchSize = 50

// Balances reads the native coin (eth_getBalance) and every ERC-20 token the wallet has
// touched (found in its tokentx list, spam tokens included: a position is what the chain
// says) with balanceOf through eth_call, in batches. Zero token balances are left out.
//
// The balances are read at block B = head − the chain's confirmations, not at "latest":
// B is where the history read that follows stops (it takes the tokentx list read here,
// complete up to B; see History), so that the positions and the history describe the same
// block and reconcile exactly, also after activity in the last blocks. A node that no longer
// holds B's state (a pruned geth full node keeps the state of its last 128 blocks; an
// endpoint may also route the call to a node behind) refuses the call; that call is asked again at "latest", whose balance may be
// ahead of the history until a later sync: the reconciliation of before, not a failed sync.
func (ad *Adapter) Balances(ctx context.Context, a provider.Account) ([]opencalico.Position, error) {
	acc, err := ad.resolve(a)
	if err != nil {
		return nil, err
	}
	tokens, head, err := ad.touchedTokens(ctx, acc)
	if err != nil {
		return nil, err
	}
	settled := "0x" + strconv.FormatInt(max(head-ad.confirmationsOf(acc.chain), 0), 16)
	calls := balanceCalls(acc, tokens, settled)
	results := make([]json.RawMessage, len(calls))
	var refusedAt []int // calls whose node refused block B
	for start := 0; start < len(calls); start += rpcBatchSize {
		res, refused, err := ad.rpcCalls(ctx, acc.chain.Name, calls[start:min(start+rpcBatchSize, len(calls))])
		if err != nil {
			return nil, err
		}
		for i, e := range refused {
			switch {
			case e == nil:
				results[start+i] = res[i]
			case pastStateRefused(e):
				refusedAt = append(refusedAt, start+i)
			default:
				return nil, rpcErr(e)
			}
		}
	}
	if len(refusedAt) > 0 {
		latest := balanceCalls(acc, tokens, "latest")
		retry := make([]rpcRequest, len(refusedAt))
		for k, i := range refusedAt {
			retry[k] = latest[i]
		}
		for start := 0; start < len(retry); start += rpcBatchSize {
			res, err := ad.rpcBatch(ctx, acc.chain.Name, retry[start:min(start+rpcBatchSize, len(retry))])
			if err != nil {
				return nil, err
			}
			for k, r := range res {
				results[refusedAt[start+k]] = r
			}
		}
	}
	now := ad.clock.Now().UTC()
	position := func(symbol, name, assetID string, qty decimal.Decimal) opencalico.Position {
		return opencalico.Position{ConnectionID: a.ConnectionID, ProviderID: ProviderID, AssetSymbol: symbol,
			AssetName: name, AssetID: assetID, Chain: acc.chain.Name, Quantity: qty, Available: qty,
			Locked: decimal.Zero, Staked: decimal.Zero, UpdatedAt: now}
	}
	wei, err := hexQuantity(results[0])
	if err != nil {
		return nil, err
	}
	out := []opencalico.Position{position(acc.chain.Symbol, acc.chain.Coin, acc.chain.NativeAssetID(), decimal.NewFromBigInt(wei, -NativeDecimals))}
	for i, t := range tokens {
		units, err := hexQuantity(results[i+1])
		if err != nil {
			return nil, err
		}
		if units.Sign() == 0 {
			continue
		}
		out = append(out, position(t.symbol, t.name, acc.chain.TokenAssetID(t.contract), decimal.NewFromBigInt(units, -t.decimals)))
	}
	return out, nil
}

// balanceCalls are the calls of Balances at a block tag: eth_getBalance, then balanceOf of
// each token in order.
func balanceCalls(acc account, tokens []tokenInfo, block string) []rpcRequest {
	calls := []rpcRequest{{Method: "eth_getBalance", Params: []any{acc.address, block}}}
	data := balanceOfSelector + strings.Repeat("0", 24) + strings.TrimPrefix(acc.address, "0x")
	for _, t := range tokens {
		calls = append(calls, rpcRequest{Method: "eth_call", Params: []any{map[string]string{"to": t.contract, "data": data}, block}})
	}
	return calls
}

// confirmationsOf is how far behind the head the chain's lists are trusted complete.
func (ad *Adapter) confirmationsOf(c Chain) int64 {
	if ad.confirmations > 0 {
		return ad.confirmations
	}
	return c.Confirmations
}

// touchedTokens pages the wallet's whole tokentx list up to the chain head, at the adapter's
// page size, and returns its token contracts sorted and the head it read to.
func (ad *Adapter) touchedTokens(ctx context.Context, acc account) ([]tokenInfo, int64, error) {
	head, err := ad.headBlock(ctx, acc.chain.Name)
	if err != nil {
		return nil, 0, err
	}
	found := map[string]tokenInfo{}
	r := newListReader(ad, acc, ActionTokenTx, 0, ad.offset)
	var all []listRow
	for !r.done {
		if err := r.fetch(ctx, head); err != nil {
			return nil, 0, err
		}
		rows := r.take(r.reached)
		all = append(all, rows...)
		for _, row := range rows {
			t := row.token
			c := strings.ToLower(t.ContractAddress)
			if _, ok := found[c]; ok || c == "" {
				continue
			}
			d, err := strconv.ParseInt(t.TokenDecimal, 10, 32)
			if err != nil || d < 0 {
				d = 0
			}
			found[c] = tokenInfo{contract: c, symbol: tokenSymbol(t.TokenSymbol, c), name: t.TokenName, decimals: int32(d)}
		}
	}
	// The history read that follows takes the list from here instead of asking again, and
	// stops where it is complete: at the block Balances reads the balances at.
	ad.tokenLists.put(acc, all, head-ad.confirmationsOf(acc.chain), ad.clock.Now())
	out := make([]tokenInfo, 0, len(found))
	for _, t := range found {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].contract < out[j].contract })
	return out, head, nil
}
