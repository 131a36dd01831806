package binance

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	binancesim "github.com/opencalico/opencalico/provider/sim/binance"
)

// The limiter charges a request to every minute Binance may count it in: the minute it is
// let through in, the minutes that begin while it is in flight, and the neighbouring minute
// when it is sent or answered within the clock's uncertainty of the turn.
func TestWeightLimiterMinuteTurn(t *testing.T) {
	ctx := context.Background()
	minute := time.Date(2025, 1, 1, 0, 1, 0, 0, time.UTC) // a turn of the minute
	ok := http.Header{}
	wait := func(t *testing.T, l *WeightLimiter, cost int) {
		t.Helper()
		if err := l.Wait(ctx, "ip", cost); err != nil {
			t.Fatal(err)
		}
	}
	at := func(c *manualClock, d time.Duration) { c.t = minute.Add(d) }
	tests := []struct {
		name string
		run  func(t *testing.T, l *WeightLimiter, c *manualClock)
	}{
		{"in flight at the turn is the new minute's first use", func(t *testing.T, l *WeightLimiter, c *manualClock) {
			at(c, -50*time.Second)
			for range 5 {
				wait(t, l, 20)
			}
			for range 4 {
				l.Observe("ip", 200, ok)
			}
			wait(t, l, 20) // waits for the turn and the skew after it: the minute is full
			if want := minute.Add(DefaultClockSkew); !c.t.Equal(want) {
				t.Fatalf("let through at %s, want %s", c.t, want)
			}
			if got := l.Used("ip"); got != 40 {
				t.Fatalf("used %d, want 40: the request in flight at the turn and the new one", got)
			}
		}},
		{"an answer to a request sent before the turn does not fill the new minute", func(t *testing.T, l *WeightLimiter, c *manualClock) {
			at(c, -2*time.Second)
			wait(t, l, 20)
			at(c, 500*time.Millisecond)
			// The count may be the previous minute's: Binance got the request before its turn.
			l.Observe("ip", 200, http.Header{"X-Mbx-Used-Weight-1m": []string{"100"}})
			if got := l.Used("ip"); got != 20 {
				t.Fatalf("used %d, want 20: the request, in flight at the turn", got)
			}
			for range 4 {
				wait(t, l, 20)
				l.Observe("ip", 200, ok)
			}
			if want := minute.Add(500 * time.Millisecond); !c.t.Equal(want) {
				t.Fatalf("clock at %s, want %s: the budget was free", c.t, want)
			}
			// Sent well after the turn: the count is this minute's, and decides.
			at(c, 10*time.Second)
			wait(t, l, 1)
			l.Observe("ip", 200, http.Header{"X-Mbx-Used-Weight-1m": []string{"99"}})
			if got := l.Used("ip"); got != 99 {
				t.Fatalf("used %d, want the server's 99", got)
			}
		}},
		{"sent within the skew before the turn counts in both minutes", func(t *testing.T, l *WeightLimiter, c *manualClock) {
			at(c, -DefaultClockSkew/2)
			wait(t, l, 20)
			l.Observe("ip", 200, ok)
			at(c, 10*time.Second)
			if got := l.Used("ip"); got != 20 {
				t.Fatalf("used %d, want 20", got)
			}
		}},
		{"answered within the skew before the turn counts in the next minute", func(t *testing.T, l *WeightLimiter, c *manualClock) {
			at(c, -10*time.Second)
			wait(t, l, 20)
			at(c, -DefaultClockSkew/2)
			l.Observe("ip", 200, ok)
			at(c, 10*time.Second)
			if got := l.Used("ip"); got != 20 {
				t.Fatalf("used %d, want 20", got)
			}
		}},
		{"answered before the skew, sent before the turn, counts only in its minute", func(t *testing.T, l *WeightLimiter, c *manualClock) {
			at(c, -10*time.Second)
			wait(t, l, 20)
			l.Observe("ip", 200, ok)
			at(c, 0)
			if got := l.Used("ip"); got != 0 {
				t.Fatalf("used %d, want 0", got)
			}
		}},
		{"the first skew of a minute is the previous one's if it is full", func(t *testing.T, l *WeightLimiter, c *manualClock) {
			at(c, -30*time.Second)
			wait(t, l, 90)
			l.Observe("ip", 200, ok)
			at(c, 0)
			wait(t, l, 10) // fits the previous minute too
			wait(t, l, 1)  // does not
			if want := minute.Add(DefaultClockSkew); !c.t.Equal(want) {
				t.Fatalf("let through at %s, want %s", c.t, want)
			}
		}},
		{"a request never answered stops counting", func(t *testing.T, l *WeightLimiter, c *manualClock) {
			at(c, 10*time.Second) // its attempt fails without an answer: no Observe
			wait(t, l, 20)
			for _, m := range []int{1, 2} {
				at(c, time.Duration(m)*time.Minute)
				if got := l.Used("ip"); got != 20 {
					t.Fatalf("minute %d: used %d, want 20", m, got)
				}
			}
			at(c, 3*time.Minute)
			if got := l.Used("ip"); got != 0 {
				t.Fatalf("used %d, want 0", got)
			}
		}},
		{"answers to concurrent requests release the cheapest first", func(t *testing.T, l *WeightLimiter, c *manualClock) {
			at(c, -30*time.Second)
			wait(t, l, 1)
			wait(t, l, 20)
			wait(t, l, 1)
			l.Observe("ip", 200, ok)
			l.Observe("ip", 200, ok)
			at(c, 0)
			if got := l.Used("ip"); got != 20 {
				t.Fatalf("used %d, want 20: which request is still in flight is unknown", got)
			}
		}},
		{"a request heavier than the budget goes alone", func(t *testing.T, l *WeightLimiter, c *manualClock) {
			at(c, 10*time.Second)
			wait(t, l, 150)
			l.Observe("ip", 200, ok)
			if want := minute.Add(10 * time.Second); !c.t.Equal(want) {
				t.Fatalf("let through at %s, want %s", c.t, want)
			}
			wait(t, l, 1)
			if want := minute.Add(time.Minute + DefaultClockSkew); !c.t.Equal(want) {
				t.Fatalf("let through at %s, want %s", c.t, want)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &manualClock{}
			tt.run(t, NewWeightLimiter(c, 100, 0), c)
		})
	}
}

// A reserve of 0 is none; out-of-range reserves too.
func TestWeightLimiterReserve(t *testing.T) {
	for _, tt := range []struct{ perMinute, reserve, budget int }{
		{300, 0, 300}, {300, 15, 285}, {300, -1, 300}, {300, 300, 300}, {0, 0, 6000},
	} {
		if got := NewWeightLimiter(nil, tt.perMinute, tt.reserve).budget; got != tt.budget {
			t.Errorf("NewWeightLimiter(%d, %d): budget %d, want %d", tt.perMinute, tt.reserve, got, tt.budget)
		}
	}
}

// latencyTransport holds every request back a random while before sending it, so that many
// requests are in flight at the turn of a minute and reach the simulator in the next one,
// and records the highest weight count the simulator answered.
type latencyTransport struct {
	max time.Duration // real time

	mu      sync.Mutex
	rng     *rand.Rand
	maxUsed int
	status  map[int]int
}

func (lt *latencyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	lt.mu.Lock()
	d := time.Duration(lt.rng.Int64N(int64(lt.max)))
	lt.mu.Unlock()
	time.Sleep(d)
	res, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		lt.mu.Lock()
		if used, err := strconv.Atoi(res.Header.Get("X-MBX-USED-WEIGHT-1M")); err == nil {
			lt.maxUsed = max(lt.maxUsed, used)
		}
		lt.status[res.StatusCode]++
		lt.mu.Unlock()
	}
	return res, err
}

// A burst of accounts syncing at once through one adapter with the default policy (no fixed
// reserve), over a network slow enough that requests cross the turn of the minute in flight,
// never exceeds the simulator's per-minute budget: not one 429 or 418.
func TestRateLimitBurst(t *testing.T) {
	if testing.Short() {
		t.Skip("several simulated minutes")
	}
	const perMinute, accounts = 300, 8
	e := newEnv(t, binancesim.Options{Accounts: accounts, Trades: 150, Deposits: 10, Withdrawals: 5, WeightPerMinute: perMinute})
	// Up to 40 ms real is 2.4 s simulated at × 60: a request sent in the last seconds of a
	// minute often reaches the simulator in the next.
	lt := &latencyTransport{max: 40 * time.Millisecond, rng: rand.New(rand.NewPCG(1, 2)), status: map[int]int{}}
	a := e.adapter(Options{WeightPerMinute: perMinute, HTTP: &http.Client{Transport: lt}})
	ctx := context.Background()
	start := e.clock.Now()
	var wg sync.WaitGroup
	errs := make([]error, accounts)
	reads := make([]*read, accounts)
	for i := range accounts {
		wg.Go(func() {
			reads[i] = newRead()
			if errs[i] = reads[i].history(ctx, a, e.account(i), 0); errs[i] != nil {
				return
			}
			_, errs[i] = a.Balances(ctx, e.account(i))
		})
	}
	wg.Wait()
	took := e.clock.Now().Sub(start)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("account %d: %v", i, err)
		}
	}
	lt.mu.Lock()
	defer lt.mu.Unlock()
	t.Logf("%d accounts, %d requests in %s of simulated time; highest count answered %d of %d; statuses %v",
		accounts, e.sim.Requests(), took.Round(time.Second), lt.maxUsed, perMinute, lt.status)
	if n := e.sim.RateLimitErrors(); n != 0 {
		t.Errorf("%d rate-limit errors", n)
	}
	if lt.maxUsed > perMinute {
		t.Errorf("the simulator counted %d weight in a minute, over %d", lt.maxUsed, perMinute)
	}
	if took < 2*time.Minute {
		t.Errorf("took %s: the budget cannot have been enforced", took)
	}
}

// lockedClock is a manualClock the simulator's handlers may read concurrently.
type lockedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *lockedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *lockedClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return ctx.Err()
}

func (c *lockedClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// A request let through before the turn of the minute that reaches Binance after it counts
// in the new minute: a burst of calls at the turn must leave room for it. Against the
// simulator, on one manual clock: 280 weight spent, a call of 20 let through at second 55
// and held back, a burst of 15 calls of 20 at the turn, then the held call sent. Without
// the held call charged to the new minute the burst takes all 300 and the held call gets a
// 429; with it, the burst's last call waits for the next minute (and the held call, sent
// after it, counts there).
func TestWeightLimiterTurnAgainstSimulator(t *testing.T) {
	ctx := context.Background()
	const perMinute = 300
	minute := time.Date(2025, 1, 1, 0, 1, 0, 0, time.UTC)
	clock := &lockedClock{t: minute.Add(-50 * time.Second)}
	sim := binancesim.New(binancesim.Options{Clock: clock, WeightPerMinute: perMinute, Trades: 10, Deposits: 1, Withdrawals: 1})
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()
	l := NewWeightLimiter(clock, perMinute, 0)
	send := func() int { // exchangeInfo, weight 20, observed as the client does
		t.Helper()
		res, err := http.Get(srv.URL + "/api/v3/exchangeInfo")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		l.Observe("default", res.StatusCode, res.Header)
		return res.StatusCode
	}
	call := func() int {
		t.Helper()
		if err := l.Wait(ctx, "default", 20); err != nil {
			t.Fatal(err)
		}
		return send()
	}
	for range 14 {
		if status := call(); status != http.StatusOK {
			t.Fatalf("HTTP %d", status)
		}
	}
	clock.set(minute.Add(-5 * time.Second))
	if err := l.Wait(ctx, "default", 20); err != nil { // let through, reaches Binance later
		t.Fatal(err)
	}
	clock.set(minute)
	for i := range 15 {
		if status := call(); status != http.StatusOK {
			t.Fatalf("burst call %d: HTTP %d", i, status)
		}
		if i == 13 && !clock.Now().Before(minute.Add(time.Minute)) {
			t.Fatalf("burst call %d waited for the next minute: the held call is 20 of 300", i)
		}
	}
	if got := clock.Now(); got.Before(minute.Add(time.Minute)) {
		t.Errorf("the burst's last call went at %s, in the minute of the held call", got)
	}
	if status := send(); status != http.StatusOK { // reaches Binance after the burst
		t.Errorf("the held call: HTTP %d", status)
	}
	if n := sim.RateLimitErrors(); n != 0 {
		t.Errorf("%d rate-limit errors", n)
	}
}
