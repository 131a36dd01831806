package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

var (
	simFormAction = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
	simTicket     = regexp.MustCompile(`name="ticket" value="([^"]+)"`)
)

// TestSandboxCoinbaseOAuth connects Coinbase through its (simulated) OAuth consent the way a
// partner that runs the consent itself does: POST /accounts/v2/providers with type oauth2,
// the user at Coinbase's login and consent, the redirect back through opencalico's return
// page to the partner, then POST /accounts/v2/oauth/callback/coinbase. The connection syncs;
// the same state a second time is invalid_state.
func TestSandboxCoinbaseOAuth(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, c := startSandbox(t, t.TempDir())
	user := sandboxUser(t, srv, c)

	var added struct {
		Added       bool   `json:"added"`
		RedirectURL string `json:"redirect_url"`
	}
	if err := user.call(ctx, http.MethodPost, "/accounts/v2/providers",
		map[string]any{"provider_id": "coinbase", "display_label": "Coinbase via OAuth", "connection": map[string]any{"type": "oauth2"}}, &added); err != nil {
		t.Fatal(err)
	}
	if added.Added || added.RedirectURL == "" {
		t.Fatalf("oauth2 add answered %+v", added)
	}

	// The user at Coinbase: sign in, authorize.
	browser := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	read := func(res *http.Response) string {
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	consentURL, _ := url.Parse(added.RedirectURL)
	simBase := consentURL.Scheme + "://" + consentURL.Host
	res, err := browser.Get(added.RedirectURL)
	if err != nil {
		t.Fatal(err)
	}
	m := simFormAction.FindStringSubmatch(read(res))
	if m == nil {
		t.Fatal("no login form at the consent URL")
	}
	res, err = browser.PostForm(simBase+strings.ReplaceAll(m[1], "&amp;", "&"), url.Values{"email": {"user1@coinbase-sim.example"}, "password": {"sim-password"}})
	if err != nil {
		t.Fatal(err)
	}
	m = simTicket.FindStringSubmatch(read(res))
	if m == nil {
		t.Fatal("no consent page after signing in")
	}
	res, err = browser.PostForm(simBase+"/oauth2/auth/consent", url.Values{"ticket": {m[1]}, "decision": {"allow"}})
	if err != nil {
		t.Fatal(err)
	}
	read(res)
	// Back at opencalico's return page, which forwards the code to the partner.
	res, err = browser.Get(res.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	read(res)
	forwarded, err := url.Parse(res.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(forwarded.String(), c.RedirectURI+"?") {
		t.Fatalf("the return page sent the browser to %q (status %d)", res.Header.Get("Location"), res.StatusCode)
	}
	q := forwarded.Query()
	if q.Get("code") == "" || q.Get("state") == "" || q.Get("provider_id") != "coinbase" {
		t.Fatalf("the partner received %v", q)
	}

	callback := "/accounts/v2/oauth/callback/coinbase?" + url.Values{"state": {q.Get("state")}, "code": {q.Get("code")}}.Encode()
	var integ struct {
		Added      bool `json:"added"`
		Connection struct {
			ConnectionID string `json:"connection_id"`
			ProviderID   string `json:"provider_id"`
		} `json:"connection"`
	}
	if err := user.call(ctx, http.MethodPost, callback, nil, &integ); err != nil {
		t.Fatal(err)
	}
	if !integ.Added || integ.Connection.ProviderID != "coinbase" {
		t.Fatalf("callback answered %+v", integ)
	}
	var apiErr *apiError
	if err := user.call(ctx, http.MethodPost, callback, nil, nil); !errors.As(err, &apiErr) || apiErr.Status != 400 ||
		len(apiErr.Errors) == 0 || apiErr.Errors[0].Cause != "invalid_state" {
		t.Fatalf("the state replayed: %v", err)
	}

	// The OAuth connection syncs like any other.
	deadline := time.Now().Add(60 * time.Second)
	for {
		var list struct {
			Providers []struct {
				ConnectionID string `json:"connection_id"`
				Status       string `json:"status"`
			} `json:"providers"`
		}
		if err := user.call(ctx, http.MethodGet, "/accounts/v2/providers", nil, &list); err != nil {
			t.Fatal(err)
		}
		if len(list.Providers) == 1 && list.Providers[0].Status == "active" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the OAuth connection did not sync: %+v", list)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var txns struct {
		Transactions []any `json:"transactions"`
	}
	if err := user.call(ctx, http.MethodGet, "/accounts/v2/transactions?limit=10", nil, &txns); err != nil || len(txns.Transactions) == 0 {
		t.Fatalf("transactions of the OAuth connection: %d, %v", len(txns.Transactions), err)
	}
}
