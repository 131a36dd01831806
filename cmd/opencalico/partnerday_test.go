package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/opencalico/opencalico/api"
)

// The parts of the API's answers this test reads.
type (
	dayLeg struct {
		AssetSymbol string `json:"asset_symbol"`
		Amount      string `json:"amount"`
	}
	dayTransaction struct {
		ID           string   `json:"id"`
		ConnectionID string   `json:"connection_id"`
		ProviderID   string   `json:"provider_id"`
		Type         string   `json:"type"`
		Status       string   `json:"status"`
		Timestamp    string   `json:"timestamp"`
		Inputs       []dayLeg `json:"inputs"`
		Outputs      []dayLeg `json:"outputs"`
		Fees         struct {
			Items []dayLeg `json:"items"`
		} `json:"fees"`
		Categorization struct {
			Category string `json:"category"`
		} `json:"categorization"`
		TransferID *string `json:"transfer_id"`
	}
	dayPage struct {
		Page struct {
			NextCursor *string `json:"next_cursor"`
			HasMore    bool    `json:"has_more"`
		} `json:"page"`
	}
)

// walkTransactions reads every page of a transactions query and checks each transaction comes
// once, newest first by (timestamp, id).
func walkTransactions(t *testing.T, user *apiClient, query string) []dayTransaction {
	t.Helper()
	var all []dayTransaction
	seen := map[string]bool{}
	cursor := ""
	for {
		q, _ := url.ParseQuery(query)
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var data struct {
			Transactions []dayTransaction `json:"transactions"`
		}
		var full dayPage
		if err := user.callPaged(context.Background(), "/accounts/v2/transactions?"+q.Encode(), &data, &full); err != nil {
			t.Fatal(err)
		}
		for _, tx := range data.Transactions {
			if seen[tx.ID] {
				t.Fatalf("transaction %s on two pages", tx.ID)
			}
			seen[tx.ID] = true
			if n := len(all); n > 0 {
				prev := all[n-1]
				pt, _ := time.Parse(time.RFC3339Nano, prev.Timestamp)
				ct, _ := time.Parse(time.RFC3339Nano, tx.Timestamp)
				if ct.After(pt) || ct.Equal(pt) && tx.ID > prev.ID {
					t.Fatalf("out of order: %s %s after %s %s", tx.Timestamp, tx.ID, prev.Timestamp, prev.ID)
				}
			}
			all = append(all, tx)
		}
		if !full.Page.HasMore {
			return all
		}
		cursor = *full.Page.NextCursor
	}
}

// refreshAndWait asks for a transactions refresh of every connection and waits until it
// succeeded; any other end fails the test.
func refreshAndWait(t *testing.T, user *apiClient, timeout time.Duration) {
	t.Helper()
	ctx := context.Background()
	var refresh struct {
		RefreshID string `json:"refresh_id"`
	}
	if err := user.call(ctx, http.MethodPost, "/accounts/v2/transactions/refresh", nil, &refresh); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(timeout)
	for {
		var status struct {
			Status string `json:"status"`
		}
		if err := user.call(ctx, http.MethodGet, "/accounts/v2/refresh/"+refresh.RefreshID, nil, &status); err != nil {
			t.Fatal(err)
		}
		if status.Status == "succeeded" {
			return
		}
		if status.Status == "failed" || status.Status == "partial" || time.Now().After(deadline) {
			t.Fatalf("refresh %s", status.Status)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// posKey is a position: a connection's asset.
type posKey struct{ conn, asset string }

// allPositions reads every position, limit per page, and checks each comes once.
func allPositions(t *testing.T, user *apiClient, limit int) map[posKey]decimal.Decimal {
	t.Helper()
	positions := map[posKey]decimal.Decimal{}
	cursor := ""
	for {
		path := fmt.Sprintf("/accounts/v2/assets?limit=%d", limit)
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		var data struct {
			Assets []struct {
				ConnectionID string `json:"connection_id"`
				AssetSymbol  string `json:"asset_symbol"`
				Quantity     string `json:"quantity"`
			} `json:"assets"`
		}
		var full dayPage
		if err := user.callPaged(context.Background(), path, &data, &full); err != nil {
			t.Fatal(err)
		}
		for _, a := range data.Assets {
			k := posKey{a.ConnectionID, a.AssetSymbol}
			if _, dup := positions[k]; dup {
				t.Fatalf("position %v twice", k)
			}
			positions[k] = decimal.RequireFromString(a.Quantity)
		}
		if !full.Page.HasMore {
			return positions
		}
		cursor = *full.Page.NextCursor
	}
}

// historyNet sums the transactions per connection and asset as providers book balances:
// failed moves nothing (a reverted on-chain transaction, whose fee was paid, is confirmed
// with the category fee), pending debits count, pending credits count only at Coinbase
// (which books them at once).
func historyNet(all []dayTransaction) map[posKey]decimal.Decimal {
	net := map[posKey]decimal.Decimal{}
	add := func(tx dayTransaction, legs []dayLeg, sign int64) {
		for _, l := range legs {
			k := posKey{tx.ConnectionID, l.AssetSymbol}
			net[k] = net[k].Add(decimal.RequireFromString(l.Amount).Mul(decimal.NewFromInt(sign)))
		}
	}
	for _, tx := range all {
		if tx.Status == "failed" {
			continue
		}
		add(tx, tx.Inputs, -1)
		add(tx, tx.Fees.Items, -1)
		if tx.Status == "confirmed" || tx.ProviderID == "coinbase" {
			add(tx, tx.Outputs, 1)
		}
	}
	return net
}

// checkNetEqualsPositions compares both ways: an asset in one and not the other is an error
// unless it is zero.
func checkNetEqualsPositions(t *testing.T, net, positions map[posKey]decimal.Decimal) {
	t.Helper()
	for k, v := range net {
		if !v.Equal(positions[k]) {
			t.Errorf("%v: history nets %s, position %s", k, v, positions[k])
		}
	}
	for k, v := range positions {
		if !v.Equal(net[k]) {
			t.Errorf("%v: position %s, history nets %s", k, v, net[k])
		}
	}
}

// TestPartnerDay walks a partner's whole day against a sandbox server, through the HTTP API
// only: a sandbox user, three exchanges connected and a bad key refused, a refresh waited
// for, every asset and every transaction page read, the history checked against the
// positions, filters, the changes feed, and a connection removed.
func TestPartnerDay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, c := startSandbox(t, t.TempDir())
	user := sandboxUser(t, srv, c)

	var creds map[string]api.SandboxProviderCredentials
	if err := user.call(ctx, http.MethodGet, "/sandbox/credentials", nil, &creds); err != nil {
		t.Fatal(err)
	}
	conns := map[string]string{} // provider → connection id
	for _, p := range []string{"binance", "kraken", "coinbase"} {
		var added struct {
			Connection struct {
				ConnectionID string `json:"connection_id"`
			} `json:"connection"`
		}
		body := map[string]any{"provider_id": p, "display_label": "Day " + p, "connection": creds[p].Good[0].Connection}
		if err := user.call(ctx, http.MethodPost, "/accounts/v2/providers", body, &added); err != nil {
			t.Fatalf("adding %s: %v", p, err)
		}
		conns[p] = added.Connection.ConnectionID
	}
	var bad *api.SandboxCredential
	for i := range creds["kraken"].Bad {
		if creds["kraken"].Bad[i].Case == "invalid_credentials" {
			bad = &creds["kraken"].Bad[i]
		}
	}
	var apiErr *apiError
	err := user.call(ctx, http.MethodPost, "/accounts/v2/providers", map[string]any{"provider_id": "kraken", "connection": bad.Connection}, nil)
	if !errors.As(err, &apiErr) || apiErr.Status != 400 || apiErr.Errors[0].Cause != "invalid_credentials" {
		t.Fatalf("the bad key: %v", err)
	}

	// Refresh and wait for it.
	refreshAndWait(t, user, 90*time.Second)
	var listed struct {
		Providers []struct {
			ConnectionID string  `json:"connection_id"`
			Status       string  `json:"status"`
			StatusDetail *string `json:"status_detail"`
		} `json:"providers"`
	}
	if err := user.call(ctx, http.MethodGet, "/accounts/v2/providers", nil, &listed); err != nil || len(listed.Providers) != 3 {
		t.Fatalf("providers: %+v %v", listed, err)
	}
	for _, p := range listed.Providers {
		if p.Status != "active" || p.StatusDetail != nil {
			t.Errorf("%s: %s %v", p.ConnectionID, p.Status, *p.StatusDetail)
		}
	}

	// Every position, a few per page; every transaction, in pages of 37; per connection and
	// asset, the net of the history equals the position.
	positions := allPositions(t, user, 4)
	all := walkTransactions(t, user, "limit=37")
	if len(all) < 300 {
		t.Fatalf("only %d transactions", len(all))
	}
	checkNetEqualsPositions(t, historyNet(all), positions)

	// Filters.
	for _, tx := range walkTransactions(t, user, "types=receive&limit=50") {
		if tx.Type != "receive" {
			t.Fatalf("types=receive gave a %s", tx.Type)
		}
	}
	btc := walkTransactions(t, user, "asset_symbols=BTC&limit=100&provider_ids=kraken")
	for _, tx := range btc {
		touches := false
		for _, l := range append(append(append([]dayLeg{}, tx.Inputs...), tx.Outputs...), tx.Fees.Items...) {
			touches = touches || l.AssetSymbol == "BTC"
		}
		if !touches || tx.ProviderID != "kraken" {
			t.Fatalf("filtered transaction %s: provider %s, touches BTC %v", tx.ID, tx.ProviderID, touches)
		}
	}
	if len(btc) == 0 {
		t.Fatal("no Kraken BTC transaction")
	}

	// The changes feed holds every transaction; removing a connection shows its transactions
	// removed.
	// An id can come twice in one walk when it changed during the walk (a price filled in,
	// a pending transaction confirmed): a partner applies added and modified as upserts by id,
	// so what counts is the set of ids, and that an id this reader never saw is never
	// labelled modified.
	feed := func(cursor string) (added, removed int, next string) {
		fromStart := cursor == ""
		ids := map[string]bool{}
		for {
			var data struct {
				Added []struct {
					ID string `json:"id"`
				} `json:"added"`
				Modified []struct {
					ID string `json:"id"`
				} `json:"modified"`
				Removed    []string `json:"removed"`
				NextCursor string   `json:"next_cursor"`
				HasMore    bool     `json:"has_more"`
			}
			path := "/accounts/v2/transactions/sync?limit=100"
			if cursor != "" {
				path += "&cursor=" + url.QueryEscape(cursor)
			}
			if err := user.call(ctx, http.MethodGet, path, nil, &data); err != nil {
				t.Fatal(err)
			}
			for _, a := range data.Added {
				ids[a.ID] = true
			}
			if fromStart && len(data.Modified) > 0 {
				t.Fatalf("transaction %s came as modified to a reader that never saw any", data.Modified[0].ID)
			}
			removed, cursor = removed+len(data.Removed), data.NextCursor
			if !data.HasMore {
				return len(ids), removed, cursor
			}
		}
	}
	added, _, syncCursor := feed("")
	if added != len(all) {
		t.Fatalf("the feed added %d transactions, the list has %d", added, len(all))
	}
	krakenCount := 0
	for _, tx := range all {
		if tx.ConnectionID == conns["kraken"] {
			krakenCount++
		}
	}
	var removedConns struct {
		Removed []string `json:"removed"`
	}
	if err := user.call(ctx, http.MethodDelete, "/accounts/v2/providers", map[string]any{"connection_ids": []string{conns["kraken"]}}, &removedConns); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(removedConns.Removed) != fmt.Sprint([]string{conns["kraken"]}) {
		t.Fatalf("removed %v", removedConns.Removed)
	}
	if _, removed, _ := feed(syncCursor); removed != krakenCount {
		t.Fatalf("the feed shows %d removed, Kraken had %d", removed, krakenCount)
	}
	if left := walkTransactions(t, user, "limit=100"); len(left) != len(all)-krakenCount {
		t.Fatalf("%d transactions left, want %d", len(left), len(all)-krakenCount)
	}
}
