package syncer

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
	"github.com/opencalico/opencalico/provider/bitcoin"
	esplorasim "github.com/opencalico/opencalico/provider/sim/esplora"
	"github.com/opencalico/opencalico/store"
	"github.com/shopspring/decimal"
)

// TestLinksKrakenWithdrawalToBitcoinReceive syncs a Kraken account, pays one of its bitcoin
// withdrawals into the user's zpub wallet (as the chain would, twenty minutes later), and
// syncs the wallet: the withdrawal and the receive end up linked by one transfer_id, both
// categorized transfer, and nothing else is linked. Kraken's ledger carries no on-chain hash,
// so this is the match by amount within the window.
func TestLinksKrakenWithdrawalToBitcoinReceive(t *testing.T) {
	w := newWorld(t, store.SQLite)
	ctx := context.Background()
	// The wallet's own history ends before Kraken's begins, so the payment is its newest.
	chain := esplorasim.New(esplorasim.Options{Seed: 7, Wallets: 7, Transactions: 40, Pending: -1,
		HistoryEnd: time.Date(2018, 1, 1, 0, 0, 0, 0, time.UTC), Years: 1, RequestsPerSecond: 1000})
	srv := httptest.NewServer(chain.Handler())
	t.Cleanup(srv.Close)
	krakenAdapter, err := w.adapters.Adapter("kraken")
	if err != nil {
		t.Fatal(err)
	}
	w.adapters = provider.NewRegistry(krakenAdapter,
		bitcoin.New(bitcoin.Options{BaseURL: srv.URL, RequestsPerSecond: 1000, BaseDelay: 50 * time.Millisecond}))
	e := w.engine(t, Config{Workers: 2})

	start := time.Now().Add(-time.Second)
	kr := w.connect(t, "kraken")
	if err := e.Enqueue(ctx, kr.ID); err != nil {
		t.Fatal(err)
	}
	w.waitFor(t, kr.ID, synced(start))

	// The latest bitcoin withdrawal of a whole number of satoshis.
	sends, err := w.store.ListTransactions(ctx, store.TransactionFilter{UserID: w.user.ID, ConnectionIDs: []string{kr.ID},
		Types: []opencalico.TransactionType{opencalico.TypeSend}, AssetSymbols: []string{"BTC"}, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var withdrawal *opencalico.Transaction
	satsPerBTC := decimal.New(1, 8)
	for _, s := range sends {
		if len(s.Inputs) == 1 && s.Inputs[0].AssetSymbol == "BTC" && s.Inputs[0].Amount.Mul(satsPerBTC).IsInteger() &&
			(withdrawal == nil || s.Timestamp.After(withdrawal.Timestamp)) {
			withdrawal = s
		}
	}
	if withdrawal == nil {
		t.Fatalf("no bitcoin withdrawal among %d Kraken sends", len(sends))
	}
	sats := withdrawal.Inputs[0].Amount.Mul(satsPerBTC).IntPart()
	const zpubWallet = 6 // esplorasim.Kinds[6]
	txid := chain.Pay(zpubWallet, sats, withdrawal.Timestamp.Add(20*time.Minute))

	wallet := &opencalico.Connection{ID: opencalico.NewID("conn"), UserID: w.user.ID, ProviderID: bitcoin.ProviderID,
		Type: opencalico.AuthWallet, Fingerprint: opencalico.NewID("fp"), Address: chain.Truth(zpubWallet).Handle, Chain: bitcoin.Chain}
	if err := w.store.CreateConnection(ctx, wallet, nil); err != nil {
		t.Fatal(err)
	}
	start = time.Now().Add(-time.Second)
	if err := e.Enqueue(ctx, wallet.ID); err != nil {
		t.Fatal(err)
	}
	got := w.waitFor(t, wallet.ID, synced(start))
	if len(got.StatusDetail.Mismatches) > 0 || len(got.StatusDetail.Incomplete) > 0 {
		t.Fatalf("wallet sync: %+v", got.StatusDetail)
	}

	linked := func() []*opencalico.Transaction {
		all, err := w.store.ListTransactions(ctx, store.TransactionFilter{UserID: w.user.ID, Limit: 10_000})
		if err != nil {
			t.Fatal(err)
		}
		var out []*opencalico.Transaction
		for _, x := range all {
			if x.TransferID != "" {
				out = append(out, x)
			}
		}
		return out
	}
	check := func(when string) {
		t.Helper()
		pair := linked()
		if len(pair) != 2 {
			t.Fatalf("%s: %d linked transactions, want the withdrawal and the receive", when, len(pair))
		}
		var sent, received *opencalico.Transaction
		for _, x := range pair {
			switch x.ConnectionID {
			case kr.ID:
				sent = x
			case wallet.ID:
				received = x
			}
		}
		if sent == nil || received == nil || sent.ID != withdrawal.ID || received.TxHash != txid {
			t.Fatalf("%s: linked %+v and %+v; want withdrawal %s and receive %s", when, sent, received, withdrawal.ID, txid)
		}
		if sent.TransferID != received.TransferID || sent.Categorization.Category != opencalico.CategoryTransfer ||
			received.Categorization.Category != opencalico.CategoryTransfer {
			t.Fatalf("%s: %q/%s and %q/%s", when, sent.TransferID, sent.Categorization.Category, received.TransferID, received.Categorization.Category)
		}
		if !received.Outputs[0].Amount.Equal(withdrawal.Inputs[0].Amount) {
			t.Fatalf("%s: received %s for a withdrawal of %s", when, received.Outputs[0].Amount, withdrawal.Inputs[0].Amount)
		}
	}
	check("after the wallet's first sync")

	// Syncing both again keeps the link, and makes no other.
	again := time.Now()
	for _, c := range []string{kr.ID, wallet.ID} {
		if err := e.Enqueue(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []string{kr.ID, wallet.ID} {
		w.waitFor(t, c, synced(again))
	}
	check("after syncing both again")
}
