package ethereum

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/shopspring/decimal"
)

// Group is everything Etherscan lists about one transaction for one wallet: its txlist row
// (when the wallet sent or received the transaction itself), the internal transfers and the
// ERC-20 transfers that touched the wallet; and, on a chain with an L1 data fee, the
// transaction's receipt when the wallet sent it.
type Group struct {
	Hash     string
	Normal   *NormalTx
	Internal []InternalTx
	Tokens   []TokenTransfer
	Receipt  *Receipt
}

// Block is the group's block number (every row of a transaction carries the same).
func (g *Group) Block() int64 {
	for _, s := range g.blockNumbers() {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
	}
	return 0
}

func (g *Group) blockNumbers() []string {
	var out []string
	if g.Normal != nil {
		out = append(out, g.Normal.BlockNumber)
	}
	for _, r := range g.Internal {
		out = append(out, r.BlockNumber)
	}
	for _, r := range g.Tokens {
		out = append(out, r.BlockNumber)
	}
	return out
}

// txIndex is the transaction's position in its block when a row says it, else -1.
func (g *Group) txIndex() int64 {
	idx := ""
	if g.Normal != nil {
		idx = g.Normal.TransactionIndex
	}
	for _, r := range g.Tokens {
		if idx == "" {
			idx = r.TransactionIndex
		}
	}
	if n, err := strconv.ParseInt(idx, 10, 64); err == nil {
		return n
	}
	return -1
}

func (g *Group) timestamp() time.Time {
	ts := ""
	if g.Normal != nil {
		ts = g.Normal.TimeStamp
	}
	for _, r := range g.Internal {
		if ts == "" {
			ts = r.TimeStamp
		}
	}
	for _, r := range g.Tokens {
		if ts == "" {
			ts = r.TimeStamp
		}
	}
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.Unix(n, 0).UTC()
}

// assetNet accumulates the wallet's net of one asset in a transaction, in base units.
type assetNet struct {
	symbol   string
	assetID  string
	decimals int32
	units    *big.Int
	// The first other party that sent to and received from the wallet.
	from, to string
}

// Wei converts a wei amount (a decimal integer string) to the native coin exactly.
func Wei(s string) (decimal.Decimal, error) {
	return BaseUnits(s, NativeDecimals)
}

// BaseUnits converts an integer amount of base units to whole tokens exactly.
func BaseUnits(s string, decimals int32) (decimal.Decimal, error) {
	n, err := parseUnits(s)
	if err != nil {
		return decimal.Zero, err
	}
	return decimal.NewFromBigInt(n, -decimals), nil
}

// parseHexUnits reads a JSON-RPC quantity ("0x…"); empty is zero (a receipt without l1Fee).
func parseHexUnits(s string) (*big.Int, error) {
	if s == "" {
		return new(big.Int), nil
	}
	digits, ok := strings.CutPrefix(s, "0x")
	if !ok {
		digits, ok = strings.CutPrefix(s, "0X")
	}
	n, valid := new(big.Int).SetString(digits, 16)
	if !ok || digits == "" || !valid || n.Sign() < 0 {
		return nil, fmt.Errorf("not a hex quantity: %.40q", s)
	}
	return n, nil
}

func parseUnits(s string) (*big.Int, error) {
	if s == "" {
		return new(big.Int), nil
	}
	n, ok := new(big.Int).SetString(s, 10)
	if !ok || n.Sign() < 0 {
		return nil, fmt.Errorf("not an amount: %.40q", s)
	}
	return n, nil
}

// tokenSymbol is the token's symbol, or a name made of its contract when it has none (the
// domain needs a symbol on every leg).
func tokenSymbol(symbol, contract string) string {
	if s := strings.TrimSpace(symbol); s != "" {
		return s
	}
	c := strings.ToLower(contract)
	if len(c) > 10 {
		c = c[:10]
	}
	return "ERC20-" + c
}

// lureWords are what scam tokens put in their symbol or name to send the holder to a
// phishing site ("Visit claim-usdt.xyz to claim your reward").
var lureWords = []string{
	"http", "www.", "t.me/", ".com", ".io", ".net", ".org", ".xyz", ".app", ".site", ".live",
	".pro", ".top", ".vip", ".fi", ".cc", ".gift", "claim", "visit", "reward", "airdrop",
	"voucher", "redeem", "bonus", "giveaway",
}

// LooksLikeLure reports whether a token's symbol or name reads like a phishing lure.
func LooksLikeLure(symbol, name string) bool {
	s := strings.ToLower(symbol + " " + name)
	for _, w := range lureWords {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// Normalize is the wallet's view of one transaction: per asset, what arrived (outputs) and
// what left (inputs), netted over the native transfer, the internal transfers and the token
// transfers of the hash, so that a swap is one input_output and outputs − inputs − fees is
// the wallet's balance change exactly. The network fee is the wallet's only when it sent the
// transaction: gasUsed × gasPrice, plus on a chain with an L1 data fee (Chain.L1DataFee)
// the receipt's l1Fee, which a sent transaction there must come with. A failed transaction moved nothing but its fee. Spam (a lure
// token, or a zero-value transfer, in a transaction the wallet did not send) keeps its legs
// and is categorized spam. It returns nil when the transaction leaves the wallet untouched
// (a failed transaction somebody else sent to it).
func Normalize(connectionID string, chain Chain, wallet string, g Group) (*opencalico.Transaction, error) {
	wallet = strings.ToLower(wallet)
	checked := ChecksumAddress(wallet)
	mine := func(a string) bool { return strings.EqualFold(a, wallet) }
	hash := strings.ToLower(g.Hash)
	t := &opencalico.Transaction{
		ConnectionID: connectionID,
		ProviderID:   ProviderID,
		ExternalID:   chain.Name + ":" + hash,
		TxHash:       hash,
		Chain:        chain.Name,
		Status:       opencalico.TxConfirmed,
		Timestamp:    g.timestamp(),
	}
	t.ID = opencalico.TransactionID(connectionID, t.ExternalID)
	t.Categorization.ProviderType = providerType(g)

	native := func(amount decimal.Decimal) opencalico.Leg {
		return opencalico.Leg{AssetSymbol: chain.Symbol, AssetID: chain.NativeAssetID(), Amount: amount, Address: checked}
	}
	sender := g.Normal != nil && mine(g.Normal.From)
	failed := g.Normal != nil && (g.Normal.IsError == "1" || g.Normal.TxReceiptStatus == "0")
	if sender {
		used, err := parseUnits(g.Normal.GasUsed)
		if err != nil {
			return nil, err
		}
		price, err := parseUnits(g.Normal.GasPrice)
		if err != nil {
			return nil, err
		}
		wei := new(big.Int).Mul(used, price)
		if chain.L1DataFee {
			// A reverted transaction pays it too: its data was posted to L1 all the same.
			if g.Receipt == nil {
				return nil, fmt.Errorf("transaction %s on %s lacks the receipt its L1 data fee is read from", hash, chain.Name)
			}
			l1, err := parseHexUnits(g.Receipt.L1Fee)
			if err != nil {
				return nil, err
			}
			wei.Add(wei, l1)
		}
		fee := decimal.NewFromBigInt(wei, -NativeDecimals)
		t.Fees = []opencalico.Fee{{AssetSymbol: chain.Symbol, AssetID: chain.NativeAssetID(), Amount: fee, Kind: opencalico.FeeNetwork}}
	}
	if failed {
		if !sender {
			return nil, nil
		}
		// A reverted transaction still pays its gas and moves nothing else: the fee alone,
		// with a zero leg naming the sender (the shape of input_only).
		t.Type = opencalico.TypeInputOnly
		// Confirmed, not failed: the chain did take the fee, and a failed transaction counts
		// for nothing in reconciliation (exchanges refund a failed withdrawal's fee). The
		// subcategory says it reverted. Solana's adapter does the same.
		t.Status = opencalico.TxConfirmed
		t.Categorization.Category = opencalico.CategoryFee
		t.Categorization.Subcategory = "failed_transaction"
		t.Inputs = []opencalico.Leg{native(decimal.Zero)}
		t.FromAddress, t.ToAddress = checked, g.Normal.To
		return t, nil
	}

	// The wallet's net per asset, in the order assets are met.
	var order []string
	nets := map[string]*assetNet{}
	move := func(id, symbol string, decimals int32, from, to, value string) error {
		v, err := parseUnits(value)
		if err != nil {
			return err
		}
		n := nets[id]
		if n == nil {
			n = &assetNet{symbol: symbol, assetID: id, decimals: decimals, units: new(big.Int)}
			nets[id] = n
			order = append(order, id)
		}
		if mine(from) {
			n.units.Sub(n.units, v)
			if n.to == "" && !mine(to) {
				n.to = to
			}
		}
		if mine(to) {
			n.units.Add(n.units, v)
			if n.from == "" && !mine(from) {
				n.from = from
			}
		}
		return nil
	}
	nativeID := chain.NativeAssetID()
	if g.Normal != nil {
		if err := move(nativeID, chain.Symbol, NativeDecimals, g.Normal.From, g.Normal.To, g.Normal.Value); err != nil {
			return nil, err
		}
	}
	for _, r := range g.Internal {
		if r.IsError == "1" {
			continue // a reverted call moved nothing
		}
		if err := move(nativeID, chain.Symbol, NativeDecimals, r.From, r.To, r.Value); err != nil {
			return nil, err
		}
	}
	unsolicited := !sender
	lure, poison := false, false
	var poisonRow *TokenTransfer
	for i, r := range g.Tokens {
		d, err := strconv.ParseInt(r.TokenDecimal, 10, 32)
		if err != nil || d < 0 {
			d = 0
		}
		if err := move(chain.TokenAssetID(r.ContractAddress), tokenSymbol(r.TokenSymbol, r.ContractAddress), int32(d), r.From, r.To, r.Value); err != nil {
			return nil, err
		}
		if unsolicited && mine(r.To) && LooksLikeLure(r.TokenSymbol, r.TokenName) {
			lure = true
		}
		if unsolicited && (r.Value == "0" || r.Value == "") {
			poison = true
			if poisonRow == nil {
				poisonRow = &g.Tokens[i]
			}
		}
	}

	var firstFrom, firstTo string
	for _, id := range order {
		n := nets[id]
		leg := opencalico.Leg{AssetSymbol: n.symbol, AssetID: n.assetID, Amount: decimal.NewFromBigInt(new(big.Int).Abs(n.units), -n.decimals), Address: checked}
		switch n.units.Sign() {
		case -1:
			t.Inputs = append(t.Inputs, leg)
			if firstTo == "" {
				firstTo = n.to
			}
		case 1:
			t.Outputs = append(t.Outputs, leg)
			if firstFrom == "" {
				firstFrom = n.from
			}
		}
	}

	c := &t.Categorization
	switch in, out := len(t.Inputs) > 0, len(t.Outputs) > 0; {
	case in && out:
		t.Type, c.Category, c.Subcategory = opencalico.TypeInputOutput, opencalico.CategoryTrade, "swap"
		t.FromAddress, t.ToAddress = checked, firstTo
		if g.Normal != nil && sender {
			t.ToAddress = g.Normal.To
		}
	case in:
		t.Type, c.Category = opencalico.TypeSend, opencalico.CategoryWithdrawal
		t.FromAddress, t.ToAddress = checked, firstTo
	case out:
		t.Type, c.Category = opencalico.TypeReceive, opencalico.CategoryDeposit
		t.FromAddress, t.ToAddress = firstFrom, checked
	case sender:
		// Nothing moved but the gas: an approval, a call, a zero-value or self transfer.
		t.Type = opencalico.TypeInputOnly
		t.Inputs = []opencalico.Leg{native(decimal.Zero)}
		t.FromAddress, t.ToAddress = checked, g.Normal.To
		if mine(g.Normal.To) {
			c.Category, c.Subcategory = opencalico.CategoryTransfer, "self_transfer"
		} else {
			c.Category = opencalico.CategoryContractInteraction
		}
	case poison:
		// A zero-value transfer somebody else sent, to plant a look-alike address in the
		// wallet's history: a zero leg of the token, on the side the wallet is on.
		leg := opencalico.Leg{AssetSymbol: tokenSymbol(poisonRow.TokenSymbol, poisonRow.ContractAddress),
			AssetID: chain.TokenAssetID(poisonRow.ContractAddress), Amount: decimal.Zero, Address: checked}
		if mine(poisonRow.To) {
			t.Type, t.Outputs = opencalico.TypeReceive, []opencalico.Leg{leg}
		} else {
			t.Type, t.Inputs = opencalico.TypeSend, []opencalico.Leg{leg}
		}
		t.FromAddress, t.ToAddress = poisonRow.From, poisonRow.To
	default:
		// Value passed through the wallet and left again in the same transaction: nothing
		// to account for, kept so that it is not lost.
		t.Type, c.Category = opencalico.TypeUncategorized, opencalico.CategoryOther
	}
	switch {
	case lure:
		c.Category, c.Subcategory = opencalico.CategorySpam, "phishing_token"
	case poison:
		c.Category, c.Subcategory = opencalico.CategorySpam, "address_poisoning"
	}
	return t, nil
}

// providerType is Etherscan's word for the transaction: the called function's name when
// the wallet sent or received the transaction itself, else the list it was met in.
func providerType(g Group) string {
	if g.Normal != nil {
		if f := g.Normal.FunctionName; f != "" {
			if i := strings.IndexByte(f, '('); i > 0 {
				f = f[:i]
			}
			return strings.TrimSpace(f)
		}
		return ActionTxList
	}
	if len(g.Internal) > 0 {
		return ActionInternal
	}
	return ActionTokenTx
}
