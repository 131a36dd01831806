package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/oauth"
)

// sandboxFakes stand in for the store and the token issuer.
type sandboxFakes struct {
	mu      sync.Mutex
	clients map[string]*opencalico.Client
	users   map[string]*opencalico.User // by email
	issued  []string                    // client/user of each issue
}

func (f *sandboxFakes) ClientByID(_ context.Context, id string) (*opencalico.Client, error) {
	if c, ok := f.clients[id]; ok {
		return c, nil
	}
	return nil, opencalico.Errorf(opencalico.ENotFound, "no client")
}

func (f *sandboxFakes) CreateUser(_ context.Context, u *opencalico.User) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.users[u.Email]; ok {
		return opencalico.Errorf(opencalico.EBadRequest, "an account with this email already exists")
	}
	u.ID = opencalico.NewID("usr")
	f.users[u.Email] = u
	return nil
}

func (f *sandboxFakes) UserByEmail(_ context.Context, email string) (*opencalico.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if u, ok := f.users[email]; ok {
		return u, nil
	}
	return nil, opencalico.Errorf(opencalico.ENotFound, "no user")
}

func (f *sandboxFakes) issue(_ context.Context, c *opencalico.Client, userID string) (string, string, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.issued = append(f.issued, c.ID+"/"+userID)
	return "at-" + userID, "rt-" + userID, 900, nil
}

func newSandboxServer(t *testing.T) (*httptest.Server, *sandboxFakes, string) {
	t.Helper()
	confidential, secret, err := oauth.NewClient("Sandbox", []string{"http://127.0.0.1/cb"}, false, false)
	if err != nil {
		t.Fatal(err)
	}
	public, _, _ := oauth.NewClient("Public", []string{"http://127.0.0.1/cb"}, true, false)
	f := &sandboxFakes{clients: map[string]*opencalico.Client{confidential.ID: confidential, public.ID: public},
		users: map[string]*opencalico.User{"widget@example.com": {ID: "usr_widget", Email: "widget@example.com", PasswordHash: "$argon2id$…"}}}
	srv, _ := newTestServer(t, &fakeDB{current: true})
	srv.MountSandbox(Sandbox{Clients: f, Users: f, IssueTokens: f.issue,
		Credentials: func() map[opencalico.ProviderID]SandboxProviderCredentials {
			return map[opencalico.ProviderID]SandboxProviderCredentials{"kraken": {
				Good: []SandboxCredential{{Label: "Good", Connection: map[string]string{"type": "api_key", "api_key": "k", "secret_key": "s"}}},
				Bad:  []SandboxCredential{{Label: "Wrong secret", Case: "invalid_credentials", Connection: map[string]string{"type": "api_key", "api_key": "k", "secret_key": "x"}}},
			}}
		}})
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	f.clients["public"] = public
	return ts, f, confidential.ID + ":" + secret
}

func sandboxPost(t *testing.T, ts *httptest.Server, basic, contentType, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/sandbox/users", strings.NewReader(body))
	if basic != "" {
		id, secret, _ := strings.Cut(basic, ":")
		req.SetBasicAuth(id, secret)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header, out
}

func TestSandboxUsers(t *testing.T) {
	ts, f, basic := newSandboxServer(t)
	id, _, _ := strings.Cut(basic, ":")
	publicID := f.clients["public"].ID

	// Client authentication failures: CalicoErrorResponse, cause unauthorized, Basic asked for.
	for name, auth := range map[string]string{
		"none": "", "wrong secret": id + ":ocs_wrong", "unknown client": "cli_nobody:ocs_x",
		"public client": publicID + ":", "empty secret": id + ":",
	} {
		status, hdr, body := sandboxPost(t, ts, auth, "", "")
		errs, _ := body["errors"].([]any)
		if status != http.StatusUnauthorized || len(errs) != 1 || errs[0].(map[string]any)["cause"] != "unauthorized" ||
			!strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Basic ") {
			t.Errorf("%s: %d %v %q, want 401 unauthorized asking for Basic", name, status, body, hdr.Get("WWW-Authenticate"))
		}
	}
	if len(f.issued) != 0 {
		t.Fatalf("tokens issued to unauthenticated callers: %v", f.issued)
	}

	// Bad bodies.
	for name, c := range map[string]struct{ ct, body string }{
		"bad JSON":      {"application/json", `{"email":`},
		"unknown field": {"application/json", `{"mail":"a@b.c"}`},
		"bad email":     {"application/json", `{"email":"not an email"}`},
		"widget user":   {"application/json", `{"email":"widget@example.com"}`},
	} {
		status, _, body := sandboxPost(t, ts, basic, c.ct, c.body)
		if status != http.StatusBadRequest || body["errors"].([]any)[0].(map[string]any)["cause"] != "bad_request" {
			t.Errorf("%s: %d %v, want 400 bad_request", name, status, body)
		}
	}
	if status, _, body := sandboxPost(t, ts, basic, "text/plain", `{}`); status != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain: %d %v, want 415", status, body)
	}

	// No body: a generated user.
	status, hdr, body := sandboxPost(t, ts, basic, "", "")
	data, _ := body["data"].(map[string]any)
	if status != http.StatusCreated || data["user_id"] == "" || data["access_token"] != "at-"+data["user_id"].(string) ||
		data["refresh_token"] == "" || data["expires_in"] != float64(900) || hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("POST /sandbox/users = %d %v", status, body)
	}
	if errs, ok := body["errors"].([]any); !ok || len(errs) != 0 {
		t.Fatalf("errors = %v, want []", body["errors"])
	}
	if f.issued[0] != id+"/"+data["user_id"].(string) {
		t.Fatalf("issued %v", f.issued)
	}

	// An email: created, then the same user again (200).
	status, _, first := sandboxPost(t, ts, basic, "application/json", `{"email":"bob@example.com"}`)
	if status != http.StatusCreated {
		t.Fatalf("with email: %d %v", status, first)
	}
	status, _, again := sandboxPost(t, ts, basic, "application/json", `{"email":"bob@example.com"}`)
	if status != http.StatusOK || again["data"].(map[string]any)["user_id"] != first["data"].(map[string]any)["user_id"] {
		t.Fatalf("same email again: %d %v, want 200 with user %v", status, again, first["data"])
	}
}

func TestSandboxCredentialsAndCallback(t *testing.T) {
	ts, _, _ := newSandboxServer(t)
	res, err := http.Get(ts.URL + "/sandbox/credentials")
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Data   map[string]SandboxProviderCredentials `json:"data"`
		Errors []ErrorItem                           `json:"errors"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	k := body.Data["kraken"]
	if res.StatusCode != http.StatusOK || body.Errors == nil || len(k.Good) != 1 || k.Good[0].Case != "" ||
		k.Bad[0].Case != "invalid_credentials" || k.Bad[0].Connection["type"] != "api_key" {
		t.Fatalf("GET /sandbox/credentials = %d %+v", res.StatusCode, body)
	}

	for q, want := range map[string]int{"?code=c1&state=s": http.StatusOK, "?error=access_denied": http.StatusOK, "": http.StatusBadRequest} {
		res, err := http.Get(ts.URL + "/sandbox/callback" + q)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("GET /sandbox/callback%s = %d, want %d", q, res.StatusCode, want)
		}
	}
}
