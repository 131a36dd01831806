package kraken

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// The known-answer vector of PROVIDERS.md (from Kraken's documentation).
func TestSignKnownAnswer(t *testing.T) {
	secret, err := base64.StdEncoding.DecodeString("kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg==")
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25")
	got := base64.StdEncoding.EncodeToString(Sign(secret, "/0/private/AddOrder", "1616492376594", body))
	const want = "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="
	if got != want {
		t.Fatalf("API-Sign %s, want %s", got, want)
	}
}

// The generated ledger is deterministic, large, fast to make, and its net per asset is the
// balance, row by row.
func TestGenerate(t *testing.T) {
	began := time.Now()
	s := New(Options{Seed: 7, Accounts: 2, Events: 3000})
	if d := time.Since(began); d > 2*time.Second { // generous for -race on shared cores
		t.Fatalf("generation took %v", d)
	}
	again := New(Options{Seed: 7, Accounts: 2, Events: 3000})
	for i, a := range s.accounts {
		b := again.accounts[i]
		if a.apiKey != b.apiKey || len(a.rows) != len(b.rows) || a.rows[len(a.rows)-1].id != b.rows[len(b.rows)-1].id {
			t.Fatalf("account %d is not deterministic", i)
		}
		if len(a.rows) < 3000 {
			t.Fatalf("account %d has only %d rows", i, len(a.rows))
		}
		net := map[string]decimal.Decimal{}
		types := map[string]int{}
		for _, r := range a.rows {
			net[r.asset] = net[r.asset].Add(r.amount).Sub(r.fee)
			if !net[r.asset].Equal(r.balance) {
				t.Fatalf("row %s: running balance %s, net %s", r.id, r.balance, net[r.asset])
			}
			types[r.typ+":"+r.subtype]++
		}
		for asset, bal := range a.balances {
			if !net[asset].Equal(bal) {
				t.Fatalf("%s: balance %s, net of the ledger %s", asset, bal, net[asset])
			}
		}
		for _, want := range []string{"trade:", "deposit:", "withdrawal:", "spend:", "receive:", "staking:",
			"transfer:spottostaking", "transfer:stakingtospot", "earn:reward", "earn:allocation", "rollover:", "margin:", "adjustment:"} {
			if types[want] == 0 {
				t.Errorf("account %d has no %q rows (%v)", i, want, types)
			}
		}
	}
	if s.accounts[0].apiKey == s.accounts[1].apiKey {
		t.Fatal("two accounts share a key")
	}
}
