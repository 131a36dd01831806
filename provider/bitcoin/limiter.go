package bitcoin

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/opencalico/opencalico/provider"
)

// Limiter is a token bucket per Esplora host: public instances (blockstream.info,
// mempool.space) limit requests per second per client IP and answer 429 beyond it. Every
// account of the process draws from the same bucket of a host, as they share the egress IP.
// A 429 with Retry-After closes the host's bucket until then, for every caller.
type Limiter struct {
	clock provider.Clock
	rate  float64 // tokens per second
	burst float64

	mu    sync.Mutex
	hosts map[string]*tokenBucket
}

type tokenBucket struct {
	tokens      float64
	at          time.Time
	closedUntil time.Time
}

// NewLimiter returns a limiter of rate requests per second with the given burst (at least 1).
func NewLimiter(clock provider.Clock, rate float64, burst int) *Limiter {
	if clock == nil {
		clock = provider.RealClock{}
	}
	if burst < 1 {
		burst = 1
	}
	return &Limiter{clock: clock, rate: rate, burst: float64(burst), hosts: map[string]*tokenBucket{}}
}

// Wait blocks until the host's bucket holds cost tokens, then takes them.
func (l *Limiter) Wait(ctx context.Context, key string, cost int) error {
	for {
		l.mu.Lock()
		now := l.clock.Now()
		b := l.hosts[key]
		if b == nil {
			// A new bucket starts with one token, not a full burst: a process that just
			// restarted cannot know what it spent a moment ago.
			b = &tokenBucket{tokens: 1, at: now}
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

// Observe closes the host's bucket for Retry-After on a 429 (or a 503 that carries one), and
// empties it, so that no caller of the process sends before the server allows.
func (l *Limiter) Observe(key string, status int, header http.Header) {
	if status != http.StatusTooManyRequests && status != http.StatusServiceUnavailable {
		return
	}
	after := provider.RetryAfter(header)
	if after <= 0 && status == http.StatusTooManyRequests {
		after = time.Second
	}
	if after <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	b := l.hosts[key]
	if b == nil {
		b = &tokenBucket{at: now}
		l.hosts[key] = b
	}
	b.tokens, b.at = 0, now
	if until := now.Add(after); until.After(b.closedUntil) {
		b.closedUntil = until
	}
}
