package connect_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/connect"
	"github.com/opencalico/opencalico/connections"
	"github.com/opencalico/opencalico/provider/coinbase"
	cbsim "github.com/opencalico/opencalico/provider/sim/coinbase"
)

var (
	cbLoginForm = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
	cbTicket    = regexp.MustCompile(`name="ticket" value="([^"]+)"`)
)

// cbConsent is the person at the Coinbase simulator, in a browser of their own: sign in, press
// Authorize or Deny; it returns the URL Coinbase sends the browser back to.
func (h *harness) cbConsent(t *testing.T, consentURL, decision string) *url.URL {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	read := func(res *http.Response, err error) (*http.Response, string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	_, page := read(c.Get(consentURL))
	m := cbLoginForm.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no login form at %s", consentURL)
	}
	_, page = read(c.PostForm(h.cbURL+strings.ReplaceAll(m[1], "&amp;", "&"), url.Values{"email": {h.cb.LoginEmail(0)}, "password": {cbsim.LoginPassword}}))
	if m = cbTicket.FindStringSubmatch(page); m == nil {
		t.Fatal("no consent page")
	}
	res, _ := read(c.PostForm(h.cbURL+"/oauth2/auth/consent", url.Values{"ticket": {m[1]}, "decision": {decision}}))
	loc, err := url.Parse(res.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), h.ts.URL+connect.ReturnPath+"?") {
		t.Fatalf("Coinbase sent the browser to %q", res.Header.Get("Location"))
	}
	return loc
}

// The return page over plain HTTP: unknown states, a consent coming back to another session,
// a refused consent, and a partner's consent forwarded to its redirect URI.
func TestOAuthReturnOverHTTP(t *testing.T) {
	h := newHarness(t, false)
	ctx := context.Background()
	link, _ := h.authURL("st-oauth")
	b := h.httpBrowser()
	_, _, token := b.get(link)
	action := h.ts.URL + "/connect?" + strings.SplitN(link, "?", 2)[1]
	if resp, body := b.post(action, url.Values{"csrf_token": {token}, "action": {"signup"}, "email": {"dan@example.com"},
		"password": {"a long enough password"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-up: %d\n%s", resp.StatusCode, body)
	}
	_, page, token := b.get(action + "&view=provider&provider=coinbase")
	if !strings.Contains(page, `id="oauth-connect"`) {
		t.Fatalf("Coinbase's page has no Connect with Coinbase:\n%s", page)
	}
	start := func(br *browser, tok string) string {
		t.Helper()
		resp, body := br.post(action, url.Values{"csrf_token": {tok}, "action": {"oauth_start"}, "provider": {"coinbase"}})
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), h.cbURL+"/oauth2/auth?") {
			t.Fatalf("Connect with Coinbase: %d to %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
		}
		return resp.Header.Get("Location")
	}
	// The provider page lets its forms go on to Coinbase, and nowhere else.
	resp, err := b.http.Get(action + "&view=provider&provider=coinbase")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' "+h.cbURL+";") {
		t.Fatalf("CSP of Coinbase's page: %q", csp)
	}
	// Without its CSRF token the form is refused.
	if resp, _ := b.post(action, url.Values{"action": {"oauth_start"}, "provider": {"coinbase"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("Connect with Coinbase without a token: %d", resp.StatusCode)
	}

	t.Run("unknown state", func(t *testing.T) {
		status, body, _ := b.get(h.ts.URL + connect.ReturnPath + "?state=forged&code=x")
		if status != http.StatusBadRequest || !strings.Contains(body, "unknown, expired or was already used") {
			t.Fatalf("%d\n%s", status, body)
		}
	})

	t.Run("another session", func(t *testing.T) {
		back := h.cbConsent(t, start(b, token), "allow")
		other := h.httpBrowser()
		status, body, _ := other.get(back.String())
		if status != http.StatusBadRequest || !strings.Contains(body, "started in another browser") {
			t.Fatalf("%d\n%s", status, body)
		}
		// The owner can still finish it.
		resp, err := b.http.Get(back.String())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || !inFlow(resp.Header.Get("Location")) || resp.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Fatalf("owner: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		if _, body, _ := b.get(action); !strings.Contains(body, "Coinbase is connected") {
			t.Fatalf("no notice after connecting:\n%s", body)
		}
		// Replayed: the state is spent.
		if status, _, _ := b.get(back.String()); status != http.StatusBadRequest {
			t.Fatalf("replayed return: %d", status)
		}
	})

	t.Run("denied", func(t *testing.T) {
		back := h.cbConsent(t, start(b, token), "deny")
		if back.Query().Get("error") != "access_denied" {
			t.Fatalf("deny came back as %s", back)
		}
		resp, err := b.http.Get(back.String())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || !inFlow(resp.Header.Get("Location")) {
			t.Fatalf("%d to %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		if _, body, _ := b.get(action); !strings.Contains(body, "You did not authorize Coinbase") {
			t.Fatalf("no word on the refusal:\n%s", body)
		}
		if status, _, _ := b.get(back.String()); status != http.StatusBadRequest {
			t.Fatalf("the refused state is still usable: %d", status)
		}
	})

	t.Run("partner", func(t *testing.T) {
		// A consent a partner started through the API goes back to the partner's redirect URI.
		u, err := h.db.UserByEmail(ctx, "dan@example.com")
		if err != nil {
			t.Fatal(err)
		}
		svc := h.conns
		consentURL, err := svc.StartOAuth(ctx, connections.OAuthStart{UserID: u.ID, ClientID: h.client.ID, ProviderID: coinbase.ID,
			ReturnURL: h.partner.ts.URL + "/callback"})
		if err != nil {
			t.Fatal(err)
		}
		back := h.cbConsent(t, consentURL, "allow")
		resp, err := h.httpBrowser().http.Get(back.String())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		to, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(to.String(), h.partner.ts.URL+"/callback?") ||
			to.Query().Get("code") != back.Query().Get("code") || to.Query().Get("state") != back.Query().Get("state") ||
			to.Query().Get("provider_id") != "coinbase" {
			t.Fatalf("forwarded to %s", to)
		}
		// The widget may not complete it: it is the partner's.
		if _, err := svc.CompleteOAuth(ctx, connections.OAuthCompletion{UserID: u.ID, ProviderID: coinbase.ID,
			State: back.Query().Get("state"), Code: back.Query().Get("code")}); opencalico.ErrorCodeOf(err) != opencalico.EInvalidState {
			t.Fatalf("completed by the widget: %v", err)
		}
	})
}

// inFlow tells whether a redirect goes back to the accounts page of the partner's flow.
func inFlow(loc string) bool {
	u, err := url.Parse(loc)
	return err == nil && u.Host == "" && u.Path == "/connect" && u.Query().Get("state") == "st-oauth" && u.Query().Get("view") == ""
}
