package opencalico

import (
	"time"

	"github.com/shopspring/decimal"
)

// ConnectionStatus is the state of a connection's data.
type ConnectionStatus string

// The connection statuses.
const (
	StatusPending        ConnectionStatus = "pending"
	StatusSyncing        ConnectionStatus = "syncing"
	StatusActive         ConnectionStatus = "active"
	StatusError          ConnectionStatus = "error"
	StatusReauthRequired ConnectionStatus = "reauth_required"
)

// Valid reports whether s is one of the defined statuses.
func (s ConnectionStatus) Valid() bool {
	switch s {
	case StatusPending, StatusSyncing, StatusActive, StatusError, StatusReauthRequired:
		return true
	}
	return false
}

// Connection is one linked account of a user at a provider: an API key, a wallet address, or
// an OAuth2 grant. Its credentials are not here: they are sealed and stored apart (see
// SealedSecret), so that a Connection can be logged and returned without care.
type Connection struct {
	ID           string // "conn_…"
	UserID       string
	ProviderID   ProviderID
	DisplayLabel string
	Type         AuthType
	Status       ConnectionStatus
	StatusDetail StatusDetail
	// Fingerprint identifies the credential without revealing it (a keyed hash of the API key
	// or of the normalized address), so that linking the same key twice is refused.
	Fingerprint string
	// Address and Chain are set for wallet connections.
	Address string
	Chain   string

	CreatedAt            time.Time
	LastSyncedAt         *time.Time
	AssetsSyncedAt       *time.Time
	TransactionsSyncedAt *time.Time
	// SyncAttemptedAt is when a sync stage last started, whatever its outcome.
	SyncAttemptedAt *time.Time
}

// StatusDetail explains a connection's status: the error behind it, what a partial sync
// could not read, and any disagreement between the history and the reported balances.
type StatusDetail struct {
	Cause   ErrorCode `json:"cause,omitempty"`
	Message string    `json:"message,omitempty"`
	// Incomplete names the sub-resources (a symbol, a wallet, an endpoint window) whose history
	// could not be read completely in the last sync.
	Incomplete []string `json:"incomplete,omitempty"`
	// Mismatches lists, per asset, where the net of the history differs from the balance the
	// provider reported.
	Mismatches []BalanceMismatch `json:"mismatches,omitempty"`
	// RetryAt is when the next automatic attempt is due, if one is.
	RetryAt *time.Time `json:"retry_at,omitempty"`
}

// IsZero reports whether the detail says nothing.
func (d StatusDetail) IsZero() bool {
	return d.Cause == "" && d.Message == "" && len(d.Incomplete) == 0 &&
		len(d.Mismatches) == 0 && d.RetryAt == nil
}

// BalanceMismatch is the outcome of reconciling one asset of a connection.
type BalanceMismatch struct {
	AssetSymbol string          `json:"asset_symbol"`
	Computed    decimal.Decimal `json:"computed"`
	Reported    decimal.Decimal `json:"reported"`
	Difference  decimal.Decimal `json:"difference"`
}

// SealedSecret is a connection's credentials after envelope encryption: a data key wrapped by
// the master key KeyID, and the credentials encrypted under that data key. Both ciphertexts
// are bound to the connection id, so a sealed secret moved to another row does not open.
type SealedSecret struct {
	ConnectionID string
	KeyID        string // the id of the master key that wraps WrappedKey
	WrappedKey   []byte
	Ciphertext   []byte
}
