package opencalico

import (
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func trade() *Transaction {
	return &Transaction{
		ConnectionID:   "conn_a",
		ExternalID:     "trade:BTCUSDT:1",
		Type:           TypeInputOutput,
		Categorization: Categorization{Category: CategoryTrade, Subcategory: "buy", ProviderType: "myTrades"},
		Status:         TxConfirmed,
		Timestamp:      time.Date(2026, 3, 6, 12, 0, 0, 0, time.UTC),
		Inputs:         []Leg{{AssetSymbol: "USDT", Amount: decimal.RequireFromString("30000.50")}},
		Outputs:        []Leg{{AssetSymbol: "BTC", Amount: decimal.RequireFromString("0.5")}},
		Fees:           []Fee{{AssetSymbol: "BNB", Amount: decimal.RequireFromString("0.0012"), Kind: FeeTrading}},
	}
}

func TestTransactionValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Transaction)
		want   string // "" for valid
	}{
		{"valid trade", func(*Transaction) {}, ""},
		{"no external id", func(t *Transaction) { t.ExternalID = "" }, "external id"},
		{"unknown type", func(t *Transaction) { t.Type = "swap" }, "unknown type"},
		{"unknown category", func(t *Transaction) { t.Categorization.Category = "shopping" }, "unknown category"},
		{"unknown status", func(t *Transaction) { t.Status = "done" }, "unknown status"},
		{"no timestamp", func(t *Transaction) { t.Timestamp = time.Time{} }, "no timestamp"},
		{"negative leg", func(t *Transaction) { t.Outputs[0].Amount = decimal.RequireFromString("-0.5") }, "negative"},
		{"negative fee", func(t *Transaction) { t.Fees[0].Amount = decimal.RequireFromString("-1") }, "negative"},
		{"fee kind", func(t *Transaction) { t.Fees[0].Kind = "tip" }, "fee kind"},
		{"send with outputs", func(t *Transaction) { t.Type = TypeSend }, "inputs only"},
		{"receive with inputs", func(t *Transaction) { t.Type = TypeReceive }, "outputs only"},
		{"trade without output", func(t *Transaction) { t.Outputs = nil }, "inputs and outputs"},
		{"uncategorized takes anything", func(t *Transaction) { t.Type = TypeUncategorized; t.Inputs = nil }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx := trade()
			tt.change(tx)
			err := tx.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one mentioning %q", err, tt.want)
			case err != nil && ErrorCodeOf(err) != EBadRequest:
				t.Fatalf("code %s", ErrorCodeOf(err))
			}
		})
	}
}

func TestTransactionIDIsStableAndDistinct(t *testing.T) {
	a := TransactionID("conn_a", "trade:BTCUSDT:1")
	if a != TransactionID("conn_a", "trade:BTCUSDT:1") {
		t.Fatal("TransactionID is not a pure function")
	}
	if !HasIDPrefix(a, "txn") {
		t.Fatalf("id %q", a)
	}
	for _, other := range []string{TransactionID("conn_b", "trade:BTCUSDT:1"), TransactionID("conn_a", "trade:BTCUSDT:2"),
		TransactionID("conn_atrade:BTCUSDT:", "1")} {
		if other == a {
			t.Fatalf("collision: %s", other)
		}
	}
}

func TestContentHash(t *testing.T) {
	base := trade().ContentHash()
	same := trade()
	same.Outputs[0].Amount = decimal.RequireFromString("0.500") // the same number written differently
	same.Timestamp = same.Timestamp.In(time.FixedZone("CET", 3600))
	same.CreatedAt = time.Now() // bookkeeping is not content
	if same.ContentHash() != base {
		t.Fatal("equal events hash differently")
	}
	changes := map[string]func(*Transaction){
		"status":   func(t *Transaction) { t.Status = TxPending },
		"amount":   func(t *Transaction) { t.Outputs[0].Amount = decimal.RequireFromString("0.51") },
		"fee":      func(t *Transaction) { t.Fees = nil },
		"category": func(t *Transaction) { t.Categorization.Category = CategoryOther },
		"transfer": func(t *Transaction) { t.TransferID = "trf_1" },
		"leg moved between sides": func(t *Transaction) {
			t.Inputs, t.Outputs = t.Outputs, t.Inputs
		},
	}
	for name, change := range changes {
		tx := trade()
		change(tx)
		if tx.ContentHash() == base {
			t.Errorf("changing %s keeps the hash", name)
		}
	}
}

func TestErrorCodes(t *testing.T) {
	e := Errorf(ENotFound, "connection %s not found", "conn_x")
	if ErrorCodeOf(e) != ENotFound || ErrorMessage(e) != "connection conn_x not found" {
		t.Fatalf("%v", e)
	}
	plain := &testErr{"pq: password authentication failed for user admin"}
	if ErrorCodeOf(plain) != EInternal || strings.Contains(ErrorMessage(plain), "password") {
		t.Fatalf("an internal error's text reaches the message: %q", ErrorMessage(plain))
	}
	if ErrorCodeOf(nil) != "" {
		t.Fatal("nil has a code")
	}
	seen := map[ErrorCode]bool{}
	for _, c := range ErrorCodes {
		if seen[c] {
			t.Fatalf("duplicate code %s", c)
		}
		seen[c] = true
	}
	if len(ErrorCodes) != 16 {
		t.Fatalf("%d codes; API.md documents 16 causes", len(ErrorCodes))
	}
}

type testErr struct{ s string }

func (e *testErr) Error() string { return e.s }
