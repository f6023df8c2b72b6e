package api

import (
	"sort"
	"sync"

	"github.com/muckwatch/muckwatch/record"
)

// OfficerPosition is an enforcement officer's last known position.
type OfficerPosition struct {
	OfficerID string  `json:"officer_id"`
	Lat       float64 `json:"lat"`
	Lon       float64 `json:"lon"`
	Available bool    `json:"available"`
	TimeMs    int64   `json:"time_ms"`
}

// officerPositions is every officer's newest position.
type officerPositions struct {
	mu   sync.RWMutex
	byID map[string]OfficerPosition
}

func newOfficerPositions() officerPositions {
	return officerPositions{byID: make(map[string]OfficerPosition)}
}

// observe keeps the newest position of each officer, and returns the newest position time.
func (o *officerPositions) observe(officers []record.OfficerPosition) (newestMs int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := range officers {
		p := &officers[i]
		ms := p.Time.UnixMilli()
		newestMs = max(newestMs, ms)
		if cur, ok := o.byID[p.OfficerID]; ok && cur.TimeMs >= ms {
			continue
		}
		o.byID[p.OfficerID] = OfficerPosition{OfficerID: p.OfficerID, Lat: p.Lat, Lon: p.Lon, Available: p.Available, TimeMs: ms}
	}
	return newestMs
}

// put keeps p as its officer's position.
func (o *officerPositions) put(p OfficerPosition) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.byID[p.OfficerID] = p
}

// known reports whether the officer has sent a position.
func (o *officerPositions) known(id string) bool {
	o.mu.RLock()
	defer o.mu.RUnlock()
	_, ok := o.byID[id]
	return ok
}

// nearest returns up to n available officers within reach of (lat, lon) whose position is fresh
// at atMs (the alert's event time: a replayed backlog is dispatched as it was then), nearest
// first, with ETAs as d configures them.
func (o *officerPositions) nearest(d DispatchConfig, lat, lon float64, n int, atMs int64) []OfferedOfficer {
	cutoff := atMs - d.OfficerStale.Milliseconds()
	var out []OfferedOfficer
	o.mu.RLock()
	for _, p := range o.byID {
		if !p.Available || p.TimeMs < cutoff {
			continue
		}
		dist := distanceM(lat, lon, p.Lat, p.Lon)
		if dist > d.MaxDistanceM {
			continue
		}
		eta := dist * d.RoadFactor / (d.SpeedKmh / 3.6)
		out = append(out, OfferedOfficer{OfficerID: p.OfficerID, DistanceM: round1(dist), ETASeconds: round1(eta), Lat: p.Lat, Lon: p.Lon})
	}
	o.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		return out[i].DistanceM < out[j].DistanceM || (out[i].DistanceM == out[j].DistanceM && out[i].OfficerID < out[j].OfficerID)
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}
