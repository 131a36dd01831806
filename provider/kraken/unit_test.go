package kraken

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
	"github.com/shopspring/decimal"
)

func TestSignKnownAnswer(t *testing.T) {
	secret, _ := base64.StdEncoding.DecodeString("kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg==")
	got := sign(secret, "/0/private/AddOrder", "1616492376594",
		[]byte("nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"))
	if want := "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="; got != want {
		t.Fatalf("API-Sign %s, want %s", got, want)
	}
}

func TestNonceMonotonic(t *testing.T) {
	base := time.UnixMilli(1_700_000_000_000)
	k := &keyState{}
	steps := []struct {
		name string
		now  time.Time
		want int64
	}{
		{"clock", base, 1_700_000_000_000},
		{"same millisecond", base, 1_700_000_000_001},
		{"clock went back", base.Add(-time.Hour), 1_700_000_000_002},
		{"clock ahead again", base.Add(time.Second), 1_700_000_001_000},
	}
	for _, s := range steps {
		if got := k.nextNonce(s.now); got != s.want {
			t.Fatalf("%s: nonce %d, want %d", s.name, got, s.want)
		}
	}
}

func TestAssetSymbol(t *testing.T) {
	tests := []struct {
		code   string
		sym    string
		staked bool
	}{
		{"XXBT", "BTC", false}, {"XBT", "BTC", false}, {"XETH", "ETH", false}, {"ZUSD", "USD", false},
		{"ZEUR", "EUR", false}, {"XXDG", "DOGE", false}, {"DOT", "DOT", false}, {"USDT", "USDT", false},
		{"DOT.S", "DOT", true}, {"ETH2.S", "ETH", true}, {"ETH2", "ETH", true}, {"USDT.F", "USDT", true},
		{"XBT.M", "BTC", true}, {"SOL.B", "SOL", true}, {"DOT28.S", "DOT", true}, {"KSM07.S", "KSM", true},
		{"ADA.S", "ADA", true}, {"SOL03.S", "SOL03", true}, {"USD.HOLD", "USD", false},
	}
	for _, tt := range tests {
		sym, staked := AssetSymbol(tt.code)
		if sym != tt.sym || staked != tt.staked {
			t.Errorf("%s → %s staked=%v, want %s staked=%v", tt.code, sym, staked, tt.sym, tt.staked)
		}
	}
}

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func row(id, refid, tm, typ, sub, asset, amount, fee string) LedgerEntry {
	return LedgerEntry{ID: id, RefID: refid, Time: json.Number(tm), Type: typ, Subtype: sub, Asset: asset,
		Amount: d(amount), Fee: d(fee)}
}

func TestNormalizeGroup(t *testing.T) {
	type leg = string // "SYM amount"
	tests := []struct {
		name     string
		rows     []LedgerEntry
		typ      opencalico.TransactionType
		cat      opencalico.Category
		sub      string
		ins      []leg
		outs     []leg
		fees     []string // "SYM amount kind"
		provType string
	}{
		{"buy BTC with USD, fee on the quote leg", []LedgerEntry{
			row("L1", "T1", "1600000000.1234", "trade", "", "ZUSD", "-1000.0000", "2.6000"),
			row("L2", "T1", "1600000000.1234", "trade", "", "XXBT", "0.0500000000", "0.0000000000"),
		}, opencalico.TypeInputOutput, opencalico.CategoryTrade, "buy",
			[]leg{"USD 1000"}, []leg{"BTC 0.05"}, []string{"USD 2.6 trading"}, "trade"},
		{"sell ETH for BTC, fee on both legs", []LedgerEntry{
			row("L1", "T2", "1600000000", "trade", "", "XETH", "-2", "0.0002"),
			row("L2", "T2", "1600000000", "trade", "", "XXBT", "0.12", "0.0003"),
		}, opencalico.TypeInputOutput, opencalico.CategoryTrade, "sell",
			[]leg{"ETH 2"}, []leg{"BTC 0.12"}, []string{"ETH 0.0002 trading", "BTC 0.0003 trading"}, "trade"},
		{"instant buy", []LedgerEntry{
			row("L1", "T3", "1600000000", "spend", "", "ZUSD", "-100", "1.5"),
			row("L2", "T3", "1600000000", "receive", "", "DOT", "16.5", "0"),
		}, opencalico.TypeInputOutput, opencalico.CategoryTrade, "buy",
			[]leg{"USD 100"}, []leg{"DOT 16.5"}, []string{"USD 1.5 trading"}, "spend+receive"},
		{"deposit", []LedgerEntry{row("L1", "Q1", "1600000000", "deposit", "", "ZEUR", "500", "0.09")},
			opencalico.TypeReceive, opencalico.CategoryDeposit, "", nil, []leg{"EUR 500"}, []string{"EUR 0.09 other"}, "deposit"},
		{"withdrawal with fee", []LedgerEntry{row("L1", "A1", "1600000000", "withdrawal", "", "XXBT", "-0.5", "0.00015")},
			opencalico.TypeSend, opencalico.CategoryWithdrawal, "", []leg{"BTC 0.5"}, nil, []string{"BTC 0.00015 withdrawal"}, "withdrawal"},
		{"returned withdrawal", []LedgerEntry{row("L1", "A2", "1600000000", "withdrawal", "", "XXBT", "0.5", "0")},
			opencalico.TypeReceive, opencalico.CategoryWithdrawal, "returned", nil, []leg{"BTC 0.5"}, nil, "withdrawal"},
		{"stake DOT (legs seconds apart)", []LedgerEntry{
			row("L2", "B1", "1600000009", "transfer", "stakingfromspot", "DOT.S", "10", "0"),
			row("L1", "B1", "1600000000", "transfer", "spottostaking", "DOT", "-10", "0"),
		}, opencalico.TypeInputOutput, opencalico.CategoryStaking, "", []leg{"DOT 10"}, []leg{"DOT 10"}, nil,
			"transfer:spottostaking+transfer:stakingfromspot"},
		{"unstake DOT", []LedgerEntry{
			row("L1", "B2", "1600000000", "transfer", "stakingtospot", "DOT.S", "-4", "0"),
			row("L2", "B2", "1600000001", "transfer", "spotfromstaking", "DOT", "4", "0"),
		}, opencalico.TypeInputOutput, opencalico.CategoryUnstaking, "", []leg{"DOT 4"}, []leg{"DOT 4"}, nil,
			"transfer:stakingtospot+transfer:spotfromstaking"},
		{"one staking transfer alone", []LedgerEntry{row("L1", "B3", "1600000000", "transfer", "stakingfromspot", "ETH2.S", "1", "0")},
			opencalico.TypeOutputOnly, opencalico.CategoryStaking, "", nil, []leg{"ETH 1"}, nil, "transfer:stakingfromspot"},
		{"older staking as withdrawal and deposit", []LedgerEntry{
			row("L1", "B4", "1600000000", "withdrawal", "", "DOT", "-3", "0"),
			row("L2", "B4", "1600000000", "deposit", "", "DOT.S", "3", "0"),
		}, opencalico.TypeInputOutput, opencalico.CategoryStaking, "", []leg{"DOT 3"}, []leg{"DOT 3"}, nil, "withdrawal+deposit"},
		{"staking reward", []LedgerEntry{row("L1", "S1", "1600000000", "staking", "", "DOT.S", "0.01", "0")},
			opencalico.TypeOutputOnly, opencalico.CategoryStakingReward, "", nil, []leg{"DOT 0.01"}, nil, "staking"},
		{"earn reward", []LedgerEntry{row("L1", "S2", "1600000000", "earn", "reward", "USDT.F", "0.2", "0")},
			opencalico.TypeOutputOnly, opencalico.CategoryStakingReward, "", nil, []leg{"USDT 0.2"}, nil, "earn:reward"},
		{"earn allocation", []LedgerEntry{
			row("L1", "E1", "1600000000", "earn", "allocation", "USDT", "-50", "0"),
			row("L2", "E1", "1600000000", "earn", "allocation", "USDT.F", "50", "0"),
		}, opencalico.TypeInputOutput, opencalico.CategoryStaking, "", []leg{"USDT 50"}, []leg{"USDT 50"}, nil, "earn:allocation"},
		{"earn deallocation", []LedgerEntry{
			row("L1", "E2", "1600000000", "earn", "deallocation", "USDT.F", "-50", "0"),
			row("L2", "E2", "1600000000", "earn", "deallocation", "USDT", "50", "0"),
		}, opencalico.TypeInputOutput, opencalico.CategoryUnstaking, "", []leg{"USDT 50"}, []leg{"USDT 50"}, nil, "earn:deallocation"},
		{"rollover: a fee alone", []LedgerEntry{row("L1", "M1", "1600000000", "rollover", "", "ZUSD", "0", "1.2")},
			opencalico.TypeUncategorized, opencalico.CategoryMargin, "", nil, nil, []string{"USD 1.2 other"}, "rollover"},
		{"margin loss", []LedgerEntry{row("L1", "M2", "1600000000", "margin", "", "ZUSD", "-20", "0")},
			opencalico.TypeInputOnly, opencalico.CategoryMargin, "", []leg{"USD 20"}, nil, nil, "margin"},
		{"adjustment", []LedgerEntry{row("L1", "J1", "1600000000", "adjustment", "", "XXDG", "3", "0")},
			opencalico.TypeOutputOnly, opencalico.CategoryOther, "", nil, []leg{"DOGE 3"}, nil, "adjustment"},
		{"unknown type", []LedgerEntry{row("L1", "U1", "1600000000", "mystery", "x", "XXBT", "1", "0")},
			opencalico.TypeUncategorized, opencalico.CategoryOther, "", nil, []leg{"BTC 1"}, nil, "mystery:x"},
		{"no refid: the ledger id", []LedgerEntry{row("L9", "", "1600000000", "deposit", "", "XXBT", "1", "0")},
			opencalico.TypeReceive, opencalico.CategoryDeposit, "", nil, []leg{"BTC 1"}, nil, "deposit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx := NormalizeGroup("conn", tt.rows)
			if tx.Type != tt.typ || tx.Categorization.Category != tt.cat || tx.Categorization.Subcategory != tt.sub ||
				tx.Categorization.ProviderType != tt.provType {
				t.Fatalf("got %s/%s/%s %q, want %s/%s/%s %q", tx.Type, tx.Categorization.Category, tx.Categorization.Subcategory,
					tx.Categorization.ProviderType, tt.typ, tt.cat, tt.sub, tt.provType)
			}
			legs := func(ls []opencalico.Leg) []string {
				var out []string
				for _, l := range ls {
					out = append(out, l.AssetSymbol+" "+l.Amount.String())
				}
				return out
			}
			var fees []string
			for _, f := range tx.Fees {
				fees = append(fees, f.AssetSymbol+" "+f.Amount.String()+" "+string(f.Kind))
			}
			eq := func(what string, got, want []string) {
				if len(got) != len(want) {
					t.Fatalf("%s %v, want %v", what, got, want)
				}
				for i := range got {
					if got[i] != want[i] {
						t.Fatalf("%s %v, want %v", what, got, want)
					}
				}
			}
			eq("inputs", legs(tx.Inputs), tt.ins)
			eq("outputs", legs(tx.Outputs), tt.outs)
			eq("fees", fees, tt.fees)
			wantID := tt.rows[0].RefID
			if wantID == "" {
				wantID = tt.rows[0].ID
			}
			if tx.ExternalID != wantID || tx.Status != opencalico.TxConfirmed {
				t.Fatalf("external id %q status %s", tx.ExternalID, tx.Status)
			}
			if err := tx.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestNormalizeGroupTimestamp(t *testing.T) {
	tx := NormalizeGroup("c", []LedgerEntry{row("L1", "T", "1688464484.1787", "deposit", "", "XXBT", "1", "0")})
	if want := time.Unix(1688464484, 178700000).UTC(); !tx.Timestamp.Equal(want) {
		t.Fatalf("timestamp %v, want %v", tx.Timestamp, want)
	}
}

func TestNormalizeBalances(t *testing.T) {
	got := NormalizeBalances("c", map[string]decimal.Decimal{
		"XXBT": d("1.5"), "XBT.M": d("0.5"), "DOT": d("10"), "DOT.S": d("90"), "DOT28.S": d("5"),
		"ZUSD": d("100.1234"), "XETH": d("0"), "ETH2.S": d("32"), "USDT.F": d("7"),
	}, time.Unix(0, 0))
	want := map[string][3]string{ // quantity, available, staked
		"BTC": {"2", "1.5", "0.5"}, "DOT": {"105", "10", "95"}, "USD": {"100.1234", "100.1234", "0"},
		"ETH": {"32", "0", "32"}, "USDT": {"7", "0", "7"},
	}
	if len(got) != len(want) {
		t.Fatalf("%d positions, want %d: %+v", len(got), len(want), got)
	}
	for _, p := range got {
		w := want[p.AssetSymbol]
		if p.Quantity.String() != w[0] || p.Available.String() != w[1] || p.Staked.String() != w[2] || !p.Locked.IsZero() {
			t.Errorf("%s: %s %s %s, want %v", p.AssetSymbol, p.Quantity, p.Available, p.Staked, w)
		}
		if p.ProviderID != ProviderID || p.ConnectionID != "c" {
			t.Errorf("%s: ids %q %q", p.AssetSymbol, p.ProviderID, p.ConnectionID)
		}
	}
}

func TestCutIndex(t *testing.T) {
	r := func(id, refid, tm string) LedgerEntry { return row(id, refid, tm, "trade", "", "ZUSD", "1", "0") }
	span := d("100")
	tests := []struct {
		name  string
		rows  []LedgerEntry
		final bool
		want  int
	}{
		{"empty", nil, false, 0},
		{"final takes all", []LedgerEntry{r("a", "1", "1"), r("b", "1", "2")}, true, 2},
		{"keeps the last span", []LedgerEntry{r("a", "1", "1"), r("b", "2", "2"), r("c", "3", "150"), r("d", "4", "200")}, false, 2},
		{"never splits a time", []LedgerEntry{r("a", "1", "1"), r("b", "2", "2"), r("c", "3", "2"), r("d", "4", "500")}, false, 3},
		{"never splits a group", []LedgerEntry{r("a", "1", "1"), r("b", "2", "2"), r("c", "3", "3"), r("e", "2", "4"), r("d", "4", "500")}, false, 4},
		{"group reaching into the span waits", []LedgerEntry{r("a", "1", "1"), r("b", "2", "2"), r("c", "2", "450"), r("d", "4", "500")}, false, 1},
		{"nothing old enough", []LedgerEntry{r("a", "1", "450"), r("b", "2", "500")}, false, 0},
		{"all at one time", []LedgerEntry{r("a", "1", "5"), r("b", "2", "5"), r("c", "3", "5")}, false, 0},
	}
	for _, tt := range tests {
		if got := cutIndex(tt.rows, tt.final, span); got != tt.want {
			t.Errorf("%s: cut %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		transient bool
		code      opencalico.ErrorCode // when not transient; "" for success
	}{
		{"ok", 200, `{"error":[],"result":{"ZUSD":"1.0000"}}`, false, ""},
		{"invalid key", 200, `{"error":["EAPI:Invalid key"],"result":{}}`, false, opencalico.EInvalidCredentials},
		{"invalid signature", 200, `{"error":["EAPI:Invalid signature"],"result":{}}`, false, opencalico.EInvalidCredentials},
		{"permission denied", 200, `{"error":["EGeneral:Permission denied"],"result":{}}`, false, opencalico.EInvalidCredentials},
		{"invalid nonce", 200, `{"error":["EAPI:Invalid nonce"],"result":{}}`, true, ""},
		{"rate limit", 200, `{"error":["EAPI:Rate limit exceeded"],"result":{}}`, true, ""},
		{"unavailable", 200, `{"error":["EService:Unavailable"],"result":{}}`, true, ""},
		{"throttled", 200, `{"error":["EService:Throttled: 1700000000"],"result":{}}`, true, ""},
		{"invalid arguments", 200, `{"error":["EGeneral:Invalid arguments"],"result":{}}`, false, opencalico.EProviderError},
		{"500", 500, `oops`, true, ""},
		{"520", 520, `<html>`, true, ""},
		{"429", 429, ``, true, ""},
		{"truncated", 200, `{"error":[],"result":{"ZU`, true, ""},
		{"html", 200, `<html>maintenance</html>`, true, ""},
		{"404", 404, `not found`, false, opencalico.EProviderError},
	}
	for _, tt := range tests {
		err := classify(&provider.Response{Status: tt.status, Header: http.Header{}, Body: []byte(tt.body)})
		if provider.IsTransient(err) != tt.transient {
			t.Errorf("%s: %v, transient want %v", tt.name, err, tt.transient)
			continue
		}
		if !tt.transient && opencalico.ErrorCodeOf(err) != tt.code {
			t.Errorf("%s: %v, want code %q", tt.name, err, tt.code)
		}
	}
}

// manualClock advances only when slept on.
type manualClock struct{ now time.Time }

func (c *manualClock) Now() time.Time { return c.now }
func (c *manualClock) Sleep(ctx context.Context, dur time.Duration) error {
	c.now = c.now.Add(dur)
	return ctx.Err()
}

func TestLimiter(t *testing.T) {
	clock := &manualClock{now: time.Unix(1_700_000_000, 0)}
	l := NewLimiter(clock, 20, 0.5)
	ctx := context.Background()
	start := clock.now
	// Nine Ledgers calls (18 points) go at once; the tenth (to 20) waits a little, because
	// the limiter keeps a small margin below the maximum.
	for i := 0; i < 9; i++ {
		if err := l.Wait(ctx, "k", 2); err != nil {
			t.Fatal(err)
		}
	}
	if clock.now != start {
		t.Fatalf("the first 18 points waited %v", clock.now.Sub(start))
	}
	if err := l.Wait(ctx, "k", 2); err != nil {
		t.Fatal(err)
	}
	if waited := clock.now.Sub(start); waited <= 0 || waited > time.Second {
		t.Fatalf("the 10th call waited %v", waited)
	}
	// Now at the maximum: each further call of cost 2 waits 4 s at 0.5 per second.
	before := clock.now
	for i := 0; i < 5; i++ {
		if err := l.Wait(ctx, "k", 2); err != nil {
			t.Fatal(err)
		}
		if lvl := l.Level("k"); lvl > 20 {
			t.Fatalf("level %v above the maximum", lvl)
		}
	}
	if waited := clock.now.Sub(before); waited < 20*time.Second-time.Millisecond || waited > 21*time.Second {
		t.Fatalf("5 calls at the maximum waited %v, want about 20 s", waited)
	}
	// Another key has its own counter.
	before = clock.now
	if err := l.Wait(ctx, "other", 2); err != nil || clock.now != before {
		t.Fatalf("another key waited %v (%v)", clock.now.Sub(before), err)
	}
	// Time in flight is not credited: the answer restarts the decay.
	l.Observe("k", 200, nil)
	if lvl := l.Level("k"); lvl < 19 {
		t.Fatalf("level %v dropped without time passing", lvl)
	}
}
