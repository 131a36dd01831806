// Package price values assets in fiat: a price source (a CoinGecko-style API), the mapping
// from our assets to the source's price ids, a cache of current and historical prices in the
// store, and the valuation of positions, legs and fees at read time in the currency a
// partner asks for.
//
// Prices are kept in USD. A fiat currency is a price id of its own, "fiat:eur" being the USD
// value of one euro, derived from the source's quotes of a reference coin in both
// currencies (vs_currencies). A value in currency C is amount × usd(asset) / usd(C). A price
// that is not known gives a nil *Value (null), never zero.
package price

import (
	"context"
	"time"

	"github.com/shopspring/decimal"
)

// Coin is an entry of the source's id list.
type Coin struct {
	ID     string
	Symbol string
	Name   string
	// Platforms maps the source's platform names ("ethereum", "solana") to the coin's
	// contract address there.
	Platforms map[string]string
}

// Point is a price at a time.
type Point struct {
	At    time.Time
	Price decimal.Decimal
}

// Source is a price source.
type Source interface {
	// Current returns the current price of each id in each vs currency (lower case ISO
	// codes), by id and currency. Ids the source does not know are absent.
	Current(ctx context.Context, ids, vs []string) (map[string]map[string]decimal.Decimal, error)
	// MarketCaps returns the current USD market capitalisation of ids, for tie-breaks.
	MarketCaps(ctx context.Context, ids []string) (map[string]decimal.Decimal, error)
	// History returns the points of id in currency vs in [from, to], sorted by time. The
	// source chooses the granularity (daily for long ranges).
	History(ctx context.Context, id, vs string, from, to time.Time) ([]Point, error)
	// Coins returns the source's id list, with contract addresses.
	Coins(ctx context.Context) ([]Coin, error)
	// MaxRange is the longest range History accepts in one call; zero means no limit.
	MaxRange() time.Duration
}
