package kraken

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
)

// sign computes Kraken's API-Sign header value:
// base64(HMAC-SHA512(base64decode(secret), path + SHA256(nonce + body))).
func sign(secret []byte, path, nonce string, body []byte) string {
	digest := sha256.Sum256(append([]byte(nonce), body...))
	mac := hmac.New(sha512.New, secret)
	mac.Write([]byte(path))
	mac.Write(digest[:])
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// keyState serializes the calls of one API key: Kraken rejects a nonce that is not greater
// than the last one it saw, so two calls in flight at once could arrive out of order.
type keyState struct {
	mu        sync.Mutex
	lastNonce int64
}

// nextNonce returns a nonce greater than every earlier one of the key: the clock in
// milliseconds, or the last nonce + 1 when the clock has not moved on (two calls in one
// millisecond) or has gone backwards. The caller holds k.mu.
func (k *keyState) nextNonce(now time.Time) int64 {
	n := now.UnixMilli()
	if n <= k.lastNonce {
		n = k.lastNonce + 1
	}
	k.lastNonce = n
	return n
}

// keys holds a keyState per API key, found by a digest of the key so that the map never
// holds a credential.
type keys struct {
	mu sync.Mutex
	m  map[string]*keyState
}

func (ks *keys) get(id string) *keyState {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.m == nil {
		ks.m = map[string]*keyState{}
	}
	k := ks.m[id]
	if k == nil {
		k = &keyState{}
		ks.m[id] = k
	}
	return k
}

// keyID is a non-secret name of an API key, for the limiter and the per-key lock.
func keyID(apiKey string) string {
	h := sha256.Sum256([]byte("kraken-key\x00" + apiKey))
	return fmt.Sprintf("%x", h[:12])
}

// envelope is every Kraken answer: errors, and the result when there are none.
type envelope struct {
	Error  []string        `json:"error"`
	Result json.RawMessage `json:"result"`
}

// credentials are an account's key and decoded secret.
type credentials struct {
	apiKey string
	secret []byte
	id     string
}

func credentialsOf(a provider.Account) (credentials, error) {
	key, secret := a.Credentials["api_key"], a.Credentials["secret_key"]
	if key == "" || secret == "" {
		return credentials{}, opencalico.Errorf(opencalico.EInvalidCredentials, "A Kraken connection needs an API key and its private key.")
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(secret))
	if err != nil || len(raw) == 0 {
		// The decoder's error could quote part of the secret: it is not kept.
		return credentials{}, opencalico.Errorf(opencalico.EInvalidCredentials, "The Kraken private key is not valid base64; copy it again from kraken.com.")
	}
	return credentials{apiKey: key, secret: raw, id: keyID(key)}, nil
}

// methodCost is the counter cost of a private method: the history calls cost 2.
func methodCost(method string) int {
	switch method {
	case "Ledgers", "TradesHistory", "QueryLedgers":
		return 2
	}
	return 1
}

// call makes one private call (with retries) and decodes its result into out. Calls of one
// key are serialized from the first nonce to the last retry.
func (ad *Adapter) call(ctx context.Context, c credentials, method string, params url.Values, out any) error {
	state := ad.keys.get(c.id)
	state.mu.Lock()
	defer state.mu.Unlock()

	path := "/0/private/" + method
	query := params.Encode()
	req := provider.Request{
		Method:   http.MethodPost,
		URL:      ad.baseURL + path,
		Header:   http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
		LimitKey: c.id,
		Cost:     methodCost(method),
		Sign: func(r *http.Request) error {
			// A fresh nonce for every attempt: a retried nonce would be refused.
			nonce := strconv.FormatInt(state.nextNonce(ad.clock.Now()), 10)
			body := "nonce=" + nonce
			if query != "" {
				body += "&" + query
			}
			r.Body = io.NopCloser(strings.NewReader(body))
			r.ContentLength = int64(len(body))
			r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
			r.Header.Set("API-Key", c.apiKey)
			r.Header.Set("API-Sign", sign(c.secret, path, nonce, []byte(body)))
			return nil
		},
	}
	res, err := ad.client.Do(ctx, req)
	if err != nil {
		return err
	}
	var env envelope
	if err := json.Unmarshal(res.Body, &env); err != nil {
		return fmt.Errorf("kraken %s: %w", method, err) // classify already vetted the body
	}
	dec := json.NewDecoder(bytes.NewReader(env.Result))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return &opencalico.Error{Code: opencalico.EProviderError, ProviderID: ProviderID,
			Message: fmt.Sprintf("Kraken's %s answer has an unexpected shape.", method), Err: err}
	}
	return nil
}

// rateLimitPause is how long to wait after Kraken refused a call for the rate limit: long
// enough for the counter to drop a few points at the slowest decay.
const rateLimitPause = 6 * time.Second

// classify turns Kraken's answers into errors. Kraken reports most errors inside HTTP 200
// as "error": ["EAPI:Invalid key", …].
func classify(r *provider.Response) error {
	switch {
	case r.Status == http.StatusTooManyRequests || r.Status >= 500:
		// 5xx including Cloudflare's 520–525.
		return provider.Transient(fmt.Errorf("kraken: HTTP %d", r.Status), provider.RetryAfter(r.Header))
	case r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden:
		return &opencalico.Error{Code: opencalico.EInvalidCredentials, ProviderID: ProviderID,
			Message: "Kraken refused the API key."}
	case r.Status != http.StatusOK:
		return &opencalico.Error{Code: opencalico.EProviderError, ProviderID: ProviderID,
			Message: fmt.Sprintf("Kraken answered HTTP %d.", r.Status)}
	}
	var env envelope
	if err := json.Unmarshal(r.Body, &env); err != nil || (len(env.Error) == 0 && len(env.Result) == 0) {
		// A truncated body or a proxy's HTML page: the next attempt may be whole.
		if err == nil {
			err = errors.New("no result")
		}
		return provider.Transient(fmt.Errorf("kraken: malformed answer: %w", err), 0)
	}
	if len(env.Error) == 0 {
		return nil
	}
	return classifyKrakenError(env.Error[0])
}

// classifyKrakenError maps one of Kraken's error strings ("Category:Message[:detail]").
func classifyKrakenError(e string) error {
	switch {
	case strings.HasPrefix(e, "EAPI:Invalid key"), strings.HasPrefix(e, "EAPI:Invalid signature"),
		strings.HasPrefix(e, "EAPI:Bad request"):
		return &opencalico.Error{Code: opencalico.EInvalidCredentials, ProviderID: ProviderID,
			Message: "Kraken refused the API key or its private key; check both, or make a new key.", Err: errors.New(e)}
	case strings.HasPrefix(e, "EGeneral:Permission denied"):
		return &opencalico.Error{Code: opencalico.EInvalidCredentials, ProviderID: ProviderID,
			Message: "The Kraken API key lacks a permission: it needs Query Funds and Query Ledger Entries.", Err: errors.New(e)}
	case strings.HasPrefix(e, "EAPI:Invalid nonce"):
		// Retried with a fresh, greater nonce.
		return provider.Transient(errors.New("kraken: "+e), 0)
	case strings.HasPrefix(e, "EAPI:Rate limit exceeded"), strings.HasPrefix(e, "EGeneral:Temporary lockout"):
		return provider.Transient(errors.New("kraken: "+e), rateLimitPause)
	case strings.HasPrefix(e, "EService:"):
		// Unavailable, Busy, Throttled, Deadline elapsed, Market in cancel_only mode.
		return provider.Transient(errors.New("kraken: "+e), 0)
	}
	return &opencalico.Error{Code: opencalico.EProviderError, ProviderID: ProviderID,
		Message: "Kraken refused the request: " + e}
}
