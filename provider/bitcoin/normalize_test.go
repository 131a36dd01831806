package bitcoin

import (
	"github.com/opencalico/opencalico/provider"
	"net/http"
	"testing"
	"time"

	"github.com/opencalico/opencalico"
)

func TestNormalize(t *testing.T) {
	const a1, a2, other, other2 = "bc1qmine1", "bc1qmine2", "1Other", "3Other"
	mine := func(a string) bool { return a == a1 || a == a2 }
	in := func(addr string, v int64) TxInput { return TxInput{Prevout: &TxOutput{addr, v}} }
	out := func(addr string, v int64) TxOutput { return TxOutput{addr, v} }
	confirmed := TxStatus{Confirmed: true, BlockHeight: 800000, BlockTime: 1700000000}
	cases := []struct {
		name         string
		tx           Tx
		typ          opencalico.TransactionType
		cat          opencalico.Category
		in, out, fee string // "" for none
		from, to     string
		pending      bool
		wantNil      bool
	}{
		{"receive from others to two of the wallet's addresses (one transaction)",
			Tx{TxID: "r", Fee: 500, Vin: []TxInput{in(other, 10_500)}, Vout: []TxOutput{out(a1, 3000), out(a2, 2000), out(other, 5000)}, Status: confirmed},
			opencalico.TypeReceive, opencalico.CategoryDeposit, "", "0.00005", "", other, a1, false, false},
		{"send with change: the fee apart, the input leg what went to others",
			Tx{TxID: "s", Fee: 1000, Vin: []TxInput{in(a1, 60_000), in(a2, 40_000)}, Vout: []TxOutput{out(other, 70_000), out(other2, 1000), out(a2, 28_000)}, Status: confirmed},
			opencalico.TypeSend, opencalico.CategoryWithdrawal, "0.00071", "", "0.00001", a1, other, false, false},
		{"self transfer: only the fee moves",
			Tx{TxID: "t", Fee: 300, Vin: []TxInput{in(a1, 10_000)}, Vout: []TxOutput{out(a2, 9_700)}, Status: confirmed},
			opencalico.TypeInputOnly, opencalico.CategoryTransfer, "0", "", "0.000003", a1, a2, false, false},
		{"payjoin: the wallet funded an input and gained",
			Tx{TxID: "p", Fee: 200, Vin: []TxInput{in(a1, 1000), in(other, 50_000)}, Vout: []TxOutput{out(a1, 31_000), out(other, 19_800)}, Status: confirmed},
			opencalico.TypeReceive, opencalico.CategoryDeposit, "", "0.000302", "0.000002", other, a1, false, false},
		{"pending send",
			Tx{TxID: "m", Fee: 150, Vin: []TxInput{in(a1, 10_000)}, Vout: []TxOutput{out(other, 9_850)}},
			opencalico.TypeSend, opencalico.CategoryWithdrawal, "0.0000985", "", "0.0000015", a1, other, true, false},
		{"not the wallet's", Tx{TxID: "x", Vin: []TxInput{in(other, 10)}, Vout: []TxOutput{out(other2, 9)}, Status: confirmed},
			"", "", "", "", "", "", "", false, true},
	}
	seen := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Normalize("conn", c.tx, mine, seen)
			if c.wantNil {
				if got != nil {
					t.Fatalf("got %+v", got)
				}
				return
			}
			if err := got.Validate(); err != nil {
				t.Fatal(err)
			}
			sum := func(legs []opencalico.Leg) string {
				if len(legs) == 0 {
					return ""
				}
				return legs[0].Amount.String()
			}
			fee := ""
			if len(got.Fees) > 0 {
				fee = got.Fees[0].Amount.String()
				if got.Fees[0].Kind != opencalico.FeeNetwork || got.Fees[0].AssetID != AssetID {
					t.Errorf("fee %+v", got.Fees[0])
				}
			}
			if got.Type != c.typ || got.Categorization.Category != c.cat || sum(got.Inputs) != c.in || sum(got.Outputs) != c.out || fee != c.fee {
				t.Errorf("got %s/%s in %q out %q fee %q", got.Type, got.Categorization.Category, sum(got.Inputs), sum(got.Outputs), fee)
			}
			if got.FromAddress != c.from || got.ToAddress != c.to {
				t.Errorf("from %q to %q", got.FromAddress, got.ToAddress)
			}
			if (got.Status == opencalico.TxPending) != c.pending {
				t.Errorf("status %s", got.Status)
			}
			wantTime := time.Unix(1700000000, 0).UTC()
			if c.pending {
				wantTime = seen
			}
			if !got.Timestamp.Equal(wantTime) || got.ExternalID != c.tx.TxID || got.TxHash != c.tx.TxID || got.Chain != "bitcoin" {
				t.Errorf("timestamp %v, ids %s %s", got.Timestamp, got.ExternalID, got.TxHash)
			}
			// outputs − inputs − fees is the net effect on the wallet exactly.
			var net int64
			for _, in := range c.tx.Vin {
				if mine(in.Prevout.ScriptPubKeyAddress) {
					net -= in.Prevout.Value
				}
			}
			for _, o := range c.tx.Vout {
				if mine(o.ScriptPubKeyAddress) {
					net += o.Value
				}
			}
			total := Sats(0)
			for _, l := range got.Outputs {
				total = total.Add(l.Amount)
			}
			for _, l := range got.Inputs {
				total = total.Sub(l.Amount)
			}
			for _, f := range got.Fees {
				total = total.Sub(f.Amount)
			}
			if !total.Equal(Sats(net)) {
				t.Errorf("legs add up to %s, net effect %s", total, Sats(net))
			}
		})
	}
}

func TestLimiterSpacing(t *testing.T) {
	clock := provider.NewScaledClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), 100)
	l := NewLimiter(clock, 10, 1)
	start := clock.Now()
	for i := 0; i < 20; i++ {
		if err := l.Wait(t.Context(), "host", 1); err != nil {
			t.Fatal(err)
		}
	}
	// One token at start, then 10 a second: 19 more take at least 1.9 s.
	if d := clock.Now().Sub(start); d < 1900*time.Millisecond {
		t.Errorf("20 requests in %v", d)
	}
	// A 429 with Retry-After closes the bucket for every caller.
	l.Observe("host", 429, http.Header{"Retry-After": []string{"3"}})
	before := clock.Now()
	if err := l.Wait(t.Context(), "host", 1); err != nil {
		t.Fatal(err)
	}
	if d := clock.Now().Sub(before); d < 3*time.Second {
		t.Errorf("waited %v after Retry-After: 3", d)
	}
}
