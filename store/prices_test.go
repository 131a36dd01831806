package store

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/opencalico/opencalico"
)

func TestPriceCache(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		// Exact decimals, also beyond float precision, round-trip on both backends.
		at := time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC)
		points := []PricePoint{
			{PriceID: "bitcoin", At: at, Price: dec("94123.123456789012345678")},
			{PriceID: "bitcoin", At: at.Add(24 * time.Hour), Price: dec("95000")},
			{PriceID: "shiba-inu", At: at, Price: dec("0.000012345678901234")},
		}
		if _, err := s.SavePriceHistory(ctx, PriceHistory{PriceID: "bitcoin", FromDay: Day(at), ToDay: Day(at) + 1, Points: points[:2]}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SavePriceHistory(ctx, PriceHistory{PriceID: "shiba-inu", FromDay: Day(at), ToDay: Day(at), Points: points[2:]}); err != nil {
			t.Fatal(err)
		}
		// Saving again replaces, never duplicates.
		if _, err := s.SavePriceHistory(ctx, PriceHistory{PriceID: "bitcoin", FromDay: Day(at), ToDay: Day(at), Points: points[:1]}); err != nil {
			t.Fatal(err)
		}
		got, err := s.PricePoints(ctx, []string{"bitcoin", "shiba-inu", "nope"}, at, at.Add(48*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(got["bitcoin"]) != 2 || len(got["shiba-inu"]) != 1 || len(got["nope"]) != 0 {
			t.Fatalf("points: %v", got)
		}
		for i, p := range append(got["bitcoin"], got["shiba-inu"]...) {
			if !p.Price.Equal(points[i].Price) || !p.At.Equal(points[i].At) || p.PriceID != points[i].PriceID {
				t.Errorf("point %d: %+v, want %+v", i, p, points[i])
			}
		}
		days, err := s.PriceDays(ctx, "bitcoin", Day(at)-5, Day(at)+5)
		if err != nil || len(days) != 2 || !days[Day(at)] || !days[Day(at)+1] {
			t.Fatalf("days: %v, %v", days, err)
		}

		if err := s.SaveCurrentPrices(ctx, []PricePoint{{PriceID: "bitcoin", At: at, Price: dec("1.5")}}); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveCurrentPrices(ctx, []PricePoint{{PriceID: "bitcoin", At: at.Add(time.Minute), Price: dec("2.000000000000000001")}}); err != nil {
			t.Fatal(err)
		}
		cur, err := s.CurrentPrices(ctx, []string{"bitcoin", "ethereum"})
		if err != nil || len(cur) != 1 || !cur["bitcoin"].Price.Equal(dec("2.000000000000000001")) || !cur["bitcoin"].At.Equal(at.Add(time.Minute)) {
			t.Fatalf("current: %v, %v", cur, err)
		}

		// Mappings: tracked (unresolved), resolved to an id, resolved to none.
		if err := s.TrackPriceAssets(ctx, []string{"symbol:BTC", "symbol:NOPE", "symbol:NEW"}); err != nil {
			t.Fatal(err)
		}
		if err := s.SavePriceAssets(ctx, []PriceAsset{{AssetKey: "symbol:BTC", PriceID: "bitcoin"}, {AssetKey: "symbol:NOPE", PriceID: ""}}); err != nil {
			t.Fatal(err)
		}
		if err := s.TrackPriceAssets(ctx, []string{"symbol:BTC"}); err != nil { // does not undo the mapping
			t.Fatal(err)
		}
		assets, err := s.PriceAssets(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if a := assets["symbol:BTC"]; !a.Resolved || a.PriceID != "bitcoin" {
			t.Errorf("BTC: %+v", a)
		}
		if a := assets["symbol:NOPE"]; !a.Resolved || a.PriceID != "" {
			t.Errorf("NOPE: %+v", a)
		}
		if a, ok := assets["symbol:NEW"]; !ok || a.Resolved {
			t.Errorf("NEW: %+v", a)
		}
		if some, err := s.PriceAssets(ctx, []string{"symbol:NEW", "symbol:ABSENT"}); err != nil || len(some) != 1 {
			t.Errorf("some assets: %v, %v", some, err)
		}
	})
}

// Needs are recorded once, listed by day, and deleted by the history that meets them; the
// transactions they concern show as modified in the changes feed.
func TestPriceHistoryMarksTransactionsModified(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		u := mustUser(t, s, "prices@example.com")
		c := mustConnection(t, s, u.ID, "kraken")
		other := mustConnection(t, s, u.ID, "binance")
		d := time.Date(2025, 3, 4, 0, 0, 0, 0, time.UTC)
		btcByID := trade(c.ID, "t1", d.Add(5*time.Hour), "0.1")              // BTC with an asset id, USD legs
		btcBySym := receive(c.ID, "r1", d.Add(6*time.Hour), "BTC", "1")      // BTC by symbol
		eth := receive(c.ID, "r2", d.Add(7*time.Hour), "ETH", "1")           // not concerned
		nextDay := receive(c.ID, "r3", d.Add(30*time.Hour), "BTC", "1")      // a day without points
		otherConn := receive(other.ID, "r4", d.Add(6*time.Hour), "BTC", "1") // another connection
		if _, err := s.UpsertTransactions(ctx, []*opencalico.Transaction{btcByID, btcBySym, eth, nextDay, otherConn}); err != nil {
			t.Fatal(err)
		}
		start, err := s.Changes(ctx, ChangesFilter{UserID: u.ID, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		needs := []PriceNeed{
			{AssetKey: "symbol:BTC", Day: Day(d), ConnectionID: c.ID},
			{AssetKey: "symbol:BTC", Day: Day(d), ConnectionID: c.ID},
			{AssetKey: "bip122:000000000019d6689c085ae165831e93/slip44:0", Day: Day(d), ConnectionID: c.ID},
			{AssetKey: "symbol:BTC", Day: Day(d) + 1, ConnectionID: c.ID},
			{AssetKey: "symbol:ETH", Day: Day(d) + 400, ConnectionID: c.ID},
		}
		if err := s.AddPriceNeeds(ctx, needs); err != nil {
			t.Fatal(err)
		}
		if err := s.AddPriceNeeds(ctx, needs[:1]); err != nil {
			t.Fatal(err)
		}
		got, err := s.PriceNeeds(ctx, Day(d)+2)
		if err != nil || len(got) != 3 {
			t.Fatalf("needs before %d: %v, %v", Day(d)+2, got, err)
		}
		marked, err := s.SavePriceHistory(ctx, PriceHistory{PriceID: "bitcoin", FromDay: Day(d), ToDay: Day(d) + 1,
			Points: []PricePoint{{PriceID: "bitcoin", At: d, Price: dec("80000")}}, Met: got})
		if err != nil {
			t.Fatal(err)
		}
		if marked != 2 {
			t.Errorf("marked %d transactions, want 2", marked)
		}
		if left, _ := s.PriceNeeds(ctx, Day(d)+1000); len(left) != 1 || left[0].AssetKey != "symbol:ETH" {
			t.Errorf("needs left: %v", left)
		}
		ch, err := s.Changes(ctx, ChangesFilter{UserID: u.ID, After: start.Next, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		modified := ids(ch.Modified)
		if len(modified) != 2 || len(ch.Added) != 0 || !slices.Contains(modified, btcByID.ID) || !slices.Contains(modified, btcBySym.ID) {
			t.Errorf("modified %v, want %s and %s", modified, btcByID.ID, btcBySym.ID)
		}
		// Removing the connection drops its needs.
		if err := s.AddPriceNeeds(ctx, []PriceNeed{{AssetKey: "symbol:BTC", Day: 1, ConnectionID: other.ID}}); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteConnection(ctx, u.ID, other.ID); err != nil {
			t.Fatal(err)
		}
		if n := countRows(t, s, "price_needs"); n != 1 {
			t.Fatalf("price_needs: %d rows after removing a connection, want 1", n)
		}
	})
}
