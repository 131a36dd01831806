package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// backends lists the databases every test runs on.
var backends = []Dialect{SQLite, Postgres}

// openUnmigrated opens a fresh, empty store of the dialect, closed after the test.
func openUnmigrated(t testing.TB, d Dialect) *Store {
	t.Helper()
	ctx := context.Background()
	var (
		s   *Store
		err error
	)
	switch d {
	case SQLite:
		s, err = Open(ctx, "", t.TempDir())
	case Postgres:
		s, err = Open(ctx, pgtest.URL(t), "")
	}
	if err != nil {
		t.Fatalf("opening %s: %v", d, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// openStore opens a fresh, migrated store.
func openStore(t testing.TB, d Dialect) *Store {
	t.Helper()
	s := openUnmigrated(t, d)
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("migrating %s: %v", d, err)
	}
	return s
}

// forEachBackend runs test as a subtest per backend, in parallel.
func forEachBackend(t *testing.T, test func(t *testing.T, s *Store)) {
	for _, d := range backends {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			test(t, openStore(t, d))
		})
	}
}

func wantCode(t *testing.T, err error, code opencalico.ErrorCode) {
	t.Helper()
	if got := opencalico.ErrorCodeOf(err); got != code {
		t.Fatalf("error %v has code %q, want %q", err, got, code)
	}
}

func mustUser(t testing.TB, s *Store, email string) *opencalico.User {
	t.Helper()
	u := &opencalico.User{Email: email}
	if err := s.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return u
}

func mustConnection(t testing.TB, s *Store, userID string, provider opencalico.ProviderID) *opencalico.Connection {
	t.Helper()
	c := &opencalico.Connection{UserID: userID, ProviderID: provider, Type: opencalico.AuthAPIKey,
		Fingerprint: opencalico.NewID("fp"), DisplayLabel: "My " + string(provider)}
	sec := &opencalico.SealedSecret{KeyID: "k1", WrappedKey: []byte("wrapped"), Ciphertext: []byte{0, 1, 2, 0xff}}
	if err := s.CreateConnection(context.Background(), c, sec); err != nil {
		t.Fatal(err)
	}
	return c
}

var t0 = time.Date(2026, 3, 6, 12, 0, 0, 0, time.UTC)

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// trade makes a valid input_output transaction with two legs and a fee.
func trade(conn, ext string, ts time.Time, amount string) *opencalico.Transaction {
	return &opencalico.Transaction{
		ConnectionID: conn, ExternalID: ext, Type: opencalico.TypeInputOutput,
		Categorization: opencalico.Categorization{Category: opencalico.CategoryTrade, Subcategory: "buy", ProviderType: "fill"},
		Status:         opencalico.TxConfirmed, Timestamp: ts,
		Inputs:  []opencalico.Leg{{AssetSymbol: "USD", Amount: dec("100.10")}},
		Outputs: []opencalico.Leg{{AssetSymbol: "BTC", AssetID: "bip122:000000000019d6689c085ae165831e93/slip44:0", Amount: dec(amount)}},
		Fees:    []opencalico.Fee{{AssetSymbol: "USD", Amount: dec("0.25"), Kind: opencalico.FeeTrading}},
	}
}

// receive makes a valid receive of an asset.
func receive(conn, ext string, ts time.Time, asset, amount string) *opencalico.Transaction {
	return &opencalico.Transaction{
		ConnectionID: conn, ExternalID: ext, Type: opencalico.TypeReceive,
		Categorization: opencalico.Categorization{Category: opencalico.CategoryDeposit},
		Status:         opencalico.TxPending, Timestamp: ts,
		Outputs:     []opencalico.Leg{{AssetSymbol: asset, Amount: dec(amount), Address: "addr1"}},
		FromAddress: "sender",
	}
}

func ids(txns []*opencalico.Transaction) []string {
	out := make([]string, len(txns))
	for i, t := range txns {
		out[i] = t.ID
	}
	return out
}

func countRows(t testing.TB, s *Store, table string) int {
	t.Helper()
	var n int
	if err := s.DB().QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestOpenRejectsUnknownURLsWithoutLeakingPasswords(t *testing.T) {
	ctx := context.Background()
	for _, u := range []string{"mysql://bob:hunter2@db/x", "hunter2", "postgres://bob:hunter2@127.0.0.1:1/x?connect_timeout=1",
		"postgres://bob:hunter2@[bad/x"} {
		_, err := Open(ctx, u, t.TempDir())
		if err == nil {
			t.Fatalf("Open(%q) succeeded", u)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open error reveals the password: %v", err)
		}
	}
	dir := t.TempDir()
	s, err := Open(ctx, "sqlite:"+dir+"/sub/x.db", "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Dialect() != SQLite {
		t.Errorf("dialect %s", s.Dialect())
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestMigrations(t *testing.T) {
	for _, d := range backends {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := openUnmigrated(t, d)
			if cur, err := s.MigrationsCurrent(ctx); err != nil || cur {
				t.Fatalf("MigrationsCurrent before migrating = %v, %v; want false", cur, err)
			}
			st, err := s.MigrationStatus(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(st) == 0 || st[0].Applied || st[0].Version != 1 || st[0].Name != "00001_initial.sql" {
				t.Fatalf("status before migrating: %+v", st)
			}
			// Several processes starting at once must not race.
			var wg sync.WaitGroup
			errs := make(chan error, 3)
			for range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs <- s.Migrate(ctx)
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatalf("concurrent Migrate: %v", err)
				}
			}
			if cur, err := s.MigrationsCurrent(ctx); err != nil || !cur {
				t.Fatalf("MigrationsCurrent after migrating = %v, %v; want true", cur, err)
			}
			st, err = s.MigrationStatus(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range st {
				if !m.Applied || m.AppliedAt.IsZero() {
					t.Errorf("migration not applied: %+v", m)
				}
			}
		})
	}
}

func TestUsersClientsConsents(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		u := &opencalico.User{Email: "Alice@Example.com", PasswordHash: "$argon2id$x"}
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		wantCode(t, s.CreateUser(ctx, &opencalico.User{Email: "alice@example.COM"}), opencalico.EBadRequest)
		got, err := s.UserByEmail(ctx, "ALICE@example.com")
		if err != nil || got.ID != u.ID || got.Email != u.Email || got.PasswordHash != u.PasswordHash || !got.CreatedAt.Equal(u.CreatedAt) {
			t.Fatalf("UserByEmail = %+v, %v; want %+v", got, err, u)
		}
		if got, err := s.UserByID(ctx, u.ID); err != nil || got.Email != u.Email {
			t.Fatalf("UserByID = %+v, %v", got, err)
		}
		_, err = s.UserByID(ctx, "usr_missing")
		wantCode(t, err, opencalico.ENotFound)
		_, err = s.UserByEmail(ctx, "bob@example.com")
		wantCode(t, err, opencalico.ENotFound)

		c := &opencalico.Client{ID: "cli_1", Name: "Partner", SecretHash: "h", RedirectURIs: []string{"https://p/cb", "https://p/cb2"}, AllowPlainPKCE: true}
		if err := s.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateClient(ctx, &opencalico.Client{ID: "cli_2", Name: "Public", Public: true}); err != nil {
			t.Fatal(err)
		}
		gc, err := s.ClientByID(ctx, "cli_1")
		if err != nil || gc.Name != "Partner" || !slices.Equal(gc.RedirectURIs, c.RedirectURIs) || gc.Public || !gc.AllowPlainPKCE {
			t.Fatalf("ClientByID = %+v, %v", gc, err)
		}
		list, err := s.ListClients(ctx)
		if err != nil || len(list) != 2 || !list[1].Public || len(list[1].RedirectURIs) != 0 {
			t.Fatalf("ListClients = %+v, %v", list, err)
		}

		cn := &opencalico.Consent{UserID: u.ID, ClientID: "cli_1", Scope: "accounts:read"}
		if err := s.CreateConsent(ctx, cn); err != nil {
			t.Fatal(err)
		}
		if got, err := s.ConsentByID(ctx, cn.ID); err != nil || !got.Active() || got.Scope != "accounts:read" {
			t.Fatalf("ConsentByID = %+v, %v", got, err)
		}
		if err := s.RevokeConsent(ctx, cn.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeConsent(ctx, cn.ID); err != nil {
			t.Fatalf("revoking twice: %v", err)
		}
		wantCode(t, s.RevokeConsent(ctx, "cns_missing"), opencalico.ENotFound)
		all, err := s.ConsentsForUser(ctx, u.ID)
		if err != nil || len(all) != 1 || all[0].Active() {
			t.Fatalf("ConsentsForUser = %+v, %v", all, err)
		}
		if err := s.DeleteClient(ctx, "cli_1"); err != nil {
			t.Fatal(err)
		}
		wantCode(t, s.DeleteClient(ctx, "cli_1"), opencalico.ENotFound)
		_, err = s.ConsentByID(ctx, cn.ID)
		wantCode(t, err, opencalico.ENotFound)
	})
}

func TestConnections(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		alice, bob := mustUser(t, s, "alice@x"), mustUser(t, s, "bob@x")
		c := &opencalico.Connection{UserID: alice.ID, ProviderID: "kraken", Type: opencalico.AuthAPIKey, Fingerprint: "fp1", DisplayLabel: "K"}
		sec := &opencalico.SealedSecret{KeyID: "k1", WrappedKey: []byte{1, 2}, Ciphertext: []byte{0, 3, 4}}
		if err := s.CreateConnection(ctx, c, sec); err != nil {
			t.Fatal(err)
		}
		// The same key twice: refused, and nothing half-written.
		dup := &opencalico.Connection{UserID: alice.ID, ProviderID: "kraken", Type: opencalico.AuthAPIKey, Fingerprint: "fp1"}
		wantCode(t, s.CreateConnection(ctx, dup, &opencalico.SealedSecret{KeyID: "k1", WrappedKey: []byte{1}, Ciphertext: []byte{1}}), opencalico.EAlreadyConnected)
		if n := countRows(t, s, "connections"); n != 1 {
			t.Fatalf("%d connections after a refused duplicate", n)
		}
		// Another user may link the same key; a wallet has no secret; OAuth2 grants without a
		// fingerprint do not collide.
		if err := s.CreateConnection(ctx, &opencalico.Connection{UserID: bob.ID, ProviderID: "kraken", Type: opencalico.AuthAPIKey, Fingerprint: "fp1"}, sec); err != nil {
			t.Fatal(err)
		}
		w := &opencalico.Connection{UserID: alice.ID, ProviderID: "bitcoin", Type: opencalico.AuthWallet, Fingerprint: "bc1q", Address: "bc1q", Chain: "bitcoin"}
		if err := s.CreateConnection(ctx, w, nil); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := s.CreateConnection(ctx, &opencalico.Connection{UserID: alice.ID, ProviderID: "coinbase", Type: opencalico.AuthOAuth2}, nil); err != nil {
				t.Fatal(err)
			}
		}

		got, err := s.Connection(ctx, alice.ID, c.ID)
		if err != nil || got.Fingerprint != "fp1" || got.Status != opencalico.StatusPending || got.DisplayLabel != "K" || !got.CreatedAt.Equal(c.CreatedAt) {
			t.Fatalf("Connection = %+v, %v", got, err)
		}
		_, err = s.Connection(ctx, bob.ID, c.ID)
		wantCode(t, err, opencalico.ENotFound)
		wantCode(t, s.DeleteConnection(ctx, bob.ID, c.ID), opencalico.ENotFound)
		list, err := s.ListConnections(ctx, alice.ID)
		if err != nil || len(list) != 4 {
			t.Fatalf("ListConnections = %d, %v", len(list), err)
		}

		status := opencalico.StatusError
		retry := t0.Add(time.Hour)
		detail := opencalico.StatusDetail{Cause: opencalico.ERateLimited, Message: "slow down", Incomplete: []string{"BTCUSD"}, RetryAt: &retry,
			Mismatches: []opencalico.BalanceMismatch{{AssetSymbol: "BTC", Computed: dec("1.00000001"), Reported: dec("1"), Difference: dec("0.00000001")}}}
		synced := t0
		up, err := s.UpdateConnection(ctx, c.ID, ConnectionUpdate{Status: &status, StatusDetail: &detail, LastSyncedAt: &synced, TransactionsSyncedAt: &synced})
		if err != nil {
			t.Fatal(err)
		}
		if up.Status != status || up.StatusDetail.Message != "slow down" || !up.StatusDetail.Mismatches[0].Difference.Equal(dec("0.00000001")) ||
			!up.StatusDetail.RetryAt.Equal(retry) || !up.LastSyncedAt.Equal(t0) || up.AssetsSyncedAt != nil || !up.TransactionsSyncedAt.Equal(t0) {
			t.Fatalf("after update: %+v", up)
		}
		_, err = s.UpdateConnection(ctx, "conn_missing", ConnectionUpdate{Status: &status})
		wantCode(t, err, opencalico.ENotFound)

		gs, err := s.Secret(ctx, c.ID)
		if err != nil || gs.KeyID != "k1" || string(gs.WrappedKey) != "\x01\x02" || string(gs.Ciphertext) != "\x00\x03\x04" {
			t.Fatalf("Secret = %+v, %v", gs, err)
		}
		_, err = s.Secret(ctx, w.ID)
		wantCode(t, err, opencalico.ENotFound)
		if err := s.PutSecret(ctx, opencalico.SealedSecret{ConnectionID: w.ID, KeyID: "k2", WrappedKey: []byte{9}, Ciphertext: []byte{8}}); err != nil {
			t.Fatal(err)
		}
		if gs, err := s.Secret(ctx, w.ID); err != nil || gs.KeyID != "k2" {
			t.Fatalf("after PutSecret: %+v, %v", gs, err)
		}
	})
}

func TestSecretsRotation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		u := mustUser(t, s, "a@x")
		var conns []string
		for range 5 {
			conns = append(conns, mustConnection(t, s, u.ID, "kraken").ID)
		}
		slices.Sort(conns)
		var walked []string
		after := ""
		for {
			page, err := s.ListSealedSecrets(ctx, after, 2)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			for _, sec := range page {
				walked = append(walked, sec.ConnectionID)
			}
			after = page[len(page)-1].ConnectionID
		}
		if !slices.Equal(walked, conns) {
			t.Fatalf("walked %v, want %v", walked, conns)
		}
		ok, err := s.RewrapSecret(ctx, conns[0], "k1", "k2", []byte("new"))
		if err != nil || !ok {
			t.Fatalf("RewrapSecret = %v, %v; want true", ok, err)
		}
		// The secret is no longer under k1: a second rotation from k1 must not apply.
		ok, err = s.RewrapSecret(ctx, conns[0], "k1", "k3", []byte("newer"))
		if err != nil || ok {
			t.Fatalf("stale RewrapSecret = %v, %v; want false", ok, err)
		}
		sec, err := s.Secret(ctx, conns[0])
		if err != nil || sec.KeyID != "k2" || string(sec.WrappedKey) != "new" || string(sec.Ciphertext) != "\x00\x01\x02\xff" {
			t.Fatalf("after rewrap: %+v, %v", sec, err)
		}
		if ok, err := s.RewrapSecret(ctx, "conn_missing", "k1", "k2", []byte("x")); err != nil || ok {
			t.Fatalf("RewrapSecret of a missing secret = %v, %v", ok, err)
		}
	})
}

func TestUpsertIsIdempotent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		u := mustUser(t, s, "a@x")
		c := mustConnection(t, s, u.ID, "kraken")
		batch := func() []*opencalico.Transaction {
			var b []*opencalico.Transaction
			for i := range 1200 { // more than one statement's worth
				// Nanoseconds are dropped consistently: the second batch is still unchanged.
				b = append(b, trade(c.ID, fmt.Sprint("ext-", i), t0.Add(time.Duration(i)*time.Second+123456789), "0.001"))
			}
			return b
		}
		first := batch()
		res, err := s.UpsertTransactions(ctx, first)
		if err != nil || res != (UpsertResult{Added: 1200}) {
			t.Fatalf("first upsert = %+v, %v", res, err)
		}
		if first[0].ID != opencalico.TransactionID(c.ID, "ext-0") || first[0].UserID != u.ID || first[0].ProviderID != "kraken" {
			t.Fatalf("ids not filled: %+v", first[0])
		}
		res, err = s.UpsertTransactions(ctx, batch())
		if err != nil || res != (UpsertResult{Unchanged: 1200}) {
			t.Fatalf("second upsert = %+v, %v", res, err)
		}
		if n := countRows(t, s, "transactions"); n != 1200 {
			t.Fatalf("%d transactions, want 1200", n)
		}
		if n := countRows(t, s, "transaction_legs"); n != 3600 {
			t.Fatalf("%d legs, want 3600", n)
		}
		// What is read back hashes as what was written.
		got, err := s.ListTransactions(ctx, TransactionFilter{UserID: u.ID, Order: Asc, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if got[0].ContentHash() != first[0].ContentHash() {
			t.Fatalf("read back differs:\n%+v\n%+v", got[0], first[0])
		}
		// Invalid transactions and unknown connections are refused whole.
		bad := trade(c.ID, "bad", t0, "1")
		bad.Outputs = nil
		_, err = s.UpsertTransactions(ctx, []*opencalico.Transaction{trade(c.ID, "ok", t0, "1"), bad})
		wantCode(t, err, opencalico.EBadRequest)
		_, err = s.UpsertTransactions(ctx, []*opencalico.Transaction{trade("conn_missing", "x", t0, "1")})
		wantCode(t, err, opencalico.ENotFound)
		if n := countRows(t, s, "transactions"); n != 1200 {
			t.Fatalf("%d transactions after refused batches, want 1200", n)
		}
	})
}

func TestUpsertUpdatesChangedEventsInPlace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		u := mustUser(t, s, "a@x")
		c := mustConnection(t, s, u.ID, "bitcoin")
		pending := receive(c.ID, "tx1", t0, "BTC", "0.5")
		other := receive(c.ID, "tx2", t0, "BTC", "1")
		if _, err := s.UpsertTransactions(ctx, []*opencalico.Transaction{pending, other}); err != nil {
			t.Fatal(err)
		}
		start, err := s.Changes(ctx, ChangesFilter{UserID: u.ID})
		if err != nil || len(start.Added) != 2 || len(start.Modified) != 0 || start.HasMore {
			t.Fatalf("initial changes = %+v, %v", start, err)
		}
		created := pending.CreatedAt

		confirmed := receive(c.ID, "tx1", t0, "BTC", "0.5")
		confirmed.Status = opencalico.TxConfirmed
		corrected := receive(c.ID, "tx2", t0, "BTC", "1.00000001")
		corrected.Fees = []opencalico.Fee{{AssetSymbol: "BTC", Amount: dec("0.0001"), Kind: opencalico.FeeNetwork}}
		res, err := s.UpsertTransactions(ctx, []*opencalico.Transaction{confirmed, corrected, receive(c.ID, "tx3", t0, "ETH", "2")})
		if err != nil || res != (UpsertResult{Added: 1, Modified: 2}) {
			t.Fatalf("upsert = %+v, %v", res, err)
		}
		if confirmed.ID != pending.ID || !confirmed.CreatedAt.Equal(created) {
			t.Fatalf("modified transaction changed id or creation: %+v", confirmed)
		}
		all, err := s.ListTransactions(ctx, TransactionFilter{UserID: u.ID, Order: Asc})
		if err != nil || len(all) != 3 {
			t.Fatalf("ListTransactions = %d, %v", len(all), err)
		}
		byID := map[string]*opencalico.Transaction{}
		for _, tx := range all {
			byID[tx.ID] = tx
		}
		if got := byID[pending.ID]; got.Status != opencalico.TxConfirmed || !got.CreatedAt.Equal(created) {
			t.Fatalf("stored after confirmation: %+v", got)
		}
		if got := byID[other.ID]; len(got.Outputs) != 1 || got.Outputs[0].Amount.String() != "1.00000001" || len(got.Fees) != 1 ||
			got.Fees[0].Kind != opencalico.FeeNetwork || got.ContentHash() != corrected.ContentHash() {
			t.Fatalf("stored after correction: %+v", got)
		}
		if n := countRows(t, s, "transaction_legs"); n != 4 {
			t.Fatalf("%d legs, want 4 (old legs replaced)", n)
		}

		ch, err := s.Changes(ctx, ChangesFilter{UserID: u.ID, After: start.Next})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := ids(ch.Modified), []string{pending.ID, other.ID}; !sameSet(got, want) {
			t.Errorf("modified = %v, want %v", got, want)
		}
		if len(ch.Added) != 1 || ch.Added[0].ExternalID != "tx3" || len(ch.Removed) != 0 || ch.HasMore {
			t.Errorf("changes = %+v", ch)
		}
		if ch.Modified[0].Status != opencalico.TxConfirmed && ch.Modified[1].Status != opencalico.TxConfirmed {
			t.Errorf("modified carries the old state: %+v", ch.Modified)
		}
		// From the beginning, everything is simply added, in its current state.
		fromStart, err := s.Changes(ctx, ChangesFilter{UserID: u.ID})
		if err != nil || len(fromStart.Added) != 3 || len(fromStart.Modified) != 0 {
			t.Fatalf("changes from start = %+v, %v", fromStart, err)
		}
		// Nothing new: an empty page that keeps the cursor.
		empty, err := s.Changes(ctx, ChangesFilter{UserID: u.ID, After: ch.Next})
		if err != nil || len(empty.Added)+len(empty.Modified)+len(empty.Removed) != 0 || empty.Next != ch.Next {
			t.Fatalf("changes at head = %+v, %v", empty, err)
		}
	})
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestKeysetPagingUnderInserts walks a user's transactions page by page in both orders while
// new rows are inserted between pages, many of them sharing timestamps. Every row present at
// the start must be seen exactly once, and no row twice.
func TestKeysetPagingUnderInserts(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		u := mustUser(t, s, "a@x")
		c := mustConnection(t, s, u.ID, "kraken")
		var initial []*opencalico.Transaction
		for i := range 90 {
			// 30 distinct timestamps, three transactions each: ties everywhere.
			initial = append(initial, trade(c.ID, fmt.Sprint("e", i), t0.Add(time.Duration(i/3)*time.Minute), "1"))
		}
		if _, err := s.UpsertTransactions(ctx, initial); err != nil {
			t.Fatal(err)
		}
		for _, order := range []Order{Desc, Asc} {
			seen := map[string]int{}
			var after *TransactionKey
			var prev *opencalico.Transaction
			for page := 0; ; page++ {
				got, err := s.ListTransactions(ctx, TransactionFilter{UserID: u.ID, Order: order, After: after, Limit: 7})
				if err != nil {
					t.Fatal(err)
				}
				for _, tx := range got {
					seen[tx.ID]++
					if prev != nil && !inOrder(order, prev, tx) {
						t.Fatalf("%s: %s (%v) after %s (%v)", order, tx.ID, tx.Timestamp, prev.ID, prev.Timestamp)
					}
					prev = tx
				}
				if len(got) < 7 {
					break
				}
				k := TransactionKeyOf(got[len(got)-1])
				after = &k
				// Insert rows at the same timestamps as the page boundary, before and after it.
				_, err = s.UpsertTransactions(ctx, []*opencalico.Transaction{
					trade(c.ID, fmt.Sprint(order, "-new-", page, "-a"), k.Timestamp, "2"),
					trade(c.ID, fmt.Sprint(order, "-new-", page, "-b"), t0.Add(time.Duration(page)*time.Minute), "2"),
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			for _, tx := range initial {
				if seen[tx.ID] != 1 {
					t.Errorf("%s: initial %s seen %d times", order, tx.ExternalID, seen[tx.ID])
				}
			}
			for id, n := range seen {
				if n != 1 {
					t.Errorf("%s: %s seen %d times", order, id, n)
				}
			}
		}
	})
}

func inOrder(o Order, a, b *opencalico.Transaction) bool {
	if o == Asc {
		return a.Timestamp.Before(b.Timestamp) || (a.Timestamp.Equal(b.Timestamp) && a.ID < b.ID)
	}
	return a.Timestamp.After(b.Timestamp) || (a.Timestamp.Equal(b.Timestamp) && a.ID > b.ID)
}

func TestListTransactionsFilters(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		alice, bob := mustUser(t, s, "a@x"), mustUser(t, s, "b@x")
		kraken := mustConnection(t, s, alice.ID, "kraken")
		btc := mustConnection(t, s, alice.ID, "bitcoin")
		bobs := mustConnection(t, s, bob.ID, "kraken")
		tr := trade(kraken.ID, "trade", t0, "0.1")                        // USD, BTC; trade
		dep := receive(btc.ID, "dep", t0.Add(time.Hour), "BTC", "1")      // BTC; deposit
		eth := receive(kraken.ID, "eth", t0.Add(2*time.Hour), "ETH", "3") // ETH; deposit
		fee := &opencalico.Transaction{ConnectionID: kraken.ID, ExternalID: "fee", Type: opencalico.TypeInputOnly,
			Categorization: opencalico.Categorization{Category: opencalico.CategoryFee}, Status: opencalico.TxConfirmed,
			Timestamp: t0.Add(3 * time.Hour), Inputs: []opencalico.Leg{{AssetSymbol: "SOL", Amount: dec("0")}},
			Fees: []opencalico.Fee{{AssetSymbol: "DOT", Amount: dec("0.01"), Kind: opencalico.FeeOther}}}
		bobTx := trade(bobs.ID, "trade", t0, "5")
		if _, err := s.UpsertTransactions(ctx, []*opencalico.Transaction{tr, dep, eth, fee, bobTx}); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name string
			f    TransactionFilter
			want []*opencalico.Transaction // in order
		}{
			{"all, newest first", TransactionFilter{}, []*opencalico.Transaction{fee, eth, dep, tr}},
			{"ascending", TransactionFilter{Order: Asc}, []*opencalico.Transaction{tr, dep, eth, fee}},
			{"connection", TransactionFilter{ConnectionIDs: []string{btc.ID}}, []*opencalico.Transaction{dep}},
			{"other user's connection", TransactionFilter{ConnectionIDs: []string{bobs.ID}}, nil},
			{"provider", TransactionFilter{ProviderIDs: []opencalico.ProviderID{"kraken"}}, []*opencalico.Transaction{fee, eth, tr}},
			{"asset in an output", TransactionFilter{AssetSymbols: []string{"BTC"}}, []*opencalico.Transaction{dep, tr}},
			{"asset in an input", TransactionFilter{AssetSymbols: []string{"USD"}}, []*opencalico.Transaction{tr}},
			{"asset in a fee", TransactionFilter{AssetSymbols: []string{"DOT"}}, []*opencalico.Transaction{fee}},
			{"several assets", TransactionFilter{AssetSymbols: []string{"ETH", "SOL"}}, []*opencalico.Transaction{fee, eth}},
			{"type", TransactionFilter{Types: []opencalico.TransactionType{opencalico.TypeReceive}}, []*opencalico.Transaction{eth, dep}},
			{"category", TransactionFilter{Categories: []opencalico.Category{opencalico.CategoryTrade, opencalico.CategoryFee}}, []*opencalico.Transaction{fee, tr}},
			{"start inclusive", TransactionFilter{Start: t0.Add(time.Hour)}, []*opencalico.Transaction{fee, eth, dep}},
			{"end exclusive", TransactionFilter{End: t0.Add(time.Hour)}, []*opencalico.Transaction{tr}},
			{"window", TransactionFilter{Start: t0.Add(time.Hour), End: t0.Add(3 * time.Hour)}, []*opencalico.Transaction{eth, dep}},
			{"limit", TransactionFilter{Limit: 2}, []*opencalico.Transaction{fee, eth}},
			{"after", TransactionFilter{After: &TransactionKey{Timestamp: eth.Timestamp, ID: eth.ID}}, []*opencalico.Transaction{dep, tr}},
			{"combined", TransactionFilter{ProviderIDs: []opencalico.ProviderID{"kraken"}, AssetSymbols: []string{"BTC", "ETH"},
				Categories: []opencalico.Category{opencalico.CategoryDeposit}}, []*opencalico.Transaction{eth}},
		}
		for _, tt := range tests {
			tt.f.UserID = alice.ID
			got, err := s.ListTransactions(ctx, tt.f)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if !slices.Equal(ids(got), ids(tt.want)) {
				t.Errorf("%s: got %v, want %v", tt.name, ids(got), ids(tt.want))
			}
		}
		_, err := s.ListTransactions(ctx, TransactionFilter{})
		wantCode(t, err, opencalico.EBadRequest)
		_, err = s.ListTransactions(ctx, TransactionFilter{UserID: alice.ID, Order: "sideways"})
		wantCode(t, err, opencalico.EBadRequest)

		// Legs and fees come back whole and exact.
		got, err := s.ListTransactions(ctx, TransactionFilter{UserID: alice.ID, ConnectionIDs: []string{kraken.ID}, Order: Asc, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		g := got[0]
		if g.Inputs[0].Amount.String() != "100.1" || g.Outputs[0].AssetID != tr.Outputs[0].AssetID || g.Fees[0].Kind != opencalico.FeeTrading ||
			g.Categorization != tr.Categorization || g.ContentHash() != tr.ContentHash() {
			t.Errorf("read back %+v", g)
		}
	})
}

func TestPositions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		alice, bob := mustUser(t, s, "a@x"), mustUser(t, s, "b@x")
		k := mustConnection(t, s, alice.ID, "kraken")
		w := mustConnection(t, s, alice.ID, "ethereum")
		b := mustConnection(t, s, bob.ID, "kraken")
		wei := "123456789012345678901234567890.123456789012345678" // beyond int64 and float64
		pos := func(asset, chain, qty string) opencalico.Position {
			return opencalico.Position{AssetSymbol: asset, Chain: chain, Quantity: dec(qty), Available: dec(qty), Locked: dec("0"), Staked: dec("0")}
		}
		if err := s.ReplacePositions(ctx, k.ID, []opencalico.Position{pos("BTC", "", "1"), pos("USDC", "ethereum", "5"), pos("USDC", "solana", "6"), pos("OLD", "", "1")}); err != nil {
			t.Fatal(err)
		}
		// Replacing drops what is no longer reported.
		if err := s.ReplacePositions(ctx, k.ID, []opencalico.Position{pos("BTC", "", "1.5"), pos("USDC", "ethereum", "5"), pos("USDC", "solana", "6")}); err != nil {
			t.Fatal(err)
		}
		if err := s.ReplacePositions(ctx, w.ID, []opencalico.Position{pos("ETH", "ethereum", wei)}); err != nil {
			t.Fatal(err)
		}
		if err := s.ReplacePositions(ctx, b.ID, []opencalico.Position{pos("BTC", "", "9")}); err != nil {
			t.Fatal(err)
		}
		wantCode(t, s.ReplacePositions(ctx, k.ID, []opencalico.Position{pos("BTC", "", "1"), pos("BTC", "", "2")}), opencalico.EBadRequest)
		wantCode(t, s.ReplacePositions(ctx, "conn_missing", nil), opencalico.ENotFound)

		keys := func(ps []opencalico.Position) []string {
			var out []string
			for _, p := range ps {
				out = append(out, p.AssetSymbol+"/"+p.Chain)
			}
			return out
		}
		first, second := k.ID, w.ID
		firstKeys, secondKeys := []string{"BTC/", "USDC/ethereum", "USDC/solana"}, []string{"ETH/ethereum"}
		if second < first {
			first, second, firstKeys, secondKeys = second, first, secondKeys, firstKeys
		}
		all := append(slices.Clone(firstKeys), secondKeys...)
		tests := []struct {
			name string
			f    PositionFilter
			want []string
		}{
			{"all", PositionFilter{}, all},
			{"connection", PositionFilter{ConnectionIDs: []string{k.ID}}, []string{"BTC/", "USDC/ethereum", "USDC/solana"}},
			{"other user's connection", PositionFilter{ConnectionIDs: []string{b.ID}}, nil},
			{"provider", PositionFilter{ProviderIDs: []opencalico.ProviderID{"ethereum"}}, []string{"ETH/ethereum"}},
			{"asset", PositionFilter{AssetSymbols: []string{"USDC", "ETH"}}, filterKeys(all, "USDC/ethereum", "USDC/solana", "ETH/ethereum")},
			{"limit", PositionFilter{Limit: 2}, all[:2]},
			{"after", PositionFilter{After: &PositionKey{ConnectionID: k.ID, AssetSymbol: "USDC", Chain: "ethereum"}, ConnectionIDs: []string{k.ID}}, []string{"USDC/solana"}},
			{"after, across connections", PositionFilter{After: &PositionKey{ConnectionID: first, AssetSymbol: "~"}}, secondKeys},
		}
		for _, tt := range tests {
			tt.f.UserID = alice.ID
			got, err := s.ListPositions(ctx, tt.f)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if !slices.Equal(keys(got), tt.want) {
				t.Errorf("%s: got %v, want %v", tt.name, keys(got), tt.want)
			}
		}
		// Paging by key walks all, one at a time.
		var walked []string
		var after *PositionKey
		for {
			page, err := s.ListPositions(ctx, PositionFilter{UserID: alice.ID, After: after, Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			walked = append(walked, keys(page)...)
			key := PositionKeyOf(page[0])
			after = &key
		}
		if !slices.Equal(walked, all) {
			t.Errorf("walked %v, want %v", walked, all)
		}
		eth, err := s.ListPositions(ctx, PositionFilter{UserID: alice.ID, ConnectionIDs: []string{w.ID}})
		if err != nil || eth[0].Quantity.String() != wei || eth[0].ProviderID != "ethereum" || eth[0].UpdatedAt.IsZero() {
			t.Fatalf("exact amount lost: %+v, %v", eth, err)
		}
		_ = second
	})
}

func filterKeys(all []string, keep ...string) []string {
	var out []string
	for _, k := range all {
		if slices.Contains(keep, k) {
			out = append(out, k)
		}
	}
	return out
}

func TestDeleteConnection(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		u := mustUser(t, s, "a@x")
		gone := mustConnection(t, s, u.ID, "kraken")
		kept := mustConnection(t, s, u.ID, "binance")
		var goneTxns []*opencalico.Transaction
		for i := range 5 {
			goneTxns = append(goneTxns, trade(gone.ID, fmt.Sprint(i), t0.Add(time.Duration(i)*time.Minute), "1"))
		}
		keptTx := trade(kept.ID, "k", t0, "1")
		if _, err := s.UpsertTransactions(ctx, append(slices.Clone(goneTxns), keptTx)); err != nil {
			t.Fatal(err)
		}
		for _, c := range []string{gone.ID, kept.ID} {
			if err := s.ReplacePositions(ctx, c, []opencalico.Position{{AssetSymbol: "BTC", Quantity: dec("1")}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.InTx(ctx, func(tx *sql.Tx) error { return s.SaveCursorTx(ctx, tx, gone.ID, "ledger", "42") }); err != nil {
			t.Fatal(err)
		}
		head, err := s.Changes(ctx, ChangesFilter{UserID: u.ID})
		if err != nil || len(head.Added) != 6 {
			t.Fatalf("changes before delete: %+v, %v", head, err)
		}
		if err := s.DeleteConnection(ctx, u.ID, gone.ID); err != nil {
			t.Fatal(err)
		}
		wantCode(t, s.DeleteConnection(ctx, u.ID, gone.ID), opencalico.ENotFound)
		_, err = s.Connection(ctx, u.ID, gone.ID)
		wantCode(t, err, opencalico.ENotFound)
		_, err = s.Secret(ctx, gone.ID)
		wantCode(t, err, opencalico.ENotFound)
		for table, want := range map[string]int{"transactions": 1, "transaction_legs": 3, "positions": 1, "connection_secrets": 1, "connections": 1, "sync_cursors": 0} {
			if n := countRows(t, s, table); n != want {
				t.Errorf("%s: %d rows, want %d", table, n, want)
			}
		}
		ch, err := s.Changes(ctx, ChangesFilter{UserID: u.ID, After: head.Next})
		if err != nil {
			t.Fatal(err)
		}
		if !sameSet(ch.Removed, ids(goneTxns)) || len(ch.Added)+len(ch.Modified) != 0 {
			t.Fatalf("changes after delete = %+v", ch)
		}
		// Paged, with a connection filter.
		var removed []string
		cursor := head.Next
		for {
			p, err := s.Changes(ctx, ChangesFilter{UserID: u.ID, After: cursor, Limit: 2, ConnectionIDs: []string{gone.ID}})
			if err != nil {
				t.Fatal(err)
			}
			removed = append(removed, p.Removed...)
			cursor = p.Next
			if !p.HasMore {
				break
			}
		}
		if !sameSet(removed, ids(goneTxns)) {
			t.Fatalf("paged removals %v", removed)
		}
		other, err := s.Changes(ctx, ChangesFilter{UserID: u.ID, After: head.Next, ConnectionIDs: []string{kept.ID}})
		if err != nil || len(other.Removed) != 0 {
			t.Fatalf("kept connection's feed = %+v, %v", other, err)
		}
	})
}

// TestChangesUnderConcurrentWriters reads the feed while several writers add and modify the
// same user's transactions; a reader that follows the cursor must end with every transaction
// in its final state.
func TestChangesUnderConcurrentWriters(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		u := mustUser(t, s, "a@x")
		var conns []string
		for range 4 {
			conns = append(conns, mustConnection(t, s, u.ID, "kraken").ID)
		}
		const rounds = 15
		var wg sync.WaitGroup
		errs := make(chan error, len(conns))
		for w, conn := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := range rounds {
					var batch []*opencalico.Transaction
					for i := range 5 {
						// Each round rewrites the previous ones with a new amount, and adds five.
						for j := 0; j <= r; j += 3 {
							batch = append(batch, trade(conn, fmt.Sprint(w, "-", j, "-", i), t0, fmt.Sprint(r+1)))
						}
					}
					if _, err := s.UpsertTransactions(ctx, batch); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		mirror := map[string]string{} // id → amount of the BTC leg
		var cursor ChangeKey
		apply := func() {
			for {
				p, err := s.Changes(ctx, ChangesFilter{UserID: u.ID, After: cursor, Limit: 13})
				if err != nil {
					t.Error(err)
					return
				}
				for _, tx := range append(p.Added, p.Modified...) {
					mirror[tx.ID] = tx.Outputs[0].Amount.String()
				}
				cursor = p.Next
				if !p.HasMore {
					return
				}
			}
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		for running := true; running; {
			select {
			case <-done:
				running = false
			default:
				apply()
			}
		}
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		apply()
		final, err := s.ListTransactions(ctx, TransactionFilter{UserID: u.ID})
		if err != nil {
			t.Fatal(err)
		}
		if len(final) != len(mirror) {
			t.Fatalf("mirror has %d transactions, store %d", len(mirror), len(final))
		}
		for _, tx := range final {
			if mirror[tx.ID] != tx.Outputs[0].Amount.String() {
				t.Errorf("%s: mirror %q, store %q", tx.ExternalID, mirror[tx.ID], tx.Outputs[0].Amount)
			}
		}
	})
}

func TestInTx(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		u := mustUser(t, s, "a@x")
		boom := errors.New("boom")
		err := s.InTx(ctx, func(tx *sql.Tx) error {
			c := &opencalico.Connection{UserID: u.ID, ProviderID: "kraken", Type: opencalico.AuthAPIKey, Fingerprint: "f"}
			if err := s.CreateConnectionTx(ctx, tx, c, nil); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("InTx = %v", err)
		}
		if n := countRows(t, s, "connections"); n != 0 {
			t.Fatalf("rolled back transaction left %d connections", n)
		}
	})
}
