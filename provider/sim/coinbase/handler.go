package coinbase

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Handler serves the Coinbase v2 API.
func (s *Simulator) Handler() http.Handler {
	return http.HandlerFunc(s.serve)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, id, message string) {
	writeJSON(w, status, map[string]any{"errors": []map[string]string{{"id": id, "message": message}}})
}

func (s *Simulator) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.stats.Requests++
	fault := s.takeFault(r.URL.Path)
	if fault != nil {
		s.stats.Faults++
	}
	s.mu.Unlock()
	if fault != nil {
		switch fault.Kind {
		case Fault5xx:
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, "<html><body>503 Service Temporarily Unavailable</body></html>")
			return
		case Fault429:
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusTooManyRequests, "rate_limit_exceeded", "Too many requests")
			return
		case FaultExpiredJWT:
			writeError(w, http.StatusUnauthorized, "authentication_error", "token expired")
			return
		case FaultSlow:
			t := time.NewTimer(fault.Delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		case FaultTruncated:
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "4096")
			w.WriteHeader(http.StatusOK)
			fmt.Fprint(w, `{"pagination":{"ending_before":null,"starting_after":null,"limit":`)
			return
		case FaultMalformed:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			fmt.Fprint(w, `{"data": [ {"id": "oops", ]`)
			return
		}
	}
	if strings.HasPrefix(r.URL.Path, "/oauth2/") {
		s.serveOAuth(w, r)
		return
	}
	if r.Method != http.MethodGet {
		writeError(w, http.StatusNotFound, "not_found", "Not found")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// A CDP key JWT or an OAuth2 access token (oauth.go); each has its own rate-limit budget.
	u, limitKey, fail := s.authenticateAny(r)
	if u == nil {
		s.stats.AuthFailed++
		writeError(w, fail.status, fail.id, fail.message)
		return
	}
	if wait, ok := s.admit(limitKey); !ok {
		s.stats.RateLimited++
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		writeError(w, http.StatusTooManyRequests, "rate_limit_exceeded", "Too many requests")
		return
	}
	s.route(w, r, u)
}

// authenticate verifies the CDP JWT exactly: algorithm of the registered key, kid, signature,
// typ, nonce not seen before, sub, iss, nbf/exp with a small skew and a lifetime of at most
// two minutes, and the uri claim against this request's method, host and path.
func (s *Simulator) authenticate(r *http.Request) (*user, string) {
	auth := r.Header.Get("Authorization")
	raw, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || raw == "" {
		return nil, "missing bearer token"
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA})
	if err != nil || len(tok.Headers) != 1 {
		return nil, "malformed JWT"
	}
	h := tok.Headers[0]
	u := s.byKey[h.KeyID]
	if u == nil {
		return nil, "unknown API key"
	}
	if s.revoked[u.keyName] {
		return nil, "API key revoked"
	}
	if h.Algorithm != u.alg {
		return nil, "algorithm does not match the key"
	}
	switch u.public.(type) {
	case *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return nil, "unsupported key"
	}
	if typ, _ := h.ExtraHeaders["typ"].(string); typ != "JWT" {
		return nil, "typ must be JWT"
	}
	if h.Nonce == "" {
		return nil, "missing nonce"
	}
	var c struct {
		Sub string `json:"sub"`
		Iss string `json:"iss"`
		Nbf *int64 `json:"nbf"`
		Exp *int64 `json:"exp"`
		URI string `json:"uri"`
	}
	if err := tok.Claims(u.public, &c); err != nil {
		return nil, "invalid signature"
	}
	if c.Sub != u.keyName || (c.Iss != "cdp" && c.Iss != "coinbase-cloud") {
		return nil, "invalid sub or iss"
	}
	if c.Nbf == nil || c.Exp == nil {
		return nil, "missing nbf or exp"
	}
	now := s.clock.Now()
	nbf, exp := time.Unix(*c.Nbf, 0), time.Unix(*c.Exp, 0)
	if now.Add(s.opts.Skew).Before(nbf) || !now.Add(-s.opts.Skew).Before(exp) || exp.Sub(nbf) > 2*time.Minute {
		return nil, "token expired or not yet valid"
	}
	if want := r.Method + " " + r.Host + r.URL.Path; c.URI != want {
		return nil, "uri claim does not match the request"
	}
	key := u.keyName + "|" + h.Nonce
	if _, seen := s.nonces[key]; seen {
		return nil, "token already used"
	}
	s.nonces[key] = exp.Add(s.opts.Skew)
	if len(s.nonces) > 4096 {
		for k, until := range s.nonces {
			if now.After(until) {
				delete(s.nonces, k)
			}
		}
	}
	return u, ""
}

// admit applies the sliding-window limit of the key; when full it says how long until a slot
// frees.
func (s *Simulator) admit(key string) (time.Duration, bool) {
	now := s.clock.Now()
	times := s.window[key]
	cut := 0
	for cut < len(times) && !times[cut].After(now.Add(-s.opts.RateWindow)) {
		cut++
	}
	times = times[cut:]
	if len(times) >= s.opts.RateLimit {
		s.window[key] = times
		return times[0].Add(s.opts.RateWindow).Sub(now), false
	}
	s.window[key] = append(times, now)
	return 0, true
}

func (s *Simulator) route(w http.ResponseWriter, r *http.Request, u *user) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(parts) == 2 && parts[0] == "v2" && parts[1] == "user":
		writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{
			"id": u.id, "name": u.name, "username": nil, "resource": "user", "resource_path": "/v2/user"}})
	case len(parts) == 2 && parts[0] == "v2" && parts[1] == "accounts":
		ids := make([]string, len(u.wallets))
		for i, wl := range u.wallets {
			ids[i] = wl.id
		}
		page, pg, ok := paginate(w, r, ids)
		if !ok {
			return
		}
		data := make([]map[string]any, 0, len(page))
		for _, i := range page {
			wl := u.wallets[i]
			data = append(data, map[string]any{
				"id": wl.id, "name": wl.name, "primary": wl.code == "BTC", "type": wl.typ,
				"currency":   map[string]any{"code": wl.code, "name": assetOf(wl.code).name, "exponent": assetOf(wl.code).places},
				"balance":    money{wl.balance().String(), wl.code},
				"created_at": wl.created, "updated_at": wl.created, "resource": "account",
				"resource_path": "/v2/accounts/" + wl.id,
			})
		}
		writeJSON(w, http.StatusOK, map[string]any{"pagination": pg, "data": data})
	case len(parts) >= 4 && parts[0] == "v2" && parts[1] == "accounts" && parts[3] == "transactions":
		var wl *wallet
		for _, x := range u.wallets {
			if x.id == parts[2] {
				wl = x
			}
		}
		if wl == nil {
			writeError(w, http.StatusNotFound, "not_found", "Account not found")
			return
		}
		if len(parts) == 5 {
			t := wl.byID[parts[4]]
			if t == nil {
				writeError(w, http.StatusNotFound, "not_found", "Transaction not found")
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"data": t})
			return
		}
		if len(parts) != 4 {
			writeError(w, http.StatusNotFound, "not_found", "Not found")
			return
		}
		ids := make([]string, len(wl.txs))
		for i, t := range wl.txs {
			ids[i] = t.ID
		}
		page, pg, ok := paginate(w, r, ids)
		if !ok {
			return
		}
		data := make([]*tx, len(page))
		for i, j := range page {
			data[i] = wl.txs[j]
		}
		writeJSON(w, http.StatusOK, map[string]any{"pagination": pg, "data": data})
	default:
		writeError(w, http.StatusNotFound, "not_found", "Not found")
	}
}

type pagination struct {
	EndingBefore  *string `json:"ending_before"`
	StartingAfter *string `json:"starting_after"`
	Limit         int     `json:"limit"`
	Order         string  `json:"order"`
	PreviousURI   *string `json:"previous_uri"`
	NextURI       *string `json:"next_uri"`
}

// paginate applies Coinbase's cursor paging to ids (oldest first): limit (default 25, at most
// 100), order (desc by default), starting_after and ending_before (ids). It returns the indexes
// of the page in ids.
func paginate(w http.ResponseWriter, r *http.Request, ids []string) ([]int, pagination, bool) {
	q := r.URL.Query()
	pg := pagination{Limit: 25, Order: "desc"}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			writeError(w, http.StatusBadRequest, "invalid_request", "limit must be between 1 and 100")
			return nil, pg, false
		}
		pg.Limit = n
	}
	if v := q.Get("order"); v != "" {
		if v != "asc" && v != "desc" {
			writeError(w, http.StatusBadRequest, "invalid_request", "order must be asc or desc")
			return nil, pg, false
		}
		pg.Order = v
	}
	view := make([]int, len(ids))
	for i := range ids {
		view[i] = i
		if pg.Order == "desc" {
			view[i] = len(ids) - 1 - i
		}
	}
	find := func(id string) int {
		for pos, i := range view {
			if ids[i] == id {
				return pos
			}
		}
		return -1
	}
	start, end := 0, min(pg.Limit, len(view))
	if v := q.Get("starting_after"); v != "" {
		pos := find(v)
		if pos < 0 {
			writeError(w, http.StatusBadRequest, "invalid_request", "starting_after is not a known id")
			return nil, pg, false
		}
		pg.StartingAfter = &v
		start, end = pos+1, min(pos+1+pg.Limit, len(view))
	} else if v := q.Get("ending_before"); v != "" {
		pos := find(v)
		if pos < 0 {
			writeError(w, http.StatusBadRequest, "invalid_request", "ending_before is not a known id")
			return nil, pg, false
		}
		pg.EndingBefore = &v
		start, end = max(0, pos-pg.Limit), pos
	}
	page := view[start:end]
	if end < len(view) && len(page) > 0 {
		u := fmt.Sprintf("%s?limit=%d&order=%s&starting_after=%s", r.URL.Path, pg.Limit, pg.Order, ids[page[len(page)-1]])
		pg.NextURI = &u
	}
	if start > 0 && len(page) > 0 {
		u := fmt.Sprintf("%s?limit=%d&order=%s&ending_before=%s", r.URL.Path, pg.Limit, pg.Order, ids[page[0]])
		pg.PreviousURI = &u
	}
	return page, pg, true
}
