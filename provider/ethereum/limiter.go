package ethereum

import (
	"context"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/opencalico/opencalico/provider"
)

// Limiter is Etherscan's rate-limit policy: a key may make so many calls per second (3 on
// the free plan), whichever chain they read, so every account of the process draws from one
// budget per API key. It is a sliding window, as the rule is worded ("3 calls per
// second"): a call may go when fewer than N calls went in the last window, so a short sync
// sends its first calls at once where a token bucket of burst 1 would space them. Margin
// widens the window by the jitter a call may gain on the way, so that calls sent a window
// apart never arrive closer than that.
//
// A rate-limit answer (Etherscan sends it in HTTP 200, which Observe cannot see) closes the
// key's window for a second through Pause, for every caller.
type Limiter struct {
	clock  provider.Clock
	n      int
	window time.Duration

	mu   sync.Mutex
	keys map[string]*window
}

type window struct {
	sent        []time.Time // the last n sends, oldest first
	closedUntil time.Time
}

// NewLimiter returns a limiter of rate calls per second per key, its window widened by
// margin. A rate of 3 allows 3 calls in any 1 s + margin.
func NewLimiter(clock provider.Clock, rate float64, margin time.Duration) *Limiter {
	if clock == nil {
		clock = provider.RealClock{}
	}
	if rate <= 0 {
		rate = DefaultRequestsPerSecond
	}
	n := max(1, int(math.Floor(rate)))
	w := time.Duration(float64(n)/rate*float64(time.Second)) + max(margin, 0)
	return &Limiter{clock: clock, n: n, window: w, keys: map[string]*window{}}
}

// Wait blocks until the key may send cost calls, then records them.
func (l *Limiter) Wait(ctx context.Context, key string, cost int) error {
	cost = min(max(cost, 1), l.n)
	for {
		l.mu.Lock()
		now := l.clock.Now()
		w := l.keys[key]
		if w == nil {
			w = &window{}
			l.keys[key] = w
		}
		var wait time.Duration
		if now.Before(w.closedUntil) {
			wait = w.closedUntil.Sub(now)
		} else {
			// Calls that left the window no longer count.
			for len(w.sent) > 0 && !w.sent[0].Add(l.window).After(now) {
				w.sent = w.sent[1:]
			}
			if len(w.sent)+cost <= l.n {
				for range cost {
					w.sent = append(w.sent, now)
				}
				l.mu.Unlock()
				return nil
			}
			// The oldest calls must leave the window to make room.
			wait = w.sent[len(w.sent)+cost-l.n-1].Add(l.window).Sub(now)
		}
		l.mu.Unlock()
		if err := l.clock.Sleep(ctx, wait+time.Millisecond); err != nil {
			return err
		}
	}
}

// Observe closes the key for Retry-After on a 429 (a second when absent), or on a 503 that
// carries one.
func (l *Limiter) Observe(key string, status int, header http.Header) {
	if status != http.StatusTooManyRequests && status != http.StatusServiceUnavailable {
		return
	}
	after := provider.RetryAfter(header)
	if after <= 0 && status == http.StatusTooManyRequests {
		after = time.Second
	}
	l.Pause(key, after)
}

// Pause closes the key's window for d from now: no caller of the process sends on it before.
func (l *Limiter) Pause(key string, d time.Duration) {
	if d <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.keys[key]
	if w == nil {
		w = &window{}
		l.keys[key] = w
	}
	if until := l.clock.Now().Add(d); until.After(w.closedUntil) {
		w.closedUntil = until
	}
}
