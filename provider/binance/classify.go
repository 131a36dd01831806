package binance

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
)

// binanceError is Binance's error body, {"code": -1022, "msg": "…"}. Its messages name
// parameters, never a key or a signature, so they are safe to show.
type binanceError struct {
	Status int
	Code   int    `json:"code"`
	Msg    string `json:"msg"`
}

func (e *binanceError) Error() string {
	return fmt.Sprintf("binance: HTTP %d, code %d: %s", e.Status, e.Code, e.Msg)
}

// credentialCodes are the answers to a key that is unknown, revoked, restricted to other IPs
// or lacks a permission (-2015, -2014, -2008), or to a signature made with another secret
// (-1022): none is cured by retrying.
var credentialCodes = map[int]bool{-2015: true, -2014: true, -2008: true, -1022: true}

// transientCodes are server-side failures Binance documents as worth retrying: disconnected,
// timeout, and "unknown error, the execution status is unknown".
var transientCodes = map[int]bool{-1000: true, -1001: true, -1006: true, -1007: true, -1008: true}

// classify turns an answer into nil, an EInvalidCredentials error, a transient error, an
// ERateLimited error for a ban, or a permanent EProviderError. A 2xx body that is not JSON (a
// truncated answer, a proxy's HTML page) is transient: the same request will likely succeed.
func classify(r *provider.Response) error {
	if r.Status >= 200 && r.Status < 300 {
		if !json.Valid(r.Body) {
			return provider.Transient(fmt.Errorf("binance: HTTP %d with a body that is not JSON (%d bytes)", r.Status, len(r.Body)), 0)
		}
		return nil
	}
	be := &binanceError{Status: r.Status}
	if err := json.Unmarshal(r.Body, be); err != nil {
		be.Code, be.Msg = 0, http.StatusText(r.Status)
	}
	switch {
	case r.Status == http.StatusTeapot:
		wait := provider.RetryAfter(r.Header)
		if wait <= 0 {
			wait = 2 * time.Minute
		}
		return &opencalico.Error{Code: opencalico.ERateLimited, ProviderID: ID, RetryAfter: wait,
			Message: "Binance has banned this server's IP address for too many requests.", Err: be}
	case r.Status == http.StatusTooManyRequests:
		return provider.Transient(be, provider.RetryAfter(r.Header))
	case credentialCodes[be.Code] || r.Status == http.StatusUnauthorized || (r.Status == http.StatusForbidden && be.Code != 0):
		return &opencalico.Error{Code: opencalico.EInvalidCredentials, ProviderID: ID,
			Message: "Binance refused the API key: it is wrong, revoked, restricted to other IP addresses, or lacks the Enable Reading permission.", Err: be}
	case r.Status >= 500 || transientCodes[be.Code] || r.Status == http.StatusForbidden:
		// A 403 without a Binance body is the web application firewall, which lifts.
		return provider.Transient(be, provider.RetryAfter(r.Header))
	case be.Code == -1021:
		// Returned as is: the caller measures the clock offset again and retries once.
		return be
	}
	return &opencalico.Error{Code: opencalico.EProviderError, ProviderID: ID,
		Message: fmt.Sprintf("Binance refused the request (code %d: %s).", be.Code, be.Msg), Err: be}
}
