package ethereum

import (
	"errors"
	"testing"

	"github.com/opencalico/opencalico"
	"github.com/shopspring/decimal"
)

func errorAs(err error, target any) bool { return errors.As(err, target) }

const (
	me       = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"
	other    = "0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359"
	router   = "0xdbf03b407c01e7cd3cbea99509d93f8dddc8c6fb"
	usdc     = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
	weth     = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
	gold     = "0x1111111111111111111111111111111111111111"
	lureCoin = "0x2222222222222222222222222222222222222222"
	hash1    = "0xABCDEF0000000000000000000000000000000000000000000000000000000001"
)

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

type legWant struct {
	symbol string
	amount string
}

func TestNormalize(t *testing.T) {
	eth, _ := LookupChain("ethereum")
	polygon, _ := LookupChain("polygon")
	base, _ := LookupChain("base")
	normal := func(from, to, value, gasUsed, gasPrice, isError, fn string) *NormalTx {
		return &NormalTx{BlockNumber: "100", TimeStamp: "1700000000", Hash: hash1, From: from, To: to, Value: value,
			GasUsed: gasUsed, GasPrice: gasPrice, IsError: isError, FunctionName: fn}
	}
	token := func(contract, symbol, decimals, from, to, value string) TokenTransfer {
		return TokenTransfer{BlockNumber: "100", TimeStamp: "1700000000", Hash: hash1, From: from, To: to, ContractAddress: contract,
			Value: value, TokenSymbol: symbol, TokenName: symbol, TokenDecimal: decimals}
	}
	cases := []struct {
		name     string
		chain    Chain
		g        Group
		typ      opencalico.TransactionType
		category opencalico.Category
		sub      string
		status   opencalico.TransactionStatus
		inputs   []legWant
		outputs  []legWant
		fee      string // "" for none
		from, to string
	}{
		{
			name: "receive of one wei: no fee, the sender paid it",
			g:    Group{Hash: hash1, Normal: normal(other, me, "1", "21000", "1000000000", "0", "")},
			typ:  opencalico.TypeReceive, category: opencalico.CategoryDeposit, status: opencalico.TxConfirmed,
			outputs: []legWant{{"ETH", "0.000000000000000001"}}, from: other, to: ChecksumAddress(me),
		},
		{
			name: "send with the fee, gasUsed × gasPrice exactly",
			g:    Group{Hash: hash1, Normal: normal(me, other, "1500000000000000000", "21000", "12345678901", "0", "")},
			typ:  opencalico.TypeSend, category: opencalico.CategoryWithdrawal, status: opencalico.TxConfirmed,
			inputs: []legWant{{"ETH", "1.5"}}, fee: "0.000259259256921", from: ChecksumAddress(me), to: other,
		},
		{
			name: "failed: the fee only, status failed, the value stays",
			g:    Group{Hash: hash1, Normal: normal(me, router, "2000000000000000000", "50000", "1000000000", "1", "multicall(bytes[] data)")},
			typ:  opencalico.TypeInputOnly, category: opencalico.CategoryFee, sub: "failed_transaction", status: opencalico.TxConfirmed,
			inputs: []legWant{{"ETH", "0"}}, fee: "0.00005", from: ChecksumAddress(me), to: router,
		},
		{
			name: "failed somebody else sent: nothing",
			g:    Group{Hash: hash1, Normal: normal(other, me, "5", "21000", "1", "1", "")},
		},
		{
			name: "swap ETH for USDC: one input_output",
			g: Group{Hash: hash1, Normal: normal(me, router, "1000000000000000000", "150000", "2000000000", "0", "swapExactETHForTokens(uint256 amountOutMin, address[] path, address to, uint256 deadline)"),
				Tokens: []TokenTransfer{token(usdc, "USDC", "6", router, me, "2500123456")}},
			typ: opencalico.TypeInputOutput, category: opencalico.CategoryTrade, sub: "swap", status: opencalico.TxConfirmed,
			inputs: []legWant{{"ETH", "1"}}, outputs: []legWant{{"USDC", "2500.123456"}}, fee: "0.0003", from: ChecksumAddress(me), to: router,
		},
		{
			name: "swap WETH for ETH through an internal transfer",
			g: Group{Hash: hash1, Normal: normal(me, router, "0", "100000", "1000000000", "0", "swapExactTokensForETH(uint256,uint256,address[],address,uint256)"),
				Tokens:   []TokenTransfer{token(weth, "WETH", "18", me, router, "123456789012345678")},
				Internal: []InternalTx{{BlockNumber: "100", TimeStamp: "1700000000", Hash: hash1, From: router, To: me, Value: "123000000000000000", TraceID: "0_1"}}},
			typ: opencalico.TypeInputOutput, category: opencalico.CategoryTrade, sub: "swap", status: opencalico.TxConfirmed,
			inputs: []legWant{{"WETH", "0.123456789012345678"}}, outputs: []legWant{{"ETH", "0.123"}}, fee: "0.0001", from: ChecksumAddress(me), to: router,
		},
		{
			name: "a token of 0 decimals received: no fee",
			g:    Group{Hash: hash1, Tokens: []TokenTransfer{token(gold, "GOLD", "0", other, me, "42")}},
			typ:  opencalico.TypeReceive, category: opencalico.CategoryDeposit, status: opencalico.TxConfirmed,
			outputs: []legWant{{"GOLD", "42"}}, from: other, to: ChecksumAddress(me),
		},
		{
			name: "a token sent by a transfer call: the fee is the wallet's",
			g: Group{Hash: hash1, Normal: normal(me, usdc, "0", "50000", "1000000000", "0", "transfer(address _to, uint256 _value)"),
				Tokens: []TokenTransfer{token(usdc, "USDC", "6", me, other, "1")}},
			typ: opencalico.TypeSend, category: opencalico.CategoryWithdrawal, status: opencalico.TxConfirmed,
			inputs: []legWant{{"USDC", "0.000001"}}, fee: "0.00005", from: ChecksumAddress(me), to: other,
		},
		{
			name: "approve: gas only, a contract interaction",
			g:    Group{Hash: hash1, Normal: normal(me, usdc, "0", "46000", "1000000000", "0", "approve(address spender, uint256 amount)")},
			typ:  opencalico.TypeInputOnly, category: opencalico.CategoryContractInteraction, status: opencalico.TxConfirmed,
			inputs: []legWant{{"ETH", "0"}}, fee: "0.000046", from: ChecksumAddress(me), to: usdc,
		},
		{
			name: "send to itself: a transfer that costs the fee",
			g:    Group{Hash: hash1, Normal: normal(me, me, "7", "21000", "2", "0", "")},
			typ:  opencalico.TypeInputOnly, category: opencalico.CategoryTransfer, sub: "self_transfer", status: opencalico.TxConfirmed,
			inputs: []legWant{{"ETH", "0"}}, fee: "0.000000000000042", from: ChecksumAddress(me), to: me,
		},
		{
			name: "a lure token airdropped: kept, categorized spam",
			g:    Group{Hash: hash1, Tokens: []TokenTransfer{token(lureCoin, "Visit usdc-claim.xyz", "18", other, me, "1000000000000000000000")}},
			typ:  opencalico.TypeReceive, category: opencalico.CategorySpam, sub: "phishing_token", status: opencalico.TxConfirmed,
			outputs: []legWant{{"Visit usdc-claim.xyz", "1000"}}, from: other, to: ChecksumAddress(me),
		},
		{
			name: "address poisoning: a zero transfer from the wallet that it did not send",
			g:    Group{Hash: hash1, Tokens: []TokenTransfer{token(usdc, "USDC", "6", me, other, "0")}},
			typ:  opencalico.TypeSend, category: opencalico.CategorySpam, sub: "address_poisoning", status: opencalico.TxConfirmed,
			inputs: []legWant{{"USDC", "0"}}, from: me, to: other,
		},
		{
			name:  "base: a send pays gasUsed × gasPrice plus the receipt's L1 data fee",
			chain: base,
			g: Group{Hash: hash1, Normal: normal(me, other, "1000000000000000000", "21000", "5000000", "0", ""),
				Receipt: &Receipt{TransactionHash: hash1, L1Fee: "0x150c88b38050"}}, // 23143577256016 wei
			typ: opencalico.TypeSend, category: opencalico.CategoryWithdrawal, status: opencalico.TxConfirmed,
			// 21000 × 5000000 = 105000000000 wei, + 23143577256016 = 23248577256016 wei.
			inputs: []legWant{{"ETH", "1"}}, fee: "0.000023248577256016", from: ChecksumAddress(me), to: other,
		},
		{
			name:  "base: a reverted call still pays the L1 data fee",
			chain: base,
			g: Group{Hash: hash1, Normal: normal(me, router, "0", "50000", "1000000", "1", "multicall(bytes[] data)"),
				Receipt: &Receipt{TransactionHash: hash1, L1Fee: "0x3e8"}},
			typ: opencalico.TypeInputOnly, category: opencalico.CategoryFee, sub: "failed_transaction", status: opencalico.TxConfirmed,
			inputs: []legWant{{"ETH", "0"}}, fee: "0.000000050000001", from: ChecksumAddress(me), to: router,
		},
		{
			name:  "base: a receipt without l1Fee (a deposit transaction) adds nothing",
			chain: base,
			g: Group{Hash: hash1, Normal: normal(me, me, "0", "21000", "0", "0", ""),
				Receipt: &Receipt{TransactionHash: hash1}},
			typ: opencalico.TypeInputOnly, category: opencalico.CategoryTransfer, sub: "self_transfer", status: opencalico.TxConfirmed,
			inputs: []legWant{{"ETH", "0"}}, fee: "0", from: ChecksumAddress(me), to: me,
		},
		{
			name:  "base: a receive needs no receipt, the sender paid every fee",
			chain: base,
			g:     Group{Hash: hash1, Normal: normal(other, me, "3", "21000", "5000000", "0", "")},
			typ:   opencalico.TypeReceive, category: opencalico.CategoryDeposit, status: opencalico.TxConfirmed,
			outputs: []legWant{{"ETH", "0.000000000000000003"}}, from: other, to: ChecksumAddress(me),
		},
		{
			name: "ethereum: an l1Fee in a receipt is not a fee of this chain",
			g: Group{Hash: hash1, Normal: normal(me, other, "1", "21000", "1", "0", ""),
				Receipt: &Receipt{TransactionHash: hash1, L1Fee: "0xffff"}},
			typ: opencalico.TypeSend, category: opencalico.CategoryWithdrawal, status: opencalico.TxConfirmed,
			inputs: []legWant{{"ETH", "0.000000000000000001"}}, fee: "0.000000000000021", from: ChecksumAddress(me), to: other,
		},
		{
			name:  "polygon's native coin is POL",
			chain: polygon,
			g:     Group{Hash: hash1, Internal: []InternalTx{{BlockNumber: "100", TimeStamp: "1700000000", Hash: hash1, From: router, To: me, Value: "25000000000000000000", TraceID: "0"}}},
			typ:   opencalico.TypeReceive, category: opencalico.CategoryDeposit, status: opencalico.TxConfirmed,
			outputs: []legWant{{"POL", "25"}}, from: router, to: ChecksumAddress(me),
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			chain := c.chain
			if chain.Name == "" {
				chain = eth
			}
			tx, err := Normalize("conn_1", chain, me, c.g)
			if err != nil {
				t.Fatal(err)
			}
			if c.typ == "" {
				if tx != nil {
					t.Fatalf("got %+v, want nothing", tx)
				}
				return
			}
			if err := tx.Validate(); err != nil {
				t.Fatal(err)
			}
			if tx.Type != c.typ || tx.Categorization.Category != c.category || tx.Categorization.Subcategory != c.sub || tx.Status != c.status {
				t.Errorf("got %s %s/%s %s", tx.Type, tx.Categorization.Category, tx.Categorization.Subcategory, tx.Status)
			}
			if tx.ExternalID != chain.Name+":"+"0xabcdef0000000000000000000000000000000000000000000000000000000001" || tx.TxHash != "0xabcdef0000000000000000000000000000000000000000000000000000000001" || tx.Chain != chain.Name {
				t.Errorf("ids %s %s %s", tx.ExternalID, tx.TxHash, tx.Chain)
			}
			check := func(side string, got []opencalico.Leg, want []legWant) {
				if len(got) != len(want) {
					t.Fatalf("%s: got %+v, want %v", side, got, want)
				}
				for i, w := range want {
					if got[i].AssetSymbol != w.symbol || !got[i].Amount.Equal(d(w.amount)) || got[i].Amount.String() != d(w.amount).String() {
						t.Errorf("%s[%d]: got %s %s, want %s %s", side, i, got[i].Amount, got[i].AssetSymbol, w.amount, w.symbol)
					}
				}
			}
			check("inputs", tx.Inputs, c.inputs)
			check("outputs", tx.Outputs, c.outputs)
			switch {
			case c.fee == "" && len(tx.Fees) != 0:
				t.Errorf("fees %+v, want none", tx.Fees)
			case c.fee != "" && (len(tx.Fees) != 1 || !tx.Fees[0].Amount.Equal(d(c.fee)) || tx.Fees[0].Kind != opencalico.FeeNetwork || tx.Fees[0].AssetID != chain.NativeAssetID()):
				t.Errorf("fees %+v, want %s", tx.Fees, c.fee)
			}
			if tx.FromAddress != c.from || tx.ToAddress != c.to {
				t.Errorf("from %s to %s, want %s → %s", tx.FromAddress, tx.ToAddress, c.from, c.to)
			}
		})
	}
}

// On a chain with an L1 data fee, a sent transaction without its receipt, or with an l1Fee
// that is not a hex quantity, is an error: its fee would be short.
func TestNormalizeL1FeeErrors(t *testing.T) {
	base, _ := LookupChain("base")
	if !base.L1DataFee {
		t.Fatal("base has no L1 data fee")
	}
	for _, c := range []string{"ethereum", "arbitrum", "polygon"} {
		if ch, _ := LookupChain(c); ch.L1DataFee {
			t.Errorf("%s has an L1 data fee", c)
		}
	}
	sent := NormalTx{BlockNumber: "100", TimeStamp: "1700000000", Hash: hash1, From: me, To: other, Value: "1", GasUsed: "21000", GasPrice: "1", IsError: "0"}
	for name, r := range map[string]*Receipt{
		"no receipt":  nil,
		"decimal fee": {TransactionHash: hash1, L1Fee: "1000"},
		"bare 0x":     {TransactionHash: hash1, L1Fee: "0x"},
		"not hex":     {TransactionHash: hash1, L1Fee: "0xzz"},
		"negative":    {TransactionHash: hash1, L1Fee: "-0x1"},
	} {
		n := sent
		if tx, err := Normalize("conn_1", base, me, Group{Hash: hash1, Normal: &n, Receipt: r}); err == nil {
			t.Errorf("%s: got %+v, want an error", name, tx)
		}
	}
}

func TestAssetIDs(t *testing.T) {
	want := map[string]string{"ethereum": "eip155:1/slip44:60", "arbitrum": "eip155:42161/slip44:60", "base": "eip155:8453/slip44:60", "polygon": "eip155:137/slip44:966"}
	for name, id := range want {
		c, ok := LookupChain(name)
		if !ok || c.NativeAssetID() != id {
			t.Errorf("%s: %s", name, c.NativeAssetID())
		}
	}
	eth, _ := LookupChain("")
	if got := eth.TokenAssetID("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"); got != "eip155:1/erc20:0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48" {
		t.Errorf("token id %s", got)
	}
}

func TestBaseUnitsExact(t *testing.T) {
	for _, c := range []struct {
		units    string
		decimals int32
		want     string
	}{
		{"1", 18, "0.000000000000000001"},
		{"1000000", 6, "1"},
		{"123456789", 8, "1.23456789"},
		{"7", 0, "7"},
		{"115792089237316195423570985008687907853269984665640564039457584007913129639935", 18, "115792089237316195423570985008687907853269984665640564039457.584007913129639935"},
	} {
		got, err := BaseUnits(c.units, c.decimals)
		if err != nil || got.String() != c.want {
			t.Errorf("%s/10^%d: got %s %v, want %s", c.units, c.decimals, got, err, c.want)
		}
	}
	if _, err := BaseUnits("-1", 18); err == nil {
		t.Error("a negative amount accepted")
	}
	if _, err := Wei("1e18"); err == nil {
		t.Error("a float accepted")
	}
}

func TestLooksLikeLure(t *testing.T) {
	for s, want := range map[string]bool{"USDC": false, "USDC.e": false, "WETH": false, "Visit usdc-claim.xyz": true,
		"$ CLAIM": true, "https://t.me/x": true, "ETH Reward": true, "Uniswap": false} {
		if LooksLikeLure(s, "") != want {
			t.Errorf("%q: want %v", s, want)
		}
	}
}
