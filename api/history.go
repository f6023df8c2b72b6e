package api

import "net/http"

// Analysts' endpoints: being written.

func (s *Server) handleViolations(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotImplemented, "not yet")
}

func (s *Server) handleTrack(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotImplemented, "not yet")
}

func (s *Server) handleHeatmap(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotImplemented, "not yet")
}
