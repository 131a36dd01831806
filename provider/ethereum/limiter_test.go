package ethereum

import (
	"context"
	"testing"
	"time"

	"github.com/opencalico/opencalico/provider"
)

// TestLimiterHoldsCallsInFlight: a call holds its place in the window until a window after its
// answer, however long it was in flight, so the next call cannot reach Etherscan within a
// window of it.
func TestLimiterHoldsCallsInFlight(t *testing.T) {
	clock := provider.NewScaledClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), 100)
	l := NewLimiter(clock, 3, 0)
	ctx := context.Background()
	for i := range 3 {
		if err := l.Wait(ctx, "k", 1); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	fourth := make(chan time.Time, 1)
	go func() {
		if err := l.Wait(ctx, "k", 1); err != nil {
			t.Error(err)
		}
		fourth <- clock.Now()
	}()
	// Three calls in flight for two seconds: the fourth waits, though a second has passed.
	if err := clock.Sleep(ctx, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case <-fourth:
		t.Fatal("a fourth call went while three were in flight")
	default:
	}
	answered := clock.Now()
	l.Observe("k", 200, nil)
	at := <-fourth
	if gap := at.Sub(answered); gap < time.Second {
		t.Fatalf("the fourth call went %v after the first answer, want a window (1 s)", gap)
	}
	// Another key is not held back by this one.
	done := make(chan struct{})
	go func() { _ = l.Wait(ctx, "other", 1); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("another key waited")
	}
}

// TestLimiterReleasesUnansweredCalls: a call that got no answer (a transport error) is
// observed with status 0 and leaves the window like an answered one.
func TestLimiterReleasesUnansweredCalls(t *testing.T) {
	clock := provider.NewScaledClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), 100)
	l := NewLimiter(clock, 1, 0)
	ctx := context.Background()
	if err := l.Wait(ctx, "k", 1); err != nil {
		t.Fatal(err)
	}
	l.Observe("k", 0, nil)
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := l.Wait(wctx, "k", 1); err != nil {
		t.Fatalf("the next call never went: %v", err)
	}
}
