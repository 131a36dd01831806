// Package api serves opencalico over HTTP: the JSON envelope and errors, request ids, logs,
// metrics, health, and the API routes. Handlers call the services they are given and map
// application errors to statuses in one place (errors.go).
package api

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/opencalico/opencalico"
)

// Database is what the health endpoints ask of the store.
type Database interface {
	Ping(ctx context.Context) error
	MigrationsCurrent(ctx context.Context) (bool, error)
}

// Config tunes the HTTP layer. The zero value is not useful; start from DefaultConfig.
type Config struct {
	// MaxBodyBytes is the largest request body accepted; larger ones get 413.
	MaxBodyBytes int64
}

// DefaultConfig returns the defaults documented in the README.
func DefaultConfig() Config {
	return Config{MaxBodyBytes: 1 << 20}
}

// Server is the HTTP face of opencalico.
type Server struct {
	cfg     Config
	log     *slog.Logger
	db      Database
	metrics *metrics
	mux     *http.ServeMux
	// docs serves the OpenAPI document and the reference page; nil leaves those routes out.
	docs http.Handler
}

// NewServer builds the server and its routes. docs, when not nil, serves GET /openapi.json,
// /docs and /docs/style.css.
func NewServer(cfg Config, log *slog.Logger, db Database, docs http.Handler) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultConfig().MaxBodyBytes
	}
	s := &Server{cfg: cfg, log: log, db: db, metrics: newMetrics(), mux: http.NewServeMux(), docs: docs}
	s.routes()
	return s
}

// Handle adds a route served through the common middleware. Routes of other packages (the
// OAuth server, the widget) are mounted with it so that they share ids, logs and metrics.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, route(pattern, h.ServeHTTP))
}

func (s *Server) routes() {
	s.Handle("GET /healthz", http.HandlerFunc(s.handleHealthz))
	s.Handle("GET /readyz", http.HandlerFunc(s.handleReadyz))
	s.Handle("GET /metrics", s.metrics.handler())
	if s.docs != nil {
		for _, p := range []string{"GET /openapi.json", "GET /docs", "GET /docs/style.css"} {
			s.Handle(p, s.docs)
		}
	}
	s.mux.Handle("/", route("unmatched", s.handleNotFound))
}

// ServeHTTP runs the request through the middleware and the routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.observe(s.limitBody(s.mux)).ServeHTTP(w, r)
}

func (s *Server) handleNotFound(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, opencalico.Errorf(opencalico.ENotFound, "No route %s %s; see /docs for the API.", r.Method, r.URL.Path))
}
