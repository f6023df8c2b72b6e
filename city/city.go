// Package city holds a city's reference data for muck-truck supervision: districts,
// construction and disposal sites, approved routes with their corridors, restricted and
// speed-limit zones, registered vehicles and transport permits (准运证).
//
// A city is a folder of GeoJSON, CSV and YAML files (documented in configs/README.md) read by
// Load or LoadFS. Every geometry is kept twice: in WGS-84 lon/lat (the WGS fields, for output)
// and in projected metres around the city's origin (Area and Corridor, for detection), using
// the single projection City.Proj. Folders drawn in GCJ-02 (高德/腾讯 maps) are converted to
// WGS-84 on load.
//
// A *City is immutable once loaded and safe for concurrent use by any number of goroutines.
// To pick up changed files, load a new City and swap the pointer; nothing in this package
// holds mutable package-level state.
//
// GenerateSample writes the deterministic sample city shipped in configs/cities/shenzhen, and
// larger ones for benchmarks.
package city

import (
	"slices"
	"time"

	_ "time/tzdata" // the city's time zone must load even on hosts without a zoneinfo database

	"github.com/paulmach/orb"

	"github.com/muckwatch/muckwatch/geo"
)

// City is one city's reference data. It must not be modified after Load.
type City struct {
	// Name is the city's display name from city.yaml.
	Name string
	// Location is the city's time zone; restricted-zone windows and local permit times use it.
	Location *time.Location
	// Origin is the WGS-84 lon/lat origin of Proj.
	Origin orb.Point
	// GeometryCRS is how the folder's GeoJSON was drawn: CRSWGS84 or CRSGCJ02. Geometry in a
	// loaded City is always WGS-84 regardless.
	GeometryCRS string
	// Proj projects WGS-84 lon/lat to the metres used by every Area and Corridor.
	Proj geo.Projection
	// DefaultSpeedLimitKmh is the muck-truck speed limit where no speed zone applies.
	DefaultSpeedLimitKmh float64

	Sites     []*Site
	Routes    []*Route
	Zones     []*Zone
	Districts []*District
	Vehicles  []*Vehicle
	Permits   []*Permit

	siteByID       map[string]*Site
	routeByID      map[string]*Route
	zoneByID       map[string]*Zone
	districtByID   map[string]*District
	vehicleByPlate map[string]*Vehicle
	permitByID     map[string]*Permit
	permitsByPlate map[string][]*Permit // sorted by ValidFrom, then ID

	siteIdx     *geo.AreaIndex // indexes match Sites
	zoneIdx     *geo.AreaIndex // indexes match Zones
	districtIdx *geo.AreaIndex // indexes match Districts

	lowestSpeedLimit float64 // the lowest of DefaultSpeedLimitKmh and every speed zone's limit
	// closedMinutes has a bit for each minute of the week (Sunday 00:00 first, local time), set
	// where some restricted zone is closed; nil until the city is loaded (markClosedMinutes)
	closedMinutes []uint64
}

// Geometry reference systems accepted in city.yaml's geometry_crs.
const (
	CRSWGS84 = "wgs84"
	CRSGCJ02 = "gcj02"
)

// SiteKind tells construction sites (where spoil is loaded) from disposal sites (where it
// may be unloaded).
type SiteKind string

// Site kinds.
const (
	SiteConstruction SiteKind = "construction" // 工地
	SiteDisposal     SiteKind = "disposal"     // 消纳场
)

// Site is a construction or disposal site.
type Site struct {
	ID, Name string
	Kind     SiteKind
	// District is the id of the site's district: as given in sites.geojson, else the district
	// containing the centre of the site's bounds, else empty.
	District string
	WGS      orb.MultiPolygon // lon/lat
	Area     geo.Area         // projected metres
}

// Route is an approved route with the corridor a truck under a permit for it must keep to.
type Route struct {
	ID, Name string
	WGS      orb.LineString // lon/lat
	Corridor *geo.Corridor  // projected metres; HalfWidthM is the file's corridor_m
	// FromSite and ToSite are site ids; either may be empty for a route not tied to sites.
	FromSite, ToSite string
}

// ZoneKind tells restricted zones from speed-limit zones.
type ZoneKind string

// Zone kinds.
const (
	ZoneRestricted ZoneKind = "restricted" // 禁行区: closed to muck trucks during its windows
	ZoneSpeed      ZoneKind = "speed"      // 限速区: its own speed limit
)

// Zone is a restricted zone (closed during its weekly windows) or a speed zone.
type Zone struct {
	ID, Name      string
	Kind          ZoneKind
	SpeedLimitKmh float64  // speed zones only
	Closed        []Window // restricted zones only; never empty for them
	WGS           orb.MultiPolygon
	Area          geo.Area
}

// District is an administrative district (区).
type District struct {
	ID, Name string
	WGS      orb.MultiPolygon
	Area     geo.Area
}

// Vehicle is a registered muck truck.
type Vehicle struct {
	Plate       string // normalised, see NormalizePlate
	Company     string
	RatedLoadKg float64 // 核定载质量
}

// Permit is a transport permit (准运证) for one vehicle between two sites along one route,
// valid from ValidFrom (inclusive) to ValidTo (exclusive).
type Permit struct {
	ID, Plate, Company string // Plate is normalised
	FromSite, ToSite   string
	RouteID            string // empty: no approved route (route deviation is not checked)
	ValidFrom, ValidTo time.Time
	MaxLoadKg          float64 // 0: no limit beyond the vehicle's rated load
}

// Valid reports whether the permit is valid at t: ValidFrom <= t < ValidTo.
func (p *Permit) Valid(t time.Time) bool {
	return !t.Before(p.ValidFrom) && t.Before(p.ValidTo)
}

// Vehicle returns the vehicle with the plate (normalised first), nil if unknown.
func (c *City) Vehicle(plate string) *Vehicle {
	if v, ok := c.vehicleByPlate[plate]; ok {
		return v
	}
	return c.vehicleByPlate[NormalizePlate(plate)]
}

// Site returns the site with the id, nil if unknown.
func (c *City) Site(id string) *Site { return c.siteByID[id] }

// Route returns the route with the id, nil if unknown.
func (c *City) Route(id string) *Route { return c.routeByID[id] }

// Zone returns the zone with the id, nil if unknown.
func (c *City) Zone(id string) *Zone { return c.zoneByID[id] }

// District returns the district with the id, nil if unknown.
func (c *City) District(id string) *District { return c.districtByID[id] }

// Permit returns the permit with the id, nil if unknown.
func (c *City) Permit(id string) *Permit { return c.permitByID[id] }

// PermitsOf returns every permit of the plate (normalised first), oldest ValidFrom first,
// expired ones included. The slice is shared: do not modify it.
func (c *City) PermitsOf(plate string) []*Permit {
	if ps, ok := c.permitsByPlate[plate]; ok {
		return ps
	}
	return c.permitsByPlate[NormalizePlate(plate)]
}

// ActivePermit returns a permit of the plate valid at t (ValidFrom <= t < ValidTo), nil if
// none. If several are valid it returns the one with the latest ValidFrom (then the greatest
// id), so the choice is deterministic.
func (c *City) ActivePermit(plate string, t time.Time) *Permit {
	return ActiveAmong(c.PermitsOf(plate), t)
}

// ActiveAmong returns the permit of ps (one plate's, as PermitsOf gives them) valid at t, chosen
// as ActivePermit does; nil if none.
func ActiveAmong(ps []*Permit, t time.Time) *Permit {
	for i := len(ps) - 1; i >= 0; i-- {
		if ps[i].Valid(t) {
			return ps[i]
		}
	}
	return nil
}

// SitesAt appends to dst the indexes of the sites containing the projected point xy and
// returns it; SiteAt turns an index into the site. Indexes are positions in c.Sites.
func (c *City) SitesAt(xy orb.Point, dst []int32) []int32 {
	return c.siteIdx.Containing(xy, dst)
}

// SiteAt returns the site at index i of c.Sites.
func (c *City) SiteAt(i int32) *Site { return c.Sites[i] }

// ZonesAt appends to dst the indexes of the zones (of both kinds) containing the projected
// point xy and returns it. Indexes are positions in c.Zones.
func (c *City) ZonesAt(xy orb.Point, dst []int32) []int32 {
	return c.zoneIdx.Containing(xy, dst)
}

// SitesNear appends the indices (into c.Sites) of the sites containing xy or with a border within
// r metres of it.
func (c *City) SitesNear(xy orb.Point, r float64, dst []int32) []int32 {
	return c.siteIdx.Near(xy, r, dst)
}

// ZonesNear appends the indices (into c.Zones) of the zones containing xy or with a border within
// r metres of it.
func (c *City) ZonesNear(xy orb.Point, r float64, dst []int32) []int32 {
	return c.zoneIdx.Near(xy, r, dst)
}

// ZonesNearWhere is ZonesNear for the zones where says yes to, asked before the exact test.
func (c *City) ZonesNearWhere(xy orb.Point, r float64, dst []int32, where func(i int32) bool) []int32 {
	return c.zoneIdx.NearWhere(xy, r, dst, where)
}

// ZoneAt returns the zone at index i of c.Zones.
func (c *City) ZoneAt(i int32) *Zone { return c.Zones[i] }

// ZonesCrossed appends to dst the indexes of the zones whose area the projected segment a-b
// touches (crosses an edge of, or lies inside) and returns it.
func (c *City) ZonesCrossed(a, b orb.Point, dst []int32) []int32 {
	return c.zoneIdx.Crossing(a, b, dst)
}

// DistrictAt returns the district containing the projected point xy, the first in file order
// if districts overlap, nil if none.
func (c *City) DistrictAt(xy orb.Point) *District {
	var buf [4]int32
	found := c.districtIdx.Containing(xy, buf[:0])
	if len(found) == 0 {
		return nil
	}
	return c.Districts[slices.Min(found)]
}

// AnyZoneClosedAt reports whether some restricted zone may be closed at t: when it is false, no
// zone's ClosedAt(t, c.Location) is true, and a truck cannot be in a closed zone wherever it is.
// Zone windows are whole minutes of the week, so this is one bit of a table built at load.
func (c *City) AnyZoneClosedAt(t time.Time) bool {
	if c.closedMinutes == nil {
		return true // not built: no shortcut
	}
	if c.Location != nil {
		t = t.In(c.Location)
	}
	// the minute of the week from the local Unix time, with one time-zone lookup (Weekday, Hour
	// and Minute would each make their own); the Unix epoch fell on a Thursday
	_, offset := t.Zone()
	minute := floorDiv(t.Unix()+int64(offset), 60) + int64(time.Thursday)*minutesPerDay
	i := minute - floorDiv(minute, minutesPerWeek)*minutesPerWeek
	return c.closedMinutes[i/64]&(1<<(i%64)) != 0
}

const (
	minutesPerDay  = 24 * 60
	minutesPerWeek = 7 * minutesPerDay
)

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// markClosedMinutes builds the table AnyZoneClosedAt reads: a bit for each minute of the week
// that some restricted zone's window covers.
func (c *City) markClosedMinutes() {
	var windows []Window // each distinct window once
	for _, z := range c.Zones {
		if z.Kind == ZoneRestricted {
			for _, w := range z.Closed {
				if !slices.Contains(windows, w) {
					windows = append(windows, w)
				}
			}
		}
	}
	bits := make([]uint64, (minutesPerWeek+63)/64)
	for i := range minutesPerWeek {
		day, m := time.Weekday(i/minutesPerDay), i%minutesPerDay
		if slices.ContainsFunc(windows, func(w Window) bool { return w.Covers(day, m) }) {
			bits[i/64] |= 1 << (i % 64)
		}
	}
	c.closedMinutes = bits
}

// LowestSpeedLimitKmh returns the lowest muck-truck speed limit anywhere in the city: the
// default's or a speed zone's. A truck at or below it is within the limit wherever it is.
func (c *City) LowestSpeedLimitKmh() float64 { return c.lowestSpeedLimit }

// SpeedLimitAt returns the muck-truck speed limit at the projected point xy: the lowest limit
// of the speed zones containing it (which may be above the default, e.g. on an expressway), or
// DefaultSpeedLimitKmh with a nil zone where no speed zone applies.
func (c *City) SpeedLimitAt(xy orb.Point) (kmh float64, zone *Zone) {
	var buf [8]int32
	for _, i := range c.zoneIdx.Containing(xy, buf[:0]) {
		z := c.Zones[i]
		if z.Kind != ZoneSpeed {
			continue
		}
		if zone == nil || z.SpeedLimitKmh < zone.SpeedLimitKmh ||
			(z.SpeedLimitKmh == zone.SpeedLimitKmh && z.ID < zone.ID) {
			zone = z
		}
	}
	if zone == nil {
		return c.DefaultSpeedLimitKmh, nil
	}
	return zone.SpeedLimitKmh, zone
}

// RestrictedAt returns the first restricted zone (in file order) containing the projected
// point xy that is closed at t, nil if none.
func (c *City) RestrictedAt(xy orb.Point, t time.Time) *Zone {
	var buf [8]int32
	found := c.zoneIdx.Containing(xy, buf[:0])
	var best *Zone
	bestIdx := int32(-1)
	for _, i := range found {
		z := c.Zones[i]
		if z.Kind == ZoneRestricted && (bestIdx < 0 || i < bestIdx) && z.ClosedAt(t, c.Location) {
			best, bestIdx = z, i
		}
	}
	return best
}
