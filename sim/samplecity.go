package sim

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/muckwatch/muckwatch/city"
)

// The sample-city generator: a deterministic Shenzhen-like city (the one shipped in
// configs/cities/shenzhen, and larger ones for the bench) written as a city folder. This file has
// its options and the generation; samplecity_land.go lays out the districts and sites,
// samplecity_roads.go the routes and zones, samplecity_permits.go the vehicles and permits, and
// samplecity_files.go writes the folder's files.

// SampleCityOptions sizes the generated city. A zero field takes the sample's default (see
// DefaultSampleCityOptions); a negative count means none.
type SampleCityOptions struct {
	Name              string // city.yaml name
	Seed              uint64 // everything generated follows from it
	ConstructionSites int
	DisposalSites     int
	Routes            int // each from a construction site to a disposal site
	RestrictedZones   int
	SpeedZones        int
	Vehicles          int
	Companies         int
	ExpiredPermits    int // vehicles whose only permit has expired
	Unpermitted       int // vehicles with no permit at all
}

// DefaultSampleCityOptions returns the options of the sample city shipped in
// configs/cities/shenzhen.
func DefaultSampleCityOptions() SampleCityOptions {
	return SampleCityOptions{
		Name:              "Shenzhen (sample)",
		Seed:              20260101,
		ConstructionSites: 12,
		DisposalSites:     5,
		Routes:            30,
		RestrictedZones:   10,
		SpeedZones:        8,
		Vehicles:          300,
		Companies:         15,
		ExpiredPermits:    10,
		Unpermitted:       10,
	}
}

func (o SampleCityOptions) withDefaults() SampleCityOptions {
	d := DefaultSampleCityOptions()
	str := func(v *string, def string) {
		if *v == "" {
			*v = def
		}
	}
	num := func(v *int, def int) {
		if *v == 0 {
			*v = def
		} else if *v < 0 {
			*v = 0
		}
	}
	str(&o.Name, d.Name)
	if o.Seed == 0 {
		o.Seed = d.Seed
	}
	num(&o.ConstructionSites, d.ConstructionSites)
	num(&o.DisposalSites, d.DisposalSites)
	num(&o.Routes, d.Routes)
	num(&o.RestrictedZones, d.RestrictedZones)
	num(&o.SpeedZones, d.SpeedZones)
	num(&o.Vehicles, d.Vehicles)
	num(&o.Companies, d.Companies)
	num(&o.ExpiredPermits, d.ExpiredPermits)
	num(&o.Unpermitted, d.Unpermitted)
	o.Companies = max(o.Companies, 1)
	return o
}

// GenerateSampleCity writes a deterministic Shenzhen-like city into dir (created if needed): six
// districts tiling lon 113.85..114.35, lat 22.50..22.78, construction and disposal sites,
// road-like routes between them, restricted and speed zones (some on top of routes), vehicles
// and permits. The same options always produce the same bytes, on every platform: geometry is
// computed in integer metres and written with 6 decimals.
func GenerateSampleCity(dir string, opts SampleCityOptions) error {
	o := opts.withDefaults()
	if o.Routes > 0 && (o.ConstructionSites == 0 || o.DisposalSites == 0) {
		return fmt.Errorf("generate sample: routes need at least one construction and one disposal site")
	}
	g := &gen{o: o, rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x6d75636b77617463))}
	g.makeDistricts()
	g.makeSites()
	g.makeRoutes()
	g.makeZones()
	g.makeVehicles()
	g.makePermits()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("generate sample: %w", err)
	}
	files := []struct {
		name string
		data []byte
	}{
		{city.FileCity, g.cityYAML()},
		{city.FileDistricts, g.districtsJSON()},
		{city.FileSites, g.sitesJSON()},
		{city.FileRoutes, g.routesJSON()},
		{city.FileZones, g.zonesJSON()},
		{city.FileVehicles, g.vehiclesCSV()},
		{city.FilePermits, g.permitsCSV()},
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, 0o644); err != nil {
			return fmt.Errorf("generate sample: %w", err)
		}
	}
	return nil
}

// The generated area: metres east and north of its south-west corner (113.85, 22.50), with
// fixed metres per degree at lat 22.64 (WGS-84 ellipsoid).
const (
	sampleLon0     = 113_850_000 // micro-degrees
	sampleLat0     = 22_500_000
	mPerDegLon     = 102_792
	mPerDegLat     = 110_739
	sampleW        = 51_396 // 0.50° of lon
	sampleH        = 31_007 // 0.28° of lat
	siteMargin     = 1_500
	minRouteLength = 5_000
	maxRouteLength = 22_000
)

// ipt is a point in integer metres.
type ipt struct{ x, y int64 }

func divRound(a, b int64) int64 {
	if a < 0 {
		return -((-a + b/2) / b)
	}
	return (a + b/2) / b
}

// writeLonLat writes p as "[lon, lat]" with 6 decimals.
func writeLonLat(b *bytes.Buffer, p ipt) {
	b.WriteByte('[')
	writeMicro(b, sampleLon0+divRound(p.x*1_000_000, mPerDegLon))
	b.WriteString(", ")
	writeMicro(b, sampleLat0+divRound(p.y*1_000_000, mPerDegLat))
	b.WriteByte(']')
}

func writeMicro(b *bytes.Buffer, v int64) {
	if v < 0 {
		b.WriteByte('-')
		v = -v
	}
	fmt.Fprintf(b, "%d.%06d", v/1_000_000, v%1_000_000)
}

func clampPt(p ipt) ipt {
	return ipt{min(max(p.x, 0), sampleW), min(max(p.y, 0), sampleH)}
}

// unit24 returns the unit vector (x10000) at i*15 degrees.
func unit24(i int) ipt {
	t := [24]ipt{{10000, 0}, {9659, 2588}, {8660, 5000}, {7071, 7071}, {5000, 8660}, {2588, 9659},
		{0, 10000}, {-2588, 9659}, {-5000, 8660}, {-7071, 7071}, {-8660, 5000}, {-9659, 2588},
		{-10000, 0}, {-9659, -2588}, {-8660, -5000}, {-7071, -7071}, {-5000, -8660}, {-2588, -9659},
		{0, -10000}, {2588, -9659}, {5000, -8660}, {7071, -7071}, {8660, -5000}, {9659, -2588}}
	return t[i%24]
}

type genDistrict struct {
	id, name string
	places   []string
	ring     []ipt // closed
}

type genSite struct {
	id, name, district, place string
	kind                      city.SiteKind
	centre                    ipt
	ring                      []ipt
}

type genRoute struct {
	id, name  string
	from, to  *genSite
	pts       []ipt
	legs      [][2]int // vertex index ranges of the axis-aligned legs
	corridorM int
}

type genZone struct {
	id, name string
	kind     city.ZoneKind
	limit    int
	closed   []string
	ring     []ipt
}

type genVehicle struct {
	plate, company string
	ratedKg        int
}

type genPermit struct {
	id, plate, company, from, to, route string
	validFrom, validTo                  string
	maxKg                               int
}

type gen struct {
	o         SampleCityOptions
	rng       *rand.Rand
	districts []*genDistrict
	sites     []*genSite
	cons      []*genSite
	disp      []*genSite
	routes    []*genRoute
	zones     []*genZone
	companies []string
	vehicles  []*genVehicle
	permits   []*genPermit
	names     map[string]int
}

func (g *gen) between(lo, hi int64) int64 { return lo + g.rng.Int64N(hi-lo+1) }

func (g *gen) pick(s []string) string { return s[g.rng.IntN(len(s))] }

// unique returns name, or name with a number if it was used before.
func (g *gen) unique(name string) string {
	if g.names == nil {
		g.names = map[string]int{}
	}
	g.names[name]++
	if n := g.names[name]; n > 1 {
		return fmt.Sprintf("%s（%d）", name, n)
	}
	return name
}

// makeDistricts tiles the area with six districts on a jittered grid whose shared edges wiggle.
