package sim

import (
	"fmt"
	"strconv"
)

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
