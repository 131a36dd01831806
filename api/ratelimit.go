package api

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/opencalico/opencalico"
)

// DefaultRequestsPerMinute is how many API requests one token (a user's grant to one
// partner) may make per minute.
const DefaultRequestsPerMinute = 600

// tokenLimiter counts requests per caller in fixed one-minute windows and reports the
// standard RateLimit-* headers. It is per process: behind a load balancer each replica
// allows its share, which bounds what one partner can cost the providers through us.
type tokenLimiter struct {
	perMinute int
	now       func() time.Time
	mu        sync.Mutex
	windows   map[string]*window
}

type window struct {
	start time.Time
	used  int
}

func newTokenLimiter(perMinute int) *tokenLimiter {
	if perMinute <= 0 {
		perMinute = DefaultRequestsPerMinute
	}
	return &tokenLimiter{perMinute: perMinute, now: time.Now, windows: map[string]*window{}}
}

// take counts one request of the caller and says whether it may go, with the numbers for the
// headers.
func (l *tokenLimiter) take(caller string) (ok bool, remaining int, reset time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	start := now.Truncate(time.Minute)
	w := l.windows[caller]
	if w == nil || !w.start.Equal(start) {
		if len(l.windows) > 100_000 { // forget finished windows now and then
			for k, old := range l.windows {
				if !old.start.Equal(start) {
					delete(l.windows, k)
				}
			}
		}
		w = &window{start: start}
		l.windows[caller] = w
	}
	reset = start.Add(time.Minute).Sub(now)
	if w.used >= l.perMinute {
		return false, 0, reset
	}
	w.used++
	return true, l.perMinute - w.used, reset
}

// limit applies the caller's request budget to a route behind authentication.
func (h *v2Handlers) limit(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := principal(r)
		if err != nil {
			h.s.writeError(w, r, err)
			return
		}
		ok, remaining, reset := h.limiter.take(caller(p))
		secs := int(math.Ceil(reset.Seconds()))
		w.Header().Set("RateLimit-Limit", strconv.Itoa(h.limiter.perMinute))
		w.Header().Set("RateLimit-Remaining", strconv.Itoa(remaining))
		w.Header().Set("RateLimit-Reset", strconv.Itoa(secs))
		if !ok {
			h.s.writeError(w, r, &opencalico.Error{Code: opencalico.ERateLimited, RetryAfter: reset,
				Message: "Too many requests with this token: " + strconv.Itoa(h.limiter.perMinute) + " per minute are allowed."})
			return
		}
		next(w, r)
	}
}
