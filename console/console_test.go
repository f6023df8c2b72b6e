package console

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
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
		{"GET", "/app.js", 200, "javascript", "import("},
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

// mapChunk is the name of the chunk that holds MapLibre (the largest file of the bundle).
func mapChunk(t *testing.T) string {
	t.Helper()
	entries, err := fs.ReadDir(dist, "dist")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "chunk-") || !strings.HasSuffix(e.Name(), ".js") {
			continue
		}
		b, _ := dist.ReadFile("dist/" + e.Name())
		if bytes.Contains(b, []byte("maplibre")) && len(b) > 500_000 {
			return e.Name()
		}
	}
	t.Fatal("no chunk of dist/ holds MapLibre")
	return ""
}

// TestCaching checks the validators and the compression: a reload answers 304 without a body,
// a browser that accepts gzip gets the same file compressed, the hashed chunks are cached for
// good and the shell is revalidated.
func TestCaching(t *testing.T) {
	h := Handler()
	get := func(path string, hdr map[string]string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	chunk := "/" + mapChunk(t)
	for _, tc := range []struct {
		path, cache string
	}{
		{"/", "no-cache"},
		{"/app.js", "no-cache"},
		{"/app.css", "no-cache"},
		{chunk, "immutable"},
	} {
		plain := get(tc.path, nil)
		if plain.Code != 200 {
			t.Fatalf("GET %s: %d", tc.path, plain.Code)
		}
		if cc := plain.Header().Get("Cache-Control"); !strings.Contains(cc, tc.cache) {
			t.Errorf("%s: Cache-Control %q, want %s", tc.path, cc, tc.cache)
		}
		etag := plain.Header().Get("ETag")
		if len(etag) < 10 || plain.Header().Get("Content-Encoding") != "" {
			t.Errorf("%s without Accept-Encoding: ETag %q, Content-Encoding %q", tc.path, etag, plain.Header().Get("Content-Encoding"))
		}
		if again := get(tc.path, map[string]string{"If-None-Match": etag}); again.Code != 304 || again.Body.Len() != 0 {
			t.Errorf("%s revalidated with its ETag: %d with %d bytes, want 304 and none", tc.path, again.Code, again.Body.Len())
		}
		if tc.path == "/" {
			continue // too small to compress
		}
		z := get(tc.path, map[string]string{"Accept-Encoding": "br, gzip, deflate"})
		if z.Header().Get("Content-Encoding") != "gzip" || z.Header().Get("ETag") == etag || !strings.Contains(z.Header().Get("Vary"), "Accept-Encoding") {
			t.Errorf("%s with gzip accepted: Content-Encoding %q, ETag %q (plain %q), Vary %q", tc.path,
				z.Header().Get("Content-Encoding"), z.Header().Get("ETag"), etag, z.Header().Get("Vary"))
			continue
		}
		zr, err := gzip.NewReader(z.Body)
		if err != nil {
			t.Fatalf("%s: the gzip body does not open: %v", tc.path, err)
		}
		body, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(body, plain.Body.Bytes()) {
			t.Errorf("%s: the gzip body decompresses to %d bytes (err %v), want the %d of the plain one", tc.path, len(body), err, plain.Body.Len())
		}
		if z.Body.Len() >= plain.Body.Len() {
			t.Errorf("%s: gzip body %d bytes, plain %d", tc.path, z.Body.Len(), plain.Body.Len())
		}
	}
}

func TestAcceptsGzip(t *testing.T) {
	f := func(header string, want bool) {
		t.Helper()
		if got := acceptsGzip(header); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", header, got, want)
		}
	}
	f("", false)
	f("gzip", true)
	f("gzip, deflate, br, zstd", true)
	f("br;q=1.0, GZIP;q=0.5", true)
	f("gzip;q=0", false)
	f("gzip; q=0.000", false)
	f("deflate, br", false)
	f("*", true)
	f("identity", false)
}
