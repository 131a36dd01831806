package connections_test

import (
	"context"
	"database/sql"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/connections"
	"github.com/opencalico/opencalico/provider"
	"github.com/opencalico/opencalico/provider/binance"
	binancesim "github.com/opencalico/opencalico/provider/sim/binance"
	"github.com/opencalico/opencalico/secrets"
	"github.com/opencalico/opencalico/store"
)

// queue records the first syncs queued, and fails when told to.
type queue struct {
	mu   sync.Mutex
	ids  []string
	fail error
}

func (q *queue) EnqueueTx(_ context.Context, _ *sql.Tx, id string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.fail != nil {
		return q.fail
	}
	q.ids = append(q.ids, id)
	return nil
}

type harness struct {
	svc    *connections.Service
	db     *store.Store
	sealer *secrets.Sealer
	queue  *queue
	sim    *binancesim.Simulator
	user   *opencalico.User
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	ring, err := secrets.NewKeyring(secrets.GenerateMasterKey())
	if err != nil {
		t.Fatal(err)
	}
	sim := binancesim.New(binancesim.Options{Seed: 7, Trades: 5, Deposits: 2, Withdrawals: 1, Years: 1})
	ts := httptest.NewServer(sim.Handler())
	t.Cleanup(ts.Close)
	h := &harness{db: db, sealer: secrets.NewSealer(ring), queue: &queue{}, sim: sim,
		user: &opencalico.User{Email: "bob@example.com"}}
	if err := db.CreateUser(ctx, h.user); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, connections.KeySize)
	h.svc, err = connections.New(connections.Config{Store: db, Sealer: h.sealer,
		Providers: provider.NewRegistry(binance.New(binance.Options{BaseURL: ts.URL})), Sync: h.queue, FingerprintKey: key})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) request() connections.AddRequest {
	c := h.sim.Credentials()[0]
	return connections.AddRequest{UserID: h.user.ID, ProviderID: "binance",
		Fields: map[string]string{"api_key": " " + c["api_key"] + " ", "secret_key": c["secret_key"]}}
}

// wantError checks the code and that the message repeats no submitted value.
func wantError(t *testing.T, err error, code opencalico.ErrorCode, values ...string) {
	t.Helper()
	if got := opencalico.ErrorCodeOf(err); got != code {
		t.Fatalf("err = %v, want %s", err, code)
	}
	for _, v := range values {
		if v != "" && (strings.Contains(err.Error(), v) || strings.Contains(opencalico.ErrorMessage(err), v)) {
			t.Fatalf("error %q repeats a submitted value", err)
		}
	}
}

func TestAdd(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	req := h.request()
	c, err := h.svc.Add(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if c.DisplayLabel != "Binance" || c.Type != opencalico.AuthAPIKey || c.Status != opencalico.StatusPending ||
		!strings.HasPrefix(c.Fingerprint, "fp1_") || strings.Contains(c.Fingerprint, strings.TrimSpace(req.Fields["api_key"])) {
		t.Fatalf("connection = %+v", c)
	}
	if len(h.queue.ids) != 1 || h.queue.ids[0] != c.ID {
		t.Fatalf("queued %v, want the first sync of %s", h.queue.ids, c.ID)
	}
	sealed, err := h.db.Secret(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := h.sealer.OpenCredentials(sealed)
	if err != nil {
		t.Fatal(err)
	}
	if creds["api_key"] != strings.TrimSpace(req.Fields["api_key"]) || creds["secret_key"] != req.Fields["secret_key"] || len(creds) != 2 {
		t.Fatalf("sealed credentials hold %v", provider.Credentials(creds))
	}
	list, err := h.svc.List(ctx, h.user.ID)
	if err != nil || len(list) != 1 || list[0].ID != c.ID {
		t.Fatalf("list = %v, %v", list, err)
	}

	// The same key again, even with other spacing and a new label, is already connected,
	// before any call to the provider.
	before := h.sim.Requests()
	req.DisplayLabel = "Again"
	req.Fields["api_key"] = strings.TrimSpace(req.Fields["api_key"])
	_, err = h.svc.Add(ctx, req)
	wantError(t, err, opencalico.EAlreadyConnected, req.Fields["api_key"], req.Fields["secret_key"])
	if h.sim.Requests() != before {
		t.Fatal("a known key was sent to the provider again")
	}

	if err := h.svc.Remove(ctx, h.user.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := h.db.Secret(ctx, c.ID); opencalico.ErrorCodeOf(err) != opencalico.ENotFound {
		t.Fatalf("secret after remove: %v", err)
	}
	wantError(t, h.svc.Remove(ctx, h.user.ID, c.ID), opencalico.ENotFound)
	// Once removed, the key can be linked again.
	if _, err := h.svc.Add(ctx, req); err != nil {
		t.Fatal(err)
	}
}

func TestAddRefused(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	good := h.request()
	secret := good.Fields["secret_key"]

	bad := h.request()
	bad.Fields["secret_key"] = "wrong-secret-value-0123456789"
	_, err := h.svc.Add(ctx, bad)
	wantError(t, err, opencalico.EInvalidCredentials, bad.Fields["secret_key"], strings.TrimSpace(bad.Fields["api_key"]))

	missing := h.request()
	delete(missing.Fields, "secret_key")
	_, err = h.svc.Add(ctx, missing)
	wantError(t, err, opencalico.EBadRequest, strings.TrimSpace(missing.Fields["api_key"]))
	if !strings.Contains(opencalico.ErrorMessage(err), "secret_key") {
		t.Fatalf("message %q does not name the missing field", opencalico.ErrorMessage(err))
	}

	unknown := h.request()
	unknown.ProviderID = "nope"
	_, err = h.svc.Add(ctx, unknown)
	wantError(t, err, opencalico.EUnsupportedProvider, secret)

	wallet := h.request()
	wallet.Type = opencalico.AuthWallet
	_, err = h.svc.Add(ctx, wallet)
	wantError(t, err, opencalico.EUnsupportedConnectionType, secret)

	// A failure to queue the first sync leaves nothing stored: one transaction.
	h.queue.fail = errors.New("queue down")
	if _, err := h.svc.Add(ctx, good); err == nil {
		t.Fatal("added although the first sync could not be queued")
	}
	if list, _ := h.svc.List(ctx, h.user.ID); len(list) != 0 {
		t.Fatalf("refused adds stored %d connections", len(list))
	}
}

func TestLoadKey(t *testing.T) {
	path := t.TempDir() + "/fp.key"
	if _, _, err := connections.LoadKey("", path, false); err == nil {
		t.Fatal("no key and create false should fail")
	}
	k1, created, err := connections.LoadKey("", path, true)
	if err != nil || !created || len(k1) != connections.KeySize {
		t.Fatalf("create: %v %v %d", err, created, len(k1))
	}
	k2, created, err := connections.LoadKey("", path, true)
	if err != nil || created || string(k1) != string(k2) {
		t.Fatalf("reload: %v %v", err, created)
	}
	if _, _, err := connections.LoadKey("c2hvcnQ=", path, false); err == nil || strings.Contains(err.Error(), "c2hvcnQ") {
		t.Fatalf("short env key: %v", err)
	}
}
