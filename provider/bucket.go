package provider

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// BucketLimiter is a token bucket per key, for providers whose limit is so many requests per
// second per client address (public Esplora instances, public Solana RPC nodes). Every account
// of the process draws from the bucket of the host it calls, as they share the egress
// address. A 429 (or a 503 carrying Retry-After) empties the bucket and closes it until the
// server's Retry-After, for every caller.
type BucketLimiter struct {
	clock Clock
	rate  float64 // tokens per second
	burst float64

	mu      sync.Mutex
	buckets map[string]*tokenBucket
}

type tokenBucket struct {
	tokens      float64
	at          time.Time
	closedUntil time.Time
}

// NewBucketLimiter returns a limiter of rate requests per second with the given burst (at
// least 1), on clock (nil: the wall clock).
func NewBucketLimiter(clock Clock, rate float64, burst int) *BucketLimiter {
	if clock == nil {
		clock = RealClock{}
	}
	return &BucketLimiter{clock: clock, rate: rate, burst: float64(max(burst, 1)), buckets: map[string]*tokenBucket{}}
}

// Wait blocks until the key's bucket holds cost tokens, then takes them.
func (l *BucketLimiter) Wait(ctx context.Context, key string, cost int) error {
	for {
		l.mu.Lock()
		now := l.clock.Now()
		b := l.buckets[key]
		if b == nil {
			// A new bucket starts with one token, not a full burst: a process that just
			// restarted cannot know what it spent a moment ago.
			b = &tokenBucket{tokens: 1, at: now}
			l.buckets[key] = b
		}
		var wait time.Duration
		if now.Before(b.closedUntil) {
			wait = b.closedUntil.Sub(now)
		} else {
			if elapsed := now.Sub(b.at).Seconds(); elapsed > 0 {
				b.tokens = min(l.burst, b.tokens+elapsed*l.rate)
				b.at = now
			}
			if b.tokens >= float64(cost) {
				b.tokens -= float64(cost)
				l.mu.Unlock()
				return nil
			}
			wait = time.Duration((float64(cost) - b.tokens) / l.rate * float64(time.Second))
		}
		l.mu.Unlock()
		if err := l.clock.Sleep(ctx, wait+time.Millisecond); err != nil {
			return err
		}
	}
}

// Observe closes the key's bucket for Retry-After on a 429 (one second when the header is
// absent) or on a 503 that carries one, and empties it, so that no caller of the process
// sends before the server allows.
func (l *BucketLimiter) Observe(key string, status int, header http.Header) {
	if status != http.StatusTooManyRequests && status != http.StatusServiceUnavailable {
		return
	}
	after := RetryAfter(header)
	if after <= 0 && status == http.StatusTooManyRequests {
		after = time.Second
	}
	if after <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	b := l.buckets[key]
	if b == nil {
		b = &tokenBucket{at: now}
		l.buckets[key] = b
	}
	b.tokens, b.at = 0, now
	if until := now.Add(after); until.After(b.closedUntil) {
		b.closedUntil = until
	}
}
