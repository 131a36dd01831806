package connect

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Sessions are kept in memory, in this process: a restart signs everyone out, and several
// processes behind a load balancer need sticky sessions. The map is keyed by the SHA-256 of
// the session id, so that a dump of the process memory (or a debugger) does not show ids
// that could be replayed as cookies.
//
// A browser that has not signed in still gets a cookie with a random value: it anchors the
// CSRF token of the sign-in and sign-up forms. Nothing is stored for it on the server.

// session is a signed-in browser.
type session struct {
	userID  string
	expires time.Time
	// flash is a one-time notice shown on the next page ("Binance connected"); alert is a
	// one-time error ("You did not authorize Coinbase").
	flash string
	alert string
}

type sessionStore struct {
	mu        sync.Mutex
	byHash    map[string]*session
	lastSweep time.Time
}

func newSessionStore() *sessionStore { return &sessionStore{byHash: map[string]*session{}} }

func newToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func hashID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// create makes a session for the user and returns its id (the cookie value).
func (s *sessionStore) create(userID string, now time.Time, ttl time.Duration) string {
	id := newToken()
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.lastSweep) > time.Minute {
		for h, sess := range s.byHash {
			if !now.Before(sess.expires) {
				delete(s.byHash, h)
			}
		}
		s.lastSweep = now
	}
	s.byHash[hashID(id)] = &session{userID: userID, expires: now.Add(ttl)}
	return id
}

// get returns a copy of the live session with the id, if there is one.
func (s *sessionStore) get(id string, now time.Time) (session, bool) {
	if id == "" {
		return session{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	h := hashID(id)
	sess, ok := s.byHash[h]
	if !ok {
		return session{}, false
	}
	if !now.Before(sess.expires) {
		delete(s.byHash, h)
		return session{}, false
	}
	return *sess, true
}

// setFlash records a notice for the session's next page.
func (s *sessionStore) setFlash(id, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess, ok := s.byHash[hashID(id)]; ok {
		sess.flash = msg
	}
}

// setAlert records an error for the session's next page.
func (s *sessionStore) setAlert(id, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess, ok := s.byHash[hashID(id)]; ok {
		sess.alert = msg
	}
}

// takeAlert returns the session's error and forgets it.
func (s *sessionStore) takeAlert(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.byHash[hashID(id)]
	if !ok {
		return ""
	}
	msg := sess.alert
	sess.alert = ""
	return msg
}

// takeFlash returns the session's notice and forgets it.
func (s *sessionStore) takeFlash(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.byHash[hashID(id)]
	if !ok {
		return ""
	}
	msg := sess.flash
	sess.flash = ""
	return msg
}

func (s *sessionStore) delete(id string) {
	s.mu.Lock()
	delete(s.byHash, hashID(id))
	s.mu.Unlock()
}

// csrfToken is the token the forms of a browser carry: an HMAC of its cookie value under a
// key of this process. It needs no storage, changes when the session does (sign-in, sign-out)
// and cannot be computed by a site that cannot read the cookie.
func csrfToken(key []byte, cookieValue string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("opencalico/csrf/v1\x00"))
	m.Write([]byte(cookieValue))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func validCSRF(key []byte, cookieValue, token string) bool {
	if cookieValue == "" || token == "" {
		return false
	}
	return hmac.Equal([]byte(csrfToken(key, cookieValue)), []byte(token))
}

// throttle counts failed sign-ins per email: after MaxFailures failures within Window, further
// attempts for that email are refused until the oldest failure leaves the window.
type throttle struct {
	mu       sync.Mutex
	max      int
	window   time.Duration
	failures map[string][]time.Time
}

func newThrottle(max int, window time.Duration) *throttle {
	return &throttle{max: max, window: window, failures: map[string][]time.Time{}}
}

func emailKey(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// recent returns the failures of key still inside the window, dropping older ones.
func (t *throttle) recent(key string, now time.Time) []time.Time {
	kept := t.failures[key][:0]
	for _, at := range t.failures[key] {
		if now.Sub(at) < t.window {
			kept = append(kept, at)
		}
	}
	if len(kept) == 0 {
		delete(t.failures, key)
		return nil
	}
	t.failures[key] = kept
	return kept
}

// blocked reports whether a sign-in for the email is refused now, and for how long.
func (t *throttle) blocked(email string, now time.Time) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.recent(emailKey(email), now)
	if len(r) < t.max {
		return 0, false
	}
	return t.window - now.Sub(r[len(r)-t.max]), true
}

// fail records a failed sign-in.
func (t *throttle) fail(email string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := emailKey(email)
	if len(t.failures) > 100_000 {
		// Bound the memory an attacker cycling emails can take: forget windows that ended.
		for key := range t.failures {
			t.recent(key, now)
		}
	}
	t.failures[k] = append(t.recent(k, now), now)
}

// reset forgets the failures of an email after a successful sign-in.
func (t *throttle) reset(email string) {
	t.mu.Lock()
	delete(t.failures, emailKey(email))
	t.mu.Unlock()
}

// cookie names: with Secure cookies, the __Host- prefix pins the cookie to this host and
// path / (RFC 6265bis), so a sibling subdomain cannot plant one.
func cookieName(secure bool) string {
	if secure {
		return "__Host-opencalico_session"
	}
	return "opencalico_session"
}

func (w *Widget) setCookie(rw http.ResponseWriter, value string, maxAge time.Duration) {
	c := &http.Cookie{Name: cookieName(w.cfg.SecureCookies), Value: value, Path: "/", HttpOnly: true,
		Secure: w.cfg.SecureCookies, SameSite: http.SameSiteLaxMode}
	if maxAge > 0 {
		c.MaxAge = int(maxAge.Seconds())
	}
	http.SetCookie(rw, c)
}

func (w *Widget) cookieValue(r *http.Request) string {
	c, err := r.Cookie(cookieName(w.cfg.SecureCookies))
	if err != nil {
		return ""
	}
	return c.Value
}
