package binance

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
)

// WeightLimiter is Binance's rate-limit policy: a request-weight budget per egress IP and
// minute (6000 by default), which every account synced from that IP shares. The key of Wait
// and Observe is the egress address.
//
// It keeps its own accounting of the weight it lets through, so that concurrent accounts do
// not overshoot between answers, and corrects itself from X-MBX-USED-WEIGHT-1M, which is the
// server's count and includes whatever else uses the IP. A 429 stops every call on the key
// until its Retry-After; a 418 (an IP ban, from 2 minutes to 3 days) makes every call fail
// at once with ERateLimited until the ban ends, because calling during a ban lengthens it.
type WeightLimiter struct {
	clock provider.Clock
	// budget is the weight per minute the limiter lets through: the limit minus a reserve
	// for requests it cannot see (another process on the same IP, clock skew at the turn of
	// the minute).
	budget int

	mu   sync.Mutex
	keys map[string]*weightState
}

type weightState struct {
	minute      int64 // unix minute the counts are for
	used        int   // weight spent this minute, by our accounting or the server's if higher
	retryAt     time.Time
	bannedUntil time.Time
}

// NewWeightLimiter returns a limiter of perMinute weight per key (default 6000), keeping
// reserve of it unused (default: 5 %).
func NewWeightLimiter(clock provider.Clock, perMinute, reserve int) *WeightLimiter {
	if clock == nil {
		clock = provider.RealClock{}
	}
	if perMinute <= 0 {
		perMinute = 6000
	}
	if reserve <= 0 || reserve >= perMinute {
		reserve = perMinute / 20
	}
	return &WeightLimiter{clock: clock, budget: perMinute - reserve, keys: map[string]*weightState{}}
}

// state returns the key's state, rolled over to the current minute. The caller holds mu.
func (l *WeightLimiter) state(key string, now time.Time) *weightState {
	st := l.keys[key]
	if st == nil {
		st = &weightState{}
		l.keys[key] = st
	}
	if m := now.Unix() / 60; m != st.minute {
		st.minute, st.used = m, 0
	}
	return st
}

// Wait takes cost from the key's budget, sleeping until the next minute when it is spent.
func (l *WeightLimiter) Wait(ctx context.Context, key string, cost int) error {
	for {
		now := l.clock.Now()
		l.mu.Lock()
		st := l.state(key, now)
		var sleep time.Duration
		switch {
		case now.Before(st.bannedUntil):
			wait := st.bannedUntil.Sub(now)
			l.mu.Unlock()
			return &opencalico.Error{Code: opencalico.ERateLimited, ProviderID: ID, RetryAfter: wait,
				Message: "Binance has banned this server's IP address for too many requests; calls resume when the ban ends."}
		case now.Before(st.retryAt):
			sleep = st.retryAt.Sub(now)
		case st.used+cost <= l.budget || (st.used == 0 && cost > l.budget):
			st.used += cost
			l.mu.Unlock()
			return nil
		default:
			sleep = time.Unix((st.minute+1)*60, 0).Sub(now)
		}
		l.mu.Unlock()
		if err := l.clock.Sleep(ctx, sleep); err != nil {
			return err
		}
	}
}

// Observe learns from an answer: the server's weight count, a 429's Retry-After, a 418 ban.
func (l *WeightLimiter) Observe(key string, status int, header http.Header) {
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.state(key, now)
	if used, err := strconv.Atoi(header.Get("X-MBX-USED-WEIGHT-1M")); err == nil && used > st.used {
		// The server counted more than we did: someone else uses this IP, or answers of the
		// last minute are late. Either way its count is the one that decides.
		st.used = used
	}
	switch status {
	case http.StatusTooManyRequests:
		wait := provider.RetryAfter(header)
		if wait <= 0 {
			wait = time.Unix((st.minute+1)*60, 0).Sub(now)
		}
		st.retryAt = now.Add(wait)
		st.used = max(st.used, l.budget)
	case http.StatusTeapot:
		wait := provider.RetryAfter(header)
		if wait <= 0 {
			wait = 2 * time.Minute
		}
		st.bannedUntil = now.Add(wait)
	}
}

// Used reports the weight counted for key in the current minute.
func (l *WeightLimiter) Used(key string) int {
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state(key, now).used
}
