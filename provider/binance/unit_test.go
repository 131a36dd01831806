package binance

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
	"github.com/shopspring/decimal"
)

// The known-answer vector of Binance's documentation (PROVIDERS.md).
func TestSignKnownAnswer(t *testing.T) {
	const (
		secret  = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
		payload = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
		want    = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
	)
	if got := Sign(secret, payload); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	// The signer puts the parameters in order, recvWindow and timestamp last but the
	// signature, and signs exactly what it sends.
	params := []param{{"symbol", "LTCBTC"}, {"side", "BUY"}, {"type", "LIMIT"}, {"timeInForce", "GTC"}, {"quantity", "1"}, {"price", "0.1"}}
	a := New(Options{BaseURL: "http://x", Clock: fixedClock{time.UnixMilli(1499827319559)}, RecvWindow: 5000})
	r, _ := http.NewRequest(http.MethodGet, "http://x/api/v3/order", nil)
	if err := a.signer(secret, params)(r); err != nil {
		t.Fatal(err)
	}
	if got := r.URL.RawQuery; got != payload+"&signature="+want {
		t.Fatalf("query = %s", got)
	}
}

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time                                   { return c.t }
func (c fixedClock) Sleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func TestNormalizeTrade(t *testing.T) {
	m := market{Base: "BNB", Quote: "BTC"}
	tests := []struct {
		name        string
		in          wireTrade
		sub         string
		in0, out0   opencalico.Leg
		fees        []opencalico.Fee
		description string
	}{
		{"buy pays quote, receives base", wireTrade{Symbol: "BNBBTC", ID: 28457, Price: "4.00000100", Qty: "12.00000000", QuoteQty: "48.000012", Commission: "10.10000000", CommissionAsset: "BNB", Time: 1499865549590, IsBuyer: true},
			"buy", opencalico.Leg{AssetSymbol: "BTC", Amount: d("48.000012")}, opencalico.Leg{AssetSymbol: "BNB", Amount: d("12")},
			[]opencalico.Fee{{AssetSymbol: "BNB", Amount: d("10.1"), Kind: opencalico.FeeTrading}}, "Bought 12.00000000 BNB at 4.00000100 BTC"},
		{"sell gives base, receives quote", wireTrade{Symbol: "BNBBTC", ID: 7, Price: "0.01", Qty: "2", QuoteQty: "0.02", Commission: "0.00002", CommissionAsset: "BTC", Time: 1499865549590},
			"sell", opencalico.Leg{AssetSymbol: "BNB", Amount: d("2")}, opencalico.Leg{AssetSymbol: "BTC", Amount: d("0.02")},
			[]opencalico.Fee{{AssetSymbol: "BTC", Amount: d("0.00002"), Kind: opencalico.FeeTrading}}, "Sold 2 BNB at 0.01 BTC"},
		{"zero commission is no fee", wireTrade{Symbol: "BNBBTC", ID: 8, Price: "0.01", Qty: "2", QuoteQty: "0.02", Commission: "0.00000000", CommissionAsset: "BNB", Time: 1},
			"sell", opencalico.Leg{AssetSymbol: "BNB", Amount: d("2")}, opencalico.Leg{AssetSymbol: "BTC", Amount: d("0.02")}, nil, "Sold 2 BNB at 0.01 BTC"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx, err := normalizeTrade("conn", tt.in, m)
			if err != nil {
				t.Fatal(err)
			}
			if err := tx.Validate(); err != nil {
				t.Fatal(err)
			}
			if tx.Type != opencalico.TypeInputOutput || tx.Categorization != (opencalico.Categorization{Category: opencalico.CategoryTrade, Subcategory: tt.sub, ProviderType: "myTrades"}) {
				t.Errorf("type %s categorization %+v", tx.Type, tx.Categorization)
			}
			if tx.ExternalID != "trade:BNBBTC:"+itoa(tt.in.ID) || tx.Status != opencalico.TxConfirmed || !tx.Timestamp.Equal(time.UnixMilli(tt.in.Time)) {
				t.Errorf("id %s status %s time %s", tx.ExternalID, tx.Status, tx.Timestamp)
			}
			if !legEqual(tx.Inputs[0], tt.in0) || !legEqual(tx.Outputs[0], tt.out0) || len(tx.Inputs) != 1 || len(tx.Outputs) != 1 {
				t.Errorf("legs %+v → %+v", tx.Inputs, tx.Outputs)
			}
			if !feesEqual(tx.Fees, tt.fees) {
				t.Errorf("fees %+v, want %+v", tx.Fees, tt.fees)
			}
			if tx.Description != tt.description {
				t.Errorf("description %q", tx.Description)
			}
		})
	}
	if _, err := normalizeTrade("conn", wireTrade{Qty: "-1", QuoteQty: "1", Commission: "0"}, m); opencalico.ErrorCodeOf(err) != opencalico.EProviderError {
		t.Errorf("negative qty: %v", err)
	}
}

func itoa(i int64) string { return decimal.NewFromInt(i).String() }

func legEqual(a, b opencalico.Leg) bool {
	return a.AssetSymbol == b.AssetSymbol && a.Amount.Equal(b.Amount)
}

func feesEqual(a, b []opencalico.Fee) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].AssetSymbol != b[i].AssetSymbol || !a[i].Amount.Equal(b[i].Amount) || a[i].Kind != b[i].Kind {
			return false
		}
	}
	return true
}

func TestNormalizeDeposit(t *testing.T) {
	tests := []struct {
		status       int
		transferType int
		want         opencalico.TransactionStatus
		hash         string
	}{
		{0, 0, opencalico.TxPending, "0xabc"},
		{1, 0, opencalico.TxConfirmed, "0xabc"},
		{6, 0, opencalico.TxConfirmed, "0xabc"},
		{8, 0, opencalico.TxPending, "0xabc"},
		{7, 0, opencalico.TxFailed, "0xabc"},
		{2, 0, opencalico.TxFailed, "0xabc"},
		{1, 1, opencalico.TxConfirmed, ""}, // internal transfer: no chain hash
	}
	for _, tt := range tests {
		in := wireDeposit{ID: "769800519366885376", Amount: "0.001", Coin: "BNB", Network: "BSC", Status: tt.status,
			Address: "bnb1xyz", TxID: "0xabc", InsertTime: 1661493146000, TransferType: tt.transferType}
		tx, err := normalizeDeposit("conn", in)
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Validate(); err != nil {
			t.Fatal(err)
		}
		if tx.Status != tt.want || tx.TxHash != tt.hash || tx.ExternalID != "deposit:769800519366885376" ||
			tx.Type != opencalico.TypeReceive || tx.Categorization.Category != opencalico.CategoryDeposit ||
			tx.Categorization.ProviderType != "deposit" || !legEqual(tx.Outputs[0], opencalico.Leg{AssetSymbol: "BNB", Amount: d("0.001")}) ||
			tx.Chain != "BSC" || tx.ToAddress != "bnb1xyz" || len(tx.Fees) != 0 {
			t.Errorf("status %d transfer %d: %+v", tt.status, tt.transferType, tx)
		}
	}
}

func TestNormalizeWithdrawal(t *testing.T) {
	tests := []struct {
		status int
		want   opencalico.TransactionStatus
	}{
		{0, opencalico.TxPending}, {2, opencalico.TxPending}, {4, opencalico.TxPending},
		{6, opencalico.TxConfirmed},
		{1, opencalico.TxFailed}, {3, opencalico.TxFailed}, {5, opencalico.TxFailed},
	}
	for _, tt := range tests {
		in := wireWithdrawal{ID: "b6ae22b3aa844210a7041aee7589627c", Amount: "8.91000000", TransactionFee: "0.004", Coin: "USDT",
			Status: tt.status, Address: "0x94df", TxID: "0xb5ef", ApplyTime: "2019-10-12 11:12:02", Network: "ETH"}
		tx, err := normalizeWithdrawal("conn", in)
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Validate(); err != nil {
			t.Fatal(err)
		}
		if tx.Status != tt.want || tx.TxHash != "0xb5ef" || tx.ExternalID != "withdrawal:b6ae22b3aa844210a7041aee7589627c" ||
			tx.Type != opencalico.TypeSend || tx.Categorization.Category != opencalico.CategoryWithdrawal ||
			!tx.Timestamp.Equal(time.Date(2019, 10, 12, 11, 12, 2, 0, time.UTC)) ||
			!legEqual(tx.Inputs[0], opencalico.Leg{AssetSymbol: "USDT", Amount: d("8.91")}) ||
			!feesEqual(tx.Fees, []opencalico.Fee{{AssetSymbol: "USDT", Amount: d("0.004"), Kind: opencalico.FeeWithdrawal}}) {
			t.Errorf("status %d: %+v", tt.status, tx)
		}
	}
	if _, err := normalizeWithdrawal("conn", wireWithdrawal{ID: "x", Amount: "1", ApplyTime: "12/10/2019"}); err == nil {
		t.Error("a malformed applyTime was accepted")
	}
}

func TestNormalizeBalances(t *testing.T) {
	got, err := normalizeBalances("conn", []wireBalance{
		{"BTC", "1.50000000", "0.25000000"}, {"ETH", "0.00000000", "0.00000000"}, {"USDT", "0.00000000", "10.00000000"},
	}, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].AssetSymbol != "BTC" || !got[0].Quantity.Equal(d("1.75")) || !got[0].Available.Equal(d("1.5")) ||
		!got[0].Locked.Equal(d("0.25")) || got[1].AssetSymbol != "USDT" || !got[1].Quantity.Equal(d("10")) {
		t.Fatalf("%+v", got)
	}
	if _, err := normalizeBalances("conn", []wireBalance{{"BTC", "x", "0"}}, time.Unix(0, 0)); err == nil {
		t.Error("a malformed amount was accepted")
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		retry     string
		code      opencalico.ErrorCode // "" with transient false: success
		transient bool
		wait      time.Duration
	}{
		{"ok", 200, `{"serverTime":1}`, "", "", false, 0},
		{"truncated", 200, `{"serverTi`, "", "", true, 0},
		{"html", 200, `<html>502</html>`, "", "", true, 0},
		{"invalid key", 401, `{"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}`, "", opencalico.EInvalidCredentials, false, 0},
		{"bad signature", 400, `{"code":-1022,"msg":"Signature for this request is not valid."}`, "", opencalico.EInvalidCredentials, false, 0},
		{"429", 429, `{"code":-1003,"msg":"Too much request weight used"}`, "7", "", true, 7 * time.Second},
		{"418", 418, `{"code":-1003,"msg":"Way too much request weight used; IP banned"}`, "120", opencalico.ERateLimited, false, 120 * time.Second},
		{"503", 503, `{"code":-1001,"msg":"Internal error"}`, "", "", true, 0},
		{"waf 403", 403, `<html>forbidden</html>`, "", "", true, 0},
		{"window too long", 400, `{"code":-1127,"msg":"More than 24 hours between startTime and endTime."}`, "", opencalico.EProviderError, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.retry != "" {
				h.Set("Retry-After", tt.retry)
			}
			err := classify(&provider.Response{Status: tt.status, Header: h, Body: []byte(tt.body)})
			if provider.IsTransient(err) != tt.transient {
				t.Fatalf("transient = %v: %v", !tt.transient, err)
			}
			var te *provider.TransientError
			if errors.As(err, &te) && te.RetryAfter != tt.wait {
				t.Errorf("retry after %s", te.RetryAfter)
			}
			if !tt.transient && opencalico.ErrorCodeOf(err) != tt.code {
				t.Errorf("code %q: %v", opencalico.ErrorCodeOf(err), err)
			}
			var oe *opencalico.Error
			if errors.As(err, &oe) && oe.RetryAfter != tt.wait {
				t.Errorf("retry after %s", oe.RetryAfter)
			}
		})
	}
	// -1021 is handed back as is, for the caller to measure the clock again.
	var be *binanceError
	if err := classify(&provider.Response{Status: 400, Body: []byte(`{"code":-1021,"msg":"Timestamp for this request is outside of the recvWindow."}`)}); !errors.As(err, &be) || be.Code != -1021 {
		t.Errorf("-1021: %v", err)
	}
}

// manualClock moves only when slept on, so a limiter test runs instantly.
type manualClock struct{ t time.Time }

func (c *manualClock) Now() time.Time { return c.t }
func (c *manualClock) Sleep(ctx context.Context, d time.Duration) error {
	c.t = c.t.Add(d)
	return ctx.Err()
}

func TestWeightLimiter(t *testing.T) {
	ctx := context.Background()
	start := time.Date(2025, 1, 1, 0, 0, 10, 0, time.UTC)
	tests := []struct {
		name     string
		run      func(l *WeightLimiter, c *manualClock) error
		wantTime time.Time
		wantCode opencalico.ErrorCode
	}{
		{"within budget no wait", func(l *WeightLimiter, c *manualClock) error {
			for range 4 {
				if err := l.Wait(ctx, "ip", 20); err != nil {
					return err
				}
			}
			return nil
		}, start, ""},
		// A full minute is followed by the clock's uncertainty (DefaultClockSkew), during
		// which Binance's clock may still be in it.
		{"spent budget waits for the next minute", func(l *WeightLimiter, c *manualClock) error {
			for range 5 { // budget 100 - 5 reserve = 95: the fifth call of 20 waits
				if err := l.Wait(ctx, "ip", 20); err != nil {
					return err
				}
				l.Observe("ip", 200, http.Header{}) // answered: no longer in flight
			}
			return nil
		}, start.Truncate(time.Minute).Add(time.Minute + DefaultClockSkew), ""},
		{"server count corrects ours", func(l *WeightLimiter, c *manualClock) error {
			h := http.Header{"X-Mbx-Used-Weight-1m": []string{"90"}}
			l.Observe("ip", 200, h)
			return l.Wait(ctx, "ip", 20)
		}, start.Truncate(time.Minute).Add(time.Minute + DefaultClockSkew), ""},
		{"429 blocks until Retry-After", func(l *WeightLimiter, c *manualClock) error {
			l.Observe("ip", 429, http.Header{"Retry-After": []string{"3"}})
			return l.Wait(ctx, "ip", 1)
		}, start.Truncate(time.Minute).Add(time.Minute + DefaultClockSkew), ""}, // 3 s, then the full budget until the minute turns
		{"418 refuses until the ban ends", func(l *WeightLimiter, c *manualClock) error {
			l.Observe("ip", 418, http.Header{"Retry-After": []string{"120"}})
			return l.Wait(ctx, "ip", 1)
		}, start, opencalico.ERateLimited},
		{"keys are separate budgets", func(l *WeightLimiter, c *manualClock) error {
			l.Observe("other", 418, http.Header{"Retry-After": []string{"120"}})
			return l.Wait(ctx, "ip", 95)
		}, start, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &manualClock{t: start}
			l := NewWeightLimiter(c, 100, 5)
			err := tt.run(l, c)
			if opencalico.ErrorCodeOf(err) != tt.wantCode {
				t.Fatalf("err = %v", err)
			}
			if !c.t.Equal(tt.wantTime) {
				t.Errorf("clock at %s, want %s", c.t, tt.wantTime)
			}
		})
	}
}
