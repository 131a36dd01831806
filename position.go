package opencalico

import (
	"time"

	"github.com/shopspring/decimal"
)

// Position is the holding of one asset in one connection (AssetPosition in the API).
// Quantity is the total; Available, Locked and Staked split it as the provider reports.
type Position struct {
	ConnectionID string
	ProviderID   ProviderID
	AssetSymbol  string
	AssetName    string
	// AssetID is the CAIP-19 id where known (eip155:1/erc20:0xa0b8…).
	AssetID   string
	Chain     string
	Quantity  decimal.Decimal
	Available decimal.Decimal
	Locked    decimal.Decimal
	Staked    decimal.Decimal
	UpdatedAt time.Time
}
