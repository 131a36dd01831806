package api

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// The API tests send every request through validateExchange: the response is checked against
// the OpenAPI document (status, headers, body), and so is the request whenever the server
// accepted it — a request the server accepts must be one the document allows. Requests the
// tests send to provoke errors are invalid by design, so only their responses are checked.

var (
	routerOnce sync.Once
	docRouter  routers.Router
	routerErr  error
)

func openapiRouter(t *testing.T, doc *openapi3.T) routers.Router {
	t.Helper()
	routerOnce.Do(func() {
		// The document's server is "/": requests of any host match.
		docRouter, routerErr = legacy.NewRouter(doc)
	})
	if routerErr != nil {
		t.Fatal(routerErr)
	}
	return docRouter
}

func validateExchange(t *testing.T, doc *openapi3.T, req *http.Request, reqBody []byte, rec *httptest.ResponseRecorder) {
	t.Helper()
	router := openapiRouter(t, doc)
	r := req.Clone(context.Background())
	r.Body = io.NopCloser(bytes.NewReader(reqBody))
	route, params, err := router.FindRoute(r)
	if err != nil {
		t.Errorf("%s %s is not in the OpenAPI document: %v", req.Method, req.URL.Path, err)
		return
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true, MultiError: true}
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route, Options: opts}
	if rec.Code < 300 {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			t.Errorf("%s %s was accepted but the document does not allow it: %v", req.Method, req.URL, err)
		}
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: rec.Code, Header: rec.Header(),
		Body: io.NopCloser(bytes.NewReader(rec.Body.Bytes())), Options: opts}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Errorf("%s %s answered %d, which the document does not describe: %v\n%s", req.Method, req.URL, rec.Code, err, rec.Body.String())
	}
}
