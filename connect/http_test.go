package connect_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// The forms of the widget over plain HTTP: CSRF, throttling, and the security headers.
func TestFormsOverHTTP(t *testing.T) {
	h := newHarness(t, false)
	link, _ := h.authURL("st-http")
	b := h.httpBrowser()

	status, body, token := b.get(link)
	if status != http.StatusOK || token == "" || !strings.Contains(body, "Acme Budget") {
		t.Fatalf("sign-in page: %d, token %v", status, token != "")
	}
	action := h.ts.URL + "/connect?" + strings.SplitN(link, "?", 2)[1]

	t.Run("csrf", func(t *testing.T) {
		form := url.Values{"action": {"signup"}, "email": {"eve@example.com"}, "password": {"correct horse battery"}}
		resp, body := b.post(action, form)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "without a valid security token") {
			t.Fatalf("form without its token: %d\n%s", resp.StatusCode, body)
		}
		form.Set("csrf_token", token+"x")
		if resp, _ := b.post(action, form); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("form with a wrong token: %d", resp.StatusCode)
		}
		// A token is bound to its browser: another browser's token does not pass.
		other := h.httpBrowser()
		_, _, otherToken := other.get(link)
		form.Set("csrf_token", otherToken)
		if resp, _ := b.post(action, form); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("form with another browser's token: %d", resp.StatusCode)
		}
		if _, err := h.db.UserByEmail(t.Context(), "eve@example.com"); err == nil {
			t.Fatal("a form refused for its token still created the account")
		}
	})

	t.Run("throttle", func(t *testing.T) {
		// An account, made through the sign-up form.
		form := url.Values{"csrf_token": {token}, "action": {"signup"}, "email": {"carol@example.com"}, "password": {"the right password"}}
		if resp, body := b.post(action, form); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-up: %d\n%s", resp.StatusCode, body)
		}
		attacker := h.httpBrowser()
		_, _, atoken := attacker.get(link)
		wrong := url.Values{"csrf_token": {atoken}, "action": {"signin"}, "email": {"Carol@Example.com"}, "password": {"guess"}}
		for i := 1; i <= 5; i++ {
			resp, body := attacker.post(action, wrong)
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "The email or the password is wrong.") {
				t.Fatalf("wrong password %d: %d", i, resp.StatusCode)
			}
		}
		resp, body := attacker.post(action, wrong)
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" ||
			!strings.Contains(body, "Too many wrong passwords for this email") {
			t.Fatalf("sixth wrong password: %d %q\n%s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
		// While throttled, even the right password waits.
		right := url.Values{"csrf_token": {atoken}, "action": {"signin"}, "email": {"carol@example.com"}, "password": {"the right password"}}
		if resp, _ := attacker.post(action, right); resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("right password while throttled: %d", resp.StatusCode)
		}
		// Another email is not affected.
		other := url.Values{"csrf_token": {atoken}, "action": {"signin"}, "email": {"dave@example.com"}, "password": {"guess"}}
		if resp, _ := attacker.post(action, other); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("another email: %d", resp.StatusCode)
		}
		h.noSecretsInLogs("the right password", "guess", token, atoken)
	})

	t.Run("headers", func(t *testing.T) {
		resp, err := b.http.Get(link)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		const want = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
		if got := resp.Header.Get("Content-Security-Policy"); got != want {
			t.Fatalf("CSP = %q", got)
		}
		fresh, err := http.Get(link)
		if err != nil {
			t.Fatal(err)
		}
		fresh.Body.Close()
		if sc := fresh.Header.Get("Set-Cookie"); !strings.Contains(sc, "opencalico_session=") || !strings.Contains(sc, "HttpOnly") ||
			!strings.Contains(sc, "SameSite=Lax") || !strings.Contains(sc, "Path=/") {
			t.Fatalf("session cookie: %q", sc)
		}
		status, _, _ := b.get(h.ts.URL + "/connect/static/style.css")
		if status != http.StatusOK {
			t.Fatalf("stylesheet: %d", status)
		}
		// The consent page lets its form go on to the partner's redirect URI.
		status, body, _ := b.get(action + "&view=consent")
		if status != http.StatusOK || !strings.Contains(body, "Allow <span class=\"partner\">Acme Budget</span>") {
			t.Fatalf("consent page: %d", status)
		}
		resp, err = b.http.Get(action + "&view=consent")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Content-Security-Policy"); !strings.Contains(got, "form-action 'self' "+h.partner.ts.URL+";") {
			t.Fatalf("consent CSP = %q", got)
		}
	})
}
