package city

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/paulmach/orb"
	"gopkg.in/yaml.v3"

	"github.com/muckwatch/muckwatch/geo"
)

// The files of a city folder. Only city.yaml is required; a missing other file means none of
// its kind.
const (
	FileCity      = "city.yaml"
	FileDistricts = "districts.geojson"
	FileSites     = "sites.geojson"
	FileRoutes    = "routes.geojson"
	FileZones     = "zones.geojson"
	FileVehicles  = "vehicles.csv"
	FilePermits   = "permits.csv"
)

// cityFiles lists the files of a city folder.
func cityFiles() []string {
	return []string{FileCity, FileDistricts, FileSites, FileRoutes, FileZones, FileVehicles, FilePermits}
}

// Defaults applied when city.yaml or a feature leaves a value out.
const (
	DefaultTimezone       = "Asia/Shanghai"
	DefaultSpeedLimitKmh  = 40.0
	DefaultCorridorM      = 50.0
	maxReportedProblems   = 50
	maxPlausibleSpeedKmh  = 200.0
	maxPlausibleCorridorM = 5000.0
	maxPlausibleLoadKg    = 200000.0
)

// Load reads the city folder dir (see configs/README.md for its format), validates it and
// returns the immutable City. Errors name the file and the feature or line and what is wrong;
// all problems found are reported together (up to 50), one per line.
func Load(dir string) (*City, error) {
	if st, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("city folder: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("city folder %s: not a directory", dir)
	}
	return load(os.DirFS(dir), func(name string) string { return filepath.Join(dir, name) })
}

// LoadFS is Load for a folder inside a file system, such as the embedded configs.FS:
// LoadFS(configs.FS, "cities/shenzhen").
func LoadFS(fsys fs.FS, dir string) (*City, error) {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("city folder %s: %w", dir, err)
	}
	return load(sub, func(name string) string { return path.Join(dir, name) })
}

// problems collects load errors, keeping the first maxReportedProblems.
type problems struct {
	errs    []error
	dropped int
}

func (p *problems) add(errs ...error) {
	for _, err := range errs {
		if err == nil {
			continue
		}
		if len(p.errs) >= maxReportedProblems {
			p.dropped++
			continue
		}
		p.errs = append(p.errs, err)
	}
}

func (p *problems) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	errs := p.errs
	if p.dropped > 0 {
		errs = append(slices.Clip(errs), fmt.Errorf("... and %d more problems", p.dropped))
	}
	return errors.Join(errs...)
}

// cityYAML is city.yaml.
type cityYAML struct {
	Name                 string    `yaml:"name"`
	Timezone             string    `yaml:"timezone"`
	Origin               []float64 `yaml:"origin"`
	GeometryCRS          string    `yaml:"geometry_crs"`
	DefaultSpeedLimitKmh *float64  `yaml:"default_speed_limit_kmh"`
}

// loader holds the state of one Load.
type loader struct {
	fsys    fs.FS
	display func(name string) string
	probs   problems
	c       *City
	gcj     bool
	strs    map[string]string // the CSV values kept, each once (see keep)
}

// keep returns s as a string of its own, the same one for equal values: a CSV field is a slice of
// its whole line, which a kept field would otherwise keep alive (tens of MB with 100,000 permits),
// and companies, sites and routes repeat on many lines.
func (l *loader) keep(s string) string {
	if k, ok := l.strs[s]; ok {
		return k
	}
	if l.strs == nil {
		l.strs = map[string]string{}
	}
	k := strings.Clone(s)
	l.strs[k] = k
	return k
}

func load(fsys fs.FS, display func(string) string) (*City, error) {
	l := &loader{fsys: fsys, display: display, c: &City{}}
	c := l.c

	cfg, err := l.readCityYAML()
	if err != nil {
		return nil, err
	}
	l.checkFolder()

	// Geometry files, in WGS-84 after this step.
	districts := l.readAreas(FileDistricts)
	sites := l.readAreas(FileSites)
	zones := l.readAreas(FileZones)
	routes := l.readRoutes()
	if err := l.probs.err(); err != nil {
		return nil, err
	}

	// Projection.
	if len(cfg.Origin) > 0 {
		c.Origin = orb.Point{cfg.Origin[0], cfg.Origin[1]}
		if l.gcj {
			c.Origin = geo.GCJ02ToWGS84(c.Origin)
		}
	} else {
		c.Origin, err = defaultOrigin(districts, sites, zones, routes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", l.display(FileCity), err)
		}
	}
	c.Proj = geo.NewProjection(c.Origin)

	l.buildDistricts(districts)
	l.buildSites(sites)
	l.buildZones(zones)
	c.markClosedMinutes()
	c.lowestSpeedLimit = c.DefaultSpeedLimitKmh
	for _, z := range c.Zones {
		if z.Kind == ZoneSpeed {
			c.lowestSpeedLimit = min(c.lowestSpeedLimit, z.SpeedLimitKmh)
		}
	}
	l.buildRoutes(routes)
	l.readVehicles()
	l.readPermits()
	if err := l.probs.err(); err != nil {
		return nil, err
	}
	return c, nil
}

func (l *loader) read(name string) ([]byte, bool, error) {
	data, err := fs.ReadFile(l.fsys, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", l.display(name), err)
	}
	return data, true, nil
}

func (l *loader) readCityYAML() (*cityYAML, error) {
	file := l.display(FileCity)
	data, ok, err := l.read(FileCity)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%s: missing: a city folder needs a city.yaml (see configs/README.md)", file)
	}
	var cfg cityYAML
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty", file)
		}
		return nil, yamlError(file, err)
	}
	c := l.c
	var p problems
	c.Name = strings.TrimSpace(cfg.Name)
	if c.Name == "" {
		p.add(fmt.Errorf("%s: name: missing", file))
	}
	tz := strings.TrimSpace(cfg.Timezone)
	if tz == "" {
		tz = DefaultTimezone
	}
	if c.Location, err = time.LoadLocation(tz); err != nil {
		p.add(fmt.Errorf("%s: timezone %q: not a known IANA time zone (e.g. Asia/Shanghai)", file, tz))
	}
	switch strings.NewReplacer("-", "", "_", "").Replace(strings.ToLower(strings.TrimSpace(cfg.GeometryCRS))) {
	case "", "wgs84":
		c.GeometryCRS = CRSWGS84
	case "gcj02":
		c.GeometryCRS = CRSGCJ02
		l.gcj = true
	default:
		p.add(fmt.Errorf("%s: geometry_crs %q: want wgs84 or gcj02", file, cfg.GeometryCRS))
	}
	c.DefaultSpeedLimitKmh = DefaultSpeedLimitKmh
	if cfg.DefaultSpeedLimitKmh != nil {
		v := *cfg.DefaultSpeedLimitKmh
		if !(v > 0 && v <= maxPlausibleSpeedKmh) {
			p.add(fmt.Errorf("%s: default_speed_limit_kmh %v: want a number above 0 and at most %v", file, v, maxPlausibleSpeedKmh))
		}
		c.DefaultSpeedLimitKmh = v
	}
	if cfg.Origin != nil {
		if len(cfg.Origin) != 2 {
			p.add(fmt.Errorf("%s: origin: want [lon, lat], got %d numbers", file, len(cfg.Origin)))
		} else if err := checkCoord(orb.Point{cfg.Origin[0], cfg.Origin[1]}); err != nil {
			p.add(fmt.Errorf("%s: origin: %v", file, err))
		}
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// checkFolder reports data files that Load would ignore, most likely misnamed.
func (l *loader) checkFolder() {
	entries, err := fs.ReadDir(l.fsys, ".")
	if err != nil {
		l.probs.add(fmt.Errorf("%s: %w", l.display("."), err))
		return
	}
	for _, e := range entries {
		name := e.Name()
		ext := strings.ToLower(path.Ext(name))
		if e.IsDir() || slices.Contains(cityFiles(), name) {
			continue
		}
		switch ext {
		case ".geojson", ".json", ".csv", ".yaml", ".yml":
			l.probs.add(fmt.Errorf("%s: unexpected file: a city folder holds only %s (rename it, or move it out of the folder)",
				l.display(name), strings.Join(cityFiles(), ", ")))
		}
	}
}

// areaFeature is a decoded polygon feature with its WGS-84 geometry.
type areaFeature struct {
	*feature
	wgs orb.MultiPolygon
}

// readAreas reads a FeatureCollection of Polygon/MultiPolygon features, validating geometry
// and ids (present, unique) and converting GCJ-02 to WGS-84.
func (l *loader) readAreas(name string) []areaFeature {
	feats := l.readCollection(name)
	out := make([]areaFeature, 0, len(feats))
	for _, ft := range feats {
		mp, err := ft.areaGeometry()
		if err != nil {
			l.probs.add(err)
			continue
		}
		out = append(out, areaFeature{feature: ft, wgs: l.toWGSMulti(mp)})
	}
	return out
}

// readCollection reads a GeoJSON file's features, checking ids are present and unique.
func (l *loader) readCollection(name string) []*feature {
	data, ok, err := l.read(name)
	if err != nil {
		l.probs.add(err)
		return nil
	}
	if !ok {
		return nil
	}
	feats, errs, fatal := readFeatures(l.display(name), data)
	if fatal != nil {
		l.probs.add(fatal)
		return nil
	}
	l.probs.add(errs...)
	seen := make(map[string]*feature, len(feats))
	out := feats[:0]
	for _, ft := range feats {
		if ft.id == "" {
			l.probs.add(ft.errorf("missing id (set properties.id)"))
			continue
		}
		if prev, dup := seen[ft.id]; dup {
			l.probs.add(ft.errorf("duplicate id, also used by %s", prev.where()))
			continue
		}
		seen[ft.id] = ft
		out = append(out, ft)
	}
	return out
}

func (l *loader) toWGSMulti(mp orb.MultiPolygon) orb.MultiPolygon {
	out := make(orb.MultiPolygon, len(mp))
	for i, pg := range mp {
		out[i] = make(orb.Polygon, len(pg))
		for j, ring := range pg {
			r := make(orb.Ring, len(ring))
			for k, p := range ring {
				r[k] = l.toWGS(p)
			}
			out[i][j] = r
		}
	}
	return out
}

func (l *loader) toWGS(p orb.Point) orb.Point {
	if l.gcj {
		return geo.GCJ02ToWGS84(p)
	}
	return p
}

// routeFeature is a decoded route feature.
type routeFeature struct {
	*feature
	wgs              orb.LineString
	name             string
	corridorM        float64
	fromSite, toSite string
}

func (l *loader) readRoutes() []routeFeature {
	feats := l.readCollection(FileRoutes)
	out := make([]routeFeature, 0, len(feats))
	for _, ft := range feats {
		ls, err := ft.lineGeometry()
		if err != nil {
			l.probs.add(err)
			continue
		}
		r := routeFeature{feature: ft, corridorM: DefaultCorridorM}
		r.wgs = make(orb.LineString, len(ls))
		for i, p := range ls {
			r.wgs[i] = l.toWGS(p)
		}
		var errs [4]error
		r.name, errs[0] = ft.str("name")
		r.fromSite, errs[1] = ft.str("from_site")
		r.toSite, errs[2] = ft.str("to_site")
		v, ok, err := ft.num("corridor_m")
		errs[3] = err
		if ok {
			if !(v > 0 && v <= maxPlausibleCorridorM) {
				errs[3] = ft.errorf("corridor_m %v: want metres above 0 and at most %v", v, maxPlausibleCorridorM)
			}
			r.corridorM = v
		}
		if err := errors.Join(errs[:]...); err != nil {
			l.probs.add(errs[:]...)
			continue
		}
		out = append(out, r)
	}
	return out
}

// defaultOrigin is the centre of the districts' bounds, else of all geometry's bounds.
func defaultOrigin(districts, sites, zones []areaFeature, routes []routeFeature) (orb.Point, error) {
	var b orb.Bound
	have := false
	extend := func(g orb.Geometry) {
		if !have {
			b, have = g.Bound(), true
		} else {
			b = b.Union(g.Bound())
		}
	}
	for _, d := range districts {
		extend(d.wgs)
	}
	if !have {
		for _, s := range sites {
			extend(s.wgs)
		}
		for _, z := range zones {
			extend(z.wgs)
		}
		for _, r := range routes {
			extend(r.wgs)
		}
	}
	if !have {
		return orb.Point{}, errors.New("origin: not given, and there is no geometry (districts, sites, zones or routes) to centre the projection on")
	}
	return b.Center(), nil
}

func (l *loader) buildDistricts(feats []areaFeature) {
	c := l.c
	c.districtByID = make(map[string]*District, len(feats))
	areas := make([]geo.Area, 0, len(feats))
	for _, af := range feats {
		name, err := af.str("name")
		if err != nil {
			l.probs.add(err)
			continue
		}
		d := &District{ID: af.id, Name: orDefault(name, af.id), WGS: af.wgs}
		d.Area = geo.NewArea(d.ID, c.Proj.MultiPolygon(af.wgs))
		c.Districts = append(c.Districts, d)
		c.districtByID[d.ID] = d
		areas = append(areas, d.Area)
	}
	c.districtIdx = geo.NewAreaIndex(areas)
}

func (l *loader) buildSites(feats []areaFeature) {
	c := l.c
	c.siteByID = make(map[string]*Site, len(feats))
	areas := make([]geo.Area, 0, len(feats))
	for _, af := range feats {
		name, err1 := af.str("name")
		kind, err2 := af.str("kind")
		district, err3 := af.str("district")
		if err := errors.Join(err1, err2, err3); err != nil {
			l.probs.add(err1, err2, err3)
			continue
		}
		s := &Site{ID: af.id, Name: orDefault(name, af.id), Kind: SiteKind(kind), District: district, WGS: af.wgs}
		switch s.Kind {
		case SiteConstruction, SiteDisposal:
		case "":
			l.probs.add(af.errorf("missing kind: want %q or %q", SiteConstruction, SiteDisposal))
			continue
		default:
			l.probs.add(af.errorf("kind %q: want %q or %q", kind, SiteConstruction, SiteDisposal))
			continue
		}
		s.Area = geo.NewArea(s.ID, c.Proj.MultiPolygon(af.wgs))
		if s.District == "" {
			if d := c.DistrictAt(s.Area.Bound.Center()); d != nil {
				s.District = d.ID
			}
		} else if c.districtByID[s.District] == nil {
			l.probs.add(af.errorf("district %q: no such district in %s", s.District, FileDistricts))
			continue
		}
		c.Sites = append(c.Sites, s)
		c.siteByID[s.ID] = s
		areas = append(areas, s.Area)
	}
	c.siteIdx = geo.NewAreaIndex(areas)
}

func (l *loader) buildZones(feats []areaFeature) {
	c := l.c
	c.zoneByID = make(map[string]*Zone, len(feats))
	areas := make([]geo.Area, 0, len(feats))
	for _, af := range feats {
		if z := l.buildZone(af); z != nil {
			c.Zones = append(c.Zones, z)
			c.zoneByID[z.ID] = z
			areas = append(areas, z.Area)
		}
	}
	c.zoneIdx = geo.NewAreaIndex(areas)
}

func (l *loader) buildZone(af areaFeature) *Zone {
	name, err1 := af.str("name")
	kind, err2 := af.str("kind")
	closed, err3 := af.strs("closed")
	limit, hasLimit, err4 := af.num("speed_limit_kmh")
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		l.probs.add(err1, err2, err3, err4)
		return nil
	}
	z := &Zone{ID: af.id, Name: orDefault(name, af.id), Kind: ZoneKind(kind), WGS: af.wgs}
	switch z.Kind {
	case ZoneRestricted:
		if hasLimit {
			l.probs.add(af.errorf("speed_limit_kmh is only for speed zones; make a separate zone of kind %q", ZoneSpeed))
			return nil
		}
		if len(closed) == 0 {
			l.probs.add(af.errorf("restricted zone without windows: set closed, e.g. [\"daily 07:00-09:00\"]"))
			return nil
		}
		for _, s := range closed {
			w, err := ParseWindow(s)
			if err != nil {
				l.probs.add(af.errorf("window %q: %v", s, err))
				return nil
			}
			z.Closed = append(z.Closed, w)
		}
	case ZoneSpeed:
		if len(closed) > 0 {
			l.probs.add(af.errorf("closed is only for restricted zones; make a separate zone of kind %q", ZoneRestricted))
			return nil
		}
		if !hasLimit {
			l.probs.add(af.errorf("speed zone without speed_limit_kmh"))
			return nil
		}
		if !(limit > 0 && limit <= maxPlausibleSpeedKmh) {
			l.probs.add(af.errorf("speed_limit_kmh %v: want a positive limit of at most %v", limit, maxPlausibleSpeedKmh))
			return nil
		}
		z.SpeedLimitKmh = limit
	case "":
		l.probs.add(af.errorf("missing kind: want %q or %q", ZoneRestricted, ZoneSpeed))
		return nil
	default:
		l.probs.add(af.errorf("kind %q: want %q or %q", kind, ZoneRestricted, ZoneSpeed))
		return nil
	}
	z.Area = geo.NewArea(z.ID, l.c.Proj.MultiPolygon(af.wgs))
	return z
}

func (l *loader) buildRoutes(feats []routeFeature) {
	c := l.c
	c.routeByID = make(map[string]*Route, len(feats))
	for _, rf := range feats {
		bad := false
		for _, ref := range []struct{ key, id string }{{"from_site", rf.fromSite}, {"to_site", rf.toSite}} {
			if ref.id != "" && c.siteByID[ref.id] == nil {
				l.probs.add(rf.errorf("%s %q: no such site in %s", ref.key, ref.id, FileSites))
				bad = true
			}
		}
		if bad {
			continue
		}
		r := &Route{ID: rf.id, Name: orDefault(rf.name, rf.id), WGS: rf.wgs, FromSite: rf.fromSite, ToSite: rf.toSite}
		r.Corridor = geo.NewCorridor(r.ID, c.Proj.LineString(rf.wgs), rf.corridorM)
		c.Routes = append(c.Routes, r)
		c.routeByID[r.ID] = r
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// finite reports whether v is neither NaN nor infinite.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// yamlError formats a city.yaml decoding error, one problem per line.
func yamlError(file string, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return fmt.Errorf("%s: %s", file, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	errs := make([]error, 0, len(te.Errors))
	for _, e := range te.Errors {
		e = strings.Replace(e, " in type city.cityYAML", "", 1)
		if strings.Contains(e, "not found") {
			e += " (known fields: name, timezone, origin, geometry_crs, default_speed_limit_kmh)"
		}
		errs = append(errs, fmt.Errorf("%s: %s", file, e))
	}
	return errors.Join(errs...)
}
