package price

import (
	"context"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
)

// Asset keys name what is priced, independently of the source:
//
//   - a CAIP-19 asset id when the leg or position has one ("eip155:1/erc20:0xa0b8…",
//     "bip122:000000000019d6689c085ae165831e93/slip44:0");
//   - "symbol:<SYMBOL>" otherwise (exchange balances and legs);
//   - "fx:<currency>" for the exchange rate of a fiat currency a reader may ask for.
//
// Price ids are the source's ids ("bitcoin"), or "fiat:<code>" for fiat currencies, whose
// price is the USD value of one unit ("fiat:usd" is always 1).

// AssetKey returns the key of an asset as legs, fees and positions carry it.
func AssetKey(symbol, assetID string) string {
	if assetID != "" {
		return assetID
	}
	return "symbol:" + symbol
}

// FXKey returns the key of a fiat currency's exchange rate.
func FXKey(currency string) string { return "fx:" + strings.ToLower(currency) }

// FiatPriceID returns the price id of a fiat currency.
func FiatPriceID(currency string) string { return "fiat:" + strings.ToLower(currency) }

// IsFiat reports whether code is a fiat currency we value by exchange rates.
func IsFiat(code string) bool { return fiatCodes[strings.ToUpper(code)] }

var fiatCodes = map[string]bool{
	"USD": true, "EUR": true, "GBP": true, "CHF": true, "JPY": true, "CAD": true, "AUD": true, "NZD": true,
	"SEK": true, "NOK": true, "DKK": true, "PLN": true, "CZK": true, "HUF": true, "SGD": true, "HKD": true,
	"KRW": true, "BRL": true, "MXN": true, "TRY": true, "INR": true, "ZAR": true, "AED": true, "CNY": true,
}

// symbolIDs is the built-in table of common exchange symbols (upper case), including the
// exchanges' own aliases (Kraken's XBT and XDG).
var symbolIDs = map[string]string{
	"BTC": "bitcoin", "XBT": "bitcoin", "ETH": "ethereum", "USDT": "tether", "USDC": "usd-coin", "DAI": "dai",
	"SOL": "solana", "XRP": "ripple", "ADA": "cardano", "DOGE": "dogecoin", "XDG": "dogecoin", "LTC": "litecoin",
	"DOT": "polkadot", "LINK": "chainlink", "SHIB": "shiba-inu", "UNI": "uniswap", "BCH": "bitcoin-cash",
	"BNB": "binancecoin", "TRX": "tron", "XLM": "stellar", "ATOM": "cosmos", "ETC": "ethereum-classic",
	"XMR": "monero", "AVAX": "avalanche-2", "MATIC": "matic-network", "POL": "polygon-ecosystem-token",
	"ALGO": "algorand", "XTZ": "tezos", "FIL": "filecoin", "NEAR": "near", "AAVE": "aave", "MKR": "maker",
	"ARB": "arbitrum", "OP": "optimism", "TON": "the-open-network", "PEPE": "pepe", "BUSD": "binance-usd",
	"TUSD": "true-usd", "USDP": "paxos-standard", "PYUSD": "paypal-usd", "FDUSD": "first-digital-usd",
	"EURC": "euro-coin", "USDE": "ethena-usde", "WBTC": "wrapped-bitcoin", "WETH": "weth", "STETH": "staked-ether",
}

// stableIDs are the stablecoins. They are priced like any coin, never assumed at par; the set
// only says which legs may serve as a trade's quote.
var stableIDs = map[string]bool{
	"tether": true, "usd-coin": true, "dai": true, "binance-usd": true, "true-usd": true, "paxos-standard": true,
	"paypal-usd": true, "first-digital-usd": true, "euro-coin": true, "ethena-usde": true,
}

// IsQuote reports whether a price id is fiat or a stablecoin: a trade against it says the
// price of the other leg.
func IsQuote(priceID string) bool { return strings.HasPrefix(priceID, "fiat:") || stableIDs[priceID] }

// slip44IDs maps SLIP-44 coin types of native assets.
var slip44IDs = map[string]string{
	"0": "bitcoin", "2": "litecoin", "3": "dogecoin", "60": "ethereum", "61": "ethereum-classic", "144": "ripple",
	"145": "bitcoin-cash", "195": "tron", "354": "polkadot", "501": "solana", "714": "binancecoin",
	"966": "polygon-ecosystem-token", "1815": "cardano", "148": "stellar", "118": "cosmos", "9000": "avalanche-2",
}

// chainPlatforms maps CAIP-2 chain ids to the source's platform names.
var chainPlatforms = map[string]string{
	"eip155:1": "ethereum", "eip155:10": "optimistic-ethereum", "eip155:56": "binance-smart-chain",
	"eip155:137": "polygon-pos", "eip155:8453": "base", "eip155:42161": "arbitrum-one", "eip155:43114": "avalanche",
	"solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp": "solana",
}

// contractIDs are well-known tokens, by lower-case "chain/contract", so the common ones need
// no id list.
var contractIDs = map[string]string{
	"eip155:1/0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48":                                   "usd-coin",
	"eip155:1/0xdac17f958d2ee523a2206206994597c13d831ec7":                                   "tether",
	"eip155:1/0x6b175474e89094c44da98b954eedeac495271d0f":                                   "dai",
	"eip155:1/0x2260fac5e5542a773aa44fbcfedf7c193bc2c599":                                   "wrapped-bitcoin",
	"eip155:1/0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2":                                   "weth",
	"eip155:1/0x514910771af9ca656af840dff83e8264ecf986ca":                                   "chainlink",
	"eip155:1/0x1f9840a85d5af5bf1d1762f925bdaddc4201f984":                                   "uniswap",
	"solana:5eykt4uspv8p8njdtrepy1vzqkqzkvdp/epjfwdd5aufqssqem2qn1xzybapc8g4wegggkzwytdt1v": "usd-coin",
}

// caip19 splits "chain/namespace:reference" ("eip155:1/erc20:0xa0b8…").
func caip19(id string) (chain, namespace, reference string, ok bool) {
	chain, asset, found := strings.Cut(id, "/")
	if !found {
		return "", "", "", false
	}
	namespace, reference, found = strings.Cut(asset, ":")
	return chain, namespace, reference, found && strings.Contains(chain, ":")
}

// Static maps a key without asking the source: fiat, the symbol table, native coins by
// SLIP-44 type and well-known contracts. ok is false when the source's id list is needed.
func Static(key string) (priceID string, ok bool) {
	switch {
	case strings.HasPrefix(key, "fx:"):
		return FiatPriceID(strings.TrimPrefix(key, "fx:")), true
	case strings.HasPrefix(key, "symbol:"):
		sym := strings.ToUpper(strings.TrimPrefix(key, "symbol:"))
		if IsFiat(sym) {
			return FiatPriceID(sym), true
		}
		id, ok := symbolIDs[sym]
		return id, ok
	}
	chain, ns, ref, ok := caip19(key)
	if !ok {
		return "", false
	}
	switch ns {
	case "slip44":
		id, ok := slip44IDs[ref]
		return id, ok
	case "iso4217":
		return FiatPriceID(ref), IsFiat(ref)
	}
	id, ok := contractIDs[strings.ToLower(chain+"/"+ref)]
	return id, ok
}

// Mapper resolves asset keys to price ids: Static first, then the source's id list (kept in
// memory for a day), by contract for tokens and by symbol for the rest.
type Mapper struct {
	src   Source
	clock provider.Clock
	ttl   time.Duration

	mu       sync.Mutex
	loadedAt time.Time
	bySymbol map[string][]Coin
	byToken  map[string]string // lower-case "platform/contract" → id
}

// NewMapper returns a mapper over src's id list.
func NewMapper(src Source, clock provider.Clock) *Mapper {
	if clock == nil {
		clock = provider.RealClock{}
	}
	return &Mapper{src: src, clock: clock, ttl: 24 * time.Hour}
}

func (m *Mapper) load(ctx context.Context) error {
	m.mu.Lock()
	fresh := m.bySymbol != nil && m.clock.Now().Sub(m.loadedAt) < m.ttl
	m.mu.Unlock()
	if fresh {
		return nil
	}
	coins, err := m.src.Coins(ctx)
	if err != nil {
		return err
	}
	bySymbol := map[string][]Coin{}
	byToken := map[string]string{}
	for _, c := range coins {
		bySymbol[strings.ToUpper(c.Symbol)] = append(bySymbol[strings.ToUpper(c.Symbol)], c)
		for platform, addr := range c.Platforms {
			if addr != "" {
				byToken[strings.ToLower(platform+"/"+addr)] = c.ID
			}
		}
	}
	m.mu.Lock()
	m.bySymbol, m.byToken, m.loadedAt = bySymbol, byToken, m.clock.Now()
	m.mu.Unlock()
	return nil
}

// Resolve maps keys to price ids; a key the source has no id for maps to "". An error means
// the source could not be asked; nothing is resolved then.
func (m *Mapper) Resolve(ctx context.Context, keys []string) (map[string]string, error) {
	out := make(map[string]string, len(keys))
	var rest []string
	for _, k := range keys {
		if id, ok := Static(k); ok {
			out[k] = id
		} else {
			rest = append(rest, k)
		}
	}
	if len(rest) == 0 {
		return out, nil
	}
	if err := m.load(ctx); err != nil {
		return nil, err
	}
	m.mu.Lock()
	bySymbol, byToken := m.bySymbol, m.byToken
	m.mu.Unlock()
	for _, k := range rest {
		if strings.HasPrefix(k, "symbol:") {
			id, err := m.bySymbolTieBreak(ctx, bySymbol[strings.ToUpper(strings.TrimPrefix(k, "symbol:"))])
			if err != nil {
				return nil, err
			}
			out[k] = id
			continue
		}
		// A token is found by its contract only: a symbol is anyone's to copy, and spam
		// tokens take the symbols of valuable ones.
		chain, ns, ref, ok := caip19(k)
		platform := chainPlatforms[chain]
		if !ok || platform == "" || ns == "slip44" {
			out[k] = ""
			continue
		}
		out[k] = byToken[strings.ToLower(platform+"/"+ref)]
	}
	return out, nil
}

// bySymbolTieBreak picks one coin among those sharing a symbol: bridged, wrapped and pegged
// variants are dropped when an original remains; then the largest market capitalisation wins
// (one call for the candidates); without market caps, a coin native to no platform, then the
// shortest id, then the first id in order.
func (m *Mapper) bySymbolTieBreak(ctx context.Context, cands []Coin) (string, error) {
	if len(cands) <= 1 {
		if len(cands) == 1 {
			return cands[0].ID, nil
		}
		return "", nil
	}
	var originals []Coin
	for _, c := range cands {
		s := strings.ToLower(c.ID + " " + c.Name)
		if !strings.Contains(s, "bridged") && !strings.Contains(s, "wrapped") && !strings.Contains(s, "peg") &&
			!strings.Contains(s, "wormhole") {
			originals = append(originals, c)
		}
	}
	if len(originals) == 1 {
		return originals[0].ID, nil
	}
	if len(originals) > 0 {
		cands = originals
	}
	ids := make([]string, len(cands))
	for i, c := range cands {
		ids[i] = c.ID
	}
	caps, err := m.src.MarketCaps(ctx, ids)
	if err != nil {
		return "", err
	}
	sort.Slice(cands, func(i, j int) bool {
		ci, cj := caps[cands[i].ID], caps[cands[j].ID]
		if c := ci.Cmp(cj); c != 0 {
			return c > 0
		}
		if ni, nj := len(cands[i].Platforms) == 0, len(cands[j].Platforms) == 0; ni != nj {
			return ni
		}
		if len(cands[i].ID) != len(cands[j].ID) {
			return len(cands[i].ID) < len(cands[j].ID)
		}
		return cands[i].ID < cands[j].ID
	})
	return cands[0].ID, nil
}

// Value is a CurrencyValue: an amount in a fiat currency (upper-case ISO 4217). A nil *Value
// is null: no price known.
type Value struct {
	Amount   decimal.Decimal
	Currency string
}

// keysOfTransaction returns the asset keys of a transaction's legs and fees.
func keysOfTransaction(t *opencalico.Transaction) []string {
	var out []string
	for _, l := range t.Inputs {
		out = append(out, AssetKey(l.AssetSymbol, l.AssetID))
	}
	for _, l := range t.Outputs {
		out = append(out, AssetKey(l.AssetSymbol, l.AssetID))
	}
	for _, f := range t.Fees {
		out = append(out, AssetKey(f.AssetSymbol, f.AssetID))
	}
	return out
}
