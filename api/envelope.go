package api

import (
	"encoding/json"
	"net/http"
)

// ErrorItem is one error or warning in a response (ErrorItem in the API). On a success
// response it reports a partial result: one provider down, one item rejected.
type ErrorItem struct {
	ProviderID string `json:"provider_id,omitempty"`
	Cause      string `json:"cause"`
	Message    string `json:"message"`
}

// errorResponse is CalicoErrorResponse: only errors, sent with an error status.
type errorResponse struct {
	Errors []ErrorItem `json:"errors"`
}

// PageData tells a list response's position: the cursor of the next page, if any.
type PageData struct {
	NextCursor *string `json:"next_cursor"`
	HasMore    bool    `json:"has_more"`
	Limit      int     `json:"limit"`
}

// envelope is the success shape: data, errors (never null) and, on lists, page.
type envelope struct {
	Data   any         `json:"data"`
	Errors []ErrorItem `json:"errors"`
	Page   *PageData   `json:"page,omitempty"`
}

// writeData sends a success envelope. Partial failures go in errs; a nil errs is sent as [].
func writeData(w http.ResponseWriter, status int, data any, errs []ErrorItem, page *PageData) {
	if errs == nil {
		errs = []ErrorItem{}
	}
	writeJSON(w, status, envelope{Data: data, Errors: errs, Page: page})
}

// writeJSON encodes v as the response body. Encoding errors after the header is sent cannot
// be reported to the client; they only happen for values we build ourselves.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
