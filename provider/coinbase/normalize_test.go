package coinbase

import (
	"encoding/json"
	"testing"

	"github.com/opencalico/opencalico"
)

func rows(t *testing.T, js ...string) []*wireTx {
	t.Helper()
	var out []*wireTx
	for _, j := range js {
		var tx wireTx
		if err := json.Unmarshal([]byte(j), &tx); err != nil {
			t.Fatal(err)
		}
		out = append(out, &tx)
	}
	return out
}

const at = `"created_at":"2024-01-02T03:04:05Z"`

func TestNormalize(t *testing.T) {
	type leg = string // "SYM amount"
	tests := []struct {
		name     string
		rows     []string
		ext      string
		typ      opencalico.TransactionType
		cat      opencalico.Category
		sub      string
		status   opencalico.TransactionStatus
		in, out  []leg
		fees     []leg
		feeKinds []opencalico.FeeKind
	}{
		{"conversion pairs two wallets, fee in source carved out",
			[]string{
				`{"id":"a","type":"trade","status":"completed","amount":{"amount":"-1.00","currency":"ETH"},` + at + `,"trade":{"id":"T1","fee":{"amount":"0.01","currency":"ETH"}}}`,
				`{"id":"b","type":"trade","status":"completed","amount":{"amount":"25.5","currency":"SOL"},` + at + `,"trade":{"id":"T1","fee":{"amount":"0.01","currency":"ETH"}}}`,
			}, "trade:T1", opencalico.TypeInputOutput, opencalico.CategoryTrade, "convert", opencalico.TxConfirmed,
			[]leg{"ETH 0.99"}, []leg{"SOL 25.5"}, []leg{"ETH 0.01"}, []opencalico.FeeKind{opencalico.FeeTrading}},
		{"advanced trade buy fill: commission once, in quote",
			[]string{
				`{"id":"a","type":"advanced_trade_fill","status":"completed","amount":{"amount":"0.5","currency":"BTC"},` + at + `,"advanced_trade_fill":{"fill_price":"40000","product_id":"BTC-USD","order_id":"O1","order_side":"BUY","commission":"120"}}`,
				`{"id":"b","type":"advanced_trade_fill","status":"completed","amount":{"amount":"-20120","currency":"USD"},` + at + `,"advanced_trade_fill":{"fill_price":"40000","product_id":"BTC-USD","order_id":"O1","order_side":"BUY","commission":"120"}}`,
			}, "fill:O1:2024-01-02T03:04:05Z:40000", opencalico.TypeInputOutput, opencalico.CategoryTrade, "buy", opencalico.TxConfirmed,
			[]leg{"USD 20000"}, []leg{"BTC 0.5"}, []leg{"USD 120"}, []opencalico.FeeKind{opencalico.FeeTrading}},
		{"sell into USD wallet",
			[]string{
				`{"id":"a","type":"sell","status":"completed","amount":{"amount":"-2","currency":"SOL"},` + at + `,"sell":{"id":"S1","fee":{"amount":"2.98","currency":"USD"}}}`,
				`{"id":"b","type":"sell","status":"completed","amount":{"amount":"197.02","currency":"USD"},` + at + `,"sell":{"id":"S1","fee":{"amount":"2.98","currency":"USD"}}}`,
			}, "sell:S1", opencalico.TypeInputOutput, opencalico.CategoryTrade, "sell", opencalico.TxConfirmed,
			[]leg{"SOL 2"}, []leg{"USD 200"}, []leg{"USD 2.98"}, []opencalico.FeeKind{opencalico.FeeTrading}},
		{"card buy alone: fee paid outside the account is not ours",
			[]string{`{"id":"a","type":"buy","status":"completed","amount":{"amount":"0.01","currency":"BTC"},` + at + `,"buy":{"id":"B1","fee":{"amount":"1.49","currency":"USD"}}}`},
			"buy:B1", opencalico.TypeOutputOnly, opencalico.CategoryTrade, "buy", opencalico.TxConfirmed,
			nil, []leg{"BTC 0.01"}, nil, nil},
		{"send out with network fee, pending",
			[]string{`{"id":"s1","type":"send","status":"pending","amount":{"amount":"-0.10005","currency":"BTC"},` + at + `,"network":{"status":"pending","hash":"h1","transaction_fee":{"amount":"0.00005","currency":"BTC"}},"to":{"resource":"address","address":"bc1q"}}`},
			"tx:s1", opencalico.TypeSend, opencalico.CategoryWithdrawal, "", opencalico.TxPending,
			[]leg{"BTC 0.1"}, nil, []leg{"BTC 0.00005"}, []opencalico.FeeKind{opencalico.FeeNetwork}},
		{"incoming send: the sender's fee is not ours",
			[]string{`{"id":"s2","type":"send","status":"completed","amount":{"amount":"1.5","currency":"ETH"},` + at + `,"network":{"status":"confirmed","hash":"h2","transaction_fee":{"amount":"0.001","currency":"ETH"}},"from":{"resource":"address","address":"0xabc"}}`},
			"tx:s2", opencalico.TypeReceive, opencalico.CategoryDeposit, "", opencalico.TxConfirmed,
			nil, []leg{"ETH 1.5"}, nil, nil},
		{"failed send keeps its legs, status failed",
			[]string{`{"id":"s3","type":"send","status":"failed","amount":{"amount":"-1","currency":"ETH"},` + at + `}`},
			"tx:s3", opencalico.TypeSend, opencalico.CategoryWithdrawal, "", opencalico.TxFailed,
			[]leg{"ETH 1"}, nil, nil, nil},
		{"staking reward", []string{`{"id":"r","type":"staking_reward","status":"completed","amount":{"amount":"0.002","currency":"ETH"},` + at + `}`},
			"tx:r", opencalico.TypeOutputOnly, opencalico.CategoryStakingReward, "", opencalico.TxConfirmed, nil, []leg{"ETH 0.002"}, nil, nil},
		{"inflation reward", []string{`{"id":"r","type":"inflation_reward","status":"completed","amount":{"amount":"0.2","currency":"ATOM"},` + at + `}`},
			"tx:r", opencalico.TypeOutputOnly, opencalico.CategoryStakingReward, "inflation", opencalico.TxConfirmed, nil, []leg{"ATOM 0.2"}, nil, nil},
		{"interest", []string{`{"id":"i","type":"interest","status":"completed","amount":{"amount":"1.23","currency":"USDC"},` + at + `}`},
			"tx:i", opencalico.TypeOutputOnly, opencalico.CategoryInterest, "", opencalico.TxConfirmed, nil, []leg{"USDC 1.23"}, nil, nil},
		{"clawback", []string{`{"id":"c","type":"clawback","status":"completed","amount":{"amount":"-3","currency":"XTZ"},` + at + `}`},
			"tx:c", opencalico.TypeInputOnly, opencalico.CategoryOther, "clawback", opencalico.TxConfirmed, []leg{"XTZ 3"}, nil, nil, nil},
		{"fiat withdrawal", []string{`{"id":"f","type":"fiat_withdrawal","status":"completed","amount":{"amount":"-100.00","currency":"USD"},` + at + `}`},
			"tx:f", opencalico.TypeSend, opencalico.CategoryWithdrawal, "fiat", opencalico.TxConfirmed, []leg{"USD 100"}, nil, nil, nil},
		{"generic tx is uncategorized", []string{`{"id":"x","type":"tx","status":"completed","amount":{"amount":"5","currency":"DOGE"},` + at + `}`},
			"tx:x", opencalico.TypeUncategorized, opencalico.CategoryOther, "", opencalico.TxConfirmed, nil, []leg{"DOGE 5"}, nil, nil},
	}
	legs := func(ls []opencalico.Leg) []string {
		var out []string
		for _, l := range ls {
			out = append(out, l.AssetSymbol+" "+l.Amount.String())
		}
		return out
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx, err := normalize(rows(t, tt.rows...))
			if err != nil {
				t.Fatal(err)
			}
			tx.ConnectionID = "c"
			if err := tx.Validate(); err != nil {
				t.Fatal(err)
			}
			if tx.ExternalID != tt.ext || tx.Type != tt.typ || tx.Categorization.Category != tt.cat ||
				tx.Categorization.Subcategory != tt.sub || tx.Status != tt.status {
				t.Fatalf("got %s %s %s/%s %s", tx.ExternalID, tx.Type, tx.Categorization.Category, tx.Categorization.Subcategory, tx.Status)
			}
			if g, w := legs(tx.Inputs), tt.in; !equal(g, w) {
				t.Errorf("inputs %v, want %v", g, w)
			}
			if g, w := legs(tx.Outputs), tt.out; !equal(g, w) {
				t.Errorf("outputs %v, want %v", g, w)
			}
			var fees []string
			var kinds []opencalico.FeeKind
			for _, f := range tx.Fees {
				fees = append(fees, f.AssetSymbol+" "+f.Amount.String())
				kinds = append(kinds, f.Kind)
			}
			if !equal(fees, tt.fees) || len(kinds) != len(tt.feeKinds) {
				t.Errorf("fees %v %v, want %v %v", fees, kinds, tt.fees, tt.feeKinds)
			}
			for i := range kinds {
				if kinds[i] != tt.feeKinds[i] {
					t.Errorf("fee kind %s, want %s", kinds[i], tt.feeKinds[i])
				}
			}
		})
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestCompleteAndKeys(t *testing.T) {
	fillBase := rows(t, `{"id":"a","type":"advanced_trade_fill","amount":{"amount":"1","currency":"ETH"},`+at+`,"advanced_trade_fill":{"fill_price":"0.05","product_id":"ETH-BTC","order_id":"O","order_side":"BUY","commission":"0.0003"}}`)
	if complete(fillBase) {
		t.Fatal("a fill's base row alone is not complete")
	}
	k, paired := groupKey(fillBase[0])
	if !paired || k != "fill:O:2024-01-02T03:04:05Z:0.05" {
		t.Fatalf("key %q paired=%v", k, paired)
	}
	if _, err := normalize(rows(t, `{"id":"z","type":"send","amount":{"amount":"1e","currency":"BTC"},`+at+`}`)); err == nil {
		t.Fatal("an unreadable amount must be an error")
	}
}
