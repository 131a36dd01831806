package transfer

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/internal/pgtest"
	"github.com/opencalico/opencalico/store"
	"github.com/shopspring/decimal"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var t0 = time.Date(2026, 3, 6, 12, 0, 0, 0, time.UTC)

func side(id, conn string, typ opencalico.TransactionType, at time.Duration, hash, asset, amount, fee string) store.TransferSide {
	s := store.TransferSide{ID: id, ConnectionID: conn, Type: typ, Timestamp: t0.Add(at), TxHash: hash,
		AssetSymbol: asset, Amount: decimal.RequireFromString(amount)}
	if fee != "" {
		s.Fee = decimal.RequireFromString(fee)
	}
	return s
}

func pairs(ps []Pair) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Send.ID+">"+p.Receive.ID)
	}
	slices.Sort(out)
	return out
}

func TestMatch(t *testing.T) {
	send, recv := opencalico.TypeSend, opencalico.TypeReceive
	cases := []struct {
		name         string
		mine, others []store.TransferSide
		want         []string
	}{
		{"same hash, any amount, any spelling",
			[]store.TransferSide{side("w1", "wallet", recv, 3*time.Hour, "0xABCDEF", "ETH", "0.99", "")},
			[]store.TransferSide{side("x1", "exchange", send, 0, "abcdef", "eth", "1", "0.01")},
			[]string{"x1>w1"}},
		{"same hash but two sends",
			[]store.TransferSide{side("w1", "wallet", send, 0, "aa", "BTC", "1", "")},
			[]store.TransferSide{side("x1", "exchange", send, 0, "aa", "BTC", "1", "")},
			nil},
		{"same hash, another asset",
			[]store.TransferSide{side("w1", "wallet", recv, 0, "aa", "USDC", "1", "")},
			[]store.TransferSide{side("x1", "exchange", send, 0, "aa", "ETH", "1", "")},
			nil},
		{"same connection never matches",
			[]store.TransferSide{side("w1", "wallet", recv, time.Minute, "", "BTC", "1", "")},
			[]store.TransferSide{side("w0", "wallet", send, 0, "", "BTC", "1", "")},
			nil},
		{"amount without hash on one side",
			[]store.TransferSide{side("w1", "wallet", recv, 40*time.Minute, "f00d", "BTC", "0.5", "")},
			[]store.TransferSide{side("x1", "exchange", send, 0, "", "BTC", "0.5", "0.0002")},
			[]string{"x1>w1"}},
		{"amount less the sender's fee",
			[]store.TransferSide{side("w1", "wallet", recv, time.Hour, "f00d", "BTC", "0.4998", "")},
			[]store.TransferSide{side("x1", "exchange", send, 0, "", "BTC", "0.5", "0.0002")},
			[]string{"x1>w1"}},
		{"amount differs",
			[]store.TransferSide{side("w1", "wallet", recv, time.Hour, "f00d", "BTC", "0.4997", "")},
			[]store.TransferSide{side("x1", "exchange", send, 0, "", "BTC", "0.5", "0.0002")},
			nil},
		{"both hashed, different hashes: different movements",
			[]store.TransferSide{side("w1", "wallet", recv, time.Hour, "f00d", "BTC", "0.5", "")},
			[]store.TransferSide{side("x1", "exchange", send, 0, "beef", "BTC", "0.5", "")},
			nil},
		{"receive too late",
			[]store.TransferSide{side("w1", "wallet", recv, Window+time.Second, "", "BTC", "0.5", "")},
			[]store.TransferSide{side("x1", "exchange", send, 0, "", "BTC", "0.5", "")},
			nil},
		{"receive at the window's end",
			[]store.TransferSide{side("w1", "wallet", recv, Window, "", "BTC", "0.5", "")},
			[]store.TransferSide{side("x1", "exchange", send, 0, "", "BTC", "0.5", "")},
			[]string{"x1>w1"}},
		{"receive stamped a little before the send",
			[]store.TransferSide{side("w1", "wallet", recv, -EarlySkew, "", "BTC", "0.5", "")},
			[]store.TransferSide{side("x1", "exchange", send, 0, "", "BTC", "0.5", "")},
			[]string{"x1>w1"}},
		{"receive stamped long before the send",
			[]store.TransferSide{side("w1", "wallet", recv, -EarlySkew-time.Second, "", "BTC", "0.5", "")},
			[]store.TransferSide{side("x1", "exchange", send, 0, "", "BTC", "0.5", "")},
			nil},
		{"repeated amounts: each receive takes its nearest send, once",
			[]store.TransferSide{
				side("w1", "wallet", recv, 10*time.Minute, "h1", "BTC", "0.1", ""),
				side("w2", "wallet", recv, 5*time.Hour+20*time.Minute, "h2", "BTC", "0.1", ""),
				side("w3", "wallet", recv, 5*time.Hour+30*time.Minute, "h3", "BTC", "0.1", ""),
			},
			[]store.TransferSide{
				side("x1", "exchange", send, 0, "", "BTC", "0.1", ""),
				side("x2", "exchange", send, 5*time.Hour, "", "BTC", "0.1", ""),
			},
			[]string{"x1>w1", "x2>w2"}},
		{"one batch withdrawal paying two wallets: each receive takes the send of its amount",
			[]store.TransferSide{
				side("w1", "wallet1", recv, time.Minute, "batch", "ETH", "2", ""),
				side("w2", "wallet2", recv, time.Minute, "batch", "ETH", "1", ""),
			},
			[]store.TransferSide{
				side("x1", "exchange", send, 0, "batch", "ETH", "1", ""),
				side("x2", "exchange", send, 0, "batch", "ETH", "2", ""),
			},
			[]string{"x1>w2", "x2>w1"}},
		{"a hash match wins over a closer amount match",
			[]store.TransferSide{side("w1", "wallet", recv, time.Hour, "h1", "BTC", "0.1", "")},
			[]store.TransferSide{
				side("x1", "exchange", send, 0, "H1", "BTC", "0.1", ""),
				side("x2", "exchange2", send, time.Hour, "", "BTC", "0.1", ""),
			},
			[]string{"x1>w1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := pairs(Match(c.mine, c.others))
			if !slices.Equal(got, c.want) {
				t.Fatalf("Match = %v, want %v", got, c.want)
			}
			// Matching from the other connection's point of view gives the same pairs.
			if back := pairs(Match(c.others, c.mine)); len(c.others) == 1 && len(c.mine) == 1 && !slices.Equal(back, c.want) {
				t.Fatalf("Match from the other side = %v, want %v", back, c.want)
			}
		})
	}
}

func TestPairIDIsStable(t *testing.T) {
	a := Pair{Send: store.TransferSide{ID: "txn_a"}, Receive: store.TransferSide{ID: "txn_b"}}
	b := Pair{Send: store.TransferSide{ID: "txn_b"}, Receive: store.TransferSide{ID: "txn_a"}}
	if a.ID() != b.ID() || len(a.ID()) != len("trf_")+24 {
		t.Fatalf("ids %q and %q", a.ID(), b.ID())
	}
}

// TestLinkerOnStore links through a real store, on both backends: the link shows on both
// sides and in the changes feed, survives re-syncs and corrections, is made once, and is
// undone when one side's connection is removed.
func TestLinkerOnStore(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			var (
				st  *store.Store
				err error
			)
			if backend == "sqlite" {
				st, err = store.Open(ctx, "", t.TempDir())
			} else {
				st, err = store.Open(ctx, pgtest.URL(t), "")
			}
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if err := st.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			u := &opencalico.User{Email: "u@example.com"}
			if err := st.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
			conn := func(p opencalico.ProviderID, typ opencalico.AuthType) *opencalico.Connection {
				c := &opencalico.Connection{UserID: u.ID, ProviderID: p, Type: typ, Fingerprint: opencalico.NewID("fp"), DisplayLabel: string(p)}
				var sec *opencalico.SealedSecret
				if typ == opencalico.AuthAPIKey {
					sec = &opencalico.SealedSecret{KeyID: "k", WrappedKey: []byte("w"), Ciphertext: []byte("c")}
				}
				if err := st.CreateConnection(ctx, c, sec); err != nil {
					t.Fatal(err)
				}
				return c
			}
			kraken, wallet := conn("kraken", opencalico.AuthAPIKey), conn("bitcoin", opencalico.AuthWallet)
			withdrawal := func() *opencalico.Transaction {
				return &opencalico.Transaction{ConnectionID: kraken.ID, ExternalID: "LW1", Type: opencalico.TypeSend,
					Categorization: opencalico.Categorization{Category: opencalico.CategoryWithdrawal, ProviderType: "withdrawal"},
					Status:         opencalico.TxConfirmed, Timestamp: t0, TxHash: "0xC0FFEE", // the wallet spells it c0ffee
					Inputs: []opencalico.Leg{{AssetSymbol: "BTC", Amount: decimal.RequireFromString("0.25")}},
					Fees:   []opencalico.Fee{{AssetSymbol: "BTC", Amount: decimal.RequireFromString("0.0001"), Kind: opencalico.FeeWithdrawal}}}
			}
			receive := func(status opencalico.TransactionStatus) *opencalico.Transaction {
				return &opencalico.Transaction{ConnectionID: wallet.ID, ExternalID: "txid1", Type: opencalico.TypeReceive,
					Categorization: opencalico.Categorization{Category: opencalico.CategoryDeposit, ProviderType: "receive"},
					Status:         status, Timestamp: t0.Add(25 * time.Minute), TxHash: "c0ffee", Chain: "bitcoin",
					Outputs: []opencalico.Leg{{AssetSymbol: "BTC", Amount: decimal.RequireFromString("0.25"), Address: "bc1q…"}}}
			}
			// A receive of another amount, and a trade, are left alone.
			other := &opencalico.Transaction{ConnectionID: wallet.ID, ExternalID: "txid2", Type: opencalico.TypeReceive,
				Categorization: opencalico.Categorization{Category: opencalico.CategoryDeposit}, Status: opencalico.TxConfirmed,
				Timestamp: t0.Add(30 * time.Minute), TxHash: "d00d",
				Outputs: []opencalico.Leg{{AssetSymbol: "BTC", Amount: decimal.RequireFromString("0.3")}}}
			// Address poisoning reaching two of the user's wallets in one transaction: a spam
			// send from one and a spam receive in the other, same hash. Never a transfer.
			other2 := conn("ethereum", opencalico.AuthWallet)
			poison := func(c *opencalico.Connection, typ opencalico.TransactionType, amount string) *opencalico.Transaction {
				t := &opencalico.Transaction{ConnectionID: c.ID, ExternalID: "poison", Type: typ,
					Categorization: opencalico.Categorization{Category: opencalico.CategorySpam}, Status: opencalico.TxConfirmed,
					Timestamp: t0, TxHash: "0xbad"}
				leg := []opencalico.Leg{{AssetSymbol: "USDT", Amount: decimal.RequireFromString(amount)}}
				if typ == opencalico.TypeSend {
					t.Inputs = leg
				} else {
					t.Outputs = leg
				}
				return t
			}
			if _, err := st.UpsertTransactions(ctx, []*opencalico.Transaction{poison(wallet, opencalico.TypeSend, "0"), poison(other2, opencalico.TypeReceive, "0")}); err != nil {
				t.Fatal(err)
			}
			for _, batch := range [][]*opencalico.Transaction{{withdrawal()}, {receive(opencalico.TxPending), other}} {
				if _, err := st.UpsertTransactions(ctx, batch); err != nil {
					t.Fatal(err)
				}
			}
			before, err := st.Changes(ctx, store.ChangesFilter{UserID: u.ID, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}

			l := Linker{Store: st}
			n, err := l.Link(ctx, u.ID, wallet.ID)
			if err != nil || n != 1 {
				t.Fatalf("Link = %d, %v; want 1 pair", n, err)
			}
			byExt := func() map[string]*opencalico.Transaction {
				all, err := st.ListTransactions(ctx, store.TransactionFilter{UserID: u.ID, Limit: 100})
				if err != nil {
					t.Fatal(err)
				}
				m := map[string]*opencalico.Transaction{}
				for _, x := range all {
					m[x.ExternalID] = x
				}
				return m
			}
			got := byExt()
			w, r := got["LW1"], got["txid1"]
			if w.TransferID == "" || w.TransferID != r.TransferID || w.Categorization.Category != opencalico.CategoryTransfer ||
				r.Categorization.Category != opencalico.CategoryTransfer {
				t.Fatalf("after linking: withdrawal %q/%s, receive %q/%s", w.TransferID, w.Categorization.Category, r.TransferID, r.Categorization.Category)
			}
			if o := got["txid2"]; o.TransferID != "" || o.Categorization.Category != opencalico.CategoryDeposit {
				t.Fatalf("the other receive was touched: %q/%s", o.TransferID, o.Categorization.Category)
			}
			changes, err := st.Changes(ctx, store.ChangesFilter{UserID: u.ID, After: before.Next, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			if len(changes.Modified) != 2 {
				t.Fatalf("changes after linking: %d modified, want both sides", len(changes.Modified))
			}

			// Linking again, from any side, finds nothing more: not the spam.
			for _, c := range []string{wallet.ID, kraken.ID, other2.ID} {
				if n, err := l.Link(ctx, u.ID, c); err != nil || n != 0 {
					t.Fatalf("Link again from %s = %d, %v", c, n, err)
				}
			}
			// A re-sync of the same events changes nothing; a correction (the receive
			// confirmed) keeps the link.
			res, err := st.UpsertTransactions(ctx, []*opencalico.Transaction{withdrawal(), receive(opencalico.TxPending)})
			if err != nil || res.Modified != 0 || res.Added != 0 {
				t.Fatalf("re-sync = %+v, %v; want nothing changed", res, err)
			}
			if res, err := st.UpsertTransactions(ctx, []*opencalico.Transaction{receive(opencalico.TxConfirmed)}); err != nil || res.Modified != 1 {
				t.Fatalf("correction = %+v, %v", res, err)
			}
			got = byExt()
			if r := got["txid1"]; r.TransferID != w.TransferID || r.Categorization.Category != opencalico.CategoryTransfer || r.Status != opencalico.TxConfirmed {
				t.Fatalf("after the correction: %q/%s/%s", r.TransferID, r.Categorization.Category, r.Status)
			}

			// A correction that makes a side unfit (the receive failed after all) unlinks both
			// sides at the next link pass.
			if _, err := st.UpsertTransactions(ctx, []*opencalico.Transaction{receive(opencalico.TxFailed)}); err != nil {
				t.Fatal(err)
			}
			if n, err := l.Link(ctx, u.ID, wallet.ID); err != nil || n != 0 {
				t.Fatalf("Link after the failure = %d, %v; want nothing linked", n, err)
			}
			got = byExt()
			if w, r := got["LW1"], got["txid1"]; w.TransferID != "" || w.Categorization.Category != opencalico.CategoryWithdrawal ||
				r.TransferID != "" || r.Categorization.Category != opencalico.CategoryDeposit {
				t.Fatalf("after the failure: %q/%s and %q/%s", w.TransferID, w.Categorization.Category, r.TransferID, r.Categorization.Category)
			}
			// Confirmed again: linked again.
			if _, err := st.UpsertTransactions(ctx, []*opencalico.Transaction{receive(opencalico.TxConfirmed)}); err != nil {
				t.Fatal(err)
			}
			if n, err := l.Link(ctx, u.ID, wallet.ID); err != nil || n != 1 {
				t.Fatalf("Link after the second correction = %d, %v; want the pair again", n, err)
			}

			// Removing the exchange gives the receive its own category back.
			if err := st.DeleteConnection(ctx, u.ID, kraken.ID); err != nil {
				t.Fatal(err)
			}
			got = byExt()
			if r := got["txid1"]; r.TransferID != "" || r.Categorization.Category != opencalico.CategoryDeposit {
				t.Fatalf("after removing the other side: %q/%s", r.TransferID, r.Categorization.Category)
			}
		})
	}
}
