package price

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
)

// CoinGeckoID is the provider id under which the CoinGecko adapter reads its base URL
// override, OPENCALICO_PROVIDER_COINGECKO_BASE_URL.
const CoinGeckoID opencalico.ProviderID = "coingecko"

// CoinGeckoBaseURL is the public (and demo-key) API; a pro key uses https://pro-api.coingecko.com.
const CoinGeckoBaseURL = "https://api.coingecko.com"

// CoinGeckoOptions configure the adapter. Zero values take the demo plan's settings.
type CoinGeckoOptions struct {
	BaseURL string // default provider.BaseURL("coingecko", CoinGeckoBaseURL)
	// APIKey is sent in KeyHeader (default x-cg-pro-api-key when the base URL is the pro
	// API, else x-cg-demo-api-key). Empty: no key.
	APIKey    string
	KeyHeader string
	HTTP      *http.Client
	Clock     provider.Clock
	// CallsPerMinute is the rate limit (default 30, the demo plan); the limiter keeps the
	// calls of any 60 s window at or below it. Limiter replaces it (to share one).
	CallsPerMinute int
	Limiter        provider.Limiter
	// MaxRange is the longest history range of one call (default 0: no limit, as the paid
	// plans; the demo plan allows 365 days back only).
	MaxRange time.Duration
	// IDsPerCall caps the ids of one simple/price call (default 200), which keeps URLs short.
	IDsPerCall int
	// Client retry knobs (defaults of provider.Client when zero).
	MaxAttempts    int
	BaseDelay      time.Duration
	MaxDelay       time.Duration
	AttemptTimeout time.Duration
}

// CoinGecko reads a CoinGecko-style API. It is safe for concurrent use.
type CoinGecko struct {
	base       string
	key        string
	keyHeader  string
	client     *provider.Client
	maxRange   time.Duration
	idsPerCall int
}

var _ Source = (*CoinGecko)(nil)

// NewCoinGecko returns an adapter.
func NewCoinGecko(opts CoinGeckoOptions) *CoinGecko {
	if opts.BaseURL == "" {
		opts.BaseURL = provider.BaseURL(CoinGeckoID, CoinGeckoBaseURL)
	}
	opts.BaseURL = strings.TrimRight(opts.BaseURL, "/")
	if opts.KeyHeader == "" {
		opts.KeyHeader = "x-cg-demo-api-key"
		if strings.Contains(opts.BaseURL, "pro-api.") {
			opts.KeyHeader = "x-cg-pro-api-key"
		}
	}
	if opts.Clock == nil {
		opts.Clock = provider.RealClock{}
	}
	if opts.CallsPerMinute <= 0 {
		opts.CallsPerMinute = 30
	}
	if opts.Limiter == nil {
		opts.Limiter = NewWindowLimiter(opts.Clock, opts.CallsPerMinute, time.Minute)
	}
	if opts.IDsPerCall <= 0 {
		opts.IDsPerCall = 200
	}
	return &CoinGecko{
		base: opts.BaseURL, key: opts.APIKey, keyHeader: opts.KeyHeader, maxRange: opts.MaxRange, idsPerCall: opts.IDsPerCall,
		client: &provider.Client{
			HTTP: opts.HTTP, Limiter: opts.Limiter, Classify: classify, Clock: opts.Clock,
			MaxAttempts: opts.MaxAttempts, BaseDelay: opts.BaseDelay, MaxDelay: opts.MaxDelay,
			AttemptTimeout: opts.AttemptTimeout, ProviderID: CoinGeckoID,
		},
	}
}

// MaxRange is the configured longest history range.
func (c *CoinGecko) MaxRange() time.Duration { return c.maxRange }

// classify maps CoinGecko's answers: 429 and 5xx are transient (Retry-After honoured), 401
// and 403 a bad key, other 4xx permanent.
func classify(r *provider.Response) error {
	switch {
	case r.Status == http.StatusTooManyRequests || r.Status >= 500:
		return provider.Transient(fmt.Errorf("coingecko: HTTP %d", r.Status), provider.RetryAfter(r.Header))
	case r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden:
		return &opencalico.Error{Code: opencalico.EInvalidCredentials, ProviderID: CoinGeckoID,
			Message: "The price source refused the API key.", Err: fmt.Errorf("HTTP %d: %s", r.Status, snippet(r.Body))}
	case r.Status == http.StatusNotFound:
		return &opencalico.Error{Code: opencalico.ENotFound, ProviderID: CoinGeckoID,
			Message: "The price source does not know this id.", Err: fmt.Errorf("HTTP 404: %s", snippet(r.Body))}
	case r.Status >= 400:
		return &opencalico.Error{Code: opencalico.EProviderError, ProviderID: CoinGeckoID,
			Message: "The price source refused the request.", Err: fmt.Errorf("HTTP %d: %s", r.Status, snippet(r.Body))}
	}
	return nil
}

func snippet(b []byte) string {
	if len(b) > 200 {
		b = b[:200]
	}
	return string(b)
}

func (c *CoinGecko) get(ctx context.Context, path string, query url.Values, out any) error {
	h := http.Header{"Accept": {"application/json"}}
	if c.key != "" {
		h.Set(c.keyHeader, c.key)
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	res, err := c.client.Do(ctx, provider.Request{Method: http.MethodGet, URL: u, Header: h, LimitKey: c.key, Cost: 1})
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(res.Body))
	dec.UseNumber() // prices stay exact: json.Number is the text of the number
	if err := dec.Decode(out); err != nil {
		return provider.Transient(fmt.Errorf("coingecko: %s: malformed answer: %w", path, err), 0)
	}
	return nil
}

// number turns a JSON number into a decimal without a float.
func number(n json.Number) (decimal.Decimal, error) { return decimal.NewFromString(string(n)) }

// Current reads /api/v3/simple/price, in calls of at most IDsPerCall ids.
func (c *CoinGecko) Current(ctx context.Context, ids, vs []string) (map[string]map[string]decimal.Decimal, error) {
	out := map[string]map[string]decimal.Decimal{}
	ids = sortedUnique(ids)
	for start := 0; start < len(ids); start += c.idsPerCall {
		chunk := ids[start:min(start+c.idsPerCall, len(ids))]
		var raw map[string]map[string]json.Number
		q := url.Values{"ids": {strings.Join(chunk, ",")}, "vs_currencies": {strings.ToLower(strings.Join(vs, ","))}, "precision": {"full"}}
		if err := c.get(ctx, "/api/v3/simple/price", q, &raw); err != nil {
			return nil, err
		}
		for id, byVs := range raw {
			for cur, n := range byVs {
				d, err := number(n)
				if err != nil {
					return nil, fmt.Errorf("coingecko: price of %s in %s: %w", id, cur, err)
				}
				if out[id] == nil {
					out[id] = map[string]decimal.Decimal{}
				}
				out[id][cur] = d
			}
		}
	}
	return out, nil
}

// MarketCaps reads /api/v3/simple/price with include_market_cap.
func (c *CoinGecko) MarketCaps(ctx context.Context, ids []string) (map[string]decimal.Decimal, error) {
	out := map[string]decimal.Decimal{}
	ids = sortedUnique(ids)
	for start := 0; start < len(ids); start += c.idsPerCall {
		chunk := ids[start:min(start+c.idsPerCall, len(ids))]
		var raw map[string]map[string]json.Number
		q := url.Values{"ids": {strings.Join(chunk, ",")}, "vs_currencies": {"usd"}, "include_market_cap": {"true"}}
		if err := c.get(ctx, "/api/v3/simple/price", q, &raw); err != nil {
			return nil, err
		}
		for id, m := range raw {
			if n, ok := m["usd_market_cap"]; ok {
				if d, err := number(n); err == nil {
					out[id] = d
				}
			}
		}
	}
	return out, nil
}

// History reads /api/v3/coins/{id}/market_chart/range. A range longer than MaxRange is an
// error: the caller splits it (see Valuer.Fill), which keeps the number of calls visible.
func (c *CoinGecko) History(ctx context.Context, id, vs string, from, to time.Time) ([]Point, error) {
	if c.maxRange > 0 && to.Sub(from) > c.maxRange {
		return nil, fmt.Errorf("coingecko: range %s–%s exceeds %s", from, to, c.maxRange)
	}
	var raw struct {
		Prices [][2]json.Number `json:"prices"`
	}
	q := url.Values{"vs_currency": {strings.ToLower(vs)}, "from": {strconv.FormatInt(from.Unix(), 10)},
		"to": {strconv.FormatInt(to.Unix(), 10)}, "precision": {"full"}}
	if err := c.get(ctx, "/api/v3/coins/"+url.PathEscape(id)+"/market_chart/range", q, &raw); err != nil {
		return nil, err
	}
	out := make([]Point, 0, len(raw.Prices))
	for _, p := range raw.Prices {
		ms, err := strconv.ParseInt(string(p[0]), 10, 64)
		if err != nil {
			// Some answers carry the time as 1.7e12; it is an integer all the same.
			d, derr := number(p[0])
			if derr != nil {
				return nil, fmt.Errorf("coingecko: history of %s: bad time %q", id, p[0])
			}
			ms = d.IntPart()
		}
		v, err := number(p[1])
		if err != nil {
			return nil, fmt.Errorf("coingecko: history of %s: bad price %q", id, p[1])
		}
		out = append(out, Point{At: time.UnixMilli(ms).UTC(), Price: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out, nil
}

// Coins reads /api/v3/coins/list?include_platform=true.
func (c *CoinGecko) Coins(ctx context.Context) ([]Coin, error) {
	var raw []struct {
		ID        string            `json:"id"`
		Symbol    string            `json:"symbol"`
		Name      string            `json:"name"`
		Platforms map[string]string `json:"platforms"`
	}
	if err := c.get(ctx, "/api/v3/coins/list", url.Values{"include_platform": {"true"}}, &raw); err != nil {
		return nil, err
	}
	out := make([]Coin, 0, len(raw))
	for _, r := range raw {
		out = append(out, Coin{ID: r.ID, Symbol: r.Symbol, Name: r.Name, Platforms: r.Platforms})
	}
	return out, nil
}

func sortedUnique(values []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range values {
		if v != "" && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}

// WindowLimiter keeps the calls of every key within any window at or below max, as a
// per-minute limit is counted, and holds a key back as long as a 429's Retry-After says.
type WindowLimiter struct {
	clock  provider.Clock
	max    int
	window time.Duration

	mu    sync.Mutex
	sent  map[string][]time.Time
	until map[string]time.Time
}

// NewWindowLimiter returns a limiter of max calls per window.
func NewWindowLimiter(clock provider.Clock, max int, window time.Duration) *WindowLimiter {
	if clock == nil {
		clock = provider.RealClock{}
	}
	return &WindowLimiter{clock: clock, max: max, window: window, sent: map[string][]time.Time{}, until: map[string]time.Time{}}
}

// Wait blocks until a call fits in the key's window, then counts it.
func (l *WindowLimiter) Wait(ctx context.Context, key string, _ int) error {
	for {
		l.mu.Lock()
		now := l.clock.Now()
		var wait time.Duration
		if u := l.until[key]; now.Before(u) {
			wait = u.Sub(now)
		} else {
			sent := l.sent[key]
			i := 0
			for i < len(sent) && !sent[i].After(now.Add(-l.window)) {
				i++
			}
			sent = sent[i:]
			if len(sent) < l.max {
				l.sent[key] = append(sent, now)
				l.mu.Unlock()
				return nil
			}
			l.sent[key] = sent
			// A small margin against the two clocks disagreeing about the window's edge.
			wait = sent[0].Add(l.window).Sub(now) + l.window/100
		}
		l.mu.Unlock()
		if err := l.clock.Sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// Observe holds the key back after a 429 for as long as its Retry-After says.
func (l *WindowLimiter) Observe(key string, status int, header http.Header) {
	if status != http.StatusTooManyRequests {
		return
	}
	d := provider.RetryAfter(header)
	if d <= 0 {
		d = l.window / 10
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if u := l.clock.Now().Add(d); u.After(l.until[key]) {
		l.until[key] = u
	}
}
