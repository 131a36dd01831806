package ethereum

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
)

// The Etherscan account actions the history reads.
const (
	ActionTxList   = "txlist"         // the wallet's own transactions (it sent or received them)
	ActionInternal = "txlistinternal" // native value moved by contracts (traces)
	ActionTokenTx  = "tokentx"        // ERC-20 Transfer events
)

// Actions are the three streams a history merges, in the order they are read.
var Actions = []string{ActionTxList, ActionInternal, ActionTokenTx}

// envelope is every Etherscan answer: status "1" with a result, or status "0" with a message
// and a result that is either an empty list or a string saying what went wrong.
type envelope struct {
	Status  string          `json:"status"`
	Message string          `json:"message"`
	Result  json.RawMessage `json:"result"`
}

// NormalTx is a row of action=txlist: a transaction the wallet sent or received.
type NormalTx struct {
	BlockNumber      string `json:"blockNumber"`
	TimeStamp        string `json:"timeStamp"`
	Hash             string `json:"hash"`
	Nonce            string `json:"nonce"`
	BlockHash        string `json:"blockHash"`
	TransactionIndex string `json:"transactionIndex"`
	From             string `json:"from"`
	To               string `json:"to"`
	Value            string `json:"value"`
	Gas              string `json:"gas"`
	GasPrice         string `json:"gasPrice"`
	IsError          string `json:"isError"`
	TxReceiptStatus  string `json:"txreceipt_status"`
	Input            string `json:"input"`
	ContractAddress  string `json:"contractAddress"`
	GasUsed          string `json:"gasUsed"`
	MethodID         string `json:"methodId"`
	FunctionName     string `json:"functionName"`
}

// InternalTx is a row of action=txlistinternal: native value a contract moved to or from the
// wallet during a transaction.
type InternalTx struct {
	BlockNumber     string `json:"blockNumber"`
	TimeStamp       string `json:"timeStamp"`
	Hash            string `json:"hash"`
	From            string `json:"from"`
	To              string `json:"to"`
	Value           string `json:"value"`
	ContractAddress string `json:"contractAddress"`
	Type            string `json:"type"`
	TraceID         string `json:"traceId"`
	IsError         string `json:"isError"`
}

// TokenTransfer is a row of action=tokentx: an ERC-20 Transfer event to or from the wallet.
type TokenTransfer struct {
	BlockNumber      string `json:"blockNumber"`
	TimeStamp        string `json:"timeStamp"`
	Hash             string `json:"hash"`
	TransactionIndex string `json:"transactionIndex"`
	From             string `json:"from"`
	To               string `json:"to"`
	ContractAddress  string `json:"contractAddress"`
	Value            string `json:"value"`
	TokenName        string `json:"tokenName"`
	TokenSymbol      string `json:"tokenSymbol"`
	TokenDecimal     string `json:"tokenDecimal"`
	// LogIndex is not in every deployment's answer; identity falls back on the row's content.
	LogIndex string `json:"logIndex"`
}

// Receipt is what the history reads of an eth_getTransactionReceipt answer: on an OP Stack
// chain, l1Fee is the L1 data fee the sender paid besides gasUsed × effectiveGasPrice (hex
// wei; absent, or null, where there is none: deposit transactions, other chains).
type Receipt struct {
	TransactionHash   string `json:"transactionHash"`
	From              string `json:"from"`
	Status            string `json:"status"`
	GasUsed           string `json:"gasUsed"`
	EffectiveGasPrice string `json:"effectiveGasPrice"`
	L1Fee             string `json:"l1Fee"`
}

// Etherscan's words for the conditions it reports inside HTTP 200.
const (
	msgNoTransactions = "No transactions found"
	msgNoRecords      = "No records found"
)

// errPlanExcludesChain marks Etherscan's refusal of a chain the key's plan does not cover:
// "Free API access is not supported for this chain. Please upgrade your api plan for full
// chain coverage. https://etherscan.io/apis" (the free plan leaves out BNB Smart Chain,
// Base, Optimism and others, per docs.etherscan.io/supported-chains).
var errPlanExcludesChain = errors.New("etherscan: the API plan does not cover the chain")

// classifyEtherscan maps Etherscan's answers. Etherscan reports everything inside HTTP 200
// with status "0": "No transactions found" is an empty result, "Max calls per sec rate limit
// reached" a throttle worth retrying after a second, an invalid or missing API key a server
// configuration error (the key is the operator's, not the user's, so it is not
// EInvalidCredentials and is never retried). Messages are passed through redact so that the
// key, which travels in the query string, can never reach an error.
func classifyEtherscan(redact func(string) string, throttled func()) provider.Classify {
	return func(r *provider.Response) error {
		switch {
		case r.Status == http.StatusTooManyRequests || r.Status >= 500:
			return provider.Transient(fmt.Errorf("etherscan: HTTP %d", r.Status), provider.RetryAfter(r.Header))
		case r.Status >= 400:
			return &opencalico.Error{Code: opencalico.EProviderError, ProviderID: ProviderID,
				Message: fmt.Sprintf("Etherscan answered HTTP %d.", r.Status)}
		}
		var env envelope
		if err := json.Unmarshal(r.Body, &env); err != nil {
			// A proxy's HTML page or an answer cut short: another attempt usually gets it whole.
			return provider.Transient(fmt.Errorf("etherscan: a body that is not JSON (%d bytes)", len(r.Body)), 0)
		}
		if env.Status == "1" {
			return nil
		}
		var text string
		if json.Unmarshal(env.Result, &text) != nil {
			text = ""
		}
		detail := redact(strings.TrimSpace(env.Message + ": " + text))
		lower := strings.ToLower(env.Message + " " + text)
		switch {
		case env.Message == msgNoTransactions || env.Message == msgNoRecords:
			return nil
		case strings.Contains(lower, "free api access is not supported") || strings.Contains(lower, "upgrade your api plan"):
			// Not worth a retry: only a paid plan changes the answer. The caller names the chain.
			return &opencalico.Error{Code: opencalico.EProviderError, ProviderID: ProviderID, Err: errPlanExcludesChain,
				Message: "This chain needs a paid Etherscan API plan: the free plan of the server's Etherscan API key does not serve it."}
		case strings.Contains(lower, "max calls per sec") || strings.Contains(lower, "rate limit reached") && !strings.Contains(lower, "daily"):
			if throttled != nil {
				throttled()
			}
			return provider.Transient(fmt.Errorf("etherscan: %s", detail), time.Second)
		case strings.Contains(lower, "daily"):
			return &opencalico.Error{Code: opencalico.ERateLimited, ProviderID: ProviderID, RetryAfter: time.Hour,
				Message: "The server's Etherscan API key reached its daily limit; history resumes when it resets."}
		case strings.Contains(lower, "invalid api key") || strings.Contains(lower, "missing/invalid api key") || strings.Contains(lower, "missing api key"):
			return &opencalico.Error{Code: opencalico.EProviderError, ProviderID: ProviderID,
				Message: "Etherscan refused the server's API key; the operator must set a valid OPENCALICO_ETHERSCAN_API_KEY."}
		case strings.Contains(lower, "timeout") || strings.Contains(lower, "try again"):
			// "Query Timeout occured", "Unexpected error, please try again later".
			return provider.Transient(fmt.Errorf("etherscan: %s", detail), time.Second)
		case strings.Contains(lower, "invalid address"):
			return &opencalico.Error{Code: opencalico.EInvalidAddress, ProviderID: ProviderID,
				Message: "Etherscan refused the address: " + detail}
		}
		return &opencalico.Error{Code: opencalico.EProviderError, ProviderID: ProviderID,
			Message: "Etherscan failed: " + detail}
	}
}

// rpcRequest and rpcResponse are JSON-RPC 2.0.
type rpcRequest struct {
	JSONRPC string `json:"jsonrpc"`
	ID      int    `json:"id"`
	Method  string `json:"method"`
	Params  []any  `json:"params"`
}

type rpcResponse struct {
	ID     int             `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *rpcError       `json:"error"`
}

type rpcError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
}

func (e *rpcError) Error() string { return fmt.Sprintf("evm rpc: %d %s", e.Code, e.Message) }

// pastStateRefused says a node declined a call for a past block because it no longer holds
// (or never held, or does not know yet) that block's state, rather than because the call is
// wrong. What the clients answer:
//   - geth, and bor, op-geth and nitro that derive from it, with the hash scheme: -32000
//     "missing trie node <root> (path ) <nil>" once a full node pruned the state (it keeps
//     the last 128 blocks; go-ethereum#20874, #25815, OffchainLabs/nitro#2156);
//   - geth ≥ 1.14 with the path scheme: -32000 "state 0x… is not available" (go-ethereum#32148),
//     bor "missing trie node … state 0x… is not available, not found" (0xPolygon/bor#1303);
//   - geth for a number past its head (a node behind a load balancer): -32000 "header not
//     found" (blockscout#10448, MetaMask#7234); Erigon -32000 "block not found N"
//     (erigon#2770);
//   - "state at block #N is pruned" (-32603, quoted in lambdaclass/ethrex#4870), geth's
//     code 4444 "pruned history unavailable" (paradigmxyz/reth#27002), OpenEthereum's "…
//     your node is running with state pruning", Nethermind's -32603 "Internal error" whose
//     data names a MissingTrieNodeException (NethermindEth/nethermind#9408).
//
// Other errors (execution reverted, invalid argument) would fail at "latest" as well.
func pastStateRefused(e *rpcError) bool {
	if e == nil || e.Code == -32601 {
		return false
	}
	if e.Code == 4444 {
		return true
	}
	text := strings.ToLower(e.Message + " " + string(e.Data))
	for _, s := range []string{"missing trie node", "missingtrienode", "header not found", "block not found",
		"unknown block", "is pruned", "pruned history", "state pruning", "historical state"} {
		if strings.Contains(text, s) {
			return true
		}
	}
	return strings.Contains(text, "state") && (strings.Contains(text, "not available") || strings.Contains(text, "unavailable"))
}

// classifyRPC maps a node's answers: 429 and 5xx are transient, a body that is neither a
// JSON-RPC answer nor a batch of them is transient too (an HTML page, a cut answer); errors
// inside the answer are left to the caller, who knows which call of a batch failed.
func classifyRPC(r *provider.Response) error {
	switch {
	case r.Status == http.StatusTooManyRequests || r.Status >= 500:
		return provider.Transient(fmt.Errorf("evm rpc: HTTP %d", r.Status), provider.RetryAfter(r.Header))
	case r.Status >= 400:
		return &opencalico.Error{Code: opencalico.EProviderError, ProviderID: ProviderID,
			Message: fmt.Sprintf("The EVM RPC endpoint answered HTTP %d; check its URL.", r.Status)}
	case !json.Valid(r.Body):
		return provider.Transient(fmt.Errorf("evm rpc: a body that is not JSON (%d bytes)", len(r.Body)), 0)
	}
	var one rpcResponse
	if json.Unmarshal(r.Body, &one) == nil && one.Error != nil {
		return rpcErr(one.Error)
	}
	return nil
}

// rpcErr turns a JSON-RPC error into the domain's: the node's own limit (-32005, or 429 as a
// code) is transient; the rest is the provider's.
func rpcErr(e *rpcError) error {
	if e.Code == -32005 || e.Code == http.StatusTooManyRequests || strings.Contains(strings.ToLower(e.Message), "rate limit") {
		return provider.Transient(fmt.Errorf("evm rpc: %d %s", e.Code, e.Message), time.Second)
	}
	return &opencalico.Error{Code: opencalico.EProviderError, ProviderID: ProviderID, Err: e,
		Message: fmt.Sprintf("The EVM RPC endpoint failed: %d %s", e.Code, e.Message)}
}
