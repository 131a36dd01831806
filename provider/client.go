package provider

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/opencalico/opencalico"
)

// Limiter is a provider's rate-limit policy. Every call an adapter makes passes through it:
// Wait before sending (cost in the provider's own unit: Binance weight, Kraken counter
// points, one request), Observe after the answer (to learn from the provider's headers, such
// as X-MBX-USED-WEIGHT-1M or Retry-After).
//
// key names the budget the call draws from: an API key for per-key limits, an egress address
// for per-IP limits.
type Limiter interface {
	Wait(ctx context.Context, key string, cost int) error
	// Observe is called once after every call Wait let through, when its answer was read:
	// status 0 and a nil header when there was no answer.
	Observe(key string, status int, header http.Header)
}

// Request is one call to a provider. Sign, when set, is called before every attempt, because
// signatures carry a timestamp or nonce that must be fresh on a retry.
type Request struct {
	Method string
	URL    string
	Header http.Header
	Body   []byte
	// LimitKey and Cost say what budget of the Limiter the call draws from.
	LimitKey string
	Cost     int
	Sign     func(r *http.Request) error
}

// Response is a provider's answer, read whole (provider answers are small pages).
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// TransientError is a failure worth retrying: a 5xx, a timeout, a rate-limit answer, a
// truncated body. RetryAfter, when positive, is the provider's own word on when to retry.
type TransientError struct {
	Err        error
	RetryAfter time.Duration
}

func (e *TransientError) Error() string { return "transient: " + e.Err.Error() }
func (e *TransientError) Unwrap() error { return e.Err }

// Transient wraps err as retryable.
func Transient(err error, retryAfter time.Duration) error {
	return &TransientError{Err: err, RetryAfter: retryAfter}
}

// IsTransient reports whether err is worth retrying.
func IsTransient(err error) bool {
	var t *TransientError
	return errors.As(err, &t)
}

// Classify turns a provider's answer into nil (success) or an error: an *opencalico.Error
// with EInvalidCredentials for bad keys (never retried), a *TransientError for what a retry
// may cure, anything else for a permanent failure. Each adapter knows its provider's error
// shapes (Kraken reports errors inside HTTP 200).
type Classify func(r *Response) error

// Client sends requests to one provider with a deadline per attempt, its rate-limit policy,
// and retries with exponential backoff and full jitter for transient failures.
type Client struct {
	HTTP        *http.Client
	Limiter     Limiter // nil: no limit
	Classify    Classify
	Clock       Clock // nil: the wall clock
	MaxAttempts int   // default 5
	BaseDelay   time.Duration
	MaxDelay    time.Duration
	// AttemptTimeout bounds one attempt; the caller's context bounds them all. Default 30 s.
	AttemptTimeout time.Duration
	ProviderID     opencalico.ProviderID
}

func (c *Client) clock() Clock {
	if c.Clock == nil {
		return RealClock{}
	}
	return c.Clock
}

// Do sends req until it succeeds, fails permanently, or runs out of attempts.
func (c *Client) Do(ctx context.Context, req Request) (*Response, error) {
	attempts := c.MaxAttempts
	if attempts <= 0 {
		attempts = 5
	}
	var last error
	for attempt := 1; attempt <= attempts; attempt++ {
		res, err := c.once(ctx, req)
		if err == nil {
			return res, nil
		}
		last = err
		var te *TransientError
		if !errors.As(err, &te) || ctx.Err() != nil || attempt == attempts {
			break
		}
		delay := c.backoff(attempt)
		if te.RetryAfter > delay {
			delay = te.RetryAfter
		}
		if err := c.clock().Sleep(ctx, delay); err != nil {
			return nil, err
		}
	}
	if IsTransient(last) {
		return nil, &opencalico.Error{Code: opencalico.EProviderUnavailable, ProviderID: c.ProviderID,
			Message: fmt.Sprintf("The provider did not answer successfully after %d attempts.", attempts), Err: last}
	}
	return nil, last
}

// backoff is exponential with full jitter: many connections retrying after one outage spread
// out instead of returning together.
func (c *Client) backoff(attempt int) time.Duration {
	base, max := c.BaseDelay, c.MaxDelay
	if base <= 0 {
		base = 500 * time.Millisecond
	}
	if max <= 0 {
		max = 30 * time.Second
	}
	d := base << (attempt - 1)
	if d > max || d <= 0 {
		d = max
	}
	return time.Duration(rand.Int64N(int64(d)) + 1)
}

func (c *Client) once(ctx context.Context, req Request) (*Response, error) {
	var observe func(status int, header http.Header)
	if c.Limiter != nil {
		cost := req.Cost
		if cost <= 0 {
			cost = 1
		}
		if err := c.Limiter.Wait(ctx, req.LimitKey, cost); err != nil {
			return nil, err
		}
		// Every call the limiter let through is observed once, also one that never got an
		// answer (status 0, no header): limiters that count calls in flight must learn that
		// it ended.
		observed := false
		defer func() {
			if !observed {
				c.Limiter.Observe(req.LimitKey, 0, nil)
			}
		}()
		observe = func(status int, header http.Header) {
			observed = true
			c.Limiter.Observe(req.LimitKey, status, header)
		}
	}
	timeout := c.AttemptTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var body io.Reader
	if req.Body != nil {
		body = bytes.NewReader(req.Body)
	}
	hr, err := http.NewRequestWithContext(actx, req.Method, req.URL, body)
	if err != nil {
		return nil, err
	}
	for k, vs := range req.Header {
		hr.Header[k] = append([]string(nil), vs...)
	}
	if req.Sign != nil {
		if err := req.Sign(hr); err != nil {
			return nil, err
		}
	}
	httpClient := c.HTTP
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	hres, err := httpClient.Do(hr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// Connection refused, reset, or the attempt's deadline: worth another try. The URL
		// is left out of the message because a query may carry a signature.
		return nil, Transient(fmt.Errorf("%s %s: %w", req.Method, hr.URL.Path, unwrapURLError(err)), 0)
	}
	defer hres.Body.Close()
	data, err := io.ReadAll(io.LimitReader(hres.Body, 64<<20))
	if observe != nil {
		observe(hres.StatusCode, hres.Header)
	}
	if err != nil {
		return nil, Transient(fmt.Errorf("%s %s: reading the body: %w", req.Method, hr.URL.Path, err), 0)
	}
	res := &Response{Status: hres.StatusCode, Header: hres.Header, Body: data}
	if c.Classify != nil {
		if err := c.Classify(res); err != nil {
			return nil, err
		}
	} else if res.Status >= 500 || res.Status == http.StatusTooManyRequests {
		return nil, Transient(fmt.Errorf("%s %s: HTTP %d", req.Method, hr.URL.Path, res.Status), RetryAfter(res.Header))
	} else if res.Status >= 400 {
		return nil, fmt.Errorf("%s %s: HTTP %d", req.Method, hr.URL.Path, res.Status)
	}
	return res, nil
}

// unwrapURLError drops *url.Error's wrapper, whose text repeats the full URL.
func unwrapURLError(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

// RetryAfter reads a Retry-After header in seconds (the form providers use); 0 if absent.
func RetryAfter(h http.Header) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}
