package api

import (
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/muckwatch/muckwatch/record"
)

// VehiclePosition is a vehicle's last known position.
type VehiclePosition struct {
	Plate    string  `json:"plate"`
	Lat      float64 `json:"lat"`
	Lon      float64 `json:"lon"`
	SpeedKmh float32 `json:"speed_kmh"`
	TimeMs   int64   `json:"time_ms"`
}

// vehiclePositions is the newest position of every vehicle, and the plates ClickHouse recently
// had none for.
type vehiclePositions struct {
	mu       sync.RWMutex
	list     []VehiclePosition           // in the order first seen
	at       map[string]int32            // plate → its index in list
	numbered record.ByPlateNumber[int32] // a fix's VehicleNo → its plate's index in list + 1 (0: none yet)
	unseen   map[string]time.Time        // plates ClickHouse had no position for, until when to believe it
}

func newVehiclePositions() vehiclePositions {
	return vehiclePositions{at: make(map[string]int32), unseen: make(map[string]time.Time)}
}

// observe keeps the newest position of each fix's vehicle, and returns the newest fix time.
func (p *vehiclePositions) observe(fixes []record.Fix) (newestMs int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range fixes {
		f := &fixes[i]
		ms := f.Time.UnixMilli()
		newestMs = max(newestMs, ms)
		pos, fresh := p.slot(f.VehicleID, f.VehicleNo)
		if !fresh && pos.TimeMs >= ms {
			continue
		}
		*pos = VehiclePosition{Plate: f.VehicleID, Lat: f.Lat, Lon: f.Lon, SpeedKmh: f.SpeedKmh, TimeMs: ms}
	}
	return newestMs
}

// slot returns plate's entry in list, and whether it was added now (to be filled in by the
// caller). no is the plate's number from the decoder (record.PlateNumbers, 0: none): a fix finds
// its vehicle by it without hashing the plate; a number is a hint, checked against the plate
// found. p.mu is held for writing.
func (p *vehiclePositions) slot(plate string, no uint32) (*VehiclePosition, bool) {
	if i := p.numbered.Get(no); i > 0 && p.list[i-1].Plate == plate {
		return &p.list[i-1], false
	}
	i, ok := p.at[plate]
	if !ok {
		i = int32(len(p.list))
		p.list = append(p.list, VehiclePosition{Plate: plate})
		p.at[plate] = i
	}
	p.numbered.Put(no, i+1)
	return &p.list[i], !ok
}

// Position returns a vehicle's last known position.
func (l *Live) Position(plate string) (VehiclePosition, bool) {
	p := &l.positions
	p.mu.RLock()
	defer p.mu.RUnlock()
	i, ok := p.at[plate]
	if !ok {
		return VehiclePosition{}, false
	}
	return p.list[i], true
}

// unseenTTL is how long a plate ClickHouse has no position for is believed unseen (squads repeat
// lookups of unknown plates; a new fix of the plate arrives through Observe anyway).
const unseenTTL = time.Minute

// KnownUnseen reports whether ClickHouse recently had no position for the plate.
func (l *Live) KnownUnseen(plate string) bool {
	p := &l.positions
	p.mu.RLock()
	defer p.mu.RUnlock()
	return l.now().Before(p.unseen[plate])
}

// RememberUnseen notes that ClickHouse has no position for the plate.
func (l *Live) RememberUnseen(plate string) {
	p := &l.positions
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.unseen) > 100_000 {
		clear(p.unseen)
	}
	p.unseen[plate] = l.now().Add(unseenTTL)
}

// RememberPosition keeps a position read from ClickHouse for a vehicle this view has not seen.
func (l *Live) RememberPosition(pos VehiclePosition) {
	p := &l.positions
	p.mu.Lock()
	defer p.mu.Unlock()
	if cur, fresh := p.slot(pos.Plate, 0); fresh || cur.TimeMs < pos.TimeMs {
		*cur = pos
	}
}

// Near returns the vehicles whose last position is within radiusM of (lat, lon) and not older
// than maxAge (in event time, see eventNowMs), nearest first, with their distances.
func (l *Live) Near(lat, lon, radiusM float64, maxAge time.Duration, limit int) ([]VehiclePosition, []float64) {
	cutoff := l.eventNowMs() - maxAge.Milliseconds()
	type hit struct {
		p VehiclePosition
		d float64
	}
	var hits []hit
	p := &l.positions
	p.mu.RLock()
	for _, pos := range p.list {
		if pos.TimeMs < cutoff {
			continue
		}
		if d := distanceM(lat, lon, pos.Lat, pos.Lon); d <= radiusM {
			hits = append(hits, hit{pos, d})
		}
	}
	p.mu.RUnlock()
	sort.Slice(hits, func(i, j int) bool {
		return hits[i].d < hits[j].d || (hits[i].d == hits[j].d && hits[i].p.Plate < hits[j].p.Plate)
	})
	if len(hits) > limit {
		hits = hits[:limit]
	}
	ps, ds := make([]VehiclePosition, len(hits)), make([]float64, len(hits))
	for i, h := range hits {
		ps[i], ds[i] = h.p, h.d
	}
	return ps, ds
}

// distanceM is the great-circle distance in metres (haversine, mean Earth radius).
func distanceM(lat1, lon1, lat2, lon2 float64) float64 {
	const r = 6371008.8
	p1, p2 := lat1*math.Pi/180, lat2*math.Pi/180
	dp, dl := p2-p1, (lon2-lon1)*math.Pi/180
	a := math.Sin(dp/2)*math.Sin(dp/2) + math.Cos(p1)*math.Cos(p2)*math.Sin(dl/2)*math.Sin(dl/2)
	return 2 * r * math.Asin(math.Min(1, math.Sqrt(a)))
}

// Seen reports whether the view has a position of the vehicle.
func (l *Live) Seen(plate string) bool {
	_, ok := l.Position(plate)
	return ok
}

// PlatesEndingWith returns up to n plates seen whose text ends with suffix, sorted.
func (l *Live) PlatesEndingWith(suffix string, n int) []string {
	p := &l.positions
	p.mu.RLock()
	defer p.mu.RUnlock()
	var out []string
	for _, pos := range p.list {
		if len(pos.Plate) > len(suffix) && strings.HasSuffix(pos.Plate, suffix) {
			out = append(out, pos.Plate)
		}
	}
	slices.Sort(out)
	return out[:min(len(out), n)]
}
