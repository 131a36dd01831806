package kraken

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencalico/opencalico/provider"
)

// naiveLedgers is the reference answer of Ledgers: every row of the account filtered, sorted
// newest first (ties in reverse booking order), the page cut at ofs, with the count of all
// matching rows, written as ledgersResult writes it.
func naiveLedgers(a *account, start, end tick, ofs int, assetFilter map[string]bool, typ string) string {
	var match []*ledgerRow
	for _, row := range a.rows {
		if row.time <= start || row.time > end {
			continue
		}
		if len(assetFilter) > 0 && !assetFilter[row.asset] {
			continue
		}
		if typ != "" && typ != "all" && typ != row.typ {
			continue
		}
		match = append(match, row)
	}
	sort.Slice(match, func(i, j int) bool {
		if match[i].time != match[j].time {
			return match[i].time > match[j].time
		}
		return match[i].seq > match[j].seq
	})
	page := match[min(ofs, len(match)):min(ofs+ledgerPageSize, len(match))]
	var b bytes.Buffer
	b.WriteString(`{"ledger":{`)
	for i, row := range page {
		if i > 0 {
			b.WriteByte(',')
		}
		d := assets[row.asset].decimals
		fmt.Fprintf(&b, `%q:{"refid":%q,"time":%s,"type":%q,"subtype":%q,"aclass":"currency","asset":%q,"amount":%q,"fee":%q,"balance":%q}`,
			row.id, row.refid, row.time, row.typ, row.subtype, row.asset,
			row.amount.StringFixed(d), row.fee.StringFixed(d), row.balance.StringFixed(d))
	}
	fmt.Fprintf(&b, `},"count":%d}`, len(match))
	return b.String()
}

// Ledgers answered from the time index is the answer of a scan and sort of the whole ledger,
// for random windows, offsets and filters, before and after rows are appended (in time order
// and late), and the index stays sorted.
func TestLedgersMatchesScan(t *testing.T) {
	clock := provider.NewScaledClock(time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), 1)
	s := New(Options{Seed: 3, Events: 2000, Clock: clock})
	a := s.accounts[0]
	rng := rand.New(rand.NewPCG(1, 2))
	types := []string{"", "all", "trade", "deposit", "transfer", "earn", "nosuchtype"}
	assetSets := []string{"", "all", "XXBT", "ZUSD,XETH", "DOT.S,USDT.F", "NOPE"}
	check := func(round int) {
		t.Helper()
		for i := 1; i < len(a.byTime); i++ {
			p, q := a.byTime[i-1], a.byTime[i]
			if p.time > q.time || p.time == q.time && p.seq > q.seq {
				t.Fatalf("round %d: byTime out of order at %d", round, i)
			}
		}
		if len(a.byTime) != len(a.rows) {
			t.Fatalf("round %d: %d rows indexed of %d", round, len(a.byTime), len(a.rows))
		}
		first, last := a.byTime[0].time, a.byTime[len(a.byTime)-1].time
		for range 300 {
			form := url.Values{}
			var start, end tick = -1, 1 << 62
			pick := func() tick {
				// Often exactly a row's time, to hit the bounds' inclusiveness.
				if rng.IntN(2) == 0 {
					return a.rows[rng.IntN(len(a.rows))].time
				}
				return first - 10 + tick(rng.Int64N(int64(last-first)+20))
			}
			if rng.IntN(3) > 0 {
				start = pick()
				form.Set("start", start.String())
			}
			if rng.IntN(3) > 0 {
				end = pick()
				form.Set("end", end.String())
			}
			ofs := 0
			if rng.IntN(3) > 0 {
				ofs = rng.IntN(len(a.rows) + 100)
				if rng.IntN(2) == 0 {
					ofs = rng.IntN(120)
				}
				form.Set("ofs", strconv.Itoa(ofs))
			}
			assetFilter := map[string]bool{}
			if rng.IntN(4) == 0 {
				v := assetSets[rng.IntN(len(assetSets))]
				if v != "" {
					form.Set("asset", v)
				}
				if v != "" && v != "all" {
					for _, x := range strings.Split(v, ",") {
						assetFilter[x] = true
					}
				}
			}
			typ := ""
			if rng.IntN(4) == 0 {
				typ = types[rng.IntN(len(types))]
				if typ != "" {
					form.Set("type", typ)
				}
			}
			got, errs := a.ledgersResult(form)
			if len(errs) > 0 {
				t.Fatalf("round %d: %v: %v", round, form, errs)
			}
			if want := naiveLedgers(a, start, end, ofs, assetFilter, typ); string(got) != want {
				t.Fatalf("round %d: %v:\n got %.300s\nwant %.300s", round, form, got, want)
			}
			if !json.Valid(got) {
				t.Fatalf("round %d: invalid JSON", round)
			}
		}
	}
	check(0)
	s.Append(0, 30)
	check(1)
	for _, age := range []time.Duration{0, time.Second, time.Hour, 400 * 24 * time.Hour} {
		s.AppendLate(0, age)
	}
	check(2)
}

// A page of Ledgers does not depend on the size of the ledger: BenchmarkLedgersPage at
// 10 k and 1 M events shows the same time per call.
func BenchmarkLedgersPage(b *testing.B) {
	for _, events := range []int{10_000, 1_000_000} {
		b.Run(strconv.Itoa(events), func(b *testing.B) {
			if events > 10_000 && testing.Short() {
				b.Skip("short")
			}
			a := New(Options{Seed: 1, Events: events}).accounts[0]
			end := a.byTime[len(a.byTime)/2].time
			form := url.Values{"end": {end.String()}, "ofs": {"500"}}
			b.ResetTimer()
			for range b.N {
				if _, errs := a.ledgersResult(form); len(errs) > 0 {
					b.Fatal(errs)
				}
			}
		})
	}
}
