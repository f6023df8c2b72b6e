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
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"
)

//go:embed dist
var dist embed.FS

// asset is one file of the bundle, with its validator and, for text, a gzip copy made on the
// first request that accepts it.
type asset struct {
	name  string
	body  []byte
	etag  string
	ctype string

	gzipOnce sync.Once
	gz       []byte // nil when compressing does not pay
}

func (a *asset) gzipped() []byte {
	a.gzipOnce.Do(func() {
		if len(a.body) < 1024 || !(strings.HasPrefix(a.ctype, "text/") || strings.Contains(a.ctype, "javascript")) {
			return
		}
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression) // a valid level: cannot fail
		zw.Write(a.body)                                       // into memory: cannot fail
		zw.Close()
		if b.Len() < len(a.body)*9/10 {
			a.gz = b.Bytes()
		}
	})
	return a.gz
}

// hashed matches the names esbuild gives the chunks (name-HASH.js): their content never changes
// under a name, so a browser may keep them without asking again.
var hashed = regexp.MustCompile(`-[A-Z0-9]{8}\.(js|css)$`)

// Handler serves the console: index.html at / and the bundle's files beside it. Unknown paths
// answer 404. The token never travels in a URL; the headers keep the page from being framed or
// from leaking its address.
//
// Every file has an ETag (a hash of its content), so a reload revalidates it with a 304 instead
// of downloading it again, and the browser can reuse the code it compiled from it; JavaScript and
// CSS are sent gzip-compressed to a browser that accepts it; the hashed chunks are cached for a
// year, the rest (index.html, app.js, app.css) revalidated on every load.
func Handler() http.Handler {
	files, err := fs.Sub(dist, "dist")
	if err != nil {
		panic("console: the embedded dist folder is missing: " + err.Error()) // a build error, not a run-time one
	}
	assets := map[string]*asset{}
	err = fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(files, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ctype := mime.TypeByExtension(path.Ext(p))
		if ctype == "" {
			ctype = http.DetectContentType(b)
		}
		assets["/"+p] = &asset{name: p, body: b, etag: `"` + hex.EncodeToString(sum[:12]) + `"`, ctype: ctype}
		return nil
	})
	if err != nil {
		panic("console: cannot read the embedded dist folder: " + err.Error()) // a build error, not a run-time one
	}
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
		p := r.URL.Path
		if p == "/" {
			p = "/index.html"
		}
		a := assets[p]
		if a == nil {
			http.NotFound(w, r)
			return
		}
		if hashed.MatchString(p) {
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			h.Set("Cache-Control", "no-cache")
		}
		h.Set("Content-Type", a.ctype)
		body, etag := a.body, a.etag
		if gz := a.gzipped(); gz != nil {
			h.Add("Vary", "Accept-Encoding")
			if acceptsGzip(r.Header.Get("Accept-Encoding")) {
				body, etag = gz, strings.TrimSuffix(a.etag, `"`)+`-gz"`
				h.Set("Content-Encoding", "gzip")
			}
		}
		h.Set("ETag", etag)
		http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(body))
	})
}

// acceptsGzip tells whether an Accept-Encoding header admits gzip (not refused with q=0).
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(name), "gzip") && strings.TrimSpace(name) != "*" {
			continue
		}
		q := strings.ReplaceAll(params, " ", "")
		return !(q == "q=0" || q == "q=0.0" || q == "q=0.00" || q == "q=0.000")
	}
	return false
}
