package sim

import (
	"fmt"
	"math"
	"strings"

	"github.com/muckwatch/muckwatch/city"
)

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
		z := &genZone{id: fmt.Sprintf("RZ-%0*d", digits(g.o.RestrictedZones), i+1), kind: city.ZoneRestricted}
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
		z := &genZone{id: fmt.Sprintf("SZ-%0*d", digits(g.o.SpeedZones), i+1), kind: city.ZoneSpeed, limit: limits[i%len(limits)]}
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
