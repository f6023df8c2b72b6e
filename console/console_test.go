package console

import (
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	h := Handler()
	for _, tc := range []struct {
		method, path string
		want         int
		ctype, body  string
	}{
		{"GET", "/", 200, "text/html", `<script type="module" src="app.js">`},
		{"GET", "/app.js", 200, "javascript", "maplibre"},
		{"GET", "/app.css", 200, "text/css", ".maplibregl-map"},
		{"GET", "/nope.js", 404, "", ""},
		{"POST", "/", 405, "", ""},
	} {
		req := httptest.NewRequest(tc.method, tc.path, nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, w.Code, tc.want)
			continue
		}
		if tc.want != 200 {
			continue
		}
		if ct := w.Header().Get("Content-Type"); !strings.Contains(ct, tc.ctype) {
			t.Errorf("%s: Content-Type %q, want %s", tc.path, ct, tc.ctype)
		}
		if !strings.Contains(w.Body.String(), tc.body) {
			t.Errorf("%s: the body has no %q", tc.path, tc.body)
		}
		if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("%s: Content-Security-Policy %q does not keep the page to its own origin", tc.path, csp)
		}
	}
}

// TestNoOutsideAssets checks that the page loads nothing from another origin: no CDN, no web
// font, no tile service (the city's own layers are drawn on a plain background).
func TestNoOutsideAssets(t *testing.T) {
	for _, f := range []string{"dist/index.html", "dist/app.css"} {
		b, err := dist.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if m := outside.Find(b); m != nil {
			t.Errorf("%s loads %q: every asset must be served by muckwatch", f, m)
		}
	}
}

// outside matches a reference that would make the browser fetch from another origin (an SVG's
// xmlns is not one).
var outside = regexp.MustCompile(`(url\(\s*["']?|src=["']|href=["']|@import\s+["']?)(https?:)?//`)
