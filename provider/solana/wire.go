package solana

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
)

// JSON-RPC 2.0 envelopes, and the answers read (only the fields used).

type rpcRequest struct {
	JSONRPC string `json:"jsonrpc"`
	ID      int    `json:"id"`
	Method  string `json:"method"`
	Params  []any  `json:"params"`
}

type rpcResponse struct {
	Result json.RawMessage `json:"result"`
	Error  *rpcError       `json:"error"`
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// JSON-RPC error codes Solana nodes answer with.
const (
	codeInvalidParams = -32602
	// Server errors a later attempt may cure: the node is behind, the slot was skipped or
	// is not yet available, the block is still being confirmed.
	codeBlockCleanedUp       = -32001
	codeBlockNotAvailable    = -32004
	codeNodeUnhealthy        = -32005
	codeSlotSkipped          = -32007
	codeLongTermStorageSlot  = -32009
	codeBlockStatusNotYet    = -32014
	codeMinContextSlotNotMet = -32016
)

type balanceResult struct {
	Value uint64 `json:"value"`
}

type tokenAccountsResult struct {
	Value []tokenAccount `json:"value"`
}

type tokenAccount struct {
	Pubkey  string `json:"pubkey"`
	Account struct {
		Data struct {
			Parsed struct {
				Info struct {
					Mint        string      `json:"mint"`
					Owner       string      `json:"owner"`
					TokenAmount tokenAmount `json:"tokenAmount"`
				} `json:"info"`
			} `json:"parsed"`
		} `json:"data"`
	} `json:"account"`
}

type tokenAmount struct {
	Amount         string `json:"amount"` // base units, a u64 in decimal
	Decimals       int32  `json:"decimals"`
	UIAmountString string `json:"uiAmountString"`
}

// SignatureInfo is an entry of getSignaturesForAddress.
type SignatureInfo struct {
	Signature          string          `json:"signature"`
	Slot               uint64          `json:"slot"`
	Err                json.RawMessage `json:"err"`
	BlockTime          *int64          `json:"blockTime"`
	ConfirmationStatus string          `json:"confirmationStatus"`
}

// Tx is a getTransaction answer in jsonParsed encoding.
type Tx struct {
	Slot        uint64  `json:"slot"`
	BlockTime   *int64  `json:"blockTime"`
	Meta        *TxMeta `json:"meta"`
	Transaction struct {
		Signatures []string `json:"signatures"`
		Message    struct {
			AccountKeys []AccountKey `json:"accountKeys"`
		} `json:"message"`
	} `json:"transaction"`
}

// TxMeta is the transaction's status and balance changes.
type TxMeta struct {
	Err               json.RawMessage `json:"err"`
	Fee               uint64          `json:"fee"`
	PreBalances       []uint64        `json:"preBalances"`
	PostBalances      []uint64        `json:"postBalances"`
	PreTokenBalances  []TokenBalance  `json:"preTokenBalances"`
	PostTokenBalances []TokenBalance  `json:"postTokenBalances"`
}

// failed reports whether the transaction failed (meta.err is neither absent nor null).
func (m *TxMeta) failed() bool {
	return len(m.Err) > 0 && string(m.Err) != "null"
}

// AccountKey is an account the transaction touches (jsonParsed form).
type AccountKey struct {
	Pubkey   string `json:"pubkey"`
	Signer   bool   `json:"signer"`
	Writable bool   `json:"writable"`
}

// TokenBalance is a token account's balance before or after a transaction.
type TokenBalance struct {
	AccountIndex  int         `json:"accountIndex"`
	Mint          string      `json:"mint"`
	Owner         string      `json:"owner"`
	UITokenAmount tokenAmount `json:"uiTokenAmount"`
}

// classify maps HTTP answers: 429 and 5xx are transient with Retry-After; a body that is not
// JSON (cut short, a proxy's page) is transient; a JSON-RPC error inside a 200 is read by
// rpcErr, so that the client retries the transient ones.
func classify(r *provider.Response) error {
	switch {
	case r.Status == http.StatusTooManyRequests || r.Status >= 500:
		return provider.Transient(fmt.Errorf("solana rpc: HTTP %d", r.Status), provider.RetryAfter(r.Header))
	case r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden:
		// A keyed RPC endpoint (the key is in its URL) that refuses us.
		return &opencalico.Error{Code: opencalico.EProviderError, ProviderID: ProviderID,
			Message: fmt.Sprintf("The Solana RPC endpoint refused access (HTTP %d); check its URL.", r.Status)}
	case r.Status >= 400:
		return &opencalico.Error{Code: opencalico.EProviderError, ProviderID: ProviderID,
			Message: fmt.Sprintf("The Solana RPC endpoint answered HTTP %d.", r.Status)}
	}
	var env rpcResponse
	if err := json.Unmarshal(r.Body, &env); err != nil {
		return provider.Transient(fmt.Errorf("solana rpc: a body that is not a JSON-RPC answer (%d bytes)", len(r.Body)), 0)
	}
	if env.Error != nil {
		return rpcErr(env.Error)
	}
	return nil
}

// rpcErr turns a JSON-RPC error into the domain's: invalid params (a malformed address) is
// the user's; the node-side conditions are transient; the rest is the provider's.
func rpcErr(e *rpcError) error {
	switch e.Code {
	case codeInvalidParams:
		return &opencalico.Error{Code: opencalico.EInvalidAddress, ProviderID: ProviderID,
			Message: fmt.Sprintf("The Solana RPC endpoint refused the parameters: %s", e.Message)}
	case codeBlockCleanedUp, codeBlockNotAvailable, codeNodeUnhealthy, codeSlotSkipped,
		codeLongTermStorageSlot, codeBlockStatusNotYet, codeMinContextSlotNotMet, http.StatusTooManyRequests:
		return provider.Transient(fmt.Errorf("solana rpc: %d %s", e.Code, e.Message), 0)
	}
	return &opencalico.Error{Code: opencalico.EProviderError, ProviderID: ProviderID,
		Message: fmt.Sprintf("The Solana RPC endpoint failed: %d %s", e.Code, e.Message)}
}
