package solana

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/opencalico/opencalico/provider"
)

// Limiter is a token bucket per RPC host. Public Solana RPC endpoints limit requests per
// second per client IP (api.mainnet-beta.solana.com: about 100 per 10 s, 40 per 10 s for a
// single method) and answer 429 with Retry-After beyond it; every account of the process
// shares the egress IP, so they share the host's bucket. A 429 closes the bucket until
// Retry-After for every caller.
type Limiter struct {
	clock provider.Clock
	rate  float64
	burst float64

	mu    sync.Mutex
	hosts map[string]*bucket
}

type bucket struct {
	tokens      float64
	at          time.Time
	closedUntil time.Time
}

// NewLimiter returns a limiter of rate requests per second with the given burst (at least 1).
func NewLimiter(clock provider.Clock, rate float64, burst int) *Limiter {
	if clock == nil {
		clock = provider.RealClock{}
	}
	return &Limiter{clock: clock, rate: rate, burst: float64(max(burst, 1)), hosts: map[string]*bucket{}}
}

// Wait blocks until the host's bucket holds cost tokens, then takes them.
func (l *Limiter) Wait(ctx context.Context, key string, cost int) error {
	for {
		l.mu.Lock()
		now := l.clock.Now()
		b := l.hosts[key]
		if b == nil {
			// One token, not a full burst: a restarted process cannot know what it just spent.
			b = &bucket{tokens: 1, at: now}
			l.hosts[key] = b
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

// Observe closes the host's bucket for Retry-After on a 429 (one second when absent).
func (l *Limiter) Observe(key string, status int, header http.Header) {
	if status != http.StatusTooManyRequests {
		return
	}
	after := provider.RetryAfter(header)
	if after <= 0 {
		after = time.Second
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	b := l.hosts[key]
	if b == nil {
		b = &bucket{}
		l.hosts[key] = b
	}
	b.tokens, b.at = 0, now
	if until := now.Add(after); until.After(b.closedUntil) {
		b.closedUntil = until
	}
}
