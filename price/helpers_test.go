package price_test

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/price"
	"github.com/opencalico/opencalico/price/sim"
	"github.com/opencalico/opencalico/store"
)

// fakeClock stands still until someone sleeps: a sleep moves it forward at once, so that
// rate-limit waits cost no real time and every answer is deterministic. The simulator and the
// adapter share it.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if d > 0 {
		c.now = c.now.Add(d)
	}
	return nil
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

type env struct {
	clock  *fakeClock
	sim    *sim.Simulator
	src    *price.CoinGecko
	st     *store.Store
	valuer *price.Valuer
	user   *opencalico.User
	conn   *opencalico.Connection
}

type envOptions struct {
	sim    sim.Options
	gecko  price.CoinGeckoOptions
	valuer price.Options
	now    time.Time
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	ctx := context.Background()
	if o.now.IsZero() {
		o.now = time.Date(2026, 3, 6, 12, 0, 0, 0, time.UTC)
	}
	e := &env{clock: &fakeClock{now: o.now}}
	o.sim.Clock = e.clock
	e.sim = sim.New(o.sim)
	srv := httptest.NewServer(e.sim)
	t.Cleanup(srv.Close)
	o.gecko.BaseURL, o.gecko.HTTP, o.gecko.Clock = srv.URL, srv.Client(), e.clock
	if o.gecko.BaseDelay == 0 {
		o.gecko.BaseDelay = time.Millisecond
	}
	e.src = price.NewCoinGecko(o.gecko)
	st, err := store.Open(ctx, "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	e.st = st
	e.user = &opencalico.User{Email: "ann@example.com"}
	if err := st.CreateUser(ctx, e.user); err != nil {
		t.Fatal(err)
	}
	e.conn = &opencalico.Connection{UserID: e.user.ID, ProviderID: "kraken", Type: opencalico.AuthAPIKey, Fingerprint: "fp", DisplayLabel: "K"}
	if err := st.CreateConnection(ctx, e.conn, &opencalico.SealedSecret{KeyID: "k", WrappedKey: []byte{1}, Ciphertext: []byte{2}}); err != nil {
		t.Fatal(err)
	}
	o.valuer.Source, o.valuer.Store, o.valuer.Clock = e.src, st, e.clock
	e.valuer = price.New(o.valuer)
	return e
}

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func leg(sym, amount string) opencalico.Leg {
	return opencalico.Leg{AssetSymbol: sym, Amount: dec(amount)}
}

func tx(conn, ext string, ts time.Time, cat opencalico.Category, in, out []opencalico.Leg, fees ...opencalico.Fee) *opencalico.Transaction {
	typ := opencalico.TypeInputOutput
	switch {
	case len(in) == 0:
		typ = opencalico.TypeOutputOnly
	case len(out) == 0:
		typ = opencalico.TypeInputOnly
	}
	return &opencalico.Transaction{ConnectionID: conn, ExternalID: ext, Type: typ, Status: opencalico.TxConfirmed,
		Categorization: opencalico.Categorization{Category: cat}, Timestamp: ts, Inputs: in, Outputs: out, Fees: fees}
}
