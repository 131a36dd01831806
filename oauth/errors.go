package oauth

import (
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
)

// Error is an OAuth error (RFC 6749 §4.1.2.1 and §5.2). Description is shown to the client
// and never contains a secret.
type Error struct {
	Code        string // invalid_request, invalid_client, invalid_grant, …
	Description string
	// Redirect is the URL the authorization endpoint sends the error to (with error, its
	// description and state added). Empty: the error must be shown on a page instead, because
	// the client or redirect URI cannot be trusted.
	Redirect string
	state    string
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

// The error codes of RFC 6749.
const (
	ErrInvalidRequest          = "invalid_request"
	ErrInvalidClient           = "invalid_client"
	ErrInvalidGrant            = "invalid_grant"
	ErrUnauthorizedClient      = "unauthorized_client"
	ErrUnsupportedGrantType    = "unsupported_grant_type"
	ErrUnsupportedResponseType = "unsupported_response_type"
	ErrInvalidScope            = "invalid_scope"
	ErrAccessDenied            = "access_denied"
	ErrServerError             = "server_error"
)

func oauthError(code, description string) *Error { return &Error{Code: code, Description: description} }

// RedirectURL returns the error's redirect (RFC 6749 §4.1.2.1), or "" for a page error.
func (e *Error) RedirectURL(issuer string) string {
	if e.Redirect == "" {
		return ""
	}
	params := url.Values{"error": {e.Code}, "iss": {issuer}}
	if e.Description != "" {
		params.Set("error_description", e.Description)
	}
	if e.state != "" {
		params.Set("state", e.state)
	}
	return addQuery(e.Redirect, params)
}

// addQuery adds params to a URL's query, keeping the query it already has (RFC 6749 §3.1.2).
func addQuery(rawURL string, params url.Values) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	return u.String()
}

var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Authorization error</title></head>
<body><main><h1>This authorization request cannot be completed</h1>
<p id="error-code">{{.Code}}</p><p id="error-description">{{.Description}}</p>
<p>Return to the application you came from and try again, or contact its support.</p></main></body></html>
`))

// WriteAuthorizeError answers an authorization request that failed: a redirect to the client
// when the error carries one, else an HTML error page (400). The widget uses it too.
func (s *Server) WriteAuthorizeError(w http.ResponseWriter, r *http.Request, err error) {
	e, ok := err.(*Error)
	if !ok {
		s.log.ErrorContext(r.Context(), "oauth: authorize", "err", err.Error())
		e = oauthError(ErrServerError, "An internal error occurred.")
	}
	if to := e.RedirectURL(s.issuer); to != "" {
		http.Redirect(w, r, to, http.StatusFound)
		return
	}
	status := http.StatusBadRequest
	if e.Code == ErrServerError {
		status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	_ = errorPage.Execute(w, e)
}

// writeTokenError answers the token and revocation endpoints (RFC 6749 §5.2).
func (s *Server) writeTokenError(w http.ResponseWriter, r *http.Request, err error) {
	e, ok := err.(*Error)
	if !ok {
		s.log.ErrorContext(r.Context(), "oauth: token endpoint", "err", err.Error())
		e = oauthError(ErrServerError, "An internal error occurred.")
	}
	status := http.StatusBadRequest
	switch e.Code {
	case ErrInvalidClient:
		status = http.StatusUnauthorized
		w.Header().Set("WWW-Authenticate", `Basic realm="opencalico", charset="UTF-8"`)
	case ErrServerError:
		status = http.StatusInternalServerError
	}
	writeJSON(w, status, map[string]string{"error": e.Code, "error_description": e.Description})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
