package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/opencalico/opencalico/price"
	pricesim "github.com/opencalico/opencalico/price/sim"
	"github.com/opencalico/opencalico/store"
)

// priceFlags choose where fiat values come from.
type priceFlags struct {
	source         string
	callsPerMinute int
}

func (c *priceFlags) register(fs flagSet) {
	fs.StringVar(&c.source, "price-source", "", `"coingecko" to value positions and transactions in fiat (key in OPENCALICO_COINGECKO_API_KEY, base URL in OPENCALICO_PROVIDER_COINGECKO_BASE_URL); empty: no values (every value is null). Sandbox mode uses a price simulator`)
	fs.IntVar(&c.callsPerMinute, "price-calls-per-minute", 30, "the price source's rate limit (CoinGecko's demo plan: 30)")
}

// valuer builds the price valuer, or returns nil when no source is configured.
func (c *priceFlags) valuer(db *store.Store, baseURL string) (*price.Valuer, error) {
	switch c.source {
	case "":
		if baseURL == "" {
			return nil, nil
		}
	case "coingecko":
	default:
		return nil, fmt.Errorf("--price-source %q: want coingecko or nothing", c.source)
	}
	src := price.NewCoinGecko(price.CoinGeckoOptions{BaseURL: baseURL, APIKey: os.Getenv("OPENCALICO_COINGECKO_API_KEY"),
		CallsPerMinute: c.callsPerMinute})
	return price.New(price.Options{Source: src, Store: db}), nil
}

// startPriceSim serves the price simulator on a loopback port for sandbox mode and returns its
// base URL; an explicit OPENCALICO_PROVIDER_COINGECKO_BASE_URL wins, as for every provider.
func (sb *sandboxSims) startPriceSim(host string) (string, error) {
	if u := os.Getenv("OPENCALICO_PROVIDER_COINGECKO_BASE_URL"); u != "" {
		return u, nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	hs := &http.Server{Handler: pricesim.New(pricesim.Options{CallsPerMinute: 600}), ReadHeaderTimeout: 10 * time.Second}
	sb.servers = append(sb.servers, hs)
	go func() { _ = hs.Serve(ln) }()
	return "http://" + ln.Addr().String(), nil
}
