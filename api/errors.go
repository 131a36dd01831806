package api

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"

	"github.com/opencalico/opencalico"
)

// statusOf maps each application error code to its HTTP status. This table is the one place
// where codes become statuses; the test checks that it covers every code.
var statusOf = map[opencalico.ErrorCode]int{
	opencalico.EBadRequest:                http.StatusBadRequest,
	opencalico.EUnauthorized:              http.StatusUnauthorized,
	opencalico.EForbidden:                 http.StatusForbidden,
	opencalico.ENotFound:                  http.StatusNotFound,
	opencalico.EUnsupportedProvider:       http.StatusBadRequest,
	opencalico.EUnsupportedConnectionType: http.StatusBadRequest,
	opencalico.EInvalidCredentials:        http.StatusBadRequest,
	opencalico.EInvalidAddress:            http.StatusBadRequest,
	opencalico.EAlreadyConnected:          http.StatusConflict,
	opencalico.EInvalidCursor:             http.StatusBadRequest,
	opencalico.EInvalidState:              http.StatusBadRequest,
	opencalico.ERateLimited:               http.StatusTooManyRequests,
	opencalico.EProviderUnavailable:       http.StatusServiceUnavailable,
	opencalico.EProviderError:             http.StatusServiceUnavailable,
	opencalico.EReauthRequired:            http.StatusConflict,
	opencalico.EInternal:                  http.StatusInternalServerError,
}

// HTTPStatus returns the status for an error code.
func HTTPStatus(code opencalico.ErrorCode) int {
	if s, ok := statusOf[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// httpError is an error whose status differs from its code's usual one: 413 and 415 are
// transport conditions that the API reports with the cause bad_request.
type httpError struct {
	status int
	err    *opencalico.Error
}

func (e *httpError) Error() string { return e.err.Error() }
func (e *httpError) Unwrap() error { return e.err }

// errBodyTooLarge and errContentType build the two transport errors.
func errBodyTooLarge(limit int64) error {
	return &httpError{http.StatusRequestEntityTooLarge,
		opencalico.Errorf(opencalico.EBadRequest, "The request body is larger than %d bytes.", limit)}
}

func errContentType(got string) error {
	return &httpError{http.StatusUnsupportedMediaType,
		opencalico.Errorf(opencalico.EBadRequest, "Content-Type %q is not supported: send application/json.", got)}
}

// writeError sends CalicoErrorResponse for err with the status its code maps to. Internal
// errors are logged with their cause and reported with the request id only, so nothing of
// their text (queries, paths, hosts) reaches the client.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := opencalico.ErrorCodeOf(err)
	status := HTTPStatus(code)
	var he *httpError
	if errors.As(err, &he) {
		status = he.status
	}
	msg := opencalico.ErrorMessage(err)
	rid := RequestID(r.Context())
	if code == opencalico.EInternal {
		s.log.ErrorContext(r.Context(), "internal error", "request_id", rid, "err", err.Error())
		msg = fmt.Sprintf("An internal error occurred; quote request id %s when reporting it.", rid)
	}
	item := ErrorItem{Cause: string(code), Message: msg}
	var ae *opencalico.Error
	if errors.As(err, &ae) {
		item.ProviderID = string(ae.ProviderID)
		if ae.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(ae.RetryAfter.Seconds()))))
		}
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	if status >= 500 {
		s.log.Log(r.Context(), slog.LevelWarn, "request failed", "request_id", rid, "cause", code)
	}
	writeJSON(w, status, errorResponse{Errors: []ErrorItem{item}})
}
