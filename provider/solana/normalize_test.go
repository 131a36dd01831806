package solana

import (
	"encoding/json"
	"testing"

	"github.com/opencalico/opencalico"
)

const (
	testWallet = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM"
	testOther  = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"
	testATA    = "5Q544fKrFoe6tsEbD7S8EmxGTJYAKtTVhAW5Q5pge4j1"
	testMint   = "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263"
)

func tokenBal(index int, mint, owner, amount string, decimals int32) TokenBalance {
	return TokenBalance{AccountIndex: index, Mint: mint, Owner: owner, UITokenAmount: tokenAmount{Amount: amount, Decimals: decimals}}
}

func TestNormalize(t *testing.T) {
	bt := int64(1700000000)
	keys := func(payer string, rest ...string) []AccountKey {
		out := []AccountKey{{Pubkey: payer, Signer: true, Writable: true}}
		for _, k := range rest {
			out = append(out, AccountKey{Pubkey: k, Writable: true})
		}
		return out
	}
	type leg struct{ symbol, amount string }
	cases := []struct {
		name     string
		keys     []AccountKey
		meta     TxMeta
		nilWant  bool
		typ      opencalico.TransactionType
		category opencalico.Category
		ins      []leg
		outs     []leg
		fee      string // "" for none
	}{
		{name: "receive SOL", keys: keys(testOther, testWallet),
			meta: TxMeta{Err: json.RawMessage("null"), Fee: 5000, PreBalances: []uint64{10_000_000_000, 1}, PostBalances: []uint64{8_499_995_000, 1_500_000_001}},
			typ:  opencalico.TypeReceive, category: opencalico.CategoryDeposit, outs: []leg{{"SOL", "1.5"}}},
		{name: "send SOL, fee excluded from the leg", keys: keys(testWallet, testOther),
			meta: TxMeta{Fee: 5000, PreBalances: []uint64{2_000_000_000, 0}, PostBalances: []uint64{999_995_000, 1_000_000_000}},
			typ:  opencalico.TypeSend, category: opencalico.CategoryWithdrawal, ins: []leg{{"SOL", "1"}}, fee: "0.000005"},
		{name: "swap SOL for USDC", keys: keys(testWallet, testATA, testOther),
			meta: TxMeta{Fee: 7000, PreBalances: []uint64{3_000_000_000, 2039280, 0}, PostBalances: []uint64{2_499_993_000, 2039280, 500_000_000},
				PreTokenBalances:  []TokenBalance{tokenBal(1, "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", testWallet, "1000000", 6)},
				PostTokenBalances: []TokenBalance{tokenBal(1, "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", testWallet, "76250001", 6)}},
			typ: opencalico.TypeInputOutput, category: opencalico.CategoryTrade, ins: []leg{{"SOL", "0.5"}}, outs: []leg{{"USDC", "75.250001"}}, fee: "0.000007"},
		{name: "token received into a new account, unknown mint", keys: keys(testOther, testATA, testWallet),
			meta: TxMeta{Fee: 5000, PreBalances: []uint64{1e9, 0, 7}, PostBalances: []uint64{1e9 - 5000 - 2039280, 2039280, 7},
				PostTokenBalances: []TokenBalance{tokenBal(1, testMint, testWallet, "123", 5)}},
			typ: opencalico.TypeReceive, category: opencalico.CategoryDeposit, outs: []leg{{"DezXAZ", "0.00123"}}},
		{name: "failed, wallet pays", keys: keys(testWallet, testOther),
			meta: TxMeta{Err: json.RawMessage(`{"InstructionError":[0,{"Custom":1}]}`), Fee: 5000, PreBalances: []uint64{1e9, 0}, PostBalances: []uint64{1e9 - 5000, 0}},
			typ:  opencalico.TypeInputOnly, category: opencalico.CategoryFee, ins: []leg{{"SOL", "0"}}, fee: "0.000005"},
		{name: "failed, other pays", keys: keys(testOther, testWallet), nilWant: true,
			meta: TxMeta{Err: json.RawMessage(`{"InstructionError":[0,{"Custom":1}]}`), Fee: 5000, PreBalances: []uint64{1e9, 0}, PostBalances: []uint64{1e9 - 5000, 0}}},
		{name: "untouched", keys: keys(testOther, testWallet), nilWant: true,
			meta: TxMeta{Fee: 5000, PreBalances: []uint64{1e9, 3}, PostBalances: []uint64{1e9 - 5000, 3}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tx := &Tx{BlockTime: &bt, Meta: &c.meta}
			tx.Transaction.Message.AccountKeys = c.keys
			got := Normalize("conn", testWallet, "sig1", tx)
			if c.nilWant {
				if got != nil {
					t.Fatalf("got %+v, want nil", got)
				}
				return
			}
			if got == nil {
				t.Fatal("got nil")
			}
			if err := got.Validate(); err != nil {
				t.Fatal(err)
			}
			if got.Type != c.typ || got.Categorization.Category != c.category || got.Status != opencalico.TxConfirmed || got.ExternalID != "sig1" {
				t.Errorf("type %s category %s status %s", got.Type, got.Categorization.Category, got.Status)
			}
			check := func(side string, legs []opencalico.Leg, want []leg) {
				if len(legs) != len(want) {
					t.Fatalf("%s: %d legs, want %d", side, len(legs), len(want))
				}
				for i, w := range want {
					if legs[i].AssetSymbol != w.symbol || legs[i].Amount.String() != w.amount {
						t.Errorf("%s[%d] = %s %s, want %s %s", side, i, legs[i].Amount, legs[i].AssetSymbol, w.amount, w.symbol)
					}
				}
			}
			check("inputs", got.Inputs, c.ins)
			check("outputs", got.Outputs, c.outs)
			if c.fee == "" && len(got.Fees) != 0 || c.fee != "" && (len(got.Fees) != 1 || got.Fees[0].Amount.String() != c.fee || got.Fees[0].Kind != opencalico.FeeNetwork) {
				t.Errorf("fees %+v, want %s", got.Fees, c.fee)
			}
		})
	}
}
