package main

import (
	"log/slog"
	"os"

	"github.com/opencalico/opencalico/provider"
	"github.com/opencalico/opencalico/provider/binance"
	"github.com/opencalico/opencalico/provider/bitcoin"
	"github.com/opencalico/opencalico/provider/coinbase"
	"github.com/opencalico/opencalico/provider/ethereum"
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

// registry builds the adapters the server offers. Ethereum and the EVM chains are read
// through Etherscan, which needs the operator's API key: without OPENCALICO_ETHERSCAN_API_KEY
// they are not offered (log says so), rather than offered and failing every connection.
func (c *adapterFlags) registry(log *slog.Logger) *provider.Registry {
	adapters := []provider.Adapter{
		binance.New(binance.Options{LimitKey: c.egressAddress}),
		kraken.New(kraken.Options{}),
		coinbase.New(coinbase.Options{}),
		bitcoin.New(bitcoin.Options{}),
		solana.New(solana.Options{}),
	}
	if os.Getenv(ethereum.APIKeyEnv) != "" {
		adapters = append(adapters, ethereum.New(ethereum.Options{}))
	} else if log != nil {
		log.Info("Ethereum and EVM chains are not offered: set " + ethereum.APIKeyEnv + " to an Etherscan API key")
	}
	return provider.NewRegistry(adapters...)
}
