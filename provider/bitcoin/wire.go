package bitcoin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
)

// Esplora's answers, only the fields read.

type addressStats struct {
	FundedTxoSum int64 `json:"funded_txo_sum"`
	SpentTxoSum  int64 `json:"spent_txo_sum"`
	TxCount      int   `json:"tx_count"`
}

type addressInfo struct {
	Address      string       `json:"address"`
	ChainStats   addressStats `json:"chain_stats"`
	MempoolStats addressStats `json:"mempool_stats"`
}

// Tx is an Esplora transaction.
type Tx struct {
	TxID   string     `json:"txid"`
	Fee    int64      `json:"fee"`
	Vin    []TxInput  `json:"vin"`
	Vout   []TxOutput `json:"vout"`
	Status TxStatus   `json:"status"`
}

// TxInput is a transaction input with the output it spends.
type TxInput struct {
	TxID       string    `json:"txid"`
	Vout       int       `json:"vout"`
	Prevout    *TxOutput `json:"prevout"`
	IsCoinbase bool      `json:"is_coinbase"`
}

// TxOutput is a transaction output; outputs without an address (OP_RETURN) have none.
type TxOutput struct {
	ScriptPubKeyAddress string `json:"scriptpubkey_address"`
	Value               int64  `json:"value"`
}

// TxStatus is where the transaction stands.
type TxStatus struct {
	Confirmed   bool  `json:"confirmed"`
	BlockHeight int64 `json:"block_height"`
	BlockTime   int64 `json:"block_time"`
}

// classify maps Esplora's answers: 429 and 5xx are transient (with Retry-After), 400 is
// Esplora refusing the address, and a 200 whose body is not JSON (a proxy's HTML page, an
// answer cut short) is transient too, since another attempt usually gets the whole body.
func classify(r *provider.Response) error {
	switch {
	case r.Status == http.StatusTooManyRequests || r.Status >= 500:
		return provider.Transient(fmt.Errorf("esplora: HTTP %d", r.Status), provider.RetryAfter(r.Header))
	case r.Status == http.StatusBadRequest:
		return opencalico.Errorf(opencalico.EInvalidAddress, "Esplora refused the address: %s", firstLine(r.Body))
	case r.Status >= 400:
		return &opencalico.Error{Code: opencalico.EProviderError, ProviderID: ProviderID,
			Message: fmt.Sprintf("Esplora answered HTTP %d: %s", r.Status, firstLine(r.Body))}
	case !json.Valid(r.Body):
		return provider.Transient(fmt.Errorf("esplora: a body that is not JSON (%d bytes)", len(r.Body)), 0)
	}
	return nil
}

func firstLine(b []byte) string {
	s := string(b)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return strings.TrimSpace(s)
}
