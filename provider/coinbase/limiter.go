package coinbase

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/opencalico/opencalico/provider"
)

// Limiter is Coinbase's rate-limit policy: a token bucket per API key (or OAuth user). Coinbase
// allows Limit requests per Window (10,000 an hour). The bucket holds at most Burst tokens and
// refills at (Limit-Burst)/Window, so that no window of that length ever sees more than Limit
// requests, however the calls are spread: a sync paced by it never meets a 429.
//
// One Limiter serves every account of the process, so that two connections sharing one key
// share its budget as Coinbase counts it.
type Limiter struct {
	Limit  int
	Window time.Duration
	Burst  int
	Clock  provider.Clock

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
	// notBefore holds calls back after a 429 with Retry-After.
	notBefore time.Time
}

// NewLimiter returns the policy for limit requests per window with the given burst.
func NewLimiter(limit int, window time.Duration, burst int, clock provider.Clock) *Limiter {
	if limit <= 0 {
		limit = 10000
	}
	if window <= 0 {
		window = time.Hour
	}
	if burst <= 0 || burst >= limit {
		burst = max(1, min(100, limit/10))
	}
	if clock == nil {
		clock = provider.RealClock{}
	}
	return &Limiter{Limit: limit, Window: window, Burst: burst, Clock: clock, buckets: map[string]*bucket{}}
}

// rate is tokens per second.
func (l *Limiter) rate() float64 {
	return float64(l.Limit-l.Burst) / l.Window.Seconds()
}

// Wait takes cost tokens from key's bucket, sleeping until they are there.
func (l *Limiter) Wait(ctx context.Context, key string, cost int) error {
	for {
		wait := l.reserve(key, float64(cost))
		if wait <= 0 {
			return nil
		}
		if err := l.Clock.Sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// reserve takes the tokens and returns 0, or returns how long to wait before trying again.
func (l *Limiter) reserve(key string, cost float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.Clock.Now()
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: float64(l.Burst), last: now}
		l.buckets[key] = b
	}
	if now.Before(b.notBefore) {
		return b.notBefore.Sub(now)
	}
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = min(float64(l.Burst), b.tokens+elapsed.Seconds()*l.rate())
		b.last = now
	}
	if b.tokens >= cost {
		b.tokens -= cost
		return 0
	}
	need := (cost - b.tokens) / l.rate()
	return max(time.Duration(need*float64(time.Second)), time.Millisecond)
}

// Observe learns from a 429: the bucket is emptied and held back for Retry-After (or one
// token's worth of time), since Coinbase's count disagrees with ours.
func (l *Limiter) Observe(key string, status int, header http.Header) {
	if status != http.StatusTooManyRequests {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.Clock.Now()
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{last: now}
		l.buckets[key] = b
	}
	b.tokens = 0
	b.last = now
	hold := provider.RetryAfter(header)
	if hold <= 0 {
		hold = time.Duration(float64(time.Second) / l.rate())
	}
	b.notBefore = now.Add(hold)
}
