package city

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/paulmach/orb"

	"github.com/muckwatch/muckwatch/geo"
)

func loadMini(t testing.TB) *City {
	t.Helper()
	c, err := Load(filepath.Join("testdata", "mini"))
	if err != nil {
		t.Fatalf("Load(testdata/mini): %v", err)
	}
	return c
}

func TestLoadMini(t *testing.T) {
	c := loadMini(t)
	if c.Name != "Mini" || c.Location.String() != "Asia/Shanghai" || c.GeometryCRS != CRSWGS84 || c.DefaultSpeedLimitKmh != 40 {
		t.Errorf("city = %q %v %q %v", c.Name, c.Location, c.GeometryCRS, c.DefaultSpeedLimitKmh)
	}
	if got := c.LowestSpeedLimitKmh(); got != 30 { // SZ-30, below the default 40 (SZ-60 is above it)
		t.Errorf("LowestSpeedLimitKmh = %v, want 30", got)
	}
	if got, want := c.Origin, (orb.Point{114.02, 22.61}); geo.DistanceM(got, want) > 1 {
		t.Errorf("default origin = %v, want the centre of the districts %v", got, want)
	}
	if len(c.Districts) != 2 || len(c.Sites) != 2 || len(c.Routes) != 2 || len(c.Zones) != 3 || len(c.Vehicles) != 3 || len(c.Permits) != 5 {
		t.Fatalf("counts: %d districts, %d sites, %d routes, %d zones, %d vehicles, %d permits",
			len(c.Districts), len(c.Sites), len(c.Routes), len(c.Zones), len(c.Vehicles), len(c.Permits))
	}

	cs, ds := c.Site("CS-1"), c.Site("DS-1")
	if cs == nil || ds == nil || cs.Kind != SiteConstruction || ds.Kind != SiteDisposal {
		t.Fatalf("sites: %+v %+v", cs, ds)
	}
	if cs.District != "D-west" || ds.District != "D-east" {
		t.Errorf("site districts: %q (derived), %q (given)", cs.District, ds.District)
	}
	if c.Site("nope") != nil || c.Route("nope") != nil || c.Zone("nope") != nil || c.District("nope") != nil || c.Permit("nope") != nil {
		t.Error("unknown ids must give nil")
	}

	r := c.Route("R-1")
	if r == nil || r.FromSite != "CS-1" || r.ToSite != "DS-1" || r.Corridor.HalfWidthM != 60 || r.Name != "测试线路" {
		t.Fatalf("route R-1: %+v", r)
	}
	if l := r.Corridor.Length(); l < 3600 || l > 3900 { // 0.028° lon + 0.008° lat ≈ 2873 m + 886 m
		t.Errorf("R-1 corridor length %.0f m", l)
	}
	if r2 := c.Route("R-2"); r2 == nil || r2.Corridor.HalfWidthM != DefaultCorridorM || r2.FromSite != "" {
		t.Errorf("route R-2 (feature id, defaults): %+v", r2)
	}

	xy := func(lon, lat float64) orb.Point { return c.Proj.Forward(orb.Point{lon, lat}) }
	var buf []int32
	if got := c.SitesAt(xy(114.006, 22.606), buf[:0]); len(got) != 1 || c.SiteAt(got[0]).ID != "CS-1" {
		t.Errorf("SitesAt(inside CS-1) = %v", got)
	}
	if got := c.SitesAt(xy(114.010, 22.606), buf[:0]); len(got) != 0 {
		t.Errorf("SitesAt(outside) = %v", got)
	}
	if d := c.DistrictAt(xy(114.01, 22.61)); d == nil || d.ID != "D-west" {
		t.Errorf("DistrictAt(west) = %v", d)
	}
	if d := c.DistrictAt(xy(114.03, 22.61)); d == nil || d.ID != "D-east" {
		t.Errorf("DistrictAt(east) = %v", d)
	}
	if d := c.DistrictAt(xy(114.05, 22.61)); d != nil {
		t.Errorf("DistrictAt(outside) = %v", d.ID)
	}

	zoneIDs := func(ids []int32) string {
		var s []string
		for _, i := range ids {
			s = append(s, c.ZoneAt(i).ID)
		}
		return strings.Join(sortedCopy(s), ",")
	}
	if got := zoneIDs(c.ZonesAt(xy(114.017, 22.606), nil)); got != "RZ-school,SZ-30,SZ-60" {
		t.Errorf("ZonesAt(school) = %s", got)
	}
	if got := zoneIDs(c.ZonesCrossed(xy(114.005, 22.609), xy(114.030, 22.609), nil)); got != "SZ-30" {
		t.Errorf("ZonesCrossed(north of the 60 band) = %s", got)
	}
	for _, tc := range []struct {
		lon, lat float64
		want     float64
		zone     string
	}{
		{114.017, 22.606, 30, "SZ-30"}, // overlapping 30 and 60: lowest wins
		{114.030, 22.603, 60, "SZ-60"}, // expressway above the default
		{114.030, 22.615, 40, ""},      // default
	} {
		kmh, z := c.SpeedLimitAt(xy(tc.lon, tc.lat))
		id := ""
		if z != nil {
			id = z.ID
		}
		if kmh != tc.want || id != tc.zone {
			t.Errorf("SpeedLimitAt(%v, %v) = %v %q, want %v %q", tc.lon, tc.lat, kmh, id, tc.want, tc.zone)
		}
	}
	monday8 := time.Date(2026, 1, 5, 8, 0, 0, 0, c.Location)
	if z := c.RestrictedAt(xy(114.017, 22.606), monday8); z == nil || z.ID != "RZ-school" {
		t.Errorf("RestrictedAt(school, Monday 08:00) = %v", z)
	}
	if z := c.RestrictedAt(xy(114.017, 22.606), monday8.Add(2*time.Hour)); z != nil {
		t.Errorf("RestrictedAt(school, Monday 10:00) = %v", z.ID)
	}

	v := c.Vehicle("粤b·10001")
	if v == nil || v.Plate != "粤B10001" || v.RatedLoadKg != 25000 || v.Company != "深圳市测试土方运输有限公司" {
		t.Errorf("Vehicle(粤b·10001) = %+v", v)
	}
	if c.Vehicle("粤B99999") != nil {
		t.Error("unknown plate must give nil")
	}
	if ps := c.PermitsOf("粤 B 10001"); len(ps) != 2 || ps[0].ID != "P-1" || ps[1].ID != "P-2" {
		t.Errorf("PermitsOf = %v", ps)
	}
	if p := c.Permit("P-3"); p == nil || p.MaxLoadKg != 0 || !p.ValidFrom.Equal(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("permit P-3 (RFC 3339, no max load) = %+v", p)
	}
	if p := c.Permit("P-5"); p == nil || p.RouteID != "" {
		t.Errorf("permit P-5 without route = %+v", p)
	}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func TestActivePermit(t *testing.T) {
	c := loadMini(t)
	sh := c.Location
	at := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, sh) }
	cases := []struct {
		name  string
		plate string
		t     time.Time
		want  string
	}{
		{"before any", "粤B10001", at(2024, 12, 31, 23, 59), ""},
		{"from is inclusive", "粤B10001", at(2025, 1, 1, 0, 0), "P-1"},
		{"only the first", "粤B10001", at(2025, 3, 1, 12, 0), "P-1"},
		{"overlap: latest ValidFrom wins", "粤B10001", at(2025, 7, 1, 12, 0), "P-2"},
		{"to is exclusive", "粤B10001", at(2026, 1, 1, 0, 0), "P-2"},
		{"after all", "粤B10001", at(2026, 6, 1, 0, 0), ""},
		{"plate typed loosely", "粤b 10001", at(2025, 3, 1, 12, 0), "P-1"},
		{"RFC 3339 in UTC, 08:00 CST is inside", "粤B10002", time.Date(2025, 1, 1, 8, 0, 0, 0, sh), "P-3"},
		{"RFC 3339 in UTC, 07:59 CST is before", "粤B10002", time.Date(2025, 1, 1, 7, 59, 0, 0, sh), ""},
		{"equal ValidFrom: greater id wins", "粤BD1234", at(2026, 1, 1, 0, 0), "P-5"},
		{"unknown plate", "粤B00000", at(2026, 1, 1, 0, 0), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := c.ActivePermit(tc.plate, tc.t)
			got := ""
			if p != nil {
				got = p.ID
			}
			if got != tc.want {
				t.Errorf("ActivePermit(%s, %s) = %q, want %q", tc.plate, tc.t, got, tc.want)
			}
		})
	}
}

func TestLoadGCJ02(t *testing.T) {
	wgs := loadMini(t)
	gcj, err := Load(filepath.Join("testdata", "gcj02"))
	if err != nil {
		t.Fatal(err)
	}
	if gcj.GeometryCRS != CRSGCJ02 {
		t.Errorf("GeometryCRS = %q", gcj.GeometryCRS)
	}
	// Same numbers in both folders: the GCJ-02 one must have been shifted to WGS-84.
	check := func(what string, file, loaded orb.Point) {
		t.Helper()
		d := geo.DistanceM(file, loaded)
		if d < 300 || d > 800 {
			t.Errorf("%s: file %v loaded as %v, %.0f m apart; want the GCJ-02 offset (~500 m)", what, file, loaded, d)
		}
		if back := geo.WGS84ToGCJ02(loaded); geo.DistanceM(back, file) > 1 {
			t.Errorf("%s: WGS84ToGCJ02(loaded) = %v, want %v", what, back, file)
		}
	}
	check("site CS-1", wgs.Site("CS-1").WGS[0][0][0], gcj.Site("CS-1").WGS[0][0][0])
	check("route R-1", wgs.Route("R-1").WGS[1], gcj.Route("R-1").WGS[1])
	check("zone SZ-30", wgs.Zone("SZ-30").WGS[0][0][2], gcj.Zone("SZ-30").WGS[0][0][2])
	check("district D-east", wgs.Districts[1].WGS[0][0][0], gcj.Districts[1].WGS[0][0][0])
	check("origin", wgs.Origin, gcj.Origin)
	// Relative geometry is unchanged: the route still starts inside its site.
	var buf []int32
	start := gcj.Route("R-1").Corridor.PointAt(0)
	if got := gcj.SitesAt(start, buf); len(got) != 1 || gcj.SiteAt(got[0]).ID != "CS-1" {
		t.Errorf("R-1 no longer starts in CS-1: %v", got)
	}
}

func TestLoadFS(t *testing.T) {
	c, err := LoadFS(os.DirFS("testdata"), "mini")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Sites) != 2 {
		t.Errorf("LoadFS: %d sites", len(c.Sites))
	}
	_, err = LoadFS(os.DirFS("testdata"), "bad-window")
	if err == nil || !strings.Contains(err.Error(), "bad-window/zones.geojson: feature 0") {
		t.Errorf("LoadFS error does not name the file: %v", err)
	}
}

// TestLoadFixtureErrors loads the broken folders under testdata.
func TestLoadFixtureErrors(t *testing.T) {
	cases := []struct {
		dir  string
		want []string
	}{
		{"broken-json", []string{"sites.geojson: line 9 col 5: invalid JSON: invalid character '{' after array element"}},
		{"self-intersecting", []string{`zones.geojson: feature 1 (id "Z-bowtie", line 9): ring 0 (outer): crosses itself`}},
		{"unknown-route", []string{`permits.csv: line 3: permit P-2: route_id "R-nope": no such route in routes.geojson`}},
		{"bad-window", []string{`zones.geojson: feature 0 (id "Z-futian-school", line 4): window "mon-fry 17:00-19:00": unknown day "fry"`}},
		{"does-not-exist", []string{"city folder", "does-not-exist"}},
	}
	for _, tc := range cases {
		t.Run(tc.dir, func(t *testing.T) {
			dir := filepath.Join("testdata", tc.dir)
			c, err := Load(dir)
			if err == nil {
				t.Fatalf("Load(%s) succeeded: %+v", dir, c)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load(%s) error\n%v\ndoes not contain\n%s", dir, err, w)
				}
			}
			if tc.dir != "does-not-exist" && !strings.Contains(err.Error(), dir+string(filepath.Separator)) {
				t.Errorf("error does not name the folder %s: %v", dir, err)
			}
		})
	}
}

// polygonFeature returns a GeoJSON feature with a Polygon of the given ring coordinates.
func polygonFeature(props, ring string) string {
	return `{"type": "Feature", "properties": {` + props + `}, "geometry": {"type": "Polygon", "coordinates": [` + ring + `]}}`
}

func collection(features ...string) string {
	return `{"type": "FeatureCollection", "features": [` + "\n" + strings.Join(features, ",\n") + "\n]}"
}

// del marks a file to delete in TestLoadErrors.
const del = "\x00delete"

const square = `[[114.00, 22.60], [114.01, 22.60], [114.01, 22.61], [114.00, 22.61], [114.00, 22.60]]`

// TestLoadErrors loads small folders made of the mini city with one file replaced.
func TestLoadErrors(t *testing.T) {
	mini := map[string]string{}
	for _, name := range cityFiles() {
		data, err := os.ReadFile(filepath.Join("testdata", "mini", name))
		if err != nil {
			t.Fatal(err)
		}
		mini[name] = string(data)
	}
	const permitsHeader = "permit_id,plate,company,from_site,to_site,route_id,valid_from,valid_to,max_load_kg\n"
	cases := []struct {
		name  string
		files map[string]string // replaced files; del deletes
		want  []string
	}{
		{"missing city.yaml", map[string]string{FileCity: del}, []string{"city.yaml: missing"}},
		{"unknown city.yaml field", map[string]string{FileCity: "name: X\ntimezone: Asia/Shanghai\nspeed: 40\n"}, []string{"city.yaml: line 3: field speed not found"}},
		{"bad timezone", map[string]string{FileCity: "name: X\ntimezone: Asia/Shenzhen\n"}, []string{`city.yaml: timezone "Asia/Shenzhen"`}},
		{"bad crs", map[string]string{FileCity: "name: X\ngeometry_crs: bd09\n"}, []string{`city.yaml: geometry_crs "bd09": want wgs84 or gcj02`}},
		{"no name, bad speed", map[string]string{FileCity: "default_speed_limit_kmh: -1\n"}, []string{"city.yaml: name: missing", "city.yaml: default_speed_limit_kmh -1"}},
		{"bad origin", map[string]string{FileCity: "name: X\norigin: [22.6, 114.0]\n"}, []string{"city.yaml: origin: coordinate [22.6, 114] out of range", "swapped"}},
		{"unexpected file", map[string]string{"zone.geojson": "{}"}, []string{"zone.geojson: unexpected file"}},
		{"truncated json", map[string]string{FileZones: `{"type": "FeatureCollection", "features": [`}, []string{"zones.geojson: line 1 col 44: invalid JSON: unexpected end of JSON input"}},
		{"not a collection", map[string]string{FileZones: `{"type": "Feature"}`}, []string{`zones.geojson: type is "Feature", want "FeatureCollection"`}},
		{"empty json", map[string]string{FileZones: ``}, []string{"zones.geojson: empty file"}},
		{"duplicate zone id", map[string]string{FileZones: collection(
			polygonFeature(`"id": "Z-1", "kind": "speed", "speed_limit_kmh": 30`, square),
			polygonFeature(`"id": "Z-1", "kind": "speed", "speed_limit_kmh": 30`, square))},
			[]string{`zones.geojson: feature 1 (id "Z-1", line 3): duplicate id, also used by feature 0 (id "Z-1", line 2)`}},
		{"missing id", map[string]string{FileZones: collection(polygonFeature(`"kind": "speed", "speed_limit_kmh": 30`, square))},
			[]string{"zones.geojson: feature 0 (line 2): missing id"}},
		{"unclosed ring", map[string]string{FileZones: collection(polygonFeature(`"id": "Z-1", "kind": "speed", "speed_limit_kmh": 30`,
			`[[114.00, 22.60], [114.01, 22.60], [114.01, 22.61], [114.00, 22.61]]`))},
			[]string{`zones.geojson: feature 0 (id "Z-1", line 2): ring 0 (outer): is not closed`}},
		{"too few points", map[string]string{FileZones: collection(polygonFeature(`"id": "Z-1", "kind": "speed", "speed_limit_kmh": 30`,
			`[[114.00, 22.60], [114.01, 22.60], [114.00, 22.60]]`))},
			[]string{`ring 0 (outer): has 3 points, a ring needs at least 4`}},
		{"spike", map[string]string{FileZones: collection(polygonFeature(`"id": "Z-1", "kind": "speed", "speed_limit_kmh": 30`,
			`[[114.00, 22.60], [114.02, 22.60], [114.01, 22.60], [114.01, 22.61], [114.00, 22.60]]`))},
			[]string{`(id "Z-1", line 2): ring 0 (outer): crosses itself`}},
		{"hole crossing itself", map[string]string{FileZones: collection(polygonFeature(`"id": "Z-1", "kind": "speed", "speed_limit_kmh": 30`,
			square+`, [[114.002, 22.602], [114.008, 22.608], [114.008, 22.602], [114.002, 22.608], [114.002, 22.602]]`))},
			[]string{`(id "Z-1", line 2): ring 1 (hole): crosses itself`}},
		{"out of range", map[string]string{FileZones: collection(polygonFeature(`"id": "Z-1", "kind": "speed", "speed_limit_kmh": 30`,
			`[[114.00, 22.60], [194.01, 22.60], [114.01, 22.61], [114.00, 22.60]]`))},
			[]string{`ring 0 (outer): point 1: coordinate [194.01, 22.6] out of range`}},
		{"speed zone without limit", map[string]string{FileZones: collection(polygonFeature(`"id": "Z-1", "kind": "speed"`, square))},
			[]string{`(id "Z-1", line 2): speed zone without speed_limit_kmh`}},
		{"speed zone with zero limit", map[string]string{FileZones: collection(polygonFeature(`"id": "Z-1", "kind": "speed", "speed_limit_kmh": 0`, square))},
			[]string{`(id "Z-1", line 2): speed_limit_kmh 0: want a positive limit`}},
		{"restricted zone without windows", map[string]string{FileZones: collection(polygonFeature(`"id": "Z-1", "kind": "restricted", "closed": []`, square))},
			[]string{`(id "Z-1", line 2): restricted zone without windows`}},
		{"closed not strings", map[string]string{FileZones: collection(polygonFeature(`"id": "Z-1", "kind": "restricted", "closed": [7]`, square))},
			[]string{`property closed: element 0: want a string, got a number`}},
		{"unknown zone kind", map[string]string{FileZones: collection(polygonFeature(`"id": "Z-1", "kind": "school"`, square))},
			[]string{`(id "Z-1", line 2): kind "school": want "restricted" or "speed"`}},
		{"zone is a line", map[string]string{FileZones: collection(`{"type": "Feature", "properties": {"id": "Z-1"}, "geometry": {"type": "LineString", "coordinates": [[114, 22.6], [114.1, 22.6]]}}`)},
			[]string{`(id "Z-1", line 2): geometry is a LineString, want a Polygon or MultiPolygon`}},
		{"feature without geometry", map[string]string{FileZones: collection(`{"type": "Feature", "properties": {"id": "Z-1"}, "geometry": null}`)},
			[]string{`(id "Z-1", line 2): has no geometry`}},
		{"bad geometry type", map[string]string{FileZones: collection(`{"type": "Feature", "properties": {"id": "Z-1"}, "geometry": {"type": "Circle"}}`)},
			[]string{`zones.geojson: feature 0 (line 2): not a valid GeoJSON feature`}},
		{"site kind", map[string]string{FileSites: collection(polygonFeature(`"id": "S-1", "kind": "quarry"`, square))},
			[]string{`sites.geojson: feature 0 (id "S-1", line 2): kind "quarry"`}},
		{"site district", map[string]string{FileSites: collection(polygonFeature(`"id": "S-1", "kind": "disposal", "district": "D-north"`, square))},
			[]string{`sites.geojson: feature 0 (id "S-1", line 2): district "D-north": no such district`}},
		{"route to unknown site", map[string]string{FileRoutes: collection(
			`{"type": "Feature", "properties": {"id": "R-1", "from_site": "CS-1", "to_site": "DS-9"}, "geometry": {"type": "LineString", "coordinates": [[114, 22.6], [114.1, 22.6]]}}`)},
			[]string{`routes.geojson: feature 0 (id "R-1", line 2): to_site "DS-9": no such site in sites.geojson`}},
		{"route corridor", map[string]string{FileRoutes: collection(
			`{"type": "Feature", "properties": {"id": "R-1", "corridor_m": "wide"}, "geometry": {"type": "LineString", "coordinates": [[114, 22.6], [114.1, 22.6]]}}`)},
			[]string{`routes.geojson: feature 0 (id "R-1", line 2): property corridor_m: "wide" is not a number`}},
		{"route of one point", map[string]string{FileRoutes: collection(
			`{"type": "Feature", "properties": {"id": "R-1"}, "geometry": {"type": "LineString", "coordinates": [[114, 22.6], [114, 22.6]]}}`)},
			[]string{`routes.geojson: feature 0 (id "R-1", line 2): line has no two distinct points`}},
		{"vehicles header", map[string]string{FileVehicles: "plate,company\n粤B1,X\n"}, []string{"vehicles.csv: line 1: header lacks column rated_load_kg"}},
		{"vehicle load", map[string]string{FileVehicles: "plate,company,rated_load_kg\n粤B1,X,25000\n粤B2,X,25t\n"},
			[]string{`vehicles.csv: line 3: plate 粤B2: rated_load_kg: "25t" is not a number`}},
		{"vehicle zero load", map[string]string{FileVehicles: "plate,company,rated_load_kg\n粤B1,X,0\n"},
			[]string{`vehicles.csv: line 2: plate 粤B1: rated_load_kg: 0 out of range`}},
		{"duplicate plate", map[string]string{FileVehicles: "plate,company,rated_load_kg\n粤B12345,X,25000\n粤b·12345,Y,25000\n"},
			[]string{`vehicles.csv: line 3: plate 粤B12345: duplicate, also on line 2`}},
		{"csv field count", map[string]string{FileVehicles: "plate,company,rated_load_kg\n粤B1,X,25000,extra\n"},
			[]string{`vehicles.csv: line 2: wrong number of fields`}},
		{"csv quote", map[string]string{FileVehicles: "plate,company,rated_load_kg\n粤B1,\"X,25000\n"},
			[]string{`vehicles.csv: line 2`}},
		{"permit dates", map[string]string{FilePermits: permitsHeader + "P-1,粤B1,X,CS-1,DS-1,R-1,2026-01-01 00:00,2026-01-01 00:00,\n"},
			[]string{`permits.csv: line 2: permit P-1: valid_to 2026-01-01 00:00 is not after valid_from`}},
		{"permit bad date", map[string]string{FilePermits: permitsHeader + "P-1,粤B1,X,CS-1,DS-1,R-1,2026/01/01,2027-01-01,\n"},
			[]string{`permits.csv: line 2: permit P-1: valid_from: "2026/01/01" is not a time`}},
		{"permit unknown site", map[string]string{FilePermits: permitsHeader + "P-1,粤B1,X,CS-9,DS-1,,2026-01-01,2027-01-01,\n"},
			[]string{`permits.csv: line 2: permit P-1: from_site "CS-9": no such site in sites.geojson`}},
		{"permit route sites", map[string]string{FilePermits: permitsHeader + "P-1,粤B1,X,DS-1,CS-1,R-1,2026-01-01,2027-01-01,\n"},
			[]string{`permits.csv: line 2: permit P-1: route R-1 runs from "CS-1" to "DS-1", but the permit is from "DS-1" to "CS-1"`}},
		{"permit load", map[string]string{FilePermits: permitsHeader + "P-1,粤B1,X,CS-1,DS-1,R-1,2026-01-01,2027-01-01,-5\n"},
			[]string{`permits.csv: line 2: permit P-1: max_load_kg: -5 out of range`}},
		{"duplicate permit", map[string]string{FilePermits: permitsHeader + "P-1,粤B1,X,CS-1,DS-1,R-1,2026-01-01,2027-01-01,\n\nP-1,粤B2,X,CS-1,DS-1,R-1,2026-01-01,2027-01-01,\n"},
			[]string{`permits.csv: line 4: permit P-1: duplicate permit_id, also on line 2`}},
		{"several problems at once", map[string]string{
			FileVehicles: "plate,company,rated_load_kg\n粤B1,X,heavy\n",
			FileZones:    collection(polygonFeature(`"id": "Z-1", "kind": "speed"`, square)),
		}, []string{"vehicles.csv: line 2", `zones.geojson: feature 0 (id "Z-1", line 2)`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, data := range mini {
				if _, replaced := tc.files[name]; !replaced {
					writeFile(t, filepath.Join(dir, name), data)
				}
			}
			for name, data := range tc.files {
				if data != del {
					writeFile(t, filepath.Join(dir, name), data)
				}
			}
			c, err := Load(dir)
			if err == nil {
				t.Fatalf("Load succeeded: %+v", c)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain\n%s", err, w)
				}
			}
		})
	}
}

func writeFile(t testing.TB, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestLoadMinimal checks that every file but city.yaml is optional and that a BOM, comments
// and extra columns are accepted.
func TestLoadMinimal(t *testing.T) {
	fsys := fstest.MapFS{
		"c/city.yaml":         {Data: []byte("name: Minimal\norigin: [114.0, 22.6]\n")},
		"c/vehicles.csv":      {Data: []byte("\xEF\xBB\xBF# registry export\nPlate,Company,Rated_Load_Kg,colour\n粤B1,X,25000,yellow\n")},
		"c/README.md":         {Data: []byte("notes are fine")},
		"c/zones.geojson":     {Data: []byte(`{"type": "FeatureCollection", "features": []}`)},
		"c/districts.geojson": {Data: []byte(`{"features": null, "type": "FeatureCollection", "name": "exported"}`)},
	}
	c, err := LoadFS(fsys, "c")
	if err != nil {
		t.Fatal(err)
	}
	if c.Location.String() != DefaultTimezone || len(c.Vehicles) != 1 || c.Vehicle("粤B1") == nil || len(c.Zones) != 0 {
		t.Errorf("minimal city: %+v", c)
	}
	var buf []int32
	if got := c.ZonesAt(orb.Point{}, buf); len(got) != 0 || c.DistrictAt(orb.Point{}) != nil {
		t.Error("empty indexes must find nothing")
	}
	if kmh, z := c.SpeedLimitAt(orb.Point{}); kmh != DefaultSpeedLimitKmh || z != nil {
		t.Errorf("SpeedLimitAt = %v %v", kmh, z)
	}
	if got := c.LowestSpeedLimitKmh(); got != DefaultSpeedLimitKmh {
		t.Errorf("LowestSpeedLimitKmh of a city without speed zones = %v, want the default %v", got, DefaultSpeedLimitKmh)
	}
	if _, err := LoadFS(fstest.MapFS{"c/city.yaml": {Data: []byte("name: X\n")}}, "c"); err == nil ||
		!strings.Contains(err.Error(), "origin: not given") {
		t.Errorf("a city without geometry or origin: %v", err)
	}
}
