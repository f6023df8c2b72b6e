package sim

import (
	"fmt"
	"math"
	"strconv"

	"github.com/muckwatch/muckwatch/city"
)

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
		kind := city.SiteConstruction
		if i >= g.o.ConstructionSites {
			kind = city.SiteDisposal
		}
		var c ipt
		if kind == city.SiteDisposal {
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
		if kind == city.SiteConstruction {
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
