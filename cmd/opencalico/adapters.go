package main

import (
	"github.com/opencalico/opencalico/provider"
	"github.com/opencalico/opencalico/provider/binance"
	"github.com/opencalico/opencalico/provider/bitcoin"
	"github.com/opencalico/opencalico/provider/coinbase"
	"github.com/opencalico/opencalico/provider/kraken"
	"github.com/opencalico/opencalico/provider/solana"
)

// adapterFlags configure the provider adapters. Base URLs are not flags: each adapter reads
// OPENCALICO_PROVIDER_<ID>_BASE_URL itself (provider.BaseURL), so that the variable always
// wins, also over sandbox simulators.
type adapterFlags struct {
	egressAddress string
}

func (c *adapterFlags) register(fs flagSet) {
	fs.StringVar(&c.egressAddress, "egress-address", "default",
		"the public address this server calls providers from; Binance's weight budget is kept per egress address")
}

// registry builds the adapters the server offers.
func (c *adapterFlags) registry() *provider.Registry {
	return provider.NewRegistry(
		binance.New(binance.Options{LimitKey: c.egressAddress}),
		kraken.New(kraken.Options{}),
		coinbase.New(coinbase.Options{}),
		bitcoin.New(bitcoin.Options{}),
		solana.New(solana.Options{}),
	)
}
