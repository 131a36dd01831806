package openapi

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// The paths the handlers are meant to be served at. The reference page links its stylesheet and
// the JSON document relatively ("docs/style.css", "openapi.json"), so the three keep working
// together under any common prefix a proxy adds.
const (
	SpecPath  = "/openapi.json"
	DocsPath  = "/docs"
	StylePath = "/docs/style.css"
)

// DocsCSP is the Content-Security-Policy the reference page is written for (and sends, unless a
// middleware has already set one): no scripts, no inline styles, the stylesheet from the same
// origin.
const DocsCSP = "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves GET (and HEAD) SpecPath, DocsPath and StylePath; it answers 404 to every
// other path, so mount it for exactly those three, e.g.
//
//	h := openapi.Handler()
//	mux.Handle("GET "+openapi.SpecPath, h)
//	mux.Handle("GET "+openapi.DocsPath, h)
//	mux.Handle("GET "+openapi.StylePath, h)
//
// or use [SpecHandler], [DocsHandler] and [StyleHandler] separately.
func Handler() http.Handler {
	spec, docs, style := SpecHandler(), DocsHandler(), StyleHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, StylePath):
			style.ServeHTTP(w, r)
		case strings.HasSuffix(r.URL.Path, SpecPath):
			spec.ServeHTTP(w, r)
		case strings.HasSuffix(r.URL.Path, DocsPath):
			docs.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}

// SpecHandler serves the document as application/json (GET /openapi.json), with a strong ETag
// and Cache-Control so that clients revalidate cheaply (If-None-Match answers 304).
func SpecHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := compile()
		if err != nil {
			serverError(w, err)
			return
		}
		serveStatic(w, r, "application/json", c.etag, c.json)
	})
}

// DocsHandler serves the reference page (GET /docs): one server-rendered HTML page, no script,
// no external resource, its stylesheet at StylePath (linked relatively). The page is rendered
// once and cached. It sets [DocsCSP] unless the response already has a Content-Security-Policy.
func DocsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page, err := renderedDocs()
		if err != nil {
			serverError(w, err)
			return
		}
		if w.Header().Get("Content-Security-Policy") == "" {
			w.Header().Set("Content-Security-Policy", DocsCSP)
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		serveStatic(w, r, "text/html; charset=utf-8", page.etag, page.html)
	})
}

// StyleHandler serves the reference page's stylesheet (GET /docs/style.css).
func StyleHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serveStatic(w, r, "text/css; charset=utf-8", styleETag, docsCSS)
	})
}

func serveStatic(w http.ResponseWriter, r *http.Request, contentType, etag string, body []byte) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("ETag", etag)
	h.Set("Cache-Control", "public, max-age=300")
	// ServeContent answers If-None-Match with 304, HEAD without a body, and ranges.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

func serverError(w http.ResponseWriter, err error) {
	// The document is embedded: an error here is a build defect, caught by the package tests.
	slog.Error("openapi: cannot serve the API document", "err", err)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = w.Write([]byte(`{"errors":[{"cause":"internal_error","message":"The API document could not be prepared."}]}` + "\n"))
}
