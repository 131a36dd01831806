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
// sends its first calls at once where a token bucket of burst 1 would space them.
//
// A call holds its place in the window from when it is sent until a window after its answer
// arrived: Etherscan counted it at some instant in between, which the answer's arrival bounds
// from above, so the next call sent then reaches Etherscan a full window after it however
// long either spent on the way. Margin widens the window for clocks that round.
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
	// calls holds the last n calls, oldest first: when each was answered, or the zero time
	// while it is in flight. An answer is matched to the oldest call in flight (which call it
	// belongs to is unknown), so the answered calls form a prefix in order of their answers.
	calls       []time.Time
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

func (l *Limiter) key(key string) *window {
	w := l.keys[key]
	if w == nil {
		w = &window{}
		l.keys[key] = w
	}
	return w
}

// Wait blocks until the key may send cost calls, then records them in flight.
func (l *Limiter) Wait(ctx context.Context, key string, cost int) error {
	cost = min(max(cost, 1), l.n)
	for {
		l.mu.Lock()
		now := l.clock.Now()
		w := l.key(key)
		var wait time.Duration
		if now.Before(w.closedUntil) {
			wait = w.closedUntil.Sub(now)
		} else {
			// Answered calls that left the window no longer count.
			for len(w.calls) > 0 && !w.calls[0].IsZero() && !w.calls[0].Add(l.window).After(now) {
				w.calls = w.calls[1:]
			}
			if len(w.calls)+cost <= l.n {
				for range cost {
					w.calls = append(w.calls, time.Time{})
				}
				l.mu.Unlock()
				return nil
			}
			// The oldest calls must leave the window to make room; one still in flight
			// leaves a window after its answer, which is not known yet: look again soon.
			if blocking := w.calls[len(w.calls)+cost-l.n-1]; blocking.IsZero() {
				wait = l.window / 100
			} else {
				wait = blocking.Add(l.window).Sub(now)
			}
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
	l.mu.Lock()
	w := l.key(key)
	now := l.clock.Now()
	for i, at := range w.calls {
		if at.IsZero() {
			w.calls[i] = now
			break
		}
	}
	l.mu.Unlock()
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
	w := l.key(key)
	if until := l.clock.Now().Add(d); until.After(w.closedUntil) {
		w.closedUntil = until
	}
}
