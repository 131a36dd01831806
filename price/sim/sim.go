// Package sim simulates a CoinGecko-style price API for tests and sandbox mode:
// /api/v3/simple/price, /api/v3/coins/{id}/market_chart/range and /api/v3/coins/list, over
// deterministic price series, with the provider's per-minute rate limit (429 with
// Retry-After), its history range limit and granularity, and outages on demand.
//
// Series are computed with floating point but every price leaves the simulator as a decimal
// string of at most 10 significant digits, and Price returns exactly that decimal, so tests
// compare exact values.
package sim

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/opencalico/opencalico/provider"
)

// Coin describes a simulated coin.
type Coin struct {
	ID, Symbol, Name string
	Platforms        map[string]string
	// Base is the USD price level; Stable makes the series hover within ±0.3 % of it.
	Base   float64
	Stable bool
	// Listed is when the series begins; no price exists before.
	Listed time.Time
	// MarketCap orders coins sharing a symbol.
	MarketCap int64
}

// Options configure a simulator.
type Options struct {
	Clock provider.Clock // nil: the wall clock
	// Coins replaces the default coin list (DefaultCoins). ExtraCoins adds that many synthetic
	// coins, "coin-001" (symbol C001) and on.
	Coins      []Coin
	ExtraCoins int
	// Start is when the series of coins without Listed begin (default 2018-01-01).
	Start time.Time
	// CallsPerMinute is the rate limit per API key, counted over any 60 s window (default
	// 30); beyond it the answer is 429 with Retry-After.
	CallsPerMinute int
	// MaxRangeDays limits a market_chart/range call's span (0: no limit); beyond it the
	// answer is 400, as the public plan answers for data older than 365 days.
	MaxRangeDays int
	// APIKey, when set, is required in x-cg-demo-api-key or x-cg-pro-api-key.
	APIKey string
}

// fiatBase is the USD value of one unit of each fiat vs currency the simulator quotes in.
var fiatBase = map[string]float64{"usd": 1, "eur": 1.09, "gbp": 1.27, "chf": 1.12, "jpy": 0.0068, "cad": 0.74, "aud": 0.66}

// DefaultCoins is a small realistic list: majors, stablecoins with their Ethereum contracts,
// and look-alikes sharing symbols (bridged and pegged variants) for the tie-break.
func DefaultCoins() []Coin {
	d := func(y int, m time.Month) time.Time { return time.Date(y, m, 1, 0, 0, 0, 0, time.UTC) }
	return []Coin{
		{ID: "bitcoin", Symbol: "btc", Name: "Bitcoin", Base: 40000, MarketCap: 1_000_000_000_000},
		{ID: "ethereum", Symbol: "eth", Name: "Ethereum", Base: 2500, MarketCap: 300_000_000_000},
		{ID: "tether", Symbol: "usdt", Name: "Tether", Base: 1, Stable: true, MarketCap: 100_000_000_000,
			Platforms: map[string]string{"ethereum": "0xdac17f958d2ee523a2206206994597c13d831ec7"}},
		{ID: "usd-coin", Symbol: "usdc", Name: "USDC", Base: 1, Stable: true, MarketCap: 30_000_000_000,
			Platforms: map[string]string{"ethereum": "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48", "solana": "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"}},
		{ID: "dai", Symbol: "dai", Name: "Dai", Base: 1, Stable: true, MarketCap: 5_000_000_000,
			Platforms: map[string]string{"ethereum": "0x6b175474e89094c44da98b954eedeac495271d0f"}},
		{ID: "solana", Symbol: "sol", Name: "Solana", Base: 100, Listed: d(2020, 4), MarketCap: 50_000_000_000},
		{ID: "ripple", Symbol: "xrp", Name: "XRP", Base: 0.55, MarketCap: 30_000_000_000},
		{ID: "cardano", Symbol: "ada", Name: "Cardano", Base: 0.45, MarketCap: 15_000_000_000},
		{ID: "dogecoin", Symbol: "doge", Name: "Dogecoin", Base: 0.08, MarketCap: 12_000_000_000},
		{ID: "litecoin", Symbol: "ltc", Name: "Litecoin", Base: 80, MarketCap: 6_000_000_000},
		{ID: "polkadot", Symbol: "dot", Name: "Polkadot", Base: 6, Listed: d(2020, 8), MarketCap: 8_000_000_000},
		{ID: "chainlink", Symbol: "link", Name: "Chainlink", Base: 14, MarketCap: 8_000_000_000,
			Platforms: map[string]string{"ethereum": "0x514910771af9ca656af840dff83e8264ecf986ca"}},
		{ID: "shiba-inu", Symbol: "shib", Name: "Shiba Inu", Base: 0.00001, Listed: d(2020, 8), MarketCap: 5_000_000_000,
			Platforms: map[string]string{"ethereum": "0x95ad61b0a150d79219dcf64e1e6cc01f0b64c4ce"}},
		{ID: "uniswap", Symbol: "uni", Name: "Uniswap", Base: 6, Listed: d(2020, 9), MarketCap: 4_000_000_000,
			Platforms: map[string]string{"ethereum": "0x1f9840a85d5af5bf1d1762f925bdaddc4201f984"}},
		// Look-alikes.
		{ID: "ethereum-wormhole", Symbol: "eth", Name: "Ethereum (Wormhole)", Base: 2500, MarketCap: 50_000_000,
			Platforms: map[string]string{"solana": "7vfCXTUXx5WJV5JADk17DUJ4ksgau7utNKj4b963voxs"}},
		{ID: "binance-peg-weth", Symbol: "eth", Name: "Binance-Peg WETH", Base: 2500, MarketCap: 80_000_000,
			Platforms: map[string]string{"binance-smart-chain": "0x2170ed0880ac9a755fd29b2688956bd959f933f8"}},
		{ID: "unicorn-token", Symbol: "uni", Name: "Unicorn Token", Base: 0.01, MarketCap: 1_000_000},
		{ID: "another-uni", Symbol: "uni", Name: "Another Uni", Base: 0.02, MarketCap: 2_000_000},
		// A coin listed late: no price before 2025.
		{ID: "late-coin", Symbol: "late", Name: "Late Coin", Base: 3, Listed: d(2025, 1), MarketCap: 1_000_000},
	}
}

// Stats count what the simulator served.
type Stats struct {
	Requests    int
	ByEndpoint  map[string]int // "simple/price", "market_chart/range", "coins/list"
	RateLimited int            // 429s answered for the rate limit
	Unavailable int            // 503s answered during an outage
}

// Simulator is a fake CoinGecko. It is safe for concurrent use.
type Simulator struct {
	opts  Options
	clock provider.Clock
	coins []Coin
	byID  map[string]*Coin

	mu    sync.Mutex
	sent  map[string][]time.Time
	down  bool
	stats Stats
}

// New returns a simulator.
func New(opts Options) *Simulator {
	if opts.Clock == nil {
		opts.Clock = provider.RealClock{}
	}
	if opts.Start.IsZero() {
		opts.Start = time.Date(2018, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if opts.CallsPerMinute <= 0 {
		opts.CallsPerMinute = 30
	}
	coins := opts.Coins
	if coins == nil {
		coins = DefaultCoins()
	}
	coins = append([]Coin(nil), coins...)
	for i := 1; i <= opts.ExtraCoins; i++ {
		coins = append(coins, Coin{ID: fmt.Sprintf("coin-%03d", i), Symbol: fmt.Sprintf("c%03d", i), Name: fmt.Sprintf("Coin %d", i),
			Base: 0.5 + float64(i%97)*3.7, MarketCap: int64(1_000_000 * i)})
	}
	s := &Simulator{opts: opts, clock: opts.Clock, coins: coins, byID: map[string]*Coin{}, sent: map[string][]time.Time{},
		stats: Stats{ByEndpoint: map[string]int{}}}
	for i := range s.coins {
		c := &s.coins[i]
		if c.Listed.IsZero() {
			c.Listed = opts.Start
		}
		s.byID[c.ID] = c
	}
	return s
}

// SetDown starts (true) or ends an outage: every call answers 503 meanwhile.
func (s *Simulator) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// Stats returns a copy of the counters.
func (s *Simulator) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.ByEndpoint = map[string]int{}
	for k, v := range s.stats.ByEndpoint {
		st.ByEndpoint[k] = v
	}
	return st
}

// Price is the price of coin id in vs (a fiat code) at t, exactly as the simulator emits it;
// ok is false before the coin is listed or for an unknown id or currency.
func (s *Simulator) Price(id, vs string, t time.Time) (decimal.Decimal, bool) {
	c := s.byID[id]
	fx, fiat := fiatBase[vs]
	if c == nil || !fiat || t.Before(c.Listed) {
		return decimal.Decimal{}, false
	}
	usd := usdLevel(c, t)
	if vs != "usd" {
		usd /= fiatLevel(vs, fx, t)
	}
	return emit(usd), true
}

// FiatUSD is the simulator's USD value of one unit of fiat vs at t (before rounding of the
// quotes derived from it).
func (s *Simulator) FiatUSD(vs string, t time.Time) float64 {
	return fiatLevel(vs, fiatBase[vs], t)
}

func seed(s string) float64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return float64(h.Sum64()%10_000) / 10_000
}

// usdLevel is a smooth deterministic walk: a slow cycle, a faster one and a daily wiggle.
func usdLevel(c *Coin, t time.Time) float64 {
	days := float64(t.Unix()) / 86400
	ph := seed(c.ID) * 2 * math.Pi
	if c.Stable {
		return c.Base * (1 + 0.002*math.Sin(days/7+ph) + 0.001*math.Sin(days*2*math.Pi+ph))
	}
	return c.Base * (1 + 0.45*math.Sin(days/180+ph)) * (1 + 0.1*math.Sin(days/13+2*ph)) * (1 + 0.01*math.Sin(days*2*math.Pi+ph))
}

func fiatLevel(vs string, base float64, t time.Time) float64 {
	if vs == "usd" {
		return 1
	}
	days := float64(t.Unix()) / 86400
	return base * (1 + 0.04*math.Sin(days/90+seed(vs)*6))
}

// emit rounds to 10 significant digits, the decimal the simulator writes.
func emit(v float64) decimal.Decimal {
	return decimal.RequireFromString(strconv.FormatFloat(v, 'g', 10, 64))
}

// ServeHTTP answers the API.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	endpoint := ""
	switch {
	case path == "/api/v3/simple/price":
		endpoint = "simple/price"
	case path == "/api/v3/coins/list":
		endpoint = "coins/list"
	case strings.HasPrefix(path, "/api/v3/coins/") && strings.HasSuffix(path, "/market_chart/range"):
		endpoint = "market_chart/range"
	default:
		http.Error(w, `{"error":"Not Found"}`, http.StatusNotFound)
		return
	}
	key := r.Header.Get("x-cg-demo-api-key")
	if key == "" {
		key = r.Header.Get("x-cg-pro-api-key")
	}
	if s.opts.APIKey != "" && key != s.opts.APIKey {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"status": map[string]any{"error_code": 10002, "error_message": "API Key Missing"}})
		return
	}
	s.mu.Lock()
	s.stats.Requests++
	s.stats.ByEndpoint[endpoint]++
	if s.down {
		s.stats.Unavailable++
		s.mu.Unlock()
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": "Service Unavailable"})
		return
	}
	now := s.clock.Now()
	sent := s.sent[key]
	i := 0
	for i < len(sent) && !sent[i].After(now.Add(-time.Minute)) {
		i++
	}
	sent = sent[i:]
	if len(sent) >= s.opts.CallsPerMinute {
		s.stats.RateLimited++
		retry := int(math.Ceil(sent[0].Add(time.Minute).Sub(now).Seconds()))
		s.sent[key] = sent
		s.mu.Unlock()
		w.Header().Set("Retry-After", strconv.Itoa(max(retry, 1)))
		writeJSON(w, http.StatusTooManyRequests, map[string]any{"status": map[string]any{"error_code": 429,
			"error_message": "You've exceeded the Rate Limit."}})
		return
	}
	s.sent[key] = append(sent, now)
	s.mu.Unlock()

	q := r.URL.Query()
	switch endpoint {
	case "simple/price":
		s.simplePrice(w, q.Get("ids"), q.Get("vs_currencies"), q.Get("include_market_cap") == "true", now)
	case "coins/list":
		s.coinsList(w, q.Get("include_platform") == "true")
	default:
		id := strings.TrimSuffix(strings.TrimPrefix(path, "/api/v3/coins/"), "/market_chart/range")
		s.marketChart(w, id, q.Get("vs_currency"), q.Get("from"), q.Get("to"), now)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// num is a JSON number written from a decimal string, never through a float.
type num decimal.Decimal

func (n num) MarshalJSON() ([]byte, error) { return []byte(decimal.Decimal(n).String()), nil }

func (s *Simulator) simplePrice(w http.ResponseWriter, ids, vs string, caps bool, now time.Time) {
	out := map[string]map[string]any{}
	for _, id := range strings.Split(ids, ",") {
		c := s.byID[strings.TrimSpace(id)]
		if c == nil || now.Before(c.Listed) {
			continue
		}
		m := map[string]any{}
		for _, cur := range strings.Split(strings.ToLower(vs), ",") {
			if p, ok := s.Price(c.ID, cur, now); ok {
				m[cur] = num(p)
				if caps && cur == "usd" {
					m["usd_market_cap"] = num(decimal.NewFromInt(c.MarketCap))
				}
			}
		}
		out[c.ID] = m
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Simulator) coinsList(w http.ResponseWriter, platforms bool) {
	type entry struct {
		ID        string             `json:"id"`
		Symbol    string             `json:"symbol"`
		Name      string             `json:"name"`
		Platforms *map[string]string `json:"platforms,omitempty"`
	}
	out := make([]entry, 0, len(s.coins))
	for i := range s.coins {
		c := &s.coins[i]
		e := entry{ID: c.ID, Symbol: c.Symbol, Name: c.Name}
		if platforms {
			p := c.Platforms
			if p == nil {
				p = map[string]string{}
			}
			e.Platforms = &p
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	writeJSON(w, http.StatusOK, out)
}

// marketChart answers with CoinGecko's granularity: 5-minutely up to a day, hourly up to 90
// days, daily (at 00:00 UTC) beyond; no point after now or before the coin's listing.
func (s *Simulator) marketChart(w http.ResponseWriter, id, vs, fromS, toS string, now time.Time) {
	c := s.byID[id]
	if c == nil {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "coin not found"})
		return
	}
	vs = strings.ToLower(vs)
	if _, ok := fiatBase[vs]; !ok {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid vs_currency"})
		return
	}
	fromU, err1 := strconv.ParseInt(fromS, 10, 64)
	toU, err2 := strconv.ParseInt(toS, 10, 64)
	if err1 != nil || err2 != nil || toU < fromU {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid from/to"})
		return
	}
	from, to := time.Unix(fromU, 0).UTC(), time.Unix(toU, 0).UTC()
	if s.opts.MaxRangeDays > 0 && to.Sub(from) > time.Duration(s.opts.MaxRangeDays)*24*time.Hour {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]any{"status": map[string]any{"error_code": 10012,
			"error_message": fmt.Sprintf("Your request exceeds the allowed time range of %d days.", s.opts.MaxRangeDays)}}})
		return
	}
	step := 24 * time.Hour
	switch span := to.Sub(from); {
	case span <= 24*time.Hour:
		step = 5 * time.Minute
	case span <= 90*24*time.Hour:
		step = time.Hour
	}
	if to.After(now) {
		to = now
	}
	start := from.Truncate(step)
	if start.Before(from) {
		start = start.Add(step)
	}
	prices := [][2]any{}
	for t := start; !t.After(to); t = t.Add(step) {
		if p, ok := s.Price(id, vs, t); ok {
			prices = append(prices, [2]any{t.UnixMilli(), num(p)})
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"prices": prices, "market_caps": [][2]any{}, "total_volumes": [][2]any{}})
}
