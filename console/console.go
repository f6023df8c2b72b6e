// Package console is muckwatch's browser console: the supervisors' command centre and wall
// screen, the inspection squads' handheld page and the analysts' desk. It is a single-page
// application over the public API (api/), built from web/ with npm and esbuild into dist/ and
// embedded here, so that the muckwatch binary serves it itself: no CDN, no font or tile service.
//
// dist/ is committed (about 1.2 MB) so that `go build` works on a fresh clone without Node; `make
// build` and `make test` rebuild it from web/ (console/build.sh), and the journeys in
// console/e2e run against the rebuilt copy.
package console

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed dist
var dist embed.FS

// Handler serves the console: index.html at / and the bundle's files beside it. Unknown paths
// answer 404. The token never travels in a URL; the headers keep the page from being framed or
// from leaking its address.
func Handler() http.Handler {
	files, err := fs.Sub(dist, "dist")
	if err != nil {
		panic("console: the embedded dist folder is missing: " + err.Error()) // a build error, not a run-time one
	}
	static := http.FileServerFS(files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "the console answers GET and HEAD only", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		// Everything comes from this server; a configured base map's tiles may come from the
		// city's tile server (img/connect), MapLibre's workers start from blob: URLs.
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "+
			"img-src 'self' data: blob: http: https:; connect-src 'self' http: https:; worker-src 'self' blob:; "+
			"frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		if r.URL.Path == "/" || r.URL.Path == "/index.html" {
			h.Set("Cache-Control", "no-cache")
			http.ServeFileFS(w, r, files, "index.html")
			return
		}
		if strings.HasSuffix(r.URL.Path, ".js") || strings.HasSuffix(r.URL.Path, ".css") {
			h.Set("Cache-Control", "no-cache") // revalidated by Last-Modified; small next to a reload's worth
		}
		static.ServeHTTP(w, r)
	})
}
