package provider

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencalico/opencalico"
)

// fastClock sleeps not at all but records what it was asked to sleep.
type fastClock struct{ slept atomic.Int64 }

func (c *fastClock) Now() time.Time { return time.Now() }
func (c *fastClock) Sleep(ctx context.Context, d time.Duration) error {
	c.slept.Add(int64(d))
	return ctx.Err()
}

func TestClientRetries(t *testing.T) {
	tests := []struct {
		name      string
		answers   []int // statuses in order; the last repeats
		wantCalls int32
		wantCode  opencalico.ErrorCode
		minSleep  time.Duration
	}{
		{"success", []int{200}, 1, "", 0},
		{"5xx then success", []int{502, 503, 200}, 3, "", 0},
		{"429 honours Retry-After", []int{429, 200}, 2, "", 7 * time.Second},
		{"auth failure is not retried", []int{401}, 1, opencalico.EInvalidCredentials, 0},
		{"outage gives up", []int{500}, 5, opencalico.EProviderUnavailable, 0},
		{"permanent 400 not retried", []int{400}, 1, opencalico.EInternal, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := int(calls.Add(1)) - 1
				status := tt.answers[min(n, len(tt.answers)-1)]
				if status == 429 {
					w.Header().Set("Retry-After", "7")
				}
				w.WriteHeader(status)
				fmt.Fprintf(w, `{"n":%d}`, n)
			}))
			defer srv.Close()
			clock := &fastClock{}
			signed := 0
			c := &Client{Clock: clock, ProviderID: "test", Classify: func(r *Response) error {
				switch {
				case r.Status == 401:
					return opencalico.Errorf(opencalico.EInvalidCredentials, "bad key")
				case r.Status == 429 || r.Status >= 500:
					return Transient(fmt.Errorf("HTTP %d", r.Status), RetryAfter(r.Header))
				case r.Status >= 400:
					return fmt.Errorf("HTTP %d", r.Status)
				}
				return nil
			}}
			res, err := c.Do(context.Background(), Request{Method: "GET", URL: srv.URL + "/x?signature=abc",
				Sign: func(*http.Request) error { signed++; return nil }})
			if got := calls.Load(); got != tt.wantCalls {
				t.Fatalf("%d calls, want %d", got, tt.wantCalls)
			}
			if signed != int(tt.wantCalls) {
				t.Fatalf("signed %d times for %d calls: each attempt needs a fresh signature", signed, tt.wantCalls)
			}
			if code := opencalico.ErrorCodeOf(err); code != tt.wantCode {
				t.Fatalf("error %v (code %q), want code %q", err, code, tt.wantCode)
			}
			if err == nil && !strings.HasPrefix(string(res.Body), `{"n":`) {
				t.Fatalf("body %q", res.Body)
			}
			if err != nil && strings.Contains(err.Error(), "signature=abc") {
				t.Fatalf("error repeats the signed query: %v", err)
			}
			if time.Duration(clock.slept.Load()) < tt.minSleep {
				t.Fatalf("slept %v, want at least %v", time.Duration(clock.slept.Load()), tt.minSleep)
			}
		})
	}
}

func TestCredentialsNeverPrint(t *testing.T) {
	c := Credentials{"api_key": "AKEY123", "secret_key": "SSECRET456"}
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s", c, c, c, c)} {
		if strings.Contains(s, "AKEY123") || strings.Contains(s, "SSECRET456") {
			t.Fatalf("credentials printed: %s", s)
		}
	}
}
