package binance

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// FaultKind is a failure the simulator can be told to produce.
type FaultKind int

// The faults.
const (
	// FaultServerError answers 503 with Binance's -1001 body.
	FaultServerError FaultKind = iota + 1
	// FaultRateLimit answers 429 -1003 with Retry-After, as an exhausted weight budget does.
	FaultRateLimit
	// FaultBan answers 418 -1003 with Retry-After, as an IP ban does.
	FaultBan
	// FaultSlow holds the answer for Delay (real time) before serving it normally.
	FaultSlow
	// FaultTruncated serves the normal answer cut in half.
	FaultTruncated
	// FaultMalformed answers 200 with a body that is not JSON (a proxy's HTML page).
	FaultMalformed
	// FaultTimestamp answers -1021, as a request outside recvWindow gets.
	FaultTimestamp
)

// Fault is an injected failure: the next Times requests whose path starts with Path ("" for
// any) get it.
type Fault struct {
	Kind  FaultKind
	Path  string
	Times int
	// Delay is how long FaultSlow waits, in real time; RetryAfter the seconds a 429 or 418
	// asks to wait (default 1).
	Delay      time.Duration
	RetryAfter int
}

// Inject queues a fault.
func (s *Simulator) Inject(f Fault) {
	if f.Times <= 0 {
		f.Times = 1
	}
	if f.RetryAfter <= 0 {
		f.RetryAfter = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// take returns the first queued fault matching r and uses one of its times.
func (s *Simulator) take(r *http.Request) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if strings.HasPrefix(r.URL.Path, f.Path) {
			f.Times--
			if f.Times == 0 {
				s.faults = append(s.faults[:i], s.faults[i+1:]...)
			}
			c := *f
			return &c
		}
	}
	return nil
}

// fault serves an injected failure, if one matches; it reports whether it answered.
func (s *Simulator) fault(w http.ResponseWriter, r *http.Request) bool {
	f := s.take(r)
	if f == nil {
		return false
	}
	switch f.Kind {
	case FaultServerError:
		writeError(w, http.StatusServiceUnavailable, -1001, "Internal error; unable to process your request. Please try again.")
	case FaultRateLimit:
		s.mu.Lock()
		if b := s.buckets["default"]; b != nil && !s.opts.PerIP {
			b.retryAt = s.clock.Now().Add(time.Duration(f.RetryAfter) * time.Second)
		}
		s.mu.Unlock()
		w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
		writeError(w, http.StatusTooManyRequests, -1003, "Too much request weight used; current limit is "+
			strconv.Itoa(s.opts.WeightPerMinute)+" request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.")
	case FaultBan:
		now := s.clock.Now()
		s.banned(w, now.Add(time.Duration(f.RetryAfter)*time.Second), now, 0)
	case FaultSlow:
		select {
		case <-time.After(f.Delay):
		case <-r.Context().Done():
			return true
		}
		return false
	case FaultTruncated, FaultMalformed:
		rec := &recorder{header: http.Header{}, status: http.StatusOK}
		s.serveUnfaulted(rec, r)
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.status)
		if f.Kind == FaultTruncated {
			_, _ = w.Write(rec.body[:len(rec.body)/2])
		} else {
			_, _ = w.Write([]byte("<html><body><h1>502 Bad Gateway</h1></body></html>"))
		}
	case FaultTimestamp:
		writeError(w, http.StatusBadRequest, -1021, "Timestamp for this request is outside of the recvWindow.")
	}
	return true
}

// serveUnfaulted serves r as if no fault were queued.
func (s *Simulator) serveUnfaulted(w http.ResponseWriter, r *http.Request) {
	s.mux().ServeHTTP(w, r)
}

// recorder captures an answer so that a fault can damage it.
type recorder struct {
	header http.Header
	status int
	body   []byte
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(status int)      { r.status = status }
func (r *recorder) Write(b []byte) (int, error) { r.body = append(r.body, b...); return len(b), nil }
