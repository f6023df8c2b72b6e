package city

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// SampleOptions sizes the generated city. A zero field takes the sample's default (see
// DefaultSampleOptions); a negative count means none.
type SampleOptions struct {
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

// DefaultSampleOptions returns the options of the sample city shipped in
// configs/cities/shenzhen.
func DefaultSampleOptions() SampleOptions {
	return SampleOptions{
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

func (o SampleOptions) withDefaults() SampleOptions {
	d := DefaultSampleOptions()
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

// GenerateSample writes a deterministic Shenzhen-like city into dir (created if needed): six
// districts tiling lon 113.85..114.35, lat 22.50..22.78, construction and disposal sites,
// road-like routes between them, restricted and speed zones (some on top of routes), vehicles
// and permits. The same options always produce the same bytes, on every platform: geometry is
// computed in integer metres and written with 6 decimals.
func GenerateSample(dir string, opts SampleOptions) error {
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
		{FileCity, g.cityYAML()},
		{FileDistricts, g.districtsJSON()},
		{FileSites, g.sitesJSON()},
		{FileRoutes, g.routesJSON()},
		{FileZones, g.zonesJSON()},
		{FileVehicles, g.vehiclesCSV()},
		{FilePermits, g.permitsCSV()},
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
	kind                      SiteKind
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
	kind     ZoneKind
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
	o         SampleOptions
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
func (g *gen) makeDistricts() {
	gx := []int64{0, 15_419, 25_698, 35_977, sampleW}
	gy := []int64{0, 11_074, sampleH}
	var nodes [5][3]ipt
	for i := range 5 {
		for j := range 3 {
			p := ipt{gx[i], gy[j]}
			if i > 0 && i < 4 {
				p.x += g.between(-800, 800)
			}
			if j > 0 && j < 2 {
				p.y += g.between(-800, 800)
			}
			nodes[i][j] = p
		}
	}
	type nodeID [2]int
	edges := map[[2]nodeID][]ipt{}
	edge := func(a, b nodeID) []ipt {
		flip := a[0] > b[0] || (a[0] == b[0] && a[1] > b[1])
		key := [2]nodeID{a, b}
		if flip {
			key = [2]nodeID{b, a}
		}
		pts, ok := edges[key]
		if !ok {
			pa, pb := nodes[key[0][0]][key[0][1]], nodes[key[1][0]][key[1][1]]
			horizontal := key[0][1] == key[1][1]
			outer := (horizontal && (key[0][1] == 0 || key[0][1] == 2)) ||
				(!horizontal && (key[0][0] == 0 || key[0][0] == 4))
			pts = []ipt{pa}
			if !outer {
				k := int64(3 + g.rng.IntN(4))
				for s := int64(1); s < k; s++ {
					p := ipt{pa.x + (pb.x-pa.x)*s/k, pa.y + (pb.y-pa.y)*s/k}
					off := g.between(-400, 400)
					if horizontal {
						p.y += off
					} else {
						p.x += off
					}
					pts = append(pts, p)
				}
			}
			pts = append(pts, pb)
			edges[key] = pts
		}
		if !flip {
			return pts
		}
		rev := make([]ipt, len(pts))
		for i, p := range pts {
			rev[len(pts)-1-i] = p
		}
		return rev
	}
	specs := []struct {
		id, name string
		places   []string
		nodes    []nodeID
	}{
		{"nanshan", "南山区", []string{"科技园", "蛇口", "前海", "西丽", "后海", "南头"}, []nodeID{{0, 0}, {1, 0}, {1, 1}, {0, 1}}},
		{"futian", "福田区", []string{"车公庙", "香蜜湖", "梅林", "华强北", "皇岗", "景田"}, []nodeID{{1, 0}, {2, 0}, {2, 1}, {1, 1}}},
		{"luohu", "罗湖区", []string{"笋岗", "东门", "翠竹", "莲塘", "清水河", "布心"}, []nodeID{{2, 0}, {3, 0}, {3, 1}, {2, 1}}},
		{"baoan", "宝安区", []string{"西乡", "福永", "沙井", "松岗", "石岩", "新安"}, []nodeID{{0, 1}, {1, 1}, {1, 2}, {0, 2}}},
		{"longhua", "龙华区", []string{"观澜", "民治", "大浪", "龙华", "福城", "观湖"}, []nodeID{{1, 1}, {2, 1}, {3, 1}, {3, 2}, {2, 2}, {1, 2}}},
		{"longgang", "龙岗区", []string{"坂田", "布吉", "横岗", "平湖", "龙城", "坪地"}, []nodeID{{3, 0}, {4, 0}, {4, 1}, {4, 2}, {3, 2}, {3, 1}}},
	}
	for _, s := range specs {
		d := &genDistrict{id: s.id, name: s.name, places: s.places}
		for i, n := range s.nodes {
			pts := edge(n, s.nodes[(i+1)%len(s.nodes)])
			d.ring = append(d.ring, pts[:len(pts)-1]...)
		}
		d.ring = append(d.ring, d.ring[0])
		g.districts = append(g.districts, d)
	}
}

// inRing reports whether p is inside the closed ring (ray casting, exact integer arithmetic).
func inRing(p ipt, ring []ipt) bool {
	in := false
	for i := 0; i+1 < len(ring); i++ {
		a, b := ring[i], ring[i+1]
		if (a.y > p.y) == (b.y > p.y) {
			continue
		}
		// p.x < a.x + (b.x-a.x)*(p.y-a.y)/(b.y-a.y)
		lhs := (p.x - a.x) * (b.y - a.y)
		rhs := (b.x - a.x) * (p.y - a.y)
		if (b.y > a.y && lhs < rhs) || (b.y < a.y && lhs > rhs) {
			in = !in
		}
	}
	return in
}

func (g *gen) districtOf(p ipt) *genDistrict {
	for _, d := range g.districts {
		if inRing(p, d.ring) {
			return d
		}
	}
	return g.districts[0]
}

// star returns a closed star-shaped ring of k vertices around c with radii near r.
func (g *gen) star(c ipt, r int64, k int) []ipt {
	step := 24 / k
	ring := make([]ipt, 0, k+1)
	for i := range k {
		dir := i*24/k + g.rng.IntN(max(1, step-1))
		u := unit24(dir)
		rv := r * g.between(80, 100) / 100
		ring = append(ring, clampPt(ipt{c.x + u.x*rv/10000, c.y + u.y*rv/10000}))
	}
	return append(ring, ring[0])
}

// box returns a closed, slightly irregular rectangle around c.
func (g *gen) box(c ipt, hw, hh int64) []ipt {
	j := func() int64 { return g.between(-min(hw, hh)/8, min(hw, hh)/8) }
	ring := []ipt{
		clampPt(ipt{c.x - hw + j(), c.y - hh + j()}),
		clampPt(ipt{c.x + hw + j(), c.y - hh + j()}),
		clampPt(ipt{c.x + hw + j(), c.y + hh + j()}),
		clampPt(ipt{c.x - hw + j(), c.y + hh + j()}),
	}
	return append(ring, ring[0])
}

func digits(n int) int { return max(3, len(strconv.Itoa(n))) }

func (g *gen) makeSites() {
	n := g.o.ConstructionSites + g.o.DisposalSites
	if n == 0 {
		return
	}
	spacing := int64(math.Sqrt(float64(sampleW * sampleH / int64(n))))
	sep := min(max(spacing/3, 300), 3000)
	place := func(accept func(ipt) bool) ipt {
		for attempt := 0; ; attempt++ {
			if attempt > 0 && attempt%300 == 0 {
				sep = sep * 3 / 4
			}
			p := ipt{g.between(siteMargin, sampleW-siteMargin), g.between(siteMargin, sampleH-siteMargin)}
			if !accept(p) && attempt < 3000 {
				continue
			}
			ok := true
			for _, s := range g.sites {
				dx, dy := s.centre.x-p.x, s.centre.y-p.y
				if dx*dx+dy*dy < sep*sep {
					ok = false
					break
				}
			}
			if ok {
				return p
			}
		}
	}
	consSuffix := []string{"城市更新项目工地", "地铁站配套工程工地", "住宅项目工地", "产业园项目工地", "学校改扩建工地", "综合体项目工地", "道路改造工程工地"}
	dispSuffix := []string{"建筑废弃物消纳场", "土方受纳场", "建筑废弃物综合利用厂"}
	for i := range n {
		kind := SiteConstruction
		if i >= g.o.ConstructionSites {
			kind = SiteDisposal
		}
		var c ipt
		if kind == SiteDisposal {
			// Disposal sites lie on the outskirts: the north and the east, spread over the outer
			// districts in turn.
			outer := g.districts[3+(i-g.o.ConstructionSites)%3]
			c = place(func(p ipt) bool { return (p.y > 14_000 || p.x > 40_000) && g.districtOf(p) == outer })
		} else {
			// Construction sites spread over the districts in turn.
			home := g.districts[i%len(g.districts)]
			c = place(func(p ipt) bool { return g.districtOf(p) == home })
		}
		d := g.districtOf(c)
		s := &genSite{kind: kind, centre: c, district: d.id, place: g.pick(d.places)}
		s.ring = g.star(c, g.between(75, 200), 5+g.rng.IntN(4))
		if kind == SiteConstruction {
			s.id = fmt.Sprintf("CS-%0*d", digits(g.o.ConstructionSites), len(g.cons)+1)
			s.name = g.unique(s.place + g.pick(consSuffix))
			g.cons = append(g.cons, s)
		} else {
			s.id = fmt.Sprintf("DS-%0*d", digits(g.o.DisposalSites), len(g.disp)+1)
			s.name = g.unique(s.place + g.pick(dispSuffix))
			g.disp = append(g.disp, s)
		}
		g.sites = append(g.sites, s)
	}
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

func manhattan(a, b ipt) int64 { return abs64(a.x-b.x) + abs64(a.y-b.y) }

func (g *gen) makeRoutes() {
	type pair struct{ from, to *genSite }
	used := map[pair]int{}
	for i := range g.o.Routes {
		from := g.cons[i%len(g.cons)]
		// A disposal site at a plausible haul distance, preferring pairs with fewer routes.
		var cands []*genSite
		fewest := math.MaxInt
		for _, d := range g.disp {
			if m := manhattan(from.centre, d.centre); m >= minRouteLength && m <= maxRouteLength {
				switch n := used[pair{from, d}]; {
				case n < fewest:
					cands, fewest = []*genSite{d}, n
				case n == fewest:
					cands = append(cands, d)
				}
			}
		}
		var to *genSite
		if len(cands) > 0 {
			to = cands[g.rng.IntN(len(cands))]
		} else {
			best := int64(math.MaxInt64)
			for _, d := range g.disp {
				if m := abs64(manhattan(from.centre, d.centre) - 12_000); m < best {
					to, best = d, m
				}
			}
		}
		used[pair{from, to}]++
		r := g.route(from.centre, to.centre)
		r.id = fmt.Sprintf("R-%0*d", digits(g.o.Routes), i+1)
		r.from, r.to = from, to
		r.name = g.unique(from.place + "至" + to.place + "线")
		r.corridorM = 60 + 5*g.rng.IntN(5)
		g.routes = append(g.routes, r)
	}
}

// route draws a road-like line from a to b: two to four axis-aligned legs, each bending gently
// sideways, with 15 to 60 vertices.
func (g *gen) route(a, b ipt) *genRoute {
	corners := []ipt{a}
	frac := func(u, v int64) int64 { return u + (v-u)*g.between(25, 75)/100 }
	switch g.rng.IntN(4) {
	case 0:
		corners = append(corners, ipt{b.x, a.y})
	case 1:
		corners = append(corners, ipt{a.x, b.y})
	case 2:
		mx := frac(a.x, b.x)
		corners = append(corners, ipt{mx, a.y}, ipt{mx, b.y})
	default:
		my := frac(a.y, b.y)
		corners = append(corners, ipt{a.x, my}, ipt{b.x, my})
	}
	corners = append(corners, b)
	var legs [][2]ipt
	var total int64
	for i := 0; i+1 < len(corners); i++ {
		if corners[i] != corners[i+1] {
			legs = append(legs, [2]ipt{corners[i], corners[i+1]})
			total += manhattan(corners[i], corners[i+1])
		}
	}
	r := &genRoute{pts: []ipt{a}}
	n := min(max(total/350, 16), 57)
	spacing := max(1, (total+n-1)/n)
	for _, leg := range legs {
		p, q := leg[0], leg[1]
		length := manhattan(p, q)
		m := max(1, divRound(length, spacing))
		amp := g.between(-50, 50)
		if length > 2_000 {
			amp = g.between(-150, 150)
		}
		start := len(r.pts) - 1
		for s := int64(1); s <= m; s++ {
			v := ipt{p.x + (q.x-p.x)*s/m, p.y + (q.y-p.y)*s/m}
			if s < m {
				lat := amp*4*s*(m-s)/(m*m) + g.between(-15, 15)
				if p.y == q.y {
					v.y += lat
				} else {
					v.x += lat
				}
			}
			r.pts = append(r.pts, clampPt(v))
		}
		r.legs = append(r.legs, [2]int{start, len(r.pts) - 1})
	}
	return r
}

// routePoint returns an interior vertex of a random route.
func (g *gen) routePoint() (ipt, bool) {
	if len(g.routes) == 0 {
		return ipt{}, false
	}
	r := g.routes[g.rng.IntN(len(g.routes))]
	return r.pts[1+g.rng.IntN(len(r.pts)-2)], true
}

func (g *gen) urbanPoint() ipt {
	return ipt{g.between(4_000, sampleW-4_000), g.between(2_000, 16_000)}
}

func (g *gen) makeZones() {
	kinds := []string{"school", "school", "downtown", "residential", "school", "school", "park", "residential", "school", "downtown"}
	for i := range g.o.RestrictedZones {
		kind := kinds[i%len(kinds)]
		c, onRoute := g.routePoint()
		if !onRoute || i%2 == 1 {
			c = g.urbanPoint()
		}
		d := g.districtOf(c)
		z := &genZone{id: fmt.Sprintf("RZ-%0*d", digits(g.o.RestrictedZones), i+1), kind: ZoneRestricted}
		switch kind {
		case "school":
			z.name = g.pick(d.places) + g.pick([]string{"小学", "中学", "实验学校", "外国语学校"}) + "周边禁行区"
			z.closed = []string{"mon-fri 07:00-09:00", "mon-fri 16:30-18:30"}
			z.ring = g.star(c, g.between(250, 400), 6+g.rng.IntN(3))
		case "downtown":
			z.name = strings.TrimSuffix(d.name, "区") + "中心区禁行区"
			z.closed = []string{"daily 07:00-09:00", "daily 17:00-19:00"}
			z.ring = g.box(c, g.between(1_000, 1_750), g.between(600, 1_000))
		case "residential":
			z.name = g.pick(d.places) + "居住区夜间禁行区"
			z.closed = []string{"daily 22:00-06:00"}
			if i%20 == 7 {
				z.closed = []string{"sat,sun 22:00-06:00", "mon-fri 23:00-05:30"}
			}
			z.ring = g.box(c, g.between(500, 800), g.between(500, 800))
		default:
			z.name = g.pick(d.places) + "公园周边禁行区"
			z.closed = []string{"sat,sun 09:00-18:00", "daily 07:00-09:00"}
			z.ring = g.star(c, g.between(600, 900), 8)
		}
		z.name = g.unique(z.name)
		g.zones = append(g.zones, z)
	}
	roads := []string{"深南大道", "北环大道", "滨海大道", "梅观路", "布龙路", "宝安大道", "龙岗大道", "南坪快速路", "新区大道", "沙河西路"}
	highways := []string{"广深高速", "机荷高速", "沈海高速", "南光高速", "龙大高速", "水官高速", "盐排高速", "福龙路"}
	limits := []int{30, 40, 60, 30, 40, 60, 40, 60}
	for i := range g.o.SpeedZones {
		z := &genZone{id: fmt.Sprintf("SZ-%0*d", digits(g.o.SpeedZones), i+1), kind: ZoneSpeed, limit: limits[i%len(limits)]}
		switch {
		case z.limit == 30 || len(g.routes) == 0:
			c, onRoute := g.routePoint()
			if !onRoute || i%2 == 1 {
				c = g.urbanPoint()
			}
			z.limit = 30
			z.name = strings.TrimSuffix(g.districtOf(c).name, "区") + "中心城区限速区"
			z.ring = g.box(c, g.between(1_500, 2_500), g.between(1_000, 1_800))
		default:
			hw := int64(100)
			z.name = g.pick(roads) + "限速区段"
			if z.limit == 60 {
				hw = 150
				z.name = g.pick(highways) + "沿线限速区"
			}
			z.ring = g.band(g.routes[g.rng.IntN(len(g.routes))], hw)
		}
		z.name = g.unique(z.name)
		g.zones = append(g.zones, z)
	}
}

// band returns a closed ring hw metres either side of the route's longest leg.
func (g *gen) band(r *genRoute, hw int64) []ipt {
	best := r.legs[0]
	for _, l := range r.legs {
		if manhattan(r.pts[l[0]], r.pts[l[1]]) > manhattan(r.pts[best[0]], r.pts[best[1]]) {
			best = l
		}
	}
	pts := r.pts[best[0] : best[1]+1]
	horizontal := pts[0].y == pts[len(pts)-1].y
	shift := func(p ipt, d int64) ipt {
		if horizontal {
			return clampPt(ipt{p.x, p.y + d})
		}
		return clampPt(ipt{p.x + d, p.y})
	}
	ring := make([]ipt, 0, 2*len(pts)+1)
	for _, p := range pts {
		ring = append(ring, shift(p, -hw))
	}
	for i := len(pts) - 1; i >= 0; i-- {
		ring = append(ring, shift(pts[i], hw))
	}
	ring = append(ring, ring[0])
	// Counter-clockwise, as RFC 7946 recommends for outer rings.
	var area2 int64
	for i := 0; i+1 < len(ring); i++ {
		area2 += ring[i].x*ring[i+1].y - ring[i+1].x*ring[i].y
	}
	if area2 < 0 {
		for i, j := 0, len(ring)-1; i < j; i, j = i+1, j-1 {
			ring[i], ring[j] = ring[j], ring[i]
		}
	}
	return ring
}

func (g *gen) makeVehicles() {
	prefixes := []string{"鹏城", "前海", "宝安", "龙岗", "福田", "南山", "华强", "盐田", "坪山", "光明",
		"大鹏", "龙华", "罗湖", "蛇口", "西乡", "沙井", "观澜", "横岗", "坂田", "布吉"}
	trades := []string{"土方运输", "渣土运输", "建筑废弃物运输", "运输", "土石方工程"}
	for i := range g.o.Companies {
		name := "深圳市" + prefixes[i%len(prefixes)] + trades[(i+i/len(prefixes))%len(trades)] + "有限公司"
		if i >= len(prefixes)*len(trades) {
			name = fmt.Sprintf("%s第%d分公司", name, i/(len(prefixes)*len(trades)))
		}
		g.companies = append(g.companies, name)
	}
	const letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
	seen := map[string]bool{}
	for len(g.vehicles) < g.o.Vehicles {
		var b [5]byte
		for k := range b {
			b[k] = byte('0' + g.rng.IntN(10))
		}
		switch x := g.rng.IntN(10); {
		case x < 2: // one letter first, as on many freight plates
			b[0] = letters[g.rng.IntN(len(letters))]
		case x < 3:
			b[0] = letters[g.rng.IntN(len(letters))]
			b[1+g.rng.IntN(4)] = letters[g.rng.IntN(len(letters))]
		}
		plate := "粤B" + string(b[:])
		if seen[plate] {
			continue
		}
		seen[plate] = true
		g.vehicles = append(g.vehicles, &genVehicle{
			plate:   plate,
			company: g.companies[g.rng.IntN(len(g.companies))],
			ratedKg: 18_000 + 100*g.rng.IntN(131),
		})
	}
}

func (g *gen) makePermits() {
	if len(g.routes) == 0 {
		return
	}
	order := g.rng.Perm(len(g.vehicles))
	none := min(g.o.Unpermitted, len(order))
	expired := min(g.o.ExpiredPermits, len(order)-none)
	kind := make([]byte, len(g.vehicles)) // 'n' none, 'e' expired, 'v' valid
	for i, vi := range order {
		switch {
		case i < none:
			kind[vi] = 'n'
		case i < none+expired:
			kind[vi] = 'e'
		default:
			kind[vi] = 'v'
		}
	}
	for vi, v := range g.vehicles {
		if kind[vi] == 'n' {
			continue
		}
		r := g.routes[g.rng.IntN(len(g.routes))]
		p := &genPermit{
			id:      fmt.Sprintf("ZY-%0*d", max(6, len(strconv.Itoa(len(g.vehicles)))), len(g.permits)+1),
			plate:   v.plate,
			company: v.company,
			from:    r.from.id,
			to:      r.to.id,
			route:   r.id,
			maxKg:   v.ratedKg,
		}
		if g.rng.IntN(5) == 0 {
			p.maxKg = max(15_000, v.ratedKg-100*g.rng.IntN(30))
		}
		if kind[vi] == 'v' {
			p.validFrom, p.validTo = "2026-01-01 00:00", "2027-12-31 23:59:59"
		} else {
			month := 1 + g.rng.IntN(12)
			p.validFrom = fmt.Sprintf("2024-%02d-01 00:00", month)
			p.validTo = fmt.Sprintf("2025-%02d-01 00:00", month)
		}
		g.permits = append(g.permits, p)
	}
}

func (g *gen) cityYAML() []byte {
	var b bytes.Buffer
	b.WriteString("# Generated by city.GenerateSample; regenerate with\n")
	b.WriteString("#   go test ./city -run TestSampleIsUpToDate -update\n")
	b.WriteString("# The folder format is documented in configs/README.md.\n")
	fmt.Fprintf(&b, "name: %q\n", g.o.Name)
	b.WriteString("timezone: Asia/Shanghai\n")
	b.WriteString("origin: [114.100000, 22.640000]   # projection origin, lon/lat\n")
	b.WriteString("geometry_crs: wgs84                # how the GeoJSON files are drawn: wgs84 | gcj02\n")
	b.WriteString("default_speed_limit_kmh: 40        # muck trucks, where no speed zone applies\n")
	return b.Bytes()
}

// prop is one GeoJSON property, written in order.
type prop struct {
	key string
	val any
}

// geoWriter writes a pretty-printed FeatureCollection.
type geoWriter struct {
	b bytes.Buffer
	n int
}

func newGeoWriter() *geoWriter {
	w := &geoWriter{}
	w.b.WriteString("{\n  \"type\": \"FeatureCollection\",\n  \"features\": [")
	return w
}

func (w *geoWriter) begin(props []prop, geomType string) {
	if w.n > 0 {
		w.b.WriteByte(',')
	}
	w.n++
	w.b.WriteString("\n    {\n      \"type\": \"Feature\",\n      \"properties\": {")
	for i, p := range props {
		if i > 0 {
			w.b.WriteString(", ")
		}
		w.b.Write(mustJSON(p.key))
		w.b.WriteString(": ")
		w.b.Write(mustJSON(p.val))
	}
	fmt.Fprintf(&w.b, "},\n      \"geometry\": {\n        \"type\": %q,\n        \"coordinates\": ", geomType)
}

func (w *geoWriter) points(pts []ipt, indent string) {
	w.b.WriteString("[")
	for i, p := range pts {
		if i > 0 {
			w.b.WriteByte(',')
		}
		w.b.WriteString("\n" + indent + "  ")
		writeLonLat(&w.b, p)
	}
	w.b.WriteString("\n" + indent + "]")
}

func (w *geoWriter) polygon(props []prop, ring []ipt) {
	w.begin(props, "Polygon")
	w.b.WriteString("[\n          ")
	w.points(ring, "          ")
	w.b.WriteString("\n        ]\n      }\n    }")
}

func (w *geoWriter) line(props []prop, pts []ipt) {
	w.begin(props, "LineString")
	w.points(pts, "        ")
	w.b.WriteString("\n      }\n    }")
}

func (w *geoWriter) bytes() []byte {
	if w.n > 0 {
		w.b.WriteString("\n  ")
	}
	w.b.WriteString("]\n}\n")
	return w.b.Bytes()
}

func mustJSON(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err) // only strings, numbers and string slices are written
	}
	out := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	return bytes.ReplaceAll(out, []byte(`","`), []byte(`", "`))
}

func (g *gen) districtsJSON() []byte {
	w := newGeoWriter()
	for _, d := range g.districts {
		w.polygon([]prop{{"id", d.id}, {"name", d.name}}, d.ring)
	}
	return w.bytes()
}

func (g *gen) sitesJSON() []byte {
	w := newGeoWriter()
	for _, s := range g.sites {
		w.polygon([]prop{{"id", s.id}, {"name", s.name}, {"kind", string(s.kind)}, {"district", s.district}}, s.ring)
	}
	return w.bytes()
}

func (g *gen) routesJSON() []byte {
	w := newGeoWriter()
	for _, r := range g.routes {
		w.line([]prop{{"id", r.id}, {"name", r.name}, {"corridor_m", r.corridorM}, {"from_site", r.from.id}, {"to_site", r.to.id}}, r.pts)
	}
	return w.bytes()
}

func (g *gen) zonesJSON() []byte {
	w := newGeoWriter()
	for _, z := range g.zones {
		props := []prop{{"id", z.id}, {"name", z.name}, {"kind", string(z.kind)}}
		if z.kind == ZoneRestricted {
			props = append(props, prop{"closed", z.closed})
		} else {
			props = append(props, prop{"speed_limit_kmh", z.limit})
		}
		w.polygon(props, z.ring)
	}
	return w.bytes()
}

func writeCSV(rows [][]string) []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.WriteAll(rows) // writes to memory
	return b.Bytes()
}

func (g *gen) vehiclesCSV() []byte {
	rows := [][]string{{"plate", "company", "rated_load_kg"}}
	for _, v := range g.vehicles {
		rows = append(rows, []string{v.plate, v.company, strconv.Itoa(v.ratedKg)})
	}
	return writeCSV(rows)
}

func (g *gen) permitsCSV() []byte {
	rows := [][]string{{"permit_id", "plate", "company", "from_site", "to_site", "route_id", "valid_from", "valid_to", "max_load_kg"}}
	for _, p := range g.permits {
		rows = append(rows, []string{p.id, p.plate, p.company, p.from, p.to, p.route, p.validFrom, p.validTo, strconv.Itoa(p.maxKg)})
	}
	return writeCSV(rows)
}
