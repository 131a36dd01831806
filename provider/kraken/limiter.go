package kraken

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/opencalico/opencalico/provider"
)

// Limiter models Kraken's private-API rate limit: a counter per API key that each call
// raises by its cost (Ledgers and TradesHistory 2, the rest 1) and that decays continuously;
// a call that would lift it above the maximum is refused. The limiter keeps its own copy of
// every key's counter and waits until the call fits, so Kraken never has to refuse one.
//
// It is conservative where it cannot know Kraken's view: a call is counted from the moment
// it is sent, and its counter does not decay until its answer arrives (Kraken may have
// counted it at any instant in between).
type Limiter struct {
	clock provider.Clock
	max   float64
	decay float64 // points per second

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	level float64
	at    time.Time // when level was last brought up to date
}

// margin keeps the modelled counter a little below the maximum, against rounding.
const margin = 0.05

// NewLimiter returns a limiter with counter maximum max (Kraken: 15 starter, 20 for the
// higher tiers) decaying decayPerSecond points per second (0.33 starter, 0.5, 1).
func NewLimiter(clock provider.Clock, max, decayPerSecond float64) *Limiter {
	if clock == nil {
		clock = provider.RealClock{}
	}
	return &Limiter{clock: clock, max: max, decay: decayPerSecond, buckets: map[string]*bucket{}}
}

// settle brings b up to now. The caller holds l.mu.
func (l *Limiter) settle(b *bucket, now time.Time) {
	if elapsed := now.Sub(b.at).Seconds(); elapsed > 0 {
		b.level -= elapsed * l.decay
		if b.level < 0 {
			b.level = 0
		}
		b.at = now
	}
}

// Wait blocks until a call of the given cost fits under the key's maximum, then counts it.
func (l *Limiter) Wait(ctx context.Context, key string, cost int) error {
	for {
		l.mu.Lock()
		b := l.buckets[key]
		now := l.clock.Now()
		if b == nil {
			b = &bucket{at: now}
			l.buckets[key] = b
		}
		l.settle(b, now)
		excess := b.level + float64(cost) - (l.max - margin)
		if excess <= 0 || b.level == 0 {
			// A call costlier than the whole budget still goes when the counter is empty.
			b.level += float64(cost)
			l.mu.Unlock()
			return nil
		}
		l.mu.Unlock()
		wait := time.Duration(excess / l.decay * float64(time.Second))
		if err := l.clock.Sleep(ctx, wait+time.Millisecond); err != nil {
			return err
		}
	}
}

// Observe restarts the key's decay at the arrival of the answer: the time the call spent in
// flight is not credited, because Kraken may have counted the call at its very end.
func (l *Limiter) Observe(key string, _ int, _ http.Header) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.buckets[key]; b != nil {
		if now := l.clock.Now(); now.After(b.at) {
			b.at = now
		}
	}
}

// Level returns the modelled counter of a key now (for tests and metrics).
func (l *Limiter) Level(key string) float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		return 0
	}
	l.settle(b, l.clock.Now())
	return b.level
}
