// Package connect is the Connect widget: the pages a person sees between a partner's
// authorization link and the partner's redirect. They sign up or sign in (email and
// password), pick providers from the catalog, connect each with the fields its AuthMetaData
// names (verified live), see what is connected and its state, then allow or deny the partner
// on a consent screen. They can also see and revoke the consents they gave.
//
// The pages are server-rendered html/template, with their stylesheet embedded and served from
// /connect/static/; no page has a script or an inline style, and each is sent with a strict
// Content-Security-Policy. Every page of a flow is served through the OAuth server
// (/connect?<authorization request>), which validates the request again at each step before
// handing it to Widget.ServeAuthorize; the widget's forms post back to the same URL.
package connect

import (
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/connections"
	"github.com/opencalico/opencalico/oauth"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Authorizer ends a flow (*oauth.Server).
type Authorizer interface {
	IssueCode(ctx context.Context, req *oauth.AuthorizeRequest, userID string) (string, error)
	DenyRedirect(req *oauth.AuthorizeRequest) string
	WriteAuthorizeError(w http.ResponseWriter, r *http.Request, err error)
}

// Users is what the widget asks of the database (*store.Store).
type Users interface {
	CreateUser(ctx context.Context, u *opencalico.User) error
	UserByEmail(ctx context.Context, email string) (*opencalico.User, error)
	UserByID(ctx context.Context, id string) (*opencalico.User, error)
	ClientByID(ctx context.Context, id string) (*opencalico.Client, error)
	ConsentsForUser(ctx context.Context, userID string) ([]*opencalico.Consent, error)
	RevokeConsent(ctx context.Context, id string) error
}

// Connections adds, lists and removes connections (*connections.Service).
type Connections interface {
	Catalog() []opencalico.Provider
	Provider(id opencalico.ProviderID) (opencalico.Provider, error)
	Add(ctx context.Context, req connections.AddRequest) (*opencalico.Connection, error)
	List(ctx context.Context, userID string) ([]*opencalico.Connection, error)
	Remove(ctx context.Context, userID, connectionID string) error
	// The provider's own OAuth consent (see oauth.go).
	OAuthReady(id opencalico.ProviderID) (origin string, ok bool)
	StartOAuth(ctx context.Context, req connections.OAuthStart) (string, error)
	PendingOAuth(ctx context.Context, state string) (*connections.PendingOAuth, error)
	CompleteOAuth(ctx context.Context, req connections.OAuthCompletion) (*connections.OAuthResult, error)
	CancelOAuth(ctx context.Context, userID string, providerID opencalico.ProviderID, state string) (string, error)
}

// Config configures the widget.
type Config struct {
	OAuth       Authorizer
	Users       Users
	Connections Connections
	// SecureCookies marks the session cookie Secure (and names it __Host-…): set it whenever
	// the server is reached over https, which is always the case in production.
	SecureCookies bool
	// SessionTTL is how long a sign-in lasts (default 12 h).
	SessionTTL time.Duration
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	Log *slog.Logger
}

// Sign-in throttling: the sixth wrong password for an email within a minute is refused.
const (
	maxFailures   = 5
	failureWindow = time.Minute
)

const minPasswordLen = 10

// Widget serves the Connect pages. It implements oauth.Widget.
type Widget struct {
	cfg      Config
	now      func() time.Time
	log      *slog.Logger
	sessions *sessionStore
	throttle *throttle
	csrfKey  []byte
	pages    map[string]*template.Template
	static   http.Handler
	argon    argonParams
	// dummyHash is checked against when the email is unknown, so that a sign-in takes as long
	// whether or not the account exists.
	dummyHash string
}

var _ oauth.Widget = (*Widget)(nil)

// New returns the widget.
func New(cfg Config) (*Widget, error) {
	if cfg.OAuth == nil || cfg.Users == nil || cfg.Connections == nil {
		return nil, errors.New("connect: the OAuth server, the users store and the connections service are required")
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	w := &Widget{cfg: cfg, now: cfg.Now, log: cfg.Log, sessions: newSessionStore(),
		throttle: newThrottle(maxFailures, failureWindow), csrfKey: make([]byte, 32), argon: defaultArgon}
	if w.now == nil {
		w.now = time.Now
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	rand.Read(w.csrfKey)
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	w.pages = pages
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	files := http.StripPrefix("/connect/static/", http.FileServerFS(sub))
	w.static = http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Cache-Control", "public, max-age=3600")
		rw.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(rw, r)
	})
	w.dummyHash = hashPassword(newToken(), w.argon)
	return w, nil
}

// Router is where the widget's own routes are mounted (*api.Server).
type Router interface {
	Handle(pattern string, h http.Handler)
}

// Mount adds the widget's static files (GET /connect/static/…) and the page providers'
// OAuth consents return to (GET /connect/oauth/return, see oauth.go). The other pages are
// reached through the OAuth server's /connect and /oauth/authorize routes.
func (w *Widget) Mount(r Router) {
	r.Handle("GET /connect/static/", w.static)
	r.Handle("GET "+ReturnPath, http.HandlerFunc(w.serveReturn))
}

// flow is one request to the widget: the authorization request and who is signed in.
type flow struct {
	w      http.ResponseWriter
	r      *http.Request
	req    *oauth.AuthorizeRequest
	cookie string // the browser's cookie value ("" when it has none yet)
	user   *opencalico.User
}

// ServeAuthorize serves a page of the flow (GET) or handles one of its forms (POST).
func (w *Widget) ServeAuthorize(rw http.ResponseWriter, r *http.Request, req *oauth.AuthorizeRequest) {
	f := &flow{w: rw, r: r, req: req, cookie: w.cookieValue(r)}
	rw.Header().Set("Referrer-Policy", "no-referrer")
	rw.Header().Set("X-Content-Type-Options", "nosniff")
	if sess, ok := w.sessions.get(f.cookie, w.now()); ok {
		u, err := w.cfg.Users.UserByID(r.Context(), sess.userID)
		switch {
		case err == nil:
			f.user = u
		case opencalico.ErrorCodeOf(err) == opencalico.ENotFound:
			w.sessions.delete(f.cookie)
		default:
			w.internalError(f, err)
			return
		}
	}
	if r.Method == http.MethodPost {
		w.handlePost(f)
		return
	}
	if f.cookie == "" {
		// A first visit: the cookie anchors the CSRF token of the sign-in forms.
		f.cookie = newToken()
		w.setCookie(rw, f.cookie, 0)
	}
	q := r.URL.Query()
	view := q.Get("view")
	if f.user == nil {
		if view == "signup" {
			w.render(f, http.StatusOK, "signup", &page{})
			return
		}
		w.render(f, http.StatusOK, "signin", &page{})
		return
	}
	switch view {
	case "provider":
		w.showProvider(f, http.StatusOK, opencalico.ProviderID(q.Get("provider")), &page{})
	case "consent":
		w.showConsent(f, http.StatusOK, &page{})
	case "consents":
		w.showConsents(f, http.StatusOK, &page{})
	default:
		w.showHome(f, http.StatusOK, &page{})
	}
}

// handlePost checks the CSRF token, then runs the form's action.
func (w *Widget) handlePost(f *flow) {
	r := f.r
	if ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); strings.TrimSpace(ct) != "application/x-www-form-urlencoded" {
		w.render(f, http.StatusUnsupportedMediaType, "message", &page{Title: "This form could not be read",
			Error: "The form was sent in a format this page does not accept. Go back and try again."})
		return
	}
	if err := r.ParseForm(); err != nil {
		w.render(f, http.StatusBadRequest, "message", &page{Title: "This form could not be read",
			Error: "The form was too large or malformed. Go back and try again."})
		return
	}
	if !validCSRF(w.csrfKey, f.cookie, r.PostForm.Get("csrf_token")) {
		w.log.InfoContext(r.Context(), "connect: form refused: missing or invalid CSRF token")
		if f.cookie == "" {
			f.cookie = newToken()
			w.setCookie(f.w, f.cookie, 0)
		}
		w.render(f, http.StatusForbidden, "message", &page{Title: "This form has expired",
			Error:     "The form was sent without a valid security token: it may have expired, or it was not sent from this page. Go back, reload the page and try again.",
			Forbidden: true})
		return
	}
	action := r.PostForm.Get("action")
	switch action {
	case "signin":
		w.signIn(f)
		return
	case "signup":
		w.signUp(f)
		return
	}
	if f.user == nil {
		w.render(f, http.StatusUnauthorized, "signin", &page{Error: "Your session has ended. Sign in again to continue."})
		return
	}
	switch action {
	case "signout":
		w.sessions.delete(f.cookie)
		f.cookie = newToken()
		w.setCookie(f.w, f.cookie, 0)
		w.redirect(f, "", "")
	case "connect":
		w.connect(f)
	case "oauth_start":
		w.startOAuth(f)
	case "remove":
		w.remove(f)
	case "consent":
		w.consent(f)
	case "revoke":
		w.revoke(f)
	default:
		w.render(f, http.StatusBadRequest, "message", &page{Title: "Unknown action", Error: "This form asked for something this page does not do."})
	}
}

func (w *Widget) signIn(f *flow) {
	ctx := f.r.Context()
	email := strings.TrimSpace(f.r.PostForm.Get("email"))
	password := f.r.PostForm.Get("password")
	p := &page{Email: email}
	if email == "" || password == "" {
		p.Error = "Enter your email and your password."
		w.render(f, http.StatusBadRequest, "signin", p)
		return
	}
	if wait, blocked := w.throttle.blocked(email, w.now()); blocked {
		secs := int(wait.Round(time.Second).Seconds())
		if secs < 1 {
			secs = 1
		}
		f.w.Header().Set("Retry-After", strconv.Itoa(secs))
		p.Error = "Too many wrong passwords for this email. For your safety, signing in is paused: wait " +
			plural(secs, "second") + " and try again."
		p.Throttled = true
		w.render(f, http.StatusTooManyRequests, "signin", p)
		return
	}
	u, err := w.cfg.Users.UserByEmail(ctx, email)
	if err != nil && opencalico.ErrorCodeOf(err) != opencalico.ENotFound {
		w.internalError(f, err)
		return
	}
	hash := w.dummyHash
	if u != nil && u.PasswordHash != "" {
		hash = u.PasswordHash
	}
	if ok := checkPassword(hash, password); !ok || u == nil || u.PasswordHash == "" {
		w.throttle.fail(email, w.now())
		p.Error = "The email or the password is wrong."
		w.render(f, http.StatusUnauthorized, "signin", p)
		return
	}
	w.throttle.reset(email)
	w.startSession(f, u, "Signed in as "+u.Email+".")
}

func (w *Widget) signUp(f *flow) {
	ctx := f.r.Context()
	email := strings.TrimSpace(f.r.PostForm.Get("email"))
	password := f.r.PostForm.Get("password")
	p := &page{Email: email}
	switch {
	case !validEmail(email):
		p.Error = "Enter a valid email address, such as name@example.com."
	case len([]rune(password)) < minPasswordLen:
		p.Error = "Choose a password of at least " + strconv.Itoa(minPasswordLen) + " characters."
	case len(password) > 1024:
		p.Error = "Choose a password of at most 1024 bytes."
	}
	if p.Error != "" {
		w.render(f, http.StatusBadRequest, "signup", p)
		return
	}
	u := &opencalico.User{Email: email, PasswordHash: hashPassword(password, w.argon)}
	if err := w.cfg.Users.CreateUser(ctx, u); err != nil {
		if opencalico.ErrorCodeOf(err) == opencalico.EBadRequest {
			p.Error = "An account with this email already exists. Sign in instead."
			w.render(f, http.StatusConflict, "signup", p)
			return
		}
		w.internalError(f, err)
		return
	}
	w.log.InfoContext(ctx, "connect: user signed up", "user_id", u.ID)
	w.startSession(f, u, "Your account is ready. Connect the accounts you want to share.")
}

// startSession signs the browser in under a new session id (never the one it had before, so
// that a planted cookie cannot be signed in: session fixation).
func (w *Widget) startSession(f *flow, u *opencalico.User, flash string) {
	if f.cookie != "" {
		w.sessions.delete(f.cookie)
	}
	f.cookie = w.sessions.create(u.ID, w.now(), w.cfg.SessionTTL)
	w.sessions.setFlash(f.cookie, flash)
	w.setCookie(f.w, f.cookie, w.cfg.SessionTTL)
	w.redirect(f, "", "")
}

func (w *Widget) connect(f *flow) {
	form := f.r.PostForm
	id := opencalico.ProviderID(form.Get("provider"))
	fields := map[string]string{}
	for _, name := range []string{connections.FieldAPIKey, connections.FieldSecretKey, connections.FieldPassphrase, connections.FieldAddress} {
		if v := form.Get(name); v != "" {
			fields[name] = v
		}
	}
	c, err := w.cfg.Connections.Add(f.r.Context(), connections.AddRequest{
		UserID: f.user.ID, ProviderID: id, Type: opencalico.AuthType(form.Get("type")),
		DisplayLabel: form.Get("display_label"), Fields: fields, Chain: form.Get("chain"),
	})
	if err != nil {
		if opencalico.ErrorCodeOf(err) == opencalico.EInternal {
			w.internalError(f, err)
			return
		}
		// The form comes back empty of credentials: a secret is never written into a page.
		w.showProvider(f, statusOf(err), id, &page{Error: opencalico.ErrorMessage(err), Label: form.Get("display_label")})
		return
	}
	w.sessions.setFlash(f.cookie, c.DisplayLabel+" is connected. Its first sync has started.")
	w.redirect(f, "", "")
}

func (w *Widget) remove(f *flow) {
	id := f.r.PostForm.Get("connection_id")
	label := id
	if list, err := w.cfg.Connections.List(f.r.Context(), f.user.ID); err == nil {
		for _, c := range list {
			if c.ID == id {
				label = c.DisplayLabel
			}
		}
	}
	if err := w.cfg.Connections.Remove(f.r.Context(), f.user.ID, id); err != nil {
		if opencalico.ErrorCodeOf(err) == opencalico.ENotFound {
			w.showHome(f, http.StatusNotFound, &page{Error: "That connection does not exist (any more)."})
			return
		}
		w.internalError(f, err)
		return
	}
	w.sessions.setFlash(f.cookie, label+" was removed, with its credentials and everything read from it.")
	w.redirect(f, "", "")
}

func (w *Widget) consent(f *flow) {
	switch f.r.PostForm.Get("decision") {
	case "allow":
		to, err := w.cfg.OAuth.IssueCode(f.r.Context(), f.req, f.user.ID)
		if err != nil {
			w.cfg.OAuth.WriteAuthorizeError(f.w, f.r, err)
			return
		}
		w.log.InfoContext(f.r.Context(), "connect: consent given", "user_id", f.user.ID, "client_id", f.req.Client.ID)
		http.Redirect(f.w, f.r, to, http.StatusSeeOther)
	case "deny":
		w.log.InfoContext(f.r.Context(), "connect: consent refused", "user_id", f.user.ID, "client_id", f.req.Client.ID)
		http.Redirect(f.w, f.r, w.cfg.OAuth.DenyRedirect(f.req), http.StatusSeeOther)
	default:
		w.showConsent(f, http.StatusBadRequest, &page{Error: "Choose Allow or Deny."})
	}
}

func (w *Widget) revoke(f *flow) {
	ctx := f.r.Context()
	id := f.r.PostForm.Get("consent_id")
	consents, err := w.cfg.Users.ConsentsForUser(ctx, f.user.ID)
	if err != nil {
		w.internalError(f, err)
		return
	}
	var found *opencalico.Consent
	for _, c := range consents {
		if c.ID == id {
			found = c
		}
	}
	if found == nil {
		w.showConsents(f, http.StatusNotFound, &page{Error: "That permission does not exist (any more)."})
		return
	}
	if err := w.cfg.Users.RevokeConsent(ctx, found.ID); err != nil {
		w.internalError(f, err)
		return
	}
	name := found.ClientID
	if c, err := w.cfg.Users.ClientByID(ctx, found.ClientID); err == nil {
		name = c.Name
	}
	w.log.InfoContext(ctx, "connect: consent revoked", "user_id", f.user.ID, "client_id", found.ClientID)
	w.sessions.setFlash(f.cookie, name+" can no longer read your accounts.")
	w.redirect(f, "consents", "")
}

// redirect answers a successful form with 303 to a page of the flow (post/redirect/get).
func (w *Widget) redirect(f *flow, view, providerID string) {
	http.Redirect(f.w, f.r, flowURL(f.r, view, providerID, ""), http.StatusSeeOther)
}

// oauthParams are the parameters of the authorization request that every URL of the flow
// keeps, in this order.
var oauthParams = []string{"response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method"}

// flowURL is /connect with the request's authorization parameters and the widget's own.
func flowURL(r *http.Request, view, providerID, q string) string {
	return "/connect?" + flowQuery(r, view, providerID, q).Encode()
}

func flowQuery(r *http.Request, view, providerID, q string) url.Values {
	in := r.URL.Query()
	out := url.Values{}
	for _, k := range oauthParams {
		if vs, ok := in[k]; ok && len(vs) > 0 {
			out.Set(k, vs[0])
		}
	}
	if view != "" {
		out.Set("view", view)
	}
	if providerID != "" {
		out.Set("provider", providerID)
	}
	if q != "" {
		out.Set("q", q)
	}
	return out
}

// statusOf maps an application error to the status of the page that shows it.
func statusOf(err error) int {
	switch opencalico.ErrorCodeOf(err) {
	case opencalico.EAlreadyConnected:
		return http.StatusConflict
	case opencalico.ERateLimited:
		return http.StatusTooManyRequests
	case opencalico.EProviderUnavailable:
		return http.StatusServiceUnavailable
	case opencalico.EProviderError:
		return http.StatusBadGateway
	case opencalico.ENotFound:
		return http.StatusNotFound
	case opencalico.EInternal:
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

func (w *Widget) internalError(f *flow, err error) {
	w.log.ErrorContext(f.r.Context(), "connect: internal error", "err", err.Error())
	w.render(f, http.StatusInternalServerError, "message", &page{Title: "Something went wrong",
		Error: "Something went wrong on our side. Go back and try again in a moment."})
}

var emailPattern = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)

func validEmail(s string) bool { return len(s) <= 254 && emailPattern.MatchString(s) }

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}
