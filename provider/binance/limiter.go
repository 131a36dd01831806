package binance

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
)

// WeightLimiter is Binance's rate-limit policy: a request-weight budget per egress IP and
// calendar minute of Binance's clock (6000 by default), which every account synced from that
// IP shares. The key of Wait and Observe is the egress address.
//
// It keeps its own accounting of the weight it lets through, so that concurrent accounts do
// not overshoot between answers, and corrects itself from X-MBX-USED-WEIGHT-1M, which is the
// server's count and includes whatever else uses the IP. A 429 stops every call on the key
// until its Retry-After; a 418 (an IP ban, from 2 minutes to 3 days) makes every call fail
// at once with ERateLimited until the ban ends, because calling during a ban lengthens it.
//
// The server counts a request in the minute it receives it, by its own clock, which the
// limiter does not see: a request let through in one minute may be counted in the next. So
// instead of keeping a fixed part of the budget unused, the limiter charges a request to
// every minute that may count it:
//
//   - the minute it is let through in;
//   - every later minute that begins while it is in flight (let through, not yet answered),
//     since it may reach the server only then: at the turn of the minute, the weight still
//     in flight is the new minute's first use;
//   - the neighbouring minute when it is let through or answered within the clock's
//     uncertainty (skew) of the turn, since Binance's minute may turn up to skew before or
//     after ours. In effect, a request cannot go in the first skew of a minute when the
//     previous one is full, and one sent or answered in the last skew of a minute also
//     counts in the next.
//
// That costs nothing while the sync is limited by the budget (its calls wait for the turn of
// the minute and none is in flight then), and at most skew a minute otherwise; a fixed 5 %
// reserve cost a weight-20 call a minute at small budgets. The server's count is taken only
// from answers to requests certainly counted in the current minute: an answer to a request
// sent before the turn may carry the previous minute's count, which would wrongly fill the
// new one (the request itself is already charged to the new minute while in flight).
type WeightLimiter struct {
	clock provider.Clock
	// budget is the weight per minute the limiter lets through: the limit minus the reserve
	// its owner keeps for other users of the IP (none by default).
	budget int
	// skew bounds the difference between our clock and Binance's.
	skew time.Duration

	mu   sync.Mutex
	keys map[string]*weightState
}

// DefaultClockSkew is how far the limiter assumes Binance's minute may turn before or after
// its own clock's: a host kept by NTP is within tens of milliseconds, and Binance itself
// refuses signed requests stamped more than a second ahead of its clock (-1021).
const DefaultClockSkew = time.Second

// maxInFlight is how long a request without an answer counts as in flight: beyond the
// client's default attempt timeout (30 s). A request whose attempt fails before an answer
// (a reset connection, a timeout) is never observed; it stops counting after this.
const maxInFlight = 2 * time.Minute

type weightState struct {
	minute int64 // unix minute (of our clock) the counts are for
	// used is the weight charged to minute, by our accounting or the server's if higher;
	// prev and next the weight charged to the minutes before and after it.
	used, prev, next int
	inFlight         []flight // in the order they were let through
	retryAt          time.Time
	bannedUntil      time.Time
}

// flight is a request let through and not yet answered.
type flight struct {
	cost    int
	sent    time.Time
	through int64 // the last minute it is charged to
}

// NewWeightLimiter returns a limiter of perMinute weight per key (default 6000), keeping
// reserve of it unused for other users of the IP (default: none; negative or perMinute and
// above count as none).
func NewWeightLimiter(clock provider.Clock, perMinute, reserve int) *WeightLimiter {
	if clock == nil {
		clock = provider.RealClock{}
	}
	if perMinute <= 0 {
		perMinute = 6000
	}
	if reserve < 0 || reserve >= perMinute {
		reserve = 0
	}
	return &WeightLimiter{clock: clock, budget: perMinute - reserve, skew: DefaultClockSkew, keys: map[string]*weightState{}}
}

// state returns the key's state, rolled over to the minute of now, with the requests still
// in flight charged to it. The caller holds mu.
func (l *WeightLimiter) state(key string, now time.Time) *weightState {
	st := l.keys[key]
	if st == nil {
		st = &weightState{minute: now.Unix() / 60}
		l.keys[key] = st
	}
	m := now.Unix() / 60
	switch m - st.minute {
	case 0:
		return st
	case 1:
		st.prev, st.used, st.next = st.used, st.next, 0
	case 2:
		st.prev, st.used, st.next = st.next, 0, 0
	default:
		st.prev, st.used, st.next = 0, 0, 0
	}
	st.minute = m
	st.inFlight = slices.DeleteFunc(st.inFlight, func(f flight) bool { return now.Sub(f.sent) > maxInFlight })
	for i := range st.inFlight {
		f := &st.inFlight[i]
		if f.through < m-1 {
			st.prev += f.cost
		}
		if f.through < m {
			st.used += f.cost
			f.through = m
		}
	}
	return st
}

// Wait takes cost from the key's budget, sleeping until the next minute when it is spent.
func (l *WeightLimiter) Wait(ctx context.Context, key string, cost int) error {
	for {
		now := l.clock.Now()
		l.mu.Lock()
		st := l.state(key, now)
		begin := time.Unix(st.minute*60, 0)
		end := begin.Add(time.Minute)
		// A request heavier than the whole budget goes alone in its minute.
		c := min(cost, l.budget)
		afterTurn := now.Sub(begin) < l.skew // Binance's clock may still be in the previous minute
		beforeTurn := end.Sub(now) <= l.skew // or already in the next
		var sleep time.Duration
		switch {
		case now.Before(st.bannedUntil):
			wait := st.bannedUntil.Sub(now)
			l.mu.Unlock()
			return &opencalico.Error{Code: opencalico.ERateLimited, ProviderID: ID, RetryAfter: wait,
				Message: "Binance has banned this server's IP address for too many requests; calls resume when the ban ends."}
		case now.Before(st.retryAt):
			sleep = st.retryAt.Sub(now)
		case st.used+c > l.budget || beforeTurn && st.next+c > l.budget:
			sleep = end.Sub(now)
		case afterTurn && st.prev+c > l.budget:
			sleep = begin.Add(l.skew).Sub(now)
		default:
			st.used += cost
			f := flight{cost: cost, sent: now, through: st.minute}
			if afterTurn {
				st.prev += cost
			}
			if beforeTurn {
				st.next += cost
				f.through++
			}
			st.inFlight = append(st.inFlight, f)
			l.mu.Unlock()
			return nil
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
	begin := time.Unix(st.minute*60, 0)
	end := begin.Add(time.Minute)
	// The answer is to one of the requests in flight; which one is unknown (answers to
	// concurrent requests come in any order). Taking the cheapest, the oldest of those,
	// keeps the weight still counted in flight at least the true one's.
	current := true
	if len(st.inFlight) > 0 {
		// The server counted the request in this minute only if it was sent after the turn,
		// skew included; the oldest request in flight bounds when it was sent.
		current = !st.inFlight[0].sent.Add(-l.skew).Before(begin)
		j := 0
		for i, f := range st.inFlight {
			if f.cost < st.inFlight[j].cost {
				j = i
			}
		}
		if f := st.inFlight[j]; end.Sub(now) <= l.skew && f.through == st.minute {
			// Answered in the last skew of the minute: it may have reached Binance in its next.
			st.next += f.cost
		}
		st.inFlight = slices.Delete(st.inFlight, j, j+1)
	}
	if used, err := strconv.Atoi(header.Get("X-MBX-USED-WEIGHT-1M")); err == nil && current && used > st.used {
		// The server counted more than we did: someone else uses this IP. Its count is the
		// one that decides.
		st.used = used
	}
	switch status {
	case http.StatusTooManyRequests:
		wait := provider.RetryAfter(header)
		if wait <= 0 {
			wait = end.Sub(now)
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
