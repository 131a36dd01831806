package main

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opencalico/opencalico/api"
)

// walletProviders are the blockchains sandbox mode simulates.
var walletProviders = []string{"bitcoin", "solana", "ethereum"}

// TestSandboxWallets connects wallets through the HTTP API as a partner would: every good
// sandbox wallet connects, every bad one is refused with invalid_address before anything is
// stored, the same address spelled another way is already_connected, an unknown chain is a
// bad request; after a refresh every wallet is active and its history nets to its positions.
func TestSandboxWallets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, c := startSandbox(t, t.TempDir())
	user := sandboxUser(t, srv, c)

	var creds map[string]api.SandboxProviderCredentials
	if err := user.call(ctx, http.MethodGet, "/sandbox/credentials", nil, &creds); err != nil {
		t.Fatal(err)
	}
	wantError := func(what string, body map[string]any, status int, cause string) {
		t.Helper()
		var apiErr *apiError
		err := user.call(ctx, http.MethodPost, "/accounts/v2/providers", body, nil)
		if !errors.As(err, &apiErr) || apiErr.Status != status || apiErr.Errors[0].Cause != cause {
			t.Fatalf("%s: %v, want %d %s", what, err, status, cause)
		}
	}
	connected := 0
	for _, p := range walletProviders {
		pc, ok := creds[p]
		if !ok || len(pc.Good) == 0 || len(pc.Bad) == 0 {
			t.Fatalf("sandbox credentials of %s: %+v", p, pc)
		}
		for _, good := range pc.Good {
			var added struct {
				Connection struct {
					ConnectionType string `json:"connection_type"`
				} `json:"connection"`
			}
			body := map[string]any{"provider_id": p, "display_label": good.Label, "connection": good.Connection}
			if err := user.call(ctx, http.MethodPost, "/accounts/v2/providers", body, &added); err != nil {
				t.Fatalf("%s %s: %v", p, good.Label, err)
			}
			if added.Connection.ConnectionType != "wallet" {
				t.Fatalf("%s: connection_type %q", p, added.Connection.ConnectionType)
			}
			connected++
		}
		for _, bad := range pc.Bad {
			wantError(p+" "+bad.Label, map[string]any{"provider_id": p, "connection": bad.Connection}, http.StatusBadRequest, bad.Case)
		}
		wantError(p+" on an unknown chain", map[string]any{"provider_id": p, "connection": map[string]string{
			"type": "wallet", "address": pc.Good[0].Connection["address"], "chain": "dogecoin"}}, http.StatusBadRequest, "bad_request")
	}
	// A bech32 address is case-insensitive: the same address in capitals is the same wallet.
	for _, good := range creds["bitcoin"].Good {
		if a := good.Connection["address"]; strings.HasPrefix(a, "bc1") {
			wantError("the bech32 address in capitals", map[string]any{"provider_id": "bitcoin", "connection": map[string]string{
				"type": "wallet", "address": strings.ToUpper(a)}}, http.StatusConflict, "already_connected")
		}
	}

	// An EVM address in lower case is the checksummed one; on another chain it is another
	// wallet.
	eth := creds["ethereum"].Good[0].Connection
	wantError("the EVM address in lower case", map[string]any{"provider_id": "ethereum", "connection": map[string]string{
		"type": "wallet", "address": strings.ToLower(eth["address"]), "chain": eth["chain"]}}, http.StatusConflict, "already_connected")

	// And the Kraken accounts, one of which withdrew bitcoin to the sandbox's bech32 address.
	for _, good := range creds["kraken"].Good {
		if err := user.call(ctx, http.MethodPost, "/accounts/v2/providers", map[string]any{"provider_id": "kraken",
			"display_label": good.Label, "connection": good.Connection}, nil); err != nil {
			t.Fatal(err)
		}
		connected++
	}

	refreshAndWait(t, user, 2*time.Minute)
	var listed struct {
		Providers []struct {
			ConnectionID string  `json:"connection_id"`
			ProviderID   string  `json:"provider_id"`
			Status       string  `json:"status"`
			StatusDetail *string `json:"status_detail"`
		} `json:"providers"`
	}
	if err := user.call(ctx, http.MethodGet, "/accounts/v2/providers", nil, &listed); err != nil || len(listed.Providers) != connected {
		t.Fatalf("providers: %+v %v; want %d", listed, err, connected)
	}
	for _, p := range listed.Providers {
		if p.Status != "active" || p.StatusDetail != nil {
			t.Errorf("%s %s: %s %v", p.ProviderID, p.ConnectionID, p.Status, p.StatusDetail)
		}
	}
	all := walkTransactions(t, user, "limit=100")
	perConn := map[string]int{}
	for _, tx := range all {
		perConn[tx.ConnectionID]++
	}
	for _, p := range listed.Providers {
		if perConn[p.ConnectionID] == 0 {
			t.Errorf("%s %s: no transactions", p.ProviderID, p.ConnectionID)
		}
	}
	checkNetEqualsPositions(t, historyNet(all), allPositions(t, user, 50))

	// The withdrawal and the wallet's receive are one transfer.
	byTransfer := map[string][]dayTransaction{}
	for _, tx := range all {
		if tx.TransferID != nil {
			byTransfer[*tx.TransferID] = append(byTransfer[*tx.TransferID], tx)
		}
	}
	linked := false
	for id, pair := range byTransfer {
		if len(pair) != 2 || pair[0].Categorization.Category != "transfer" || pair[1].Categorization.Category != "transfer" {
			t.Fatalf("transfer %s: %+v", id, pair)
		}
		send, recv := pair[0], pair[1]
		if send.Type != "send" {
			send, recv = recv, send
		}
		if send.ProviderID == "kraken" && recv.ProviderID == "bitcoin" && send.Inputs[0].Amount == recv.Outputs[0].Amount {
			linked = true
		}
	}
	if !linked {
		t.Fatalf("no Kraken withdrawal linked to a bitcoin receive among %d transfers", len(byTransfer))
	}
}
