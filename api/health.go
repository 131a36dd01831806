package api

import (
	"context"
	"net/http"
	"time"

	"github.com/opencalico/opencalico"
)

// healthStatus is the body of /healthz and /readyz (HealthStatus in the OpenAPI document).
// It is not wrapped in the API envelope: load balancers and orchestrators read it, and a
// failed check is reported by name rather than as an API error.
type healthStatus struct {
	Status  string            `json:"status"`
	Version string            `json:"version,omitempty"`
	Checks  map[string]string `json:"checks,omitempty"`
}

// handleHealthz answers while the process serves requests; it checks nothing else, so that
// an orchestrator does not restart a server whose database is merely slow.
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, healthStatus{Status: "ok", Version: opencalico.Version})
}

// handleReadyz answers 200 only when the database is reachable and every migration this
// binary knows is applied: a server that cannot serve should get no traffic.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	checks := map[string]string{"database": "ok", "migrations": "ok"}
	ready := true
	if err := s.db.Ping(ctx); err != nil {
		// The driver's text may name hosts and users: it goes to the log, not the body.
		s.log.WarnContext(ctx, "readiness: database unreachable", "err", err.Error())
		checks["database"] = "unreachable"
		checks["migrations"] = "unknown"
		ready = false
	} else if current, err := s.db.MigrationsCurrent(ctx); err != nil {
		s.log.WarnContext(ctx, "readiness: migration status unknown", "err", err.Error())
		checks["migrations"] = "unknown"
		ready = false
	} else if !current {
		checks["migrations"] = "pending: run `opencalico migrate up`"
		ready = false
	}
	if !ready {
		writeJSON(w, http.StatusServiceUnavailable, healthStatus{Status: "unavailable", Checks: checks})
		return
	}
	writeJSON(w, http.StatusOK, healthStatus{Status: "ok", Checks: checks})
}
