package price_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/price"
	"github.com/opencalico/opencalico/price/sim"
	"github.com/opencalico/opencalico/store"
)

const usdcMainnet = "eip155:1/erc20:0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"

// expected computes a value from the simulator's own quotes, as the Valuer must: in USD the
// amount times the USD quote; in another currency divided by the exchange rate that the
// reference coin's quotes in both currencies give.
func expected(s *sim.Simulator, id string, amount decimal.Decimal, at time.Time, cur string) decimal.Decimal {
	p, ok := s.Price(id, "usd", at)
	if !ok {
		panic("no price for " + id)
	}
	if cur == "USD" {
		return amount.Mul(p).Round(8)
	}
	c := strings.ToLower(cur)
	bu, _ := s.Price("bitcoin", "usd", at)
	bc, _ := s.Price("bitcoin", c, at)
	return amount.Mul(p).DivRound(bu.DivRound(bc, 18), 8)
}

func wantValue(t *testing.T, what string, got *price.Value, want decimal.Decimal, cur string) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: null, want %s %s", what, want, cur)
	}
	if !got.Amount.Equal(want) || got.Currency != cur {
		t.Fatalf("%s: %s %s, want %s %s", what, got.Amount, got.Currency, want, cur)
	}
}

func wantNull(t *testing.T, what string, got *price.Value) {
	t.Helper()
	if got != nil {
		t.Fatalf("%s: %s %s, want null", what, got.Amount, got.Currency)
	}
}

// The scenario of the issue: legs, fees and positions valued in USD and EUR against the
// simulator; a trade's legs at the exchange's own fill price; null, never zero, for what has
// no price.
func TestValuesInUSDAndEUR(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, envOptions{})
	c := e.conn.ID
	tTrade := day(2025, 6, 1)
	tEth := day(2025, 9, 15)
	tEUR := day(2025, 11, 2)
	tNope := day(2026, 1, 10)
	tLate := day(2024, 12, 1) // before late-coin is listed
	txns := []*opencalico.Transaction{
		tx(c, "trade", tTrade, opencalico.CategoryTrade, []opencalico.Leg{leg("USDT", "30000")}, []opencalico.Leg{leg("BTC", "0.5")},
			opencalico.Fee{AssetSymbol: "BTC", Amount: dec("0.0005"), Kind: opencalico.FeeTrading}),
		tx(c, "eth", tEth, opencalico.CategoryDeposit, nil, []opencalico.Leg{leg("ETH", "1.25")},
			opencalico.Fee{AssetSymbol: "ETH", Amount: dec("0.001"), Kind: opencalico.FeeNetwork}),
		tx(c, "eur", tEUR, opencalico.CategoryDeposit, nil, []opencalico.Leg{leg("EUR", "100")}),
		tx(c, "usdc", tEUR, opencalico.CategoryWithdrawal, []opencalico.Leg{{AssetSymbol: "USDC", AssetID: usdcMainnet, Amount: dec("20")}}, nil,
			opencalico.Fee{AssetSymbol: "NOPE", Amount: dec("1"), Kind: opencalico.FeeNetwork}),
		tx(c, "nope", tNope, opencalico.CategoryAirdrop, nil, []opencalico.Leg{leg("NOPE", "1000")}),
		tx(c, "late", tLate, opencalico.CategoryAirdrop, nil, []opencalico.Leg{leg("LATE", "7")}),
	}
	if _, err := e.st.UpsertTransactions(ctx, txns); err != nil {
		t.Fatal(err)
	}
	if err := e.valuer.Queue(ctx, c, txns); err != nil {
		t.Fatal(err)
	}
	stats, err := e.valuer.Fill(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Per price id one call over its span: tether, bitcoin, ethereum, usd-coin, late-coin,
	// and the euro and pound rates (bitcoin in eur and gbp).
	if stats.Requests != 7 {
		t.Errorf("fill made %d history calls, want 7 (%+v)", stats.Requests, stats)
	}
	if got := e.sim.Stats().ByEndpoint["market_chart/range"]; got != stats.Requests {
		t.Errorf("simulator saw %d history calls, stats say %d", got, stats.Requests)
	}

	for _, cur := range []string{"USD", "EUR"} {
		vals, err := e.valuer.ValueTransactions(ctx, txns, cur)
		if err != nil {
			t.Fatal(err)
		}
		// The trade: the USDT leg at tether's market price (not assumed 1), the BTC leg at
		// the same value, the BTC fee at the fill's implied price.
		usdt := expected(e.sim, "tether", dec("30000"), tTrade, cur)
		if usdt.Equal(dec("30000")) {
			t.Fatalf("the simulator's tether is at par; the test proves nothing")
		}
		wantValue(t, cur+" trade USDT leg", vals[0].Inputs[0], usdt, cur)
		wantValue(t, cur+" trade BTC leg (fill price)", vals[0].Outputs[0], usdt, cur)
		market := expected(e.sim, "bitcoin", dec("0.5"), tTrade, cur)
		if market.Equal(usdt) {
			t.Fatalf("market and fill price agree; the test proves nothing")
		}
		fee := dec("0.0005").Mul(usdt).DivRound(dec("0.5"), 8)
		wantValue(t, cur+" trade BTC fee", vals[0].Fees[0], fee, cur)
		wantValue(t, cur+" trade fee total", vals[0].FeeTotal, fee, cur)

		wantValue(t, cur+" ETH receive", vals[1].Outputs[0], expected(e.sim, "ethereum", dec("1.25"), tEth, cur), cur)
		ethFee := expected(e.sim, "ethereum", dec("0.001"), tEth, cur)
		wantValue(t, cur+" ETH fee", vals[1].Fees[0], ethFee, cur)
		wantValue(t, cur+" ETH fee total", vals[1].FeeTotal, ethFee, cur)

		// A fiat leg by exchange rate: 100 EUR is 100 EUR, and its USD value by the rate.
		if cur == "EUR" {
			got := vals[2].Outputs[0]
			if got == nil || got.Amount.Sub(dec("100")).Abs().GreaterThan(dec("0.00000001")) {
				t.Fatalf("EUR leg in EUR: %v", got)
			}
		} else {
			bu, _ := e.sim.Price("bitcoin", "usd", tEUR)
			be, _ := e.sim.Price("bitcoin", "eur", tEUR)
			wantValue(t, "EUR leg in USD", vals[2].Outputs[0], dec("100").Mul(bu.DivRound(be, 18)).Round(8), cur)
		}
		// A token by contract address; its fee has no price, so the fee total is null.
		wantValue(t, cur+" USDC by contract", vals[3].Inputs[0], expected(e.sim, "usd-coin", dec("20"), tEUR, cur), cur)
		wantNull(t, cur+" fee of an unknown asset", vals[3].Fees[0])
		wantNull(t, cur+" fee total with an unknown fee", vals[3].FeeTotal)
		wantNull(t, cur+" unknown asset", vals[4].Outputs[0])
		wantNull(t, cur+" asset before its listing", vals[5].Outputs[0])
		// No fees: the total is a known zero.
		wantValue(t, cur+" total of no fees", vals[4].FeeTotal, decimal.Zero, cur)

		// The EUR values agree with the simulator's own EUR quotes, to rounding.
		if cur == "EUR" {
			direct, _ := e.sim.Price("ethereum", "eur", tEth)
			diff := vals[1].Outputs[0].Amount.Sub(dec("1.25").Mul(direct)).Abs()
			if diff.GreaterThan(dec("0.0001")) {
				t.Errorf("ETH in EUR %s differs from the simulator's EUR quote by %s", vals[1].Outputs[0].Amount, diff)
			}
		}
	}

	// Positions, at current prices.
	ps := []opencalico.Position{
		{ConnectionID: c, AssetSymbol: "BTC", Quantity: dec("1.5")},
		{ConnectionID: c, AssetSymbol: "USD", Quantity: dec("100")},
		{ConnectionID: c, AssetSymbol: "EUR", Quantity: dec("50")},
		{ConnectionID: c, AssetSymbol: "USDC", AssetID: usdcMainnet, Quantity: dec("20")},
		{ConnectionID: c, AssetSymbol: "NOPE", Quantity: dec("10")},
	}
	if err := e.valuer.TrackPositions(ctx, ps); err != nil {
		t.Fatal(err)
	}
	if err := e.valuer.RefreshCurrent(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.sim.Stats().ByEndpoint["simple/price"]; n != 1 {
		t.Errorf("refresh made %d simple/price calls, want 1", n)
	}
	now := e.clock.Now()
	btcUSD, _ := e.sim.Price("bitcoin", "usd", now)
	btcEUR, _ := e.sim.Price("bitcoin", "eur", now)
	usdc, _ := e.sim.Price("usd-coin", "usd", now)
	rate := btcUSD.DivRound(btcEUR, 18)
	for _, cur := range []string{"USD", "EUR"} {
		pv, err := e.valuer.ValuePositions(ctx, ps, cur)
		if err != nil {
			t.Fatal(err)
		}
		if cur == "USD" {
			wantValue(t, "BTC price", pv[0].Price, btcUSD, cur)
			wantValue(t, "BTC value", pv[0].Value, dec("1.5").Mul(btcUSD).Round(8), cur)
			wantValue(t, "USD value", pv[1].Value, dec("100"), cur)
			wantValue(t, "EUR value in USD", pv[2].Value, dec("50").Mul(rate).Round(8), cur)
			wantValue(t, "USDC value", pv[3].Value, dec("20").Mul(usdc).Round(8), cur)
		} else {
			wantValue(t, "BTC price in EUR", pv[0].Price, btcUSD.DivRound(rate, 18), cur)
			wantValue(t, "BTC value in EUR", pv[0].Value, dec("1.5").Mul(btcUSD).DivRound(rate, 8), cur)
			wantValue(t, "USD value in EUR", pv[1].Value, dec("100").DivRound(rate, 8), cur)
			wantValue(t, "EUR value in EUR", pv[2].Value, dec("50").Mul(rate).DivRound(rate, 8), cur)
		}
		wantNull(t, cur+" unknown position price", pv[4].Price)
		wantNull(t, cur+" unknown position value", pv[4].Value)
	}

	if _, err := e.valuer.ValueTransactions(ctx, txns, "XYZ"); opencalico.ErrorCodeOf(err) != opencalico.EBadRequest {
		t.Errorf("unknown currency: %v", err)
	}
	// A second fill has nothing left to do.
	stats, err = e.valuer.Fill(ctx)
	if err != nil || stats.Requests != 0 {
		t.Errorf("second fill: %+v, %v", stats, err)
	}
}

// A source outage: existing values stay, what is missing stays null and queued, and the next
// fill after the outage fills it and marks the transaction modified in the changes feed.
func TestOutageKeepsValuesAndIsRetried(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, envOptions{gecko: price.CoinGeckoOptions{MaxAttempts: 2}})
	c := e.conn.ID
	old := []*opencalico.Transaction{tx(c, "old", day(2025, 5, 5), opencalico.CategoryDeposit, nil, []opencalico.Leg{leg("ETH", "2")})}
	if _, err := e.st.UpsertTransactions(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := e.valuer.Queue(ctx, c, old); err != nil {
		t.Fatal(err)
	}
	if _, err := e.valuer.Fill(ctx); err != nil {
		t.Fatal(err)
	}
	ps := []opencalico.Position{{ConnectionID: c, AssetSymbol: "ETH", Quantity: dec("2")}}
	if err := e.valuer.TrackPositions(ctx, ps); err != nil {
		t.Fatal(err)
	}
	if err := e.valuer.RefreshCurrent(ctx); err != nil {
		t.Fatal(err)
	}
	before, _ := e.valuer.ValueTransactions(ctx, old, "USD")
	posBefore, _ := e.valuer.ValuePositions(ctx, ps, "USD")

	// A new transaction arrives while the source is down.
	fresh := []*opencalico.Transaction{tx(c, "new", day(2025, 12, 24), opencalico.CategoryDeposit, nil, []opencalico.Leg{leg("SOL", "3")})}
	if _, err := e.st.UpsertTransactions(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if err := e.valuer.Queue(ctx, c, fresh); err != nil {
		t.Fatal(err)
	}
	cursor, err := e.st.Changes(ctx, store.ChangesFilter{UserID: e.user.ID, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	e.sim.SetDown(true)
	e.clock.Set(e.clock.Now().Add(time.Hour))
	stats, err := e.valuer.Fill(ctx)
	if err == nil || len(stats.Failed) == 0 {
		t.Fatalf("fill during an outage: %+v, %v", stats, err)
	}
	if err := e.valuer.RefreshCurrent(ctx); err == nil {
		t.Fatal("refresh during an outage succeeded")
	}
	after, _ := e.valuer.ValueTransactions(ctx, old, "USD")
	posAfter, _ := e.valuer.ValuePositions(ctx, ps, "USD")
	if !after[0].Outputs[0].Amount.Equal(before[0].Outputs[0].Amount) || !posAfter[0].Value.Amount.Equal(posBefore[0].Value.Amount) {
		t.Fatalf("the outage changed existing values: %v → %v, %v → %v", before[0].Outputs[0], after[0].Outputs[0], posBefore[0].Value, posAfter[0].Value)
	}
	v, _ := e.valuer.ValueTransactions(ctx, fresh, "USD")
	wantNull(t, "value not known yet", v[0].Outputs[0])
	if needs, _ := e.st.PriceNeeds(ctx, store.Day(e.clock.Now())); len(needs) == 0 {
		t.Fatal("the needs were dropped during the outage")
	}

	e.sim.SetDown(false)
	stats, err = e.valuer.Fill(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Marked == 0 {
		t.Errorf("no transaction marked modified: %+v", stats)
	}
	v, _ = e.valuer.ValueTransactions(ctx, fresh, "USD")
	wantValue(t, "value after the outage", v[0].Outputs[0], expected(e.sim, "solana", dec("3"), fresh[0].Timestamp, "USD"), "USD")
	ch, err := e.st.Changes(ctx, store.ChangesFilter{UserID: e.user.ID, After: cursor.Next, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Modified) != 1 || ch.Modified[0].ID != fresh[0].ID || len(ch.Added) != 0 {
		t.Fatalf("changes after the fill: added %d, modified %v", len(ch.Added), ch.Modified)
	}
}

// The simulator enforces its per-minute limit with 429 and Retry-After. An adapter that
// ignores the limit is refused but recovers through Retry-After; one configured with the
// limit is never refused.
func TestRateLimits(t *testing.T) {
	for _, tc := range []struct {
		name      string
		perMinute int
		refused   bool
	}{{"limiter over the limit", 1000, true}, {"limiter at the limit", 5, false}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, envOptions{sim: sim.Options{CallsPerMinute: 5, ExtraCoins: 12}, gecko: price.CoinGeckoOptions{CallsPerMinute: tc.perMinute}})
			var txns []*opencalico.Transaction
			for i := 1; i <= 12; i++ {
				sym := "C0" + string(rune('0'+i/10)) + string(rune('0'+i%10))
				txns = append(txns, tx(e.conn.ID, sym, day(2025, 1, i), opencalico.CategoryAirdrop, nil, []opencalico.Leg{leg(sym, "1")}))
			}
			if err := e.valuer.Queue(ctx, e.conn.ID, txns); err != nil {
				t.Fatal(err)
			}
			start := e.clock.Now()
			stats, err := e.valuer.Fill(ctx)
			if err != nil {
				t.Fatal(err)
			}
			st := e.sim.Stats()
			if (st.RateLimited > 0) != tc.refused {
				t.Errorf("simulator refused %d calls", st.RateLimited)
			}
			// 12 coins and two rates (the reference coin is among none of them: +1), plus the
			// id list: 16 calls at 5 a minute take three minutes at least.
			if stats.Requests != 15 {
				t.Errorf("%d history calls, want 15", stats.Requests)
			}
			if took := e.clock.Now().Sub(start); took < 3*time.Minute {
				t.Errorf("16 calls at 5 a minute took %s of simulated time", took)
			}
			v, err := e.valuer.ValueTransactions(ctx, txns[:1], "EUR")
			if err != nil || v[0].Outputs[0] == nil {
				t.Fatalf("valuing after rate limits: %v, %v", v, err)
			}
		})
	}
}

// A source that limits history ranges gets one call per allowed range and no more.
func TestHistoryRangeLimit(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, envOptions{sim: sim.Options{MaxRangeDays: 365}, gecko: price.CoinGeckoOptions{MaxRange: 365 * 24 * time.Hour},
		valuer: price.Options{Currencies: []string{"USD"}}})
	var txns []*opencalico.Transaction
	for d := day(2023, 1, 1); d.Before(day(2025, 3, 11)); d = d.AddDate(0, 0, 10) { // 800 days
		txns = append(txns, tx(e.conn.ID, d.String(), d.Add(3*time.Hour), opencalico.CategoryDeposit, nil, []opencalico.Leg{leg("ETH", "1")}))
	}
	if err := e.valuer.Queue(ctx, e.conn.ID, txns); err != nil {
		t.Fatal(err)
	}
	stats, err := e.valuer.Fill(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Requests != 3 { // ceil(800/365)
		t.Errorf("%d calls for 800 days at 365 a call, want 3", stats.Requests)
	}
	vals, err := e.valuer.ValueTransactions(ctx, txns, "USD")
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vals {
		if v.Outputs[0] == nil {
			t.Fatalf("transaction %d not valued", i)
		}
	}
}

func TestMapping(t *testing.T) {
	ctx := context.Background()
	coins := append(sim.DefaultCoins(),
		sim.Coin{ID: "zzz", Symbol: "zzz", Name: "Zed", Base: 1, MarketCap: 10},
		sim.Coin{ID: "zzz-token", Symbol: "zzz", Name: "Zed Token", Base: 1, MarketCap: 5},
		sim.Coin{ID: "wrapped-zzz", Symbol: "zzz", Name: "Wrapped Zed", Base: 1, MarketCap: 100},
		sim.Coin{ID: "solo", Symbol: "solo", Name: "Solo", Base: 1})
	e := newEnv(t, envOptions{sim: sim.Options{Coins: coins}})
	m := price.NewMapper(e.src, e.clock)
	keys := []string{
		"symbol:BTC", "symbol:XBT", "symbol:usdt", "symbol:EUR", "fx:gbp",
		"bip122:000000000019d6689c085ae165831e93/slip44:0",
		usdcMainnet,
		"eip155:1/erc20:0x95AD61B0A150D79219DCF64E1E6CC01F0B64C4CE",                                  // SHIB, by coins/list
		"solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp/token:7vfCXTUXx5WJV5JADk17DUJ4ksgau7utNKj4b963voxs", // ETH (Wormhole)
		"eip155:1/erc20:0x0000000000000000000000000000000000000bad",                                  // unknown token
		"symbol:ZZZ", "symbol:SOLO", "symbol:NOPE",
	}
	got, err := m.Resolve(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"bitcoin", "bitcoin", "tether", "fiat:eur", "fiat:gbp", "bitcoin", "usd-coin", "shiba-inu",
		"ethereum-wormhole", "", "zzz", "solo", ""}
	for i, k := range keys {
		if got[k] != want[i] {
			t.Errorf("%s → %q, want %q", k, got[k], want[i])
		}
	}
	if n := e.sim.Stats().ByEndpoint["coins/list"]; n != 1 {
		t.Errorf("%d id list calls, want 1", n)
	}
}
