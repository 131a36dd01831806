package opencalico

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// ErrorCode is an application error code. Each code is exactly one `cause` value of the API's
// ErrorItem, so that the HTTP layer can map codes to statuses in one place.
type ErrorCode string

// The error codes, one per documented `cause`.
const (
	EBadRequest                ErrorCode = "bad_request"
	EUnauthorized              ErrorCode = "unauthorized"
	EForbidden                 ErrorCode = "forbidden"
	ENotFound                  ErrorCode = "not_found"
	EUnsupportedProvider       ErrorCode = "unsupported_provider"
	EUnsupportedConnectionType ErrorCode = "unsupported_connection_type"
	EInvalidCredentials        ErrorCode = "invalid_credentials"
	EInvalidAddress            ErrorCode = "invalid_address"
	EAlreadyConnected          ErrorCode = "already_connected"
	EInvalidCursor             ErrorCode = "invalid_cursor"
	EInvalidState              ErrorCode = "invalid_state"
	ERateLimited               ErrorCode = "rate_limited"
	EProviderUnavailable       ErrorCode = "provider_unavailable"
	EProviderError             ErrorCode = "provider_error"
	EReauthRequired            ErrorCode = "reauth_required"
	EInternal                  ErrorCode = "internal_error"
)

// ErrorCodes lists every code, in the order the API documents them.
var ErrorCodes = []ErrorCode{
	EBadRequest, EUnauthorized, EForbidden, ENotFound, EUnsupportedProvider,
	EUnsupportedConnectionType, EInvalidCredentials, EInvalidAddress, EAlreadyConnected,
	EInvalidCursor, EInvalidState, ERateLimited, EProviderUnavailable, EProviderError,
	EReauthRequired, EInternal,
}

// Error is an application error: a code, a message safe to show a partner, and optionally the
// provider concerned and the underlying error (kept for logs, never shown).
//
// Messages must never contain a secret: they are written for the partner and reach responses.
type Error struct {
	Code       ErrorCode
	Message    string
	ProviderID ProviderID
	// RetryAfter, when positive, tells the client when trying again makes sense (rate limits,
	// cooldowns, provider outages).
	RetryAfter time.Duration
	// Err is the cause, for logs. It is not part of Error() so that it cannot leak into a
	// response by accident.
	Err error
}

func (e *Error) Error() string {
	if e.ProviderID != "" {
		return fmt.Sprintf("%s: %s: %s", e.ProviderID, e.Code, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Excerpt shortens what a caller sent to at most n characters (runes, never splitting one),
// with an ellipsis, before a message quotes it back.
func Excerpt(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCodeOf returns the code of the first *Error in err's chain, EInternal for any other
// non-nil error, and "" for nil.
func ErrorCodeOf(err error) ErrorCode {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ErrorMessage returns the partner-safe message of err. Errors that are not *Error are
// internal: their text may name files, queries or hosts, so it is replaced.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "An internal error occurred."
}
