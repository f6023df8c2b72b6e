package api

import (
	"net/http"
	"sort"
	"sync"
	"time"

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

// get returns an officer's position.
func (o *officerPositions) get(id string) (OfficerPosition, bool) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	p, ok := o.byID[id]
	return p, ok
}

// all returns every officer's position, by id.
func (o *officerPositions) all() []OfficerPosition {
	o.mu.RLock()
	out := make([]OfficerPosition, 0, len(o.byID))
	for _, p := range o.byID {
		out = append(out, p)
	}
	o.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].OfficerID < out[j].OfficerID })
	return out
}

// offer is officer p as offered for an alert at (lat, lon): distance and ETA as d estimates them.
func (d DispatchConfig) offer(p OfficerPosition, lat, lon float64) OfferedOfficer {
	dist := distanceM(lat, lon, p.Lat, p.Lon)
	eta := dist * d.RoadFactor / (d.SpeedKmh / 3.6)
	return OfferedOfficer{OfficerID: p.OfficerID, DistanceM: round1(dist), ETASeconds: round1(eta), Lat: p.Lat, Lon: p.Lon}
}

// nearest returns up to n available officers within reach of (lat, lon) whose position is fresh
// at atMs (the alert's event time: a replayed backlog is dispatched as it was then) and who are
// not busy (dispatched to another alert), nearest first, with ETAs as d configures them.
func (o *officerPositions) nearest(d DispatchConfig, lat, lon float64, n int, atMs int64, busy map[string]string) []OfferedOfficer {
	cutoff := atMs - d.OfficerStale.Milliseconds()
	var out []OfferedOfficer
	o.mu.RLock()
	for _, p := range o.byID {
		if !p.Available || p.TimeMs < cutoff || busy[p.OfficerID] != "" {
			continue
		}
		oo := d.offer(p, lat, lon)
		if oo.DistanceM > d.MaxDistanceM {
			continue
		}
		out = append(out, oo)
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

// OfficerView is an officer as the supervisors see them.
type OfficerView struct {
	OfficerPosition
	// Time is TimeMs in the city's time zone (RFC 3339); AgeS how old the position is.
	Time string  `json:"time"`
	AgeS float64 `json:"age_s"`
	// Stale: the position is older than api.dispatch.officer_stale, so the officer is not offered.
	Stale bool `json:"stale"`
	// DispatchedTo is the open alert the officer is dispatched to, if any.
	DispatchedTo string `json:"dispatched_to,omitempty"`
}

// Officers returns every officer with a known position, with the alert each is dispatched to.
func (l *Live) Officers() []OfficerView {
	l.alerts.mu.RLock()
	busy := l.busyOfficers("")
	l.alerts.mu.RUnlock()
	nowMs := l.eventNowMs()
	ps := l.officers.all()
	out := make([]OfficerView, len(ps))
	for i, p := range ps {
		age := time.Duration(nowMs-p.TimeMs) * time.Millisecond
		out[i] = OfficerView{OfficerPosition: p, AgeS: round1(max(0, age.Seconds())), Stale: age > l.cfg.Dispatch.OfficerStale, DispatchedTo: busy[p.OfficerID]}
	}
	return out
}

func (s *Server) handleOfficers(w http.ResponseWriter, _ *http.Request) {
	os := s.live.Officers()
	loc := s.city.City().Location
	for i := range os {
		os[i].Time = formatTime(time.UnixMilli(os[i].TimeMs), loc)
	}
	writeJSON(w, http.StatusOK, map[string]any{"officers": os})
}
