package price_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/price"
	"github.com/opencalico/opencalico/price/sim"
)

// BenchmarkValuation values 1,000,000 legs (500,000 two-leg trades between 50 assets, no
// stablecoin among them, so every leg is priced at the market) spread over 5 years of daily
// prices, in EUR, page by page as the API reads them (1,000 transactions a page). Before the
// timer starts, the needs of every page are queued and one Fill fetches the history, at the
// demo plan's 30 calls a minute (on a clock that skips waits); its number of calls is
// reported against the minimum: one per price id (50 coins and the euro rate) per range the
// source allows. Run with -benchtime=1x.
func BenchmarkValuation(b *testing.B) {
	for _, tc := range []struct {
		name     string
		maxRange int // days; 0 is unlimited
	}{{"range=unlimited", 0}, {"range=365d", 365}} {
		b.Run(tc.name, func(b *testing.B) { benchValuation(b, tc.maxRange) })
	}
}

func benchValuation(b *testing.B, maxRangeDays int) {
	const (
		assets   = 50
		txCount  = 500_000
		pageSize = 1000
	)
	ctx := context.Background()
	first := day(2021, 1, 1)
	last := day(2025, 12, 31)
	e := newEnv(b, envOptions{
		now:    day(2026, 1, 10),
		sim:    sim.Options{Coins: sim.DefaultCoins()[:1], ExtraCoins: assets - 1, MaxRangeDays: maxRangeDays},
		gecko:  price.CoinGeckoOptions{MaxRange: time.Duration(maxRangeDays) * 24 * time.Hour},
		valuer: price.Options{Currencies: []string{"USD", "EUR"}},
	})
	symbols := []string{"BTC"}
	for i := 1; i < assets; i++ {
		symbols = append(symbols, fmt.Sprintf("C%03d", i))
	}
	step := last.Add(24*time.Hour-time.Second).Sub(first) / txCount
	page := func(p int) []*opencalico.Transaction {
		out := make([]*opencalico.Transaction, 0, pageSize)
		for k := p * pageSize; k < (p+1)*pageSize; k++ {
			in, outAsset := (k*7)%assets, (k*13+1)%assets
			if in == outAsset {
				outAsset = (outAsset + 1) % assets
			}
			amt := decimal.New(int64(k%1000+1), -3)
			out = append(out, &opencalico.Transaction{ID: fmt.Sprint(k), ConnectionID: e.conn.ID, Type: opencalico.TypeInputOutput,
				Categorization: opencalico.Categorization{Category: opencalico.CategoryTrade}, Timestamp: first.Add(time.Duration(k) * step),
				Inputs:  []opencalico.Leg{{AssetSymbol: symbols[in], Amount: amt}},
				Outputs: []opencalico.Leg{{AssetSymbol: symbols[outAsset], Amount: amt.Mul(decimal.NewFromInt(2))}}})
		}
		return out
	}
	pages := txCount / pageSize
	for p := 0; p < pages; p++ {
		if err := e.valuer.Queue(ctx, e.conn.ID, page(p)); err != nil {
			b.Fatal(err)
		}
	}
	fillStart := time.Now()
	stats, err := e.valuer.Fill(ctx)
	if err != nil {
		b.Fatal(err)
	}
	fillTime := time.Since(fillStart)
	days := int(last.Sub(first)/(24*time.Hour)) + 1
	perID := 1
	if maxRangeDays > 0 {
		perID = (days + maxRangeDays - 1) / maxRangeDays
	}
	minRequests := (assets + 1) * perID // 50 coins and the euro rate

	b.ResetTimer()
	var valuing time.Duration
	legs := 0
	for i := 0; i < b.N; i++ {
		for p := 0; p < pages; p++ {
			txns := page(p)
			start := time.Now()
			vals, err := e.valuer.ValueTransactions(ctx, txns, "EUR")
			valuing += time.Since(start)
			if err != nil {
				b.Fatal(err)
			}
			for j, v := range vals {
				if v.Inputs[0] == nil || v.Outputs[0] == nil {
					b.Fatalf("transaction %s at %s not valued", txns[j].ID, txns[j].Timestamp)
				}
				legs += 2
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(legs)/valuing.Seconds(), "legs/s")
	b.ReportMetric(float64(stats.Requests), "requests")
	b.ReportMetric(float64(minRequests), "min_requests")
	b.ReportMetric(float64(e.sim.Stats().ByEndpoint["market_chart/range"]), "sim_history_calls")
	b.ReportMetric(float64(e.sim.Stats().RateLimited), "sim_429s")
	b.ReportMetric(float64(stats.Points), "points")
	b.ReportMetric(fillTime.Seconds(), "fill_s")
}
