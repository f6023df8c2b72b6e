package api

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
)

// checkParams refuses, with 400, a query parameter the route does not take (a misspelt filter
// would otherwise silently select everything) and a parameter given more than once (only one of
// the values would be used; lists are comma-separated).
func (s *Server) checkParams(w http.ResponseWriter, r *http.Request, rt route) bool {
	q := r.URL.Query()
	var unknown, repeated []string
	for k, vs := range q {
		switch {
		case !slices.Contains(rt.params, k):
			unknown = append(unknown, k)
		case len(vs) > 1:
			repeated = append(repeated, k)
		}
	}
	if len(unknown) == 0 && len(repeated) == 0 {
		return true
	}
	sort.Strings(unknown)
	sort.Strings(repeated)
	var msgs []string
	if len(unknown) > 0 {
		takes := "no query parameters"
		if len(rt.params) > 0 {
			takes = "only " + strings.Join(rt.params, ", ")
		}
		msgs = append(msgs, fmt.Sprintf("unknown query parameter %s: %s %s takes %s", strings.Join(quoteAll(unknown), ", "), rt.method, rt.path, takes))
	}
	for _, k := range repeated {
		msgs = append(msgs, fmt.Sprintf("query parameter %q is given %d times: give it once, with several values comma-separated (%s=a,b)", k, len(q[k]), k))
	}
	writeError(w, http.StatusBadRequest, strings.Join(msgs, "; "))
	return false
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}
