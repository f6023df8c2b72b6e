package api

// The analysts' endpoints: GET /api/v1/violations, /api/v1/vehicles/{plate}/track and
// /api/v1/heatmap.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/muckwatch/muckwatch/city"
	"github.com/muckwatch/muckwatch/detectors"
)

// Limits of the parameters.
const (
	defaultViolationLimit = 1000
	maxFilterBytes        = 256
	defaultCellM          = 500
	minCellM, maxCellM    = 50, 20_000
	metresPerDegreeLat    = 111_320.0
)

func (s *Server) noStore(w http.ResponseWriter) bool {
	if s.store != nil {
		return false
	}
	writeError(w, http.StatusServiceUnavailable, "the history is not available: this server has no ClickHouse store configured")
	return true
}

// errQueryTimeout is a history query that did not finish within api.query_timeout.
var errQueryTimeout = errors.New("the history query did not finish in time")

// timedOut is errQueryTimeout with the timeout that passed (api.query_timeout, or
// api.kpi.query_timeout for a KPI request), for the client's message.
type timedOut struct {
	after time.Duration
	err   error
}

func (e *timedOut) Error() string {
	return fmt.Sprintf("%v after %s: %v", errQueryTimeout, e.after, e.err)
}
func (e *timedOut) Unwrap() []error { return []error{errQueryTimeout, e.err} }

// errQueriesBusy is a history query refused because api.max_queries are running.
var errQueriesBusy = errors.New("too many history queries are running")

// query runs fn, ClickHouse queries for a request, bounded by api.query_timeout and by
// api.max_queries at once. It returns when fn does or when the timeout passes, whichever is
// first: a driver that does not notice its context (a server that accepted the connection and
// went silent) cannot hold the request, only the query's slot until the driver gives up.
func (s *Server) query(ctx context.Context, fn func(context.Context) error) error {
	return s.queryWithin(ctx, s.cfg.QueryTimeout, fn)
}

// queryWithin is query bounded by timeout instead of api.query_timeout: the KPIs' questions over
// a year are analysts' reports, given api.kpi.query_timeout.
func (s *Server) queryWithin(ctx context.Context, timeout time.Duration, fn func(context.Context) error) error {
	select {
	case s.queries <- struct{}{}:
	default:
		return errQueriesBusy
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	done := make(chan error, 1)
	go func() {
		defer func() { <-s.queries }()
		defer cancel()
		done <- fn(ctx)
	}()
	deadline, _ := ctx.Deadline()
	select {
	case err := <-done:
		// the driver may give up on its own network deadline (set from ctx) a moment before ctx's
		// timer fires: a failure at or past the deadline, or a network timeout, is a timeout
		var ne net.Error
		if err != nil && (!time.Now().Before(deadline) || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())) {
			return &timedOut{after: timeout, err: err}
		}
		return err
	case <-ctx.Done():
		if ctx.Err() == context.DeadlineExceeded {
			return &timedOut{after: timeout, err: ctx.Err()}
		}
		return ctx.Err()
	}
}

// historyFailed answers a failed ClickHouse query: 504 when it timed out, 503 otherwise, with a
// message for the client and the details only in the log.
func (s *Server) historyFailed(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, errQueryTimeout):
		after := s.cfg.QueryTimeout
		var to *timedOut
		if errors.As(err, &to) {
			after = to.after
		}
		s.log.Warn("API query timed out", "path", r.URL.Path, "timeout", after, "err", err)
		w.Header().Set("Retry-After", "30")
		writeError(w, http.StatusGatewayTimeout, fmt.Sprintf("the history (ClickHouse) did not answer within %s; narrow the window or retry later", after))
	case errors.Is(err, errQueriesBusy):
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("%d history queries are already running, the most at once; retry in a few seconds", s.cfg.MaxQueries))
	case errors.Is(err, context.Canceled):
		// the client went away
	default:
		s.log.Warn("API history query failed", "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "30")
		writeError(w, http.StatusServiceUnavailable, "the history (ClickHouse) is not available now; retry later")
	}
}

// textParam checks a free-text filter.
func textParam(v, name string) (string, error) {
	v = strings.TrimSpace(v)
	if len(v) > maxFilterBytes {
		return "", fmt.Errorf("%s must be at most %d bytes, got %d", name, maxFilterBytes, len(v))
	}
	return v, nil
}

// plateParam normalises a plate given as parameter name.
func plateParam(raw, name string) (string, error) {
	plate := city.NormalizePlate(raw)
	if plate == "" || len(plate) > 32 {
		return "", fmt.Errorf("%s %q is not a licence plate", name, raw)
	}
	return plate, nil
}

func sortedKeys(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// violationParams parses GET /api/v1/violations' parameters.
func (s *Server) violationParams(r *http.Request) (ViolationQuery, string, error) {
	q := r.URL.Query()
	var vq ViolationQuery
	var errs []error
	var err error
	if vq.From, vq.To, err = s.window(r); err != nil {
		errs = append(errs, err)
	}
	f, err := alertFilter(q.Get("rule"), q.Get("severity"), "")
	if err != nil {
		errs = append(errs, err)
	}
	vq.Rules, vq.Severities = sortedKeys(f.Rules), sortedKeys(f.Severities)
	districts, err := s.districtParam(q.Get("district"))
	if err != nil {
		errs = append(errs, err)
	}
	vq.Districts = sortedKeys(districts)
	if vq.Company, err = textParam(q.Get("company"), "company"); err != nil {
		errs = append(errs, err)
	}
	if vq.Site, err = textParam(q.Get("site"), "site"); err != nil {
		errs = append(errs, err)
	}
	if raw := q.Get("vehicle"); raw != "" {
		if vq.Vehicle, err = plateParam(raw, "vehicle"); err != nil {
			errs = append(errs, err)
		}
	}
	seen := map[string]bool{}
	for _, k := range strings.Split(q.Get("group_by"), ",") {
		if k = strings.TrimSpace(k); k == "" {
			continue
		}
		switch {
		case seen[k]:
			errs = append(errs, fmt.Errorf("group_by lists %q twice", k))
		case !slices.Contains(ViolationGroupKeys(), k):
			errs = append(errs, fmt.Errorf("group_by: %q is not one of %s", k, strings.Join(ViolationGroupKeys(), ", ")))
		default:
			vq.GroupBy = append(vq.GroupBy, k)
		}
		seen[k] = true
	}
	format := orDefault(q.Get("format"), "json")
	if format != "json" && format != "csv" {
		errs = append(errs, fmt.Errorf("format must be json or csv, got %q", format))
	}
	if vq.Limit, err = intParam(orDefault(q.Get("limit"), strconv.Itoa(min(defaultViolationLimit, s.cfg.MaxRows))), "limit", 1, s.cfg.MaxRows); err != nil {
		errs = append(errs, err)
	}
	if vq.Offset, err = intParam(orDefault(q.Get("offset"), "0"), "offset", 0, math.MaxInt32); err != nil {
		errs = append(errs, err)
	}
	if vq.Offset > 0 && len(vq.GroupBy) > 0 {
		errs = append(errs, errors.New("offset pages the violations listed; it does not apply with group_by"))
	}
	return vq, format, errors.Join(errs...)
}

func (s *Server) handleViolations(w http.ResponseWriter, r *http.Request) {
	vq, format, err := s.violationParams(r)
	if vq.Vehicle != "" { // looking at one truck's history is a vehicle lookup
		auditPlates(r, vq.Vehicle)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if s.noStore(w) {
		return
	}
	loc := s.city.City().Location
	vq.Location = loc
	from, to := formatTime(vq.From, loc), formatTime(vq.To, loc)
	if len(vq.GroupBy) > 0 {
		var groups []ViolationGroup
		var truncated bool
		err := s.query(r.Context(), func(ctx context.Context) (err error) {
			groups, truncated, err = s.store.ViolationGroups(ctx, vq)
			return err
		})
		if err != nil {
			s.historyFailed(w, r, err)
			return
		}
		if format == "csv" {
			recs := make([][]string, 0, len(groups)+1)
			recs = append(recs, append(slices.Clone(vq.GroupBy), "violations"))
			for _, g := range groups {
				rec := make([]string, 0, len(g.Keys)+1)
				for _, k := range g.Keys {
					rec = append(rec, csvText(k))
				}
				recs = append(recs, append(rec, strconv.FormatUint(g.Violations, 10)))
			}
			w.Header().Set("X-Truncated", strconv.FormatBool(truncated))
			writeCSV(w, "violations.csv", recs)
			return
		}
		ans := ViolationGroupsAnswer{From: from, To: to, GroupBy: vq.GroupBy, Rows: make([]groupRow, len(groups)), Truncated: truncated}
		for i, g := range groups {
			ans.Rows[i] = groupRow{names: vq.GroupBy, ViolationGroup: g}
		}
		writeBody(w, "application/json; charset=utf-8", ans)
		return
	}
	var recs []detectors.Alert
	var total uint64
	err = s.query(r.Context(), func(ctx context.Context) (err error) {
		recs, total, err = s.store.Violations(ctx, vq)
		return err
	})
	if err != nil {
		s.historyFailed(w, r, err)
		return
	}
	views := make([]ViolationView, len(recs))
	for i := range recs {
		views[i] = violationView(&recs[i], loc)
	}
	if format == "csv" {
		rows := make([][]string, 0, len(views)+1)
		rows = append(rows, violationCSVHeader)
		for _, v := range views {
			rows = append(rows, v.csvRecord())
		}
		w.Header().Set("X-Total-Count", strconv.FormatUint(total, 10))
		if next := nextOffset(r, vq, len(views), total); next != "" {
			w.Header().Set("Link", "<"+next+">; rel=\"next\"")
		}
		writeCSV(w, "violations.csv", rows)
		return
	}
	writeBody(w, "application/json; charset=utf-8", ViolationsAnswer{From: from, To: to, Total: total, Offset: vq.Offset, Violations: views,
		Next: nextOffset(r, vq, len(views), total)})
}

// nextOffset is the request for the page of violations after this one, "" when this is the last.
func nextOffset(r *http.Request, vq ViolationQuery, n int, total uint64) string {
	if n == 0 || uint64(vq.Offset+n) >= total {
		return ""
	}
	q := r.URL.Query()
	q.Set("offset", strconv.Itoa(vq.Offset+n))
	return r.URL.Path + "?" + q.Encode()
}

// districtParam parses a comma-separated list of district ids, each of which must be one of the
// city's.
func (s *Server) districtParam(v string) (map[string]bool, error) {
	set := splitSet(v)
	c := s.city.City()
	var unknown []string
	for d := range set {
		if c.District(d) == nil {
			unknown = append(unknown, d)
		}
	}
	if len(unknown) == 0 {
		return set, nil
	}
	slices.Sort(unknown)
	known := make([]string, 0, len(c.Districts))
	for _, d := range c.Districts {
		known = append(known, d.ID)
	}
	for i, d := range unknown {
		if len(d) > 40 {
			unknown[i] = d[:40] + "…"
		}
	}
	return nil, fmt.Errorf("district %s is not a district of %s (districts: %s)", strings.Join(quoteAll(unknown), ", "), c.Name, strings.Join(known, ", "))
}

// knownPlate reports whether the city knows the plate (registered, or with a permit) or the live
// view has seen it.
func (s *Server) knownPlate(plate string) bool {
	c := s.city.City()
	return c.Vehicle(plate) != nil || len(c.PermitsOf(plate)) > 0 || s.live.Seen(plate)
}

func (s *Server) handleTrack(w http.ResponseWriter, r *http.Request) {
	raw := r.PathValue("plate")
	plate := city.NormalizePlate(raw)
	_, perr := plateParam(raw, "plate")
	auditPlates(r, plate)
	from, to, werr := s.window(r)
	if err := errors.Join(perr, werr); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if s.noStore(w) {
		return
	}
	maxRows := s.cfg.MaxRows
	var points []TrackPoint
	var alerts []detectors.Alert
	everSeen := true
	err := s.query(r.Context(), func(ctx context.Context) (err error) {
		if points, err = s.store.Track(ctx, plate, from, to, maxRows+1); err != nil {
			return err
		}
		if alerts, err = s.store.VehicleAlerts(ctx, plate, from, to, maxRows+1); err != nil {
			return err
		}
		if len(points) == 0 && len(alerts) == 0 && !s.knownPlate(plate) {
			// unknown, and nothing in the window: has muckwatch ever had a position or an alert of it?
			if _, everSeen, err = s.store.LastPosition(ctx, plate); err != nil || everSeen {
				return err
			}
			var ever []detectors.Alert
			ever, err = s.store.VehicleAlerts(ctx, plate, time.UnixMilli(0), s.now().Add(24*time.Hour), 1)
			everSeen = len(ever) > 0
		}
		return err
	})
	if err != nil {
		s.historyFailed(w, r, err)
		return
	}
	c := s.city.City()
	loc := c.Location
	if !everSeen {
		writeError(w, http.StatusNotFound, fmt.Sprintf("vehicle %s is unknown: not registered, no permit, and never seen by muckwatch%s", plate, s.plateHint(plate)))
		return
	}
	if len(points) > maxRows || len(alerts) > maxRows {
		what := "positions"
		if len(alerts) > maxRows {
			what = "alerts"
		}
		writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("%s has more than %d %s from %s to %s; narrow the window (from, to)",
			plate, maxRows, what, formatTime(from, loc), formatTime(to, loc)))
		return
	}
	fc := newFeatureCollection()
	if len(points) > 0 {
		coords := make([][2]float64, len(points))
		props := TrackProperties{Kind: "track", Plate: plate, From: formatTime(from, loc), To: formatTime(to, loc), Points: len(points),
			First: formatTime(time.UnixMilli(points[0].TimeMs), loc), Last: formatTime(time.UnixMilli(points[len(points)-1].TimeMs), loc),
			TimesMs: make([]int64, len(points)), SpeedsKmh: make([]float64, len(points))}
		for i, p := range points {
			coords[i] = [2]float64{p.Lon, p.Lat}
			props.TimesMs[i] = p.TimeMs
			props.SpeedsKmh[i] = roundValue(float64(p.SpeedKmh))
		}
		// A LineString needs two positions (RFC 7946 §3.1.4): a single fix is a Point.
		g := &geometry{Type: "LineString", Coordinates: coords}
		if len(coords) == 1 {
			g = &geometry{Type: "Point", Coordinates: coords[0]}
		}
		fc.Features = append(fc.Features, feature{Type: "Feature", Geometry: g, Properties: props})
	}
	for i := range alerts {
		a := &alerts[i]
		var g *geometry
		if a.Lat != 0 || a.Lon != 0 {
			g = &geometry{Type: "Point", Coordinates: [2]float64{a.Lon, a.Lat}}
		}
		fc.Features = append(fc.Features, feature{Type: "Feature", Geometry: g, Properties: AlertProperties{violationView(a, loc)}})
	}
	writeBody(w, "application/geo+json", fc)
}

func (s *Server) handleHeatmap(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, to, err1 := s.window(r)
	f, err2 := alertFilter(q.Get("rule"), q.Get("severity"), "")
	cellM, err3 := floatParam(orDefault(q.Get("cell_m"), strconv.Itoa(defaultCellM)), "cell_m", minCellM, maxCellM)
	districts, err4 := s.districtParam(q.Get("district"))
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if s.noStore(w) {
		return
	}
	c := s.city.City()
	dlat := cellM / metresPerDegreeLat
	dlon := cellM / (metresPerDegreeLat * math.Cos(c.Origin.Lat()*math.Pi/180))
	maxRows := s.cfg.MaxRows
	var cells []HeatCell
	err := s.query(r.Context(), func(ctx context.Context) (err error) {
		cells, err = s.store.Heatmap(ctx, HeatmapQuery{From: from, To: to, Rules: sortedKeys(f.Rules), Severities: sortedKeys(f.Severities), Districts: sortedKeys(districts), DLat: dlat, DLon: dlon, Limit: maxRows + 1})
		return err
	})
	if err != nil {
		s.historyFailed(w, r, err)
		return
	}
	if len(cells) > maxRows {
		writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("the violations from %s to %s fall in more than %d cells of %g m; narrow the window (from, to), select rules or use larger cells (cell_m)",
			formatTime(from, c.Location), formatTime(to, c.Location), maxRows, cellM))
		return
	}
	fc := newFeatureCollection()
	for _, cell := range cells {
		lat0, lat1 := roundDeg(float64(cell.Row)*dlat), roundDeg(float64(cell.Row+1)*dlat)
		lon0, lon1 := roundDeg(float64(cell.Col)*dlon), roundDeg(float64(cell.Col+1)*dlon)
		ring := [][2]float64{{lon0, lat0}, {lon1, lat0}, {lon1, lat1}, {lon0, lat1}, {lon0, lat0}} // counter-clockwise, closed
		fc.Features = append(fc.Features, feature{Type: "Feature", Geometry: &geometry{Type: "Polygon", Coordinates: [][][2]float64{ring}},
			Properties: HeatCellProperties{Violations: cell.Violations, CellM: cellM}})
	}
	writeBody(w, "application/geo+json", fc)
}

// roundDeg rounds degrees to 1e-7 (about a centimetre).
func roundDeg(x float64) float64 { return math.Round(x*1e7) / 1e7 }
