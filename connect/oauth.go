package connect

// Connecting a provider through its own OAuth consent ("Connect with Coinbase").
//
// The provider page's "Connect with …" form (POST, with its CSRF token) starts the consent:
// the connections service stores a state bound to the signed-in user, and the widget answers
// 303 to the provider's consent URL. The provider page's Content-Security-Policy lets its
// forms go on to that origin (Chromium applies form-action to the redirects after a form
// submission).
//
// The provider sends the browser back to ReturnPath with code and state (or error and
// state). That page reads the state without using it:
//   - a state a partner started through the API (POST /accounts/v2/providers, oauth2) is
//     forwarded, with the code or the error, to the partner's redirect URI, which the API
//     checked against the partner's registered ones; the partner completes it with
//     POST /accounts/v2/oauth/callback/{provider_id};
//   - a state started in the widget is completed here, for the signed-in user only (the state
//     names its user: a consent started in another browser or account is refused, so nobody can
//     slip their provider account into someone else's), and the browser goes back to the
//     accounts page of its flow with a notice; a refused consent uses the state up and says so.

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/connections"
)

// ReturnPath is the page providers' consents return to: register <issuer>/connect/oauth/return
// as the redirect URI of the server's OAuth client at the provider.
const ReturnPath = "/connect/oauth/return"

// startOAuth handles "Connect with …": it records the consent and sends the browser to the
// provider.
func (w *Widget) startOAuth(f *flow) {
	id := opencalico.ProviderID(f.r.PostForm.Get("provider"))
	to, err := w.cfg.Connections.StartOAuth(f.r.Context(), connections.OAuthStart{UserID: f.user.ID, ProviderID: id,
		DisplayLabel: f.r.PostForm.Get("display_label"), ReturnURL: flowURL(f.r, "", "", "")})
	if err != nil {
		if opencalico.ErrorCodeOf(err) == opencalico.EInternal {
			w.internalError(f, err)
			return
		}
		w.showProvider(f, statusOf(err), id, &page{Error: opencalico.ErrorMessage(err), Label: f.r.PostForm.Get("display_label")})
		return
	}
	w.log.InfoContext(f.r.Context(), "connect: provider consent started", "user_id", f.user.ID, "provider_id", string(id))
	http.Redirect(f.w, f.r, to, http.StatusSeeOther)
}

// serveReturn is GET /connect/oauth/return?code=…&state=… (or ?error=…&state=…).
func (w *Widget) serveReturn(rw http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	// The URL carries a code: it must not leak through a Referer.
	rw.Header().Set("Referrer-Policy", "no-referrer")
	rw.Header().Set("X-Content-Type-Options", "nosniff")
	q := r.URL.Query()
	state := q.Get("state")
	pending, err := w.cfg.Connections.PendingOAuth(ctx, state)
	if err != nil {
		if opencalico.ErrorCodeOf(err) != opencalico.EInvalidState {
			w.log.ErrorContext(ctx, "connect: reading a provider consent", "err", err.Error())
			w.message(rw, http.StatusInternalServerError, "Something went wrong",
				"Something went wrong on our side. Go back to the app that sent you here and try again in a moment.")
			return
		}
		w.message(rw, http.StatusBadRequest, "This sign-in has expired",
			"This sign-in at the provider is unknown, expired or was already used. Go back to the app that sent you here and connect the account again.")
		return
	}
	name := string(pending.ProviderID)
	if p, err := w.cfg.Connections.Provider(pending.ProviderID); err == nil {
		name = p.Name
	}

	if pending.ClientID != "" {
		w.forward(rw, r, pending, name)
		return
	}

	// Started in the widget: only its user, signed in here, may complete it.
	var userID string
	if sess, ok := w.sessions.get(w.cookieValue(r), w.now()); ok {
		userID = sess.userID
	}
	back, ok := widgetReturn(pending.ReturnURL)
	if userID == "" || userID != pending.UserID || !ok {
		w.log.InfoContext(ctx, "connect: provider consent returned to another session", "provider_id", string(pending.ProviderID))
		w.message(rw, http.StatusBadRequest, "Sign in to finish connecting "+name,
			"This connection to "+name+" was started in another browser or by another account, or your session has ended. Go back to the app that sent you here, sign in and connect "+name+" again.")
		return
	}
	cookie := w.cookieValue(r)
	if e := q.Get("error"); e != "" || q.Get("code") == "" {
		if _, err := w.cfg.Connections.CancelOAuth(ctx, userID, pending.ProviderID, state); err != nil && opencalico.ErrorCodeOf(err) != opencalico.EInvalidState {
			w.log.ErrorContext(ctx, "connect: cancelling a provider consent", "err", err.Error())
		}
		msg := "You did not authorize " + name + ", so nothing was connected. You can connect it again whenever you like."
		if e != "access_denied" {
			msg = name + " did not finish the sign-in (" + safeWord(e) + "), so nothing was connected. Try again."
		}
		w.sessions.setAlert(cookie, msg)
		http.Redirect(rw, r, back, http.StatusSeeOther)
		return
	}
	res, err := w.cfg.Connections.CompleteOAuth(ctx, connections.OAuthCompletion{UserID: userID,
		ProviderID: pending.ProviderID, State: state, Code: q.Get("code")})
	if err != nil {
		msg := opencalico.ErrorMessage(err)
		if opencalico.ErrorCodeOf(err) == opencalico.EInternal {
			w.log.ErrorContext(ctx, "connect: completing a provider consent", "err", err.Error())
			msg = "Something went wrong on our side while connecting " + name + ". Try again in a moment."
		}
		w.sessions.setAlert(cookie, msg)
		http.Redirect(rw, r, back, http.StatusSeeOther)
		return
	}
	w.sessions.setFlash(cookie, res.Connection.DisplayLabel+" is connected. Its first sync has started.")
	http.Redirect(rw, r, back, http.StatusSeeOther)
}

// forward sends the browser on to the partner that started the consent through the API, with
// what the provider returned; the partner completes it with the Authorization Callback.
func (w *Widget) forward(rw http.ResponseWriter, r *http.Request, pending *connections.PendingOAuth, name string) {
	u, err := url.Parse(pending.ReturnURL)
	if err != nil || !u.IsAbs() {
		w.message(rw, http.StatusBadRequest, "Go back to the app",
			name+" answered, but the app that asked has no page to come back to. Go back to it and try again.")
		return
	}
	in := r.URL.Query()
	out := u.Query()
	for _, k := range []string{"code", "state", "error", "error_description"} {
		if v := in.Get(k); v != "" {
			out.Set(k, v)
		}
	}
	out.Set("provider_id", string(pending.ProviderID))
	u.RawQuery = out.Encode()
	http.Redirect(rw, r, u.String(), http.StatusSeeOther)
}

// widgetReturn checks that a stored return URL is a page of the widget's flow.
func widgetReturn(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "" || u.Host != "" || u.Path != "/connect" {
		return "", false
	}
	return u.String(), true
}

// message shows a page outside a flow (no partner, no session): a title and what to do.
func (w *Widget) message(rw http.ResponseWriter, status int, title, msg string) {
	p := &page{Title: title, Error: msg}
	var buf bytes.Buffer
	if err := w.pages["message"].ExecuteTemplate(&buf, "layout.html", p); err != nil {
		http.Error(rw, msg, status)
		return
	}
	h := rw.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", contentSecurityPolicy())
	rw.WriteHeader(status)
	_, _ = rw.Write(buf.Bytes())
}

// safeWord returns an OAuth error code if it looks like one (a short snake_case word).
func safeWord(s string) string {
	if s == "" || len(s) > 40 || strings.Trim(s, "abcdefghijklmnopqrstuvwxyz_") != "" {
		return "no code"
	}
	return s
}
