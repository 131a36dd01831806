// Package binance simulates the parts of the Binance REST API that opencalico reads: server
// time, exchangeInfo, the spot account, myTrades and the capital deposit and withdrawal
// histories. It speaks the real wire format, verifies HMAC-SHA256 signatures and the
// timestamp/recvWindow rule as Binance does, and enforces the per-IP request weight limit
// with the real headers, 429 answers and 418 bans. Its accounts are generated
// deterministically from a seed, and their balances are exactly the net of their history.
//
// It deliberately does not import the adapter (provider/binance): both are written from the
// documentation, and the known-answer vectors decide where they could disagree.
package binance

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencalico/opencalico/provider"
	"github.com/shopspring/decimal"
)

// Options configure a simulator.
type Options struct {
	Seed  int64
	Clock provider.Clock // nil: the wall clock
	// Accounts is the number of seeded users (default 1).
	Accounts int
	// Trades, Deposits and Withdrawals size each account (defaults 3000, 150, 60), over
	// Years of history (default 3) ending at End (default: the clock's hour, minus one).
	Trades, Deposits, Withdrawals int
	Years                         int
	End                           time.Time
	// WeightPerMinute is the request weight each IP may use per minute (default 6000).
	WeightPerMinute int
	// PerIP counts weight per remote address; otherwise every request shares one bucket.
	PerIP bool
	// BanDuration is how long a 418 ban lasts (default 2 minutes, Binance's shortest).
	BanDuration time.Duration
}

// Simulator is a fake Binance. It is safe for concurrent use.
type Simulator struct {
	opts     Options
	clock    provider.Clock
	accounts []*account

	mu      sync.Mutex
	byKey   map[string]*account
	buckets map[string]*bucket
	faults  []*Fault
	skew    time.Duration

	requests        atomic.Int64
	rateLimitErrors atomic.Int64
	perPath         sync.Map // path → *atomic.Int64
}

// bucket is one IP's weight for the current minute and its throttling state.
type bucket struct {
	minute      int64 // unix minute the weight counts in
	used        int
	retryAt     time.Time // after a 429: requests before this earn a ban
	bannedUntil time.Time
}

// New generates the accounts and returns the simulator.
func New(opts Options) *Simulator {
	if opts.Clock == nil {
		opts.Clock = provider.RealClock{}
	}
	if opts.Accounts <= 0 {
		opts.Accounts = 1
	}
	if opts.Trades <= 0 {
		opts.Trades = 3000
	}
	if opts.Deposits <= 0 {
		opts.Deposits = 150
	}
	if opts.Withdrawals <= 0 {
		opts.Withdrawals = 60
	}
	if opts.Years <= 0 {
		opts.Years = 3
	}
	if opts.End.IsZero() {
		opts.End = opts.Clock.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	}
	if opts.WeightPerMinute <= 0 {
		opts.WeightPerMinute = 6000
	}
	if opts.BanDuration <= 0 {
		opts.BanDuration = 2 * time.Minute
	}
	s := &Simulator{opts: opts, clock: opts.Clock, byKey: map[string]*account{}, buckets: map[string]*bucket{}}
	start := opts.End.AddDate(-opts.Years, 0, 0)
	for i := range opts.Accounts {
		rng := rand.New(rand.NewPCG(uint64(opts.Seed), uint64(i)+1))
		a := generate(rng, start, opts.End, opts.Trades, opts.Deposits, opts.Withdrawals)
		s.accounts = append(s.accounts, a)
		s.byKey[a.apiKey] = a
	}
	return s
}

// Credentials returns the good credentials of each seeded account, named as the adapter's
// AuthMetaData names them.
func (s *Simulator) Credentials() []provider.Credentials {
	out := make([]provider.Credentials, len(s.accounts))
	for i, a := range s.accounts {
		out[i] = provider.Credentials{"api_key": a.apiKey, "secret_key": a.secret}
	}
	return out
}

// Revoke makes account i's key invalid, as deleting it on Binance does.
func (s *Simulator) Revoke(i int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts[i].revoked = true
}

// SetSkew moves the server's clock by d relative to the shared clock, to test that a client
// keeps its offset from GET /api/v3/time.
func (s *Simulator) SetSkew(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.skew = d
}

// SettlePending confirms every pending deposit (crediting it) and completes every
// processing withdrawal, as time would.
func (s *Simulator) SettlePending() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.accounts {
		for i := range a.deposits {
			d := &a.deposits[i]
			if d.Status == 0 || d.Status == 8 {
				d.Status = 1
				d.ConfirmTimes = "12/12"
				d.CompleteTime = d.InsertTime + 600_000
				a.total[d.Coin] = a.total[d.Coin].Add(decimal.RequireFromString(d.Amount))
			}
		}
		for i := range a.withdrawals {
			w := &a.withdrawals[i]
			if w.Status == 0 || w.Status == 2 || w.Status == 4 {
				w.Status = 6
				w.TxID = "0x" + strings.Repeat("ab", 32)
				w.CompleteTime = time.UnixMilli(w.applyMillis).UTC().Add(30 * time.Minute).Format(applyTimeLayout)
			}
		}
	}
}

// Requests is the number of requests served.
func (s *Simulator) Requests() int64 { return s.requests.Load() }

// RequestsTo is the number of requests served on one path.
func (s *Simulator) RequestsTo(path string) int64 {
	if c, ok := s.perPath.Load(path); ok {
		return c.(*atomic.Int64).Load()
	}
	return 0
}

// RateLimitErrors counts the 429 and 418 answers the weight limit produced (injected faults
// are not counted).
func (s *Simulator) RateLimitErrors() int64 { return s.rateLimitErrors.Load() }

func (s *Simulator) now() time.Time {
	s.mu.Lock()
	skew := s.skew
	s.mu.Unlock()
	return s.clock.Now().Add(skew)
}

// weights are the request weights of the endpoints, as Binance documents them. The capital
// endpoints are counted in the same per-IP budget here for simplicity.
var weights = map[string]int{
	"/api/v3/time":                      1,
	"/api/v3/exchangeInfo":              20,
	"/api/v3/account":                   20,
	"/api/v3/myTrades":                  20,
	"/sapi/v1/capital/deposit/hisrec":   1,
	"/sapi/v1/capital/withdraw/history": 1,
}

// Handler serves the simulated API.
func (s *Simulator) Handler() http.Handler {
	mux := s.mux()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		c, _ := s.perPath.LoadOrStore(r.URL.Path, new(atomic.Int64))
		c.(*atomic.Int64).Add(1)
		if !s.admit(w, r) {
			return
		}
		if s.fault(w, r) {
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// mux routes the endpoints, without limits or faults.
func (s *Simulator) mux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v3/time", s.serverTime)
	mux.HandleFunc("GET /api/v3/exchangeInfo", s.exchangeInfo)
	mux.HandleFunc("GET /api/v3/account", s.signed(s.account))
	mux.HandleFunc("GET /api/v3/myTrades", s.signed(s.myTrades))
	mux.HandleFunc("GET /sapi/v1/capital/deposit/hisrec", s.signed(s.depositHistory))
	mux.HandleFunc("GET /sapi/v1/capital/withdraw/history", s.signed(s.withdrawHistory))
	return mux
}

// admit applies the weight limit: it sets X-MBX-USED-WEIGHT-1M and answers 429 when the
// minute's budget is spent, and 418 to a client that keeps calling after a 429 or is banned.
func (s *Simulator) admit(w http.ResponseWriter, r *http.Request) bool {
	weight, ok := weights[r.URL.Path]
	if !ok {
		weight = 1
	}
	key := "default"
	if s.opts.PerIP {
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			key = host
		}
	}
	now := s.clock.Now()
	s.mu.Lock()
	b := s.buckets[key]
	if b == nil {
		b = &bucket{}
		s.buckets[key] = b
	}
	minute := now.Unix() / 60
	if minute != b.minute {
		b.minute, b.used = minute, 0
	}
	switch {
	case now.Before(b.bannedUntil):
		until := b.bannedUntil
		used := b.used
		s.mu.Unlock()
		s.rateLimitErrors.Add(1)
		s.banned(w, until, now, used)
		return false
	case now.Before(b.retryAt):
		b.bannedUntil = now.Add(s.opts.BanDuration)
		until := b.bannedUntil
		used := b.used
		s.mu.Unlock()
		s.rateLimitErrors.Add(1)
		s.banned(w, until, now, used)
		return false
	case b.used+weight > s.opts.WeightPerMinute:
		next := time.Unix((minute+1)*60, 0)
		b.retryAt = next
		used := b.used
		s.mu.Unlock()
		s.rateLimitErrors.Add(1)
		w.Header().Set("X-MBX-USED-WEIGHT-1M", strconv.Itoa(used))
		w.Header().Set("Retry-After", strconv.Itoa(ceilSeconds(next.Sub(now))))
		writeError(w, http.StatusTooManyRequests, -1003, "Too much request weight used; current limit is "+
			strconv.Itoa(s.opts.WeightPerMinute)+" request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.")
		return false
	}
	b.used += weight
	used := b.used
	s.mu.Unlock()
	w.Header().Set("X-MBX-USED-WEIGHT-1M", strconv.Itoa(used))
	return true
}

func (s *Simulator) banned(w http.ResponseWriter, until, now time.Time, used int) {
	w.Header().Set("X-MBX-USED-WEIGHT-1M", strconv.Itoa(used))
	w.Header().Set("Retry-After", strconv.Itoa(ceilSeconds(until.Sub(now))))
	writeError(w, http.StatusTeapot, -1003, fmt.Sprintf("Way too much request weight used; IP banned until %d. Please use WebSocket Streams for live updates to avoid bans.", until.UnixMilli()))
}

func ceilSeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeError(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, map[string]any{"code": code, "msg": msg})
}

func (s *Simulator) serverTime(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]int64{"serverTime": s.now().UnixMilli()})
}

func (s *Simulator) exchangeInfo(w http.ResponseWriter, _ *http.Request) {
	type filter struct {
		FilterType string `json:"filterType"`
		MinQty     string `json:"minQty,omitempty"`
		MaxQty     string `json:"maxQty,omitempty"`
		StepSize   string `json:"stepSize,omitempty"`
		MinPrice   string `json:"minPrice,omitempty"`
		MaxPrice   string `json:"maxPrice,omitempty"`
		TickSize   string `json:"tickSize,omitempty"`
	}
	type symbol struct {
		Symbol               string   `json:"symbol"`
		Status               string   `json:"status"`
		BaseAsset            string   `json:"baseAsset"`
		BaseAssetPrecision   int      `json:"baseAssetPrecision"`
		QuoteAsset           string   `json:"quoteAsset"`
		QuotePrecision       int      `json:"quotePrecision"`
		QuoteAssetPrecision  int      `json:"quoteAssetPrecision"`
		OrderTypes           []string `json:"orderTypes"`
		IsSpotTradingAllowed bool     `json:"isSpotTradingAllowed"`
		Filters              []filter `json:"filters"`
		Permissions          []string `json:"permissions"`
	}
	syms := make([]symbol, 0, len(symbolSpecs))
	for _, sp := range symbolSpecs {
		syms = append(syms, symbol{
			Symbol: sp.Symbol, Status: sp.Status, BaseAsset: sp.Base, BaseAssetPrecision: 8,
			QuoteAsset: sp.Quote, QuotePrecision: 8, QuoteAssetPrecision: 8,
			OrderTypes:           []string{"LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"},
			IsSpotTradingAllowed: sp.Status == "TRADING",
			Filters: []filter{
				{FilterType: "PRICE_FILTER", MinPrice: decimal.New(1, -sp.PriceDecimals).StringFixed(8), MaxPrice: "1000000.00000000", TickSize: decimal.New(1, -sp.PriceDecimals).StringFixed(8)},
				{FilterType: "LOT_SIZE", MinQty: decimal.New(1, -sp.QtyDecimals).StringFixed(8), MaxQty: "9000.00000000", StepSize: decimal.New(1, -sp.QtyDecimals).StringFixed(8)},
			},
			Permissions: []string{},
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"timezone":   "UTC",
		"serverTime": s.now().UnixMilli(),
		"rateLimits": []map[string]any{
			{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": s.opts.WeightPerMinute},
			{"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
			{"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
		},
		"exchangeFilters": []any{},
		"symbols":         syms,
	})
}

// signed checks the API key, the timestamp and recvWindow, and the signature, in the order
// Binance does, and passes the account on.
func (s *Simulator) signed(next func(http.ResponseWriter, *http.Request, *account)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("X-MBX-APIKEY")
		if key == "" {
			writeError(w, http.StatusUnauthorized, -2014, "API-key format invalid.")
			return
		}
		s.mu.Lock()
		a := s.byKey[key]
		revoked := a != nil && a.revoked
		s.mu.Unlock()
		if a == nil || revoked {
			writeError(w, http.StatusUnauthorized, -2015, "Invalid API-key, IP, or permissions for action.")
			return
		}
		q := r.URL.Query()
		ts, err := strconv.ParseInt(q.Get("timestamp"), 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.")
			return
		}
		recvWindow := int64(5000)
		if v := q.Get("recvWindow"); v != "" {
			recvWindow, err = strconv.ParseInt(v, 10, 64)
			if err != nil || recvWindow <= 0 || recvWindow > 60000 {
				writeError(w, http.StatusBadRequest, -1131, "recvWindow must be less than 60000")
				return
			}
		}
		now := s.now().UnixMilli()
		if ts > now+1000 {
			writeError(w, http.StatusBadRequest, -1021, "Timestamp for this request was 1000ms ahead of the server's time.")
			return
		}
		if now-ts > recvWindow {
			writeError(w, http.StatusBadRequest, -1021, "Timestamp for this request is outside of the recvWindow.")
			return
		}
		if !verifySignature(a.secret, r) {
			writeError(w, http.StatusBadRequest, -1022, "Signature for this request is not valid.")
			return
		}
		next(w, r, a)
	}
}

// verifySignature checks signature = hex(HMAC-SHA256(secret, query + body)), where query is
// the query string as sent, without the signature parameter, which must come last.
func verifySignature(secret string, r *http.Request) bool {
	raw := r.URL.RawQuery
	i := strings.LastIndex(raw, "signature=")
	if i < 0 || (i > 0 && raw[i-1] != '&') {
		return false
	}
	got := raw[i+len("signature="):]
	payload := strings.TrimSuffix(raw[:i], "&")
	if r.Body != nil {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			return false
		}
		payload += string(body)
	}
	want := Sign(secret, payload)
	return hmac.Equal([]byte(strings.ToLower(got)), []byte(want))
}

// Sign returns hex(HMAC-SHA256(secret, payload)), Binance's signature.
func Sign(secret, payload string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(payload))
	return hex.EncodeToString(m.Sum(nil))
}

func (s *Simulator) account(w http.ResponseWriter, r *http.Request, a *account) {
	omitZero := r.URL.Query().Get("omitZeroBalances") == "true"
	type balance struct {
		Asset  string `json:"asset"`
		Free   string `json:"free"`
		Locked string `json:"locked"`
	}
	s.mu.Lock()
	assets := make([]string, 0, len(a.total))
	for asset := range a.total {
		assets = append(assets, asset)
	}
	if !omitZero {
		for _, sp := range symbolSpecs {
			for _, asset := range []string{sp.Base, sp.Quote} {
				if _, ok := a.total[asset]; !ok && !slices.Contains(assets, asset) {
					assets = append(assets, asset)
				}
			}
		}
	}
	slices.Sort(assets)
	balances := make([]balance, 0, len(assets))
	for _, asset := range assets {
		total := a.total[asset]
		if omitZero && total.IsZero() {
			continue
		}
		// A tenth of the stablecoin sits in an open order: locked, but still the user's.
		locked := decimal.Zero
		if asset == "USDT" {
			locked = total.Div(decimal.NewFromInt(10)).Truncate(8)
		}
		balances = append(balances, balance{Asset: asset, Free: total.Sub(locked).StringFixed(8), Locked: locked.StringFixed(8)})
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"makerCommission": 10, "takerCommission": 10, "buyerCommission": 0, "sellerCommission": 0,
		"commissionRates": map[string]string{"maker": "0.00100000", "taker": "0.00100000", "buyer": "0.00000000", "seller": "0.00000000"},
		"canTrade":        true, "canWithdraw": true, "canDeposit": true, "brokered": false,
		"requireSelfTradePrevention": false, "preventSor": false,
		"updateTime":  s.now().UnixMilli(),
		"accountType": "SPOT",
		"balances":    balances,
		"permissions": []string{"SPOT"},
		"uid":         a.uid,
	})
}

// intParam reads an optional integer parameter; ok is false (and the error written) when it
// is present but malformed.
func intParam(w http.ResponseWriter, r *http.Request, name string) (v int64, present, ok bool) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return 0, false, true
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, -1100, fmt.Sprintf("Illegal characters found in parameter '%s'; legal range is '^[0-9]{1,20}$'.", name))
		return 0, true, false
	}
	return v, true, true
}

func limitParam(w http.ResponseWriter, r *http.Request, def int64) (int64, bool) {
	limit, present, ok := intParam(w, r, "limit")
	if !ok {
		return 0, false
	}
	if !present {
		return def, true
	}
	if limit < 1 || limit > 1000 {
		writeError(w, http.StatusBadRequest, -1130, "Invalid data sent for a parameter.")
		return 0, false
	}
	return limit, true
}

func (s *Simulator) myTrades(w http.ResponseWriter, r *http.Request, a *account) {
	symbol := r.URL.Query().Get("symbol")
	if symbol == "" {
		writeError(w, http.StatusBadRequest, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
		return
	}
	if !slices.ContainsFunc(symbolSpecs, func(sp symbolSpec) bool { return sp.Symbol == symbol }) {
		writeError(w, http.StatusBadRequest, -1121, "Invalid symbol.")
		return
	}
	limit, ok := limitParam(w, r, 500)
	if !ok {
		return
	}
	fromID, hasFrom, ok := intParam(w, r, "fromId")
	if !ok {
		return
	}
	startTime, hasStart, ok := intParam(w, r, "startTime")
	if !ok {
		return
	}
	endTime, hasEnd, ok := intParam(w, r, "endTime")
	if !ok {
		return
	}
	switch {
	case hasStart && hasEnd && endTime-startTime > 24*3600*1000:
		writeError(w, http.StatusBadRequest, -1127, "More than 24 hours between startTime and endTime.")
		return
	case hasStart && !hasEnd:
		endTime, hasEnd = startTime+24*3600*1000, true
	case hasEnd && !hasStart:
		startTime, hasStart = endTime-24*3600*1000, true
	}
	rows := a.trades[symbol]
	out := []tradeRow{}
	if hasFrom || hasStart {
		for _, t := range rows {
			if (hasFrom && t.ID < fromID) || (hasStart && (t.Time < startTime || t.Time > endTime)) {
				continue
			}
			out = append(out, t)
			if int64(len(out)) == limit {
				break
			}
		}
	} else {
		// Without fromId or a window, the most recent trades.
		from := max(0, len(rows)-int(limit))
		out = append(out, rows[from:]...)
	}
	writeJSON(w, http.StatusOK, out)
}

// window reads startTime/endTime of the capital histories: at most 90 days apart, and the
// last 90 days when absent.
func (s *Simulator) window(w http.ResponseWriter, r *http.Request) (start, end int64, ok bool) {
	const span = 90 * 24 * 3600 * 1000
	start, hasStart, ok := intParam(w, r, "startTime")
	if !ok {
		return 0, 0, false
	}
	end, hasEnd, ok := intParam(w, r, "endTime")
	if !ok {
		return 0, 0, false
	}
	switch {
	case hasStart && hasEnd:
		if end-start > span {
			writeError(w, http.StatusBadRequest, -1127, "More than 90 days between startTime and endTime.")
			return 0, 0, false
		}
	case hasStart:
		end = start + span
	case hasEnd:
		start = end - span
	default:
		end = s.now().UnixMilli()
		start = end - span
	}
	return start, end, true
}

func (s *Simulator) depositHistory(w http.ResponseWriter, r *http.Request, a *account) {
	start, end, ok := s.window(w, r)
	if !ok {
		return
	}
	limit, ok := limitParam(w, r, 1000)
	if !ok {
		return
	}
	offset, _, ok := intParam(w, r, "offset")
	if !ok {
		return
	}
	coin := r.URL.Query().Get("coin")
	s.mu.Lock()
	var rows []depositRow
	// Newest first, as Binance answers.
	for i := len(a.deposits) - 1; i >= 0; i-- {
		d := a.deposits[i]
		if d.InsertTime >= start && d.InsertTime <= end && (coin == "" || d.Coin == coin) {
			rows = append(rows, d)
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, page(rows, offset, limit))
}

func (s *Simulator) withdrawHistory(w http.ResponseWriter, r *http.Request, a *account) {
	start, end, ok := s.window(w, r)
	if !ok {
		return
	}
	limit, ok := limitParam(w, r, 1000)
	if !ok {
		return
	}
	offset, _, ok := intParam(w, r, "offset")
	if !ok {
		return
	}
	coin := r.URL.Query().Get("coin")
	s.mu.Lock()
	var rows []withdrawalRow
	for i := len(a.withdrawals) - 1; i >= 0; i-- {
		wd := a.withdrawals[i]
		if wd.applyMillis >= start && wd.applyMillis <= end && (coin == "" || wd.Coin == coin) {
			rows = append(rows, wd)
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, page(rows, offset, limit))
}

func page[T any](rows []T, offset, limit int64) []T {
	if offset < 0 || offset >= int64(len(rows)) {
		return []T{}
	}
	return rows[offset:min(int64(len(rows)), offset+limit)]
}
