package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/opencalico/opencalico"
)

type fakeDB struct {
	pingErr error
	current bool
}

func (f *fakeDB) Ping(context.Context) error { return f.pingErr }
func (f *fakeDB) MigrationsCurrent(context.Context) (bool, error) {
	return f.current, nil
}

// newTestServer returns a server whose logs go to the returned buffer.
func newTestServer(t *testing.T, db Database) (*Server, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := DefaultConfig()
	cfg.MaxBodyBytes = 1024
	return NewServer(cfg, log, db, nil), logs
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func do(t *testing.T, h http.Handler, req *http.Request) (*http.Response, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	body, _ := io.ReadAll(res.Body)
	var v map[string]any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%s %s: body is not JSON: %q", req.Method, req.URL, body)
	}
	return res, v
}

// firstError returns the cause and message of the first ErrorItem of a CalicoErrorResponse.
func firstError(t *testing.T, v map[string]any) (cause, message string) {
	t.Helper()
	errs, ok := v["errors"].([]any)
	if !ok || len(errs) == 0 {
		t.Fatalf("no errors[] in %v", v)
	}
	item := errs[0].(map[string]any)
	return item["cause"].(string), item["message"].(string)
}

func TestEveryErrorCodeHasAStatus(t *testing.T) {
	for _, code := range opencalico.ErrorCodes {
		if _, ok := statusOf[code]; !ok {
			t.Errorf("code %s has no HTTP status", code)
		}
	}
	if len(statusOf) != len(opencalico.ErrorCodes) {
		t.Errorf("statusOf has %d entries for %d codes", len(statusOf), len(opencalico.ErrorCodes))
	}
}

func TestHealthAndReadiness(t *testing.T) {
	tests := []struct {
		name       string
		db         *fakeDB
		path       string
		status     int
		wantStatus string
		checks     map[string]string
	}{
		{"healthz", &fakeDB{current: true}, "/healthz", 200, "ok", nil},
		{"healthz ignores the database", &fakeDB{pingErr: errors.New("down")}, "/healthz", 200, "ok", nil},
		{"ready", &fakeDB{current: true}, "/readyz", 200, "ok", map[string]string{"database": "ok", "migrations": "ok"}},
		{"database down", &fakeDB{pingErr: errors.New("dial tcp 10.0.0.5: refused"), current: true}, "/readyz", 503, "unavailable",
			map[string]string{"database": "unreachable", "migrations": "unknown"}},
		{"migrations pending", &fakeDB{current: false}, "/readyz", 503, "unavailable",
			map[string]string{"database": "ok", "migrations": "pending: run `opencalico migrate up`"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestServer(t, tt.db)
			res, v := do(t, s, httptest.NewRequest("GET", tt.path, nil))
			if res.StatusCode != tt.status || v["status"] != tt.wantStatus {
				t.Fatalf("status %d %v, want %d %q", res.StatusCode, v, tt.status, tt.wantStatus)
			}
			for k, want := range tt.checks {
				if got := v["checks"].(map[string]any)[k]; got != want {
					t.Errorf("check %s = %v, want %q", k, got, want)
				}
			}
			if res.Header.Get("X-Request-Id") == "" {
				t.Fatal("no X-Request-Id")
			}
		})
	}
}

func TestUnknownRouteIsNotFoundEnvelope(t *testing.T) {
	s, _ := newTestServer(t, &fakeDB{current: true})
	res, v := do(t, s, httptest.NewRequest("GET", "/accounts/v2/nothing", nil))
	if res.StatusCode != 404 {
		t.Fatalf("status %d", res.StatusCode)
	}
	if cause, _ := firstError(t, v); cause != "not_found" {
		t.Fatalf("cause %q", cause)
	}
}

// TestBadBodiesWriteNothing mounts a route that writes only after decodeJSON accepts the
// body, and checks each bad body gets its status and cause and leaves nothing written.
func TestBadBodiesWriteNothing(t *testing.T) {
	s, _ := newTestServer(t, &fakeDB{current: true})
	var mu sync.Mutex
	var written []string
	s.Handle("POST /test/items", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Name string `json:"name"`
		}
		if err := s.decodeJSON(r, &in); err != nil {
			s.writeError(w, r, err)
			return
		}
		mu.Lock()
		written = append(written, in.Name)
		mu.Unlock()
		writeData(w, http.StatusCreated, in, nil, nil)
	}))
	big := `{"name":"` + strings.Repeat("x", 2000) + `"}`
	tests := []struct {
		name, contentType, body string
		chunked                 bool
		status                  int
	}{
		{"malformed", "application/json", `{"name": "a",`, false, 400},
		{"not an object", "application/json", `[1,2]`, false, 400},
		{"wrong field type", "application/json", `{"name": 5}`, false, 400},
		{"unknown field", "application/json", `{"nam": "a"}`, false, 400},
		{"trailing data", "application/json", `{"name": "a"} {"name": "b"}`, false, 400},
		{"empty", "application/json", ``, false, 400},
		{"oversized", "application/json", big, false, 413},
		{"oversized without length", "application/json", big, true, 413},
		{"wrong content type", "text/plain", `{"name": "a"}`, false, 415},
		{"form", "application/x-www-form-urlencoded", `name=a`, false, 415},
		{"no content type", "", `{"name": "a"}`, false, 415},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/test/items", strings.NewReader(tt.body))
			if tt.chunked {
				req.ContentLength = -1
			}
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			res, v := do(t, s, req)
			if res.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %v", res.StatusCode, tt.status, v)
			}
			if cause, _ := firstError(t, v); cause != "bad_request" {
				t.Fatalf("cause %q", cause)
			}
		})
	}
	if len(written) != 0 {
		t.Fatalf("bad requests wrote %v", written)
	}
	req := httptest.NewRequest("POST", "/test/items", strings.NewReader(`{"name": "ok"}`))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if res, v := do(t, s, req); res.StatusCode != 201 || len(written) != 1 {
		t.Fatalf("good request: status %d, %v, written %v", res.StatusCode, v, written)
	}
}

func TestPanicBecomesInternalErrorWithRequestID(t *testing.T) {
	s, logs := newTestServer(t, &fakeDB{current: true})
	s.Handle("GET /test/panic", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("boom at /var/lib/secret-path")
	}))
	req := httptest.NewRequest("GET", "/test/panic", nil)
	req.Header.Set("X-Request-Id", "abc-123")
	res, v := do(t, s, req)
	if res.StatusCode != 500 {
		t.Fatalf("status %d", res.StatusCode)
	}
	cause, msg := firstError(t, v)
	if cause != "internal_error" || !strings.Contains(msg, "abc-123") {
		t.Fatalf("cause %q message %q", cause, msg)
	}
	if strings.Contains(msg, "boom") || strings.Contains(msg, "secret-path") {
		t.Fatalf("panic text leaked into the response: %q", msg)
	}
	if res.Header.Get("X-Request-Id") != "abc-123" {
		t.Fatalf("request id header %q", res.Header.Get("X-Request-Id"))
	}
	if !strings.Contains(logs.String(), "panic serving request") {
		t.Fatal("panic not logged")
	}
}

func TestHostileRequestIDIsReplaced(t *testing.T) {
	s, _ := newTestServer(t, &fakeDB{current: true})
	req := httptest.NewRequest("GET", "/healthz", nil)
	req.Header.Set("X-Request-Id", "x\"\n{\"level\":\"ERROR\"}")
	res, _ := do(t, s, req)
	if id := res.Header.Get("X-Request-Id"); !strings.HasPrefix(id, "req_") {
		t.Fatalf("request id %q", id)
	}
}

// TestLogsHoldNoSecret sends secrets in every place a request can carry them and checks that
// none reaches the log.
func TestLogsHoldNoSecret(t *testing.T) {
	s, logs := newTestServer(t, &fakeDB{current: true})
	s.Handle("POST /test/keys", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in map[string]string
		if err := s.decodeJSON(r, &in); err != nil {
			s.writeError(w, r, err)
			return
		}
		s.writeError(w, r, &opencalico.Error{Code: opencalico.EInvalidCredentials,
			Message: "The provider refused the key.", Err: errors.New("wrapped cause")})
	}))
	const secret = "SECRETVALUE-4f8a1c"
	for _, body := range []string{`{"secret_key":"` + secret + `"}`, `{"secret_key":"` + secret + `"`} {
		req := httptest.NewRequest("POST", "/test/keys?code="+secret, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+secret)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if strings.Contains(rec.Body.String(), secret) {
			t.Fatalf("secret in response: %s", rec.Body.String())
		}
	}
	if !strings.Contains(logs.String(), `"msg":"request"`) {
		t.Fatal("requests were not logged")
	}
	if strings.Contains(logs.String(), secret) {
		t.Fatalf("secret in the log: %s", logs.String())
	}
}

func TestMetricsCountRequestsByRoute(t *testing.T) {
	s, _ := newTestServer(t, &fakeDB{current: true})
	for range 3 {
		do(t, s, httptest.NewRequest("GET", "/healthz", nil))
	}
	do(t, s, httptest.NewRequest("GET", "/no/such/path", nil))
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`opencalico_http_requests_total{method="GET",route="GET /healthz",status="200"} 3`,
		`opencalico_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`opencalico_http_request_duration_seconds_bucket{method="GET",route="GET /healthz",le="+Inf"} 3`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
