package binance

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/opencalico/opencalico/provider"
	"github.com/shopspring/decimal"
)

func TestSignKnownAnswer(t *testing.T) {
	got := Sign("NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j",
		"symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559")
	if got != "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71" {
		t.Fatal(got)
	}
}

// The generated balances are exactly the net of the generated rows, recomputed here from
// the wire rows alone, and nothing is ever negative.
func TestGeneratedAccountNets(t *testing.T) {
	began := time.Now()
	s := New(Options{Seed: 7, End: time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)})
	if took := time.Since(began); took > time.Second {
		t.Errorf("generation took %s", took)
	}
	a := s.accounts[0]
	t.Log(a)
	net := map[string]decimal.Decimal{}
	add := func(asset, amount string, sign int64) {
		net[asset] = net[asset].Add(decimal.RequireFromString(amount).Mul(decimal.NewFromInt(sign)))
	}
	specs := map[string]symbolSpec{}
	for _, sp := range symbolSpecs {
		specs[sp.Symbol] = sp
	}
	n := 0
	for sym, rows := range a.trades {
		sp := specs[sym]
		for i, r := range rows {
			n++
			if i > 0 && r.ID <= rows[i-1].ID {
				t.Fatalf("%s ids not increasing", sym)
			}
			if r.IsBuyer {
				add(sp.Base, r.Qty, 1)
				add(sp.Quote, r.QuoteQty, -1)
			} else {
				add(sp.Base, r.Qty, -1)
				add(sp.Quote, r.QuoteQty, 1)
			}
			add(r.CommissionAsset, r.Commission, -1)
		}
	}
	for _, r := range a.deposits {
		if r.Status == 1 || r.Status == 6 {
			add(r.Coin, r.Amount, 1)
		}
	}
	for _, r := range a.withdrawals {
		if r.Status != 1 && r.Status != 3 && r.Status != 5 {
			add(r.Coin, r.Amount, -1)
			add(r.Coin, r.TransactionFee, -1)
		}
	}
	if n < 2500 || len(a.deposits) < 100 || len(a.withdrawals) < 40 {
		t.Errorf("too small: %s", a)
	}
	for asset, v := range net {
		if !v.Equal(a.total[asset]) {
			t.Errorf("%s: net %s, balance %s", asset, v, a.total[asset])
		}
		if v.IsNegative() {
			t.Errorf("%s negative", asset)
		}
	}
	// Same seed, same account.
	if b := New(Options{Seed: 7, End: time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)}).accounts[0]; b.apiKey != a.apiKey || b.String() != a.String() {
		t.Error("generation is not deterministic")
	}
}

func TestErrorShapes(t *testing.T) {
	end := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	clock := provider.NewScaledClock(end.Add(time.Hour), 1)
	s := New(Options{Seed: 1, Clock: clock, End: end, Trades: 50, WeightPerMinute: 200})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	creds := s.Credentials()[0]
	ts := func() string { return strconv.FormatInt(clock.Now().UnixMilli(), 10) }
	get := func(path, key, secret, query string) (int, map[string]any, http.Header) {
		if secret != "" {
			query += "&signature=" + Sign(secret, query)
		}
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path+"?"+query, nil)
		if key != "" {
			req.Header.Set("X-MBX-APIKEY", key)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		return res.StatusCode, m, res.Header
	}
	tests := []struct {
		name   string
		path   string
		key    string
		secret string
		query  string
		status int
		code   float64
	}{
		{"good", "/api/v3/account", creds["api_key"], creds["secret_key"], "omitZeroBalances=true&timestamp=" + ts(), 200, 0},
		{"bad signature", "/api/v3/account", creds["api_key"], "wrong", "timestamp=" + ts(), 400, -1022},
		{"unknown key", "/api/v3/account", "nope", creds["secret_key"], "timestamp=" + ts(), 401, -2015},
		{"stale timestamp", "/api/v3/account", creds["api_key"], creds["secret_key"], "recvWindow=5000&timestamp=" + strconv.FormatInt(clock.Now().UnixMilli()-10000, 10), 400, -1021},
		{"no symbol", "/api/v3/myTrades", creds["api_key"], creds["secret_key"], "timestamp=" + ts(), 400, -1102},
		{"trades window over 24h", "/api/v3/myTrades", creds["api_key"], creds["secret_key"], "symbol=BTCUSDT&startTime=0&endTime=86400001&timestamp=" + ts(), 400, -1127},
		{"deposit window over 90 days", "/sapi/v1/capital/deposit/hisrec", creds["api_key"], creds["secret_key"], "startTime=0&endTime=7776000001&timestamp=" + ts(), 400, -1127},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, h := get(tt.path, tt.key, tt.secret, tt.query)
			if status != tt.status || (tt.code != 0 && body["code"] != tt.code) {
				t.Fatalf("HTTP %d %v", status, body)
			}
			if h.Get("X-MBX-USED-WEIGHT-1M") == "" {
				t.Error("no X-MBX-USED-WEIGHT-1M")
			}
		})
	}
	// Past the budget: 429 with Retry-After, then 418 for not waiting.
	var status int
	var h http.Header
	for status = 200; status == 200 || status == 400; {
		status, _, h = get("/api/v3/exchangeInfo", "", "", "")
	}
	if status != 429 || h.Get("Retry-After") == "" {
		t.Fatalf("HTTP %d, Retry-After %q", status, h.Get("Retry-After"))
	}
	if status, body, _ := get("/api/v3/time", "", "", ""); status != 418 || body["code"] != -1003.0 {
		t.Fatalf("HTTP %d %v", status, body)
	}
	if s.RateLimitErrors() != 2 {
		t.Errorf("%d rate-limit errors counted", s.RateLimitErrors())
	}
}
