package api

import (
	"context"
	"net/http"
	"time"

	"github.com/opencalico/opencalico"
)

// handleHealthz answers while the process serves requests; it checks nothing else, so that
// an orchestrator does not restart a server whose database is merely slow.
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeData(w, http.StatusOK, map[string]string{"status": "ok", "version": opencalico.Version}, nil, nil)
}

// handleReadyz answers 200 only when the database is reachable and every migration this
// binary knows is applied: a server that cannot serve should get no traffic.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	if err := s.db.Ping(ctx); err != nil {
		s.log.WarnContext(ctx, "readiness: database unreachable", "err", err.Error())
		s.writeError(w, r, &opencalico.Error{Code: opencalico.EProviderUnavailable, Message: "The database is unreachable.", Err: err})
		return
	}
	current, err := s.db.MigrationsCurrent(ctx)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !current {
		s.writeError(w, r, opencalico.Errorf(opencalico.EProviderUnavailable, "Database migrations are pending: run `opencalico migrate up`."))
		return
	}
	writeData(w, http.StatusOK, map[string]string{"status": "ready"}, nil, nil)
}
