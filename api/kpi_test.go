package api

import (
	"context"
	"encoding/csv"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/muckwatch/muckwatch/city"
	"github.com/muckwatch/muckwatch/sink"
	"github.com/muckwatch/muckwatch/tables"
)

// The KPI tests generate a history of alerts, actions, positions and gate exits with known
// handling times into a real ClickHouse, and check every KPI, scorecard and ranking the API
// answers against values computed here, in Go, from the generated records (not from the SQL).

var kpiZone = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		panic(err)
	}
	return loc
}()

// kpiAction is one generated action.
type kpiAction struct {
	action, officer, reason string
	at                      time.Time
}

// kpiAlert is one generated alert: its versions differ in severity (escalation) and district.
type kpiAlert struct {
	id, rule, vehicle, company string
	openSeverity, lastSeverity string
	firstDistrict, district    string
	start                      time.Time
	actions                    []kpiAction
}

type kpiHistory struct {
	alerts  []kpiAlert
	fixes   []histFix
	exits   []kpiExit
	teams   map[string][]string // team → officers
	grid    map[string]string   // district → grid staff channel
	from    time.Time
	to      time.Time
	c       *city.City
	vehicle []*city.Vehicle
}

type kpiExit struct {
	id, vehicle, site string
	at                time.Time
}

// genKPIHistory makes a history of two months (October and November 2026 in the city's zone).
func genKPIHistory(c *city.City, seed uint64) *kpiHistory {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	h := &kpiHistory{c: c, from: time.Date(2026, 10, 1, 0, 0, 0, 0, kpiZone), to: time.Date(2026, 12, 1, 0, 0, 0, 0, kpiZone),
		teams: map[string][]string{"team-east": {"OFF-1", "OFF-2"}, "team-west": {"OFF-3"}},
		grid:  map[string]string{"futian": "futian-grid-chat"}}
	h.vehicle = c.Vehicles[:10]
	// an unregistered truck too
	plates := []string{}
	for _, v := range h.vehicle {
		plates = append(plates, v.Plate)
	}
	plates = append(plates, "粤B99999")
	districts := []string{"nanshan", "futian", "luohu", "baoan"}
	rules := []string{"speeding", "route_deviation", ruleTripUnclosed, ruleUnlicensed, "dwell"}
	officers := []string{"OFF-1", "OFF-2", "OFF-3", "OFF-9"}
	reasons := []string{"false_positive", "gps_error", "duplicate"}
	span := h.to.Sub(h.from)
	for i := range 400 {
		a := kpiAlert{id: fmt.Sprintf("K%04d", i), rule: rules[rng.IntN(len(rules))], vehicle: plates[rng.IntN(len(plates))],
			start: h.from.Add(time.Duration(rng.Int64N(int64(span/time.Second))) * time.Second).Add(time.Duration(rng.IntN(1000)) * time.Millisecond)}
		a.company = "Alerted Co"
		if v := c.Vehicle(a.vehicle); v != nil {
			a.company = v.Company
		}
		a.firstDistrict = districts[rng.IntN(len(districts))]
		a.district = a.firstDistrict
		if rng.IntN(10) == 0 {
			a.district = districts[rng.IntN(len(districts))] // moved in a later version
		}
		sev := []string{"severe", "warning", "info"}
		a.openSeverity = sev[rng.IntN(3)]
		a.lastSeverity = a.openSeverity
		if a.openSeverity == "warning" && rng.IntN(3) == 0 {
			a.lastSeverity = "severe"
		}
		t := a.start
		step := func() time.Time {
			t = t.Add(time.Duration(10+rng.IntN(3600)) * time.Second).Add(time.Duration(rng.IntN(1000)) * time.Millisecond)
			return t
		}
		switch rng.IntN(6) {
		case 0: // never handled
		case 1: // acknowledged only
			a.actions = append(a.actions, kpiAction{action: "acknowledge", at: step()})
		case 2: // dispatched (perhaps twice), acknowledged, resolved with an outcome
			a.actions = append(a.actions, kpiAction{action: "dispatch", officer: officers[rng.IntN(len(officers))], at: step()})
			if rng.IntN(3) == 0 {
				a.actions = append(a.actions, kpiAction{action: "dispatch", officer: officers[rng.IntN(len(officers))], at: step()})
			}
			a.actions = append(a.actions, kpiAction{action: "acknowledge", at: step()})
			a.actions = append(a.actions, kpiAction{action: "resolve", reason: "fined", at: step()})
		case 3: // resolved without an outcome
			a.actions = append(a.actions, kpiAction{action: "resolve", at: step()})
		case 4: // dismissed
			a.actions = append(a.actions, kpiAction{action: "acknowledge", at: step()})
			a.actions = append(a.actions, kpiAction{action: "dismiss", reason: reasons[rng.IntN(len(reasons))], at: step()})
		case 5: // dispatched, resolved with an outcome at once
			a.actions = append(a.actions, kpiAction{action: "dispatch", officer: officers[rng.IntN(len(officers))], at: step()})
			a.actions = append(a.actions, kpiAction{action: "resolve", reason: "warned", at: step()})
		}
		h.alerts = append(h.alerts, a)
	}
	// an alert just outside each end of the window, handled
	for i, at := range []time.Time{h.from.Add(-time.Millisecond), h.to} {
		h.alerts = append(h.alerts, kpiAlert{id: fmt.Sprintf("OUT%d", i), rule: "speeding", vehicle: plates[0], company: h.vehicle[0].Company,
			openSeverity: "severe", lastSeverity: "severe", firstDistrict: "nanshan", district: "nanshan", start: at,
			actions: []kpiAction{{action: "acknowledge", at: at.Add(time.Minute)}}})
	}

	// positions: four vehicles on a few days each, fixes every 30 s at 20–50 km/h, a jump, a
	// duplicate and a step across midnight
	var sites []string
	var disposal string
	for _, s := range c.Sites {
		if s.Kind == city.SiteConstruction {
			sites = append(sites, s.ID)
		} else if disposal == "" {
			disposal = s.ID
		}
	}
	n := 0
	for vi, v := range plates[:4] {
		for _, day := range []int{3, 17, 30, 45, 59} {
			if (vi+day)%3 == 0 {
				continue
			}
			d := h.from.AddDate(0, 0, day)
			t := d.Add(time.Duration(8+vi) * time.Hour)
			if day == 59 && vi == 1 {
				t = d.Add(23*time.Hour + 50*time.Minute) // runs across midnight: the step over it counts on neither day
			}
			lat, lon := 22.55+0.01*float64(vi), 114.05
			for k := range 60 + rng.IntN(60) {
				speed := 20 + rng.Float64()*30 // km/h
				dist := speed / 3.6 * 30
				dir := rng.Float64() * 2 * math.Pi
				lat += dist * math.Cos(dir) / 111_195
				lon += dist * math.Sin(dir) / (111_195 * math.Cos(lat*math.Pi/180))
				t = t.Add(30 * time.Second)
				n++
				f := histFix{id: fmt.Sprintf("F%06d", n), vehicle: v, at: t, lat: lat, lon: lon}
				if k == 20 { // a jump 8 km away and back
					f.lat += 0.07
				}
				h.fixes = append(h.fixes, f)
				if k == 30 {
					h.fixes = append(h.fixes, f) // written twice
				}
			}
			// trips: gate exits from construction sites, and one from a disposal site (not a trip)
			for k := range 1 + rng.IntN(3) {
				h.exits = append(h.exits, kpiExit{id: fmt.Sprintf("E%s-%d-%d", v, day, k), vehicle: v, site: sites[rng.IntN(len(sites))], at: d.Add(time.Duration(7+k) * time.Hour)})
			}
			h.exits = append(h.exits, kpiExit{id: fmt.Sprintf("D%s-%d", v, day), vehicle: v, site: disposal, at: d.Add(20 * time.Hour)})
		}
	}
	return h
}

// insert writes the history: each alert as two versions (opened, then its last state), each in
// its own part, the actions (one written twice), the fixes and the gate exits.
func (h *kpiHistory) insert(e *histEnv) {
	e.t.Helper()
	ctx := context.Background()
	for version := uint64(1); version <= 2; version++ {
		b, err := e.conn.PrepareBatch(ctx, tables.Alerts.Insert(e.db))
		if err != nil {
			e.t.Fatal(err)
		}
		for _, a := range h.alerts {
			sev, district := a.openSeverity, a.firstDistrict
			if version == 2 {
				sev, district = a.lastSeverity, a.district
			}
			if err := b.Append(a.id, a.rule, sev, "in_event", "open", a.vehicle, a.company, "", "", district,
				a.start, a.start.UnixMilli(), time.Unix(0, 0), int64(0), 22.6, 114.1, 1.0, 1.0, "", version, a.start, a.start.UnixMilli()); err != nil {
				e.t.Fatal(err)
			}
		}
		if err := b.Send(); err != nil {
			e.t.Fatalf("cannot insert alerts: %v", err)
		}
	}
	b, err := e.conn.PrepareBatch(ctx, tables.AlertActions.Insert(e.db))
	if err != nil {
		e.t.Fatal(err)
	}
	dup := false
	for _, a := range h.alerts {
		for _, x := range a.actions {
			times := 1
			if !dup {
				times, dup = 2, true
			}
			for range times {
				if err := b.Append(a.id, x.action, x.action, "sup", "supervisor", x.officer, x.reason, x.at, x.at.UnixMilli()); err != nil {
					e.t.Fatal(err)
				}
			}
		}
	}
	if err := b.Send(); err != nil {
		e.t.Fatalf("cannot insert actions: %v", err)
	}
	e.insertFixes(h.fixes...)
	ev := tables.Events
	b, err = e.conn.PrepareBatch(ctx, "INSERT INTO "+ev.In(e.db)+" ("+ev.List("event_id", "vehicle_id", "ts", "ts_ms", "kind", "site_id")+")")
	if err != nil {
		e.t.Fatal(err)
	}
	for _, x := range h.exits {
		if err := b.Append(x.id, x.vehicle, x.at, x.at.UnixMilli(), "gate_exit", x.site); err != nil {
			e.t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		e.t.Fatalf("cannot insert events: %v", err)
	}
}

// wantHandling computes the handling KPIs of the alerts started in [from, to), keyed by
// period and district or unit.
func (h *kpiHistory) wantHandling(from, to time.Time, by, interval string, ack AckWithin) map[[2]string]HandlingKPI {
	type acc struct {
		k              HandlingKPI
		first, resolve []float64
	}
	accs := map[[2]string]*acc{}
	officerTeam := map[string]string{}
	for team, os := range h.teams {
		for _, o := range os {
			officerTeam[o] = team
		}
	}
	for _, a := range h.alerts {
		if a.start.Before(from) || !a.start.Before(to) {
			continue
		}
		var key string
		var lastOfficer string
		var firstAt, dispatchAt, ackAt, resolveAt, dismissAt time.Time
		var reason, outcome string
		for _, x := range a.actions { // in time order
			if firstAt.IsZero() {
				firstAt = x.at
			}
			switch x.action {
			case "dispatch":
				if dispatchAt.IsZero() {
					dispatchAt = x.at
				}
				lastOfficer = x.officer
			case "acknowledge":
				if ackAt.IsZero() {
					ackAt = x.at
				}
			case "resolve":
				if resolveAt.IsZero() {
					resolveAt, outcome = x.at, x.reason
				}
			case "dismiss":
				if dismissAt.IsZero() {
					dismissAt, reason = x.at, x.reason
				}
			}
		}
		switch {
		case by == "district":
			key = a.district
		case lastOfficer != "" && officerTeam[lastOfficer] != "":
			key = officerTeam[lastOfficer]
		case lastOfficer != "":
			key = "officer:" + lastOfficer
		case h.grid[a.district] != "":
			key = h.grid[a.district]
		default:
			key = "grid-staff:" + a.district
		}
		period := from.In(kpiZone).Format(time.RFC3339)
		st := a.start.In(kpiZone)
		day := time.Date(st.Year(), st.Month(), st.Day(), 0, 0, 0, 0, kpiZone)
		switch interval {
		case IntervalDay:
			period = day.Format(time.DateOnly)
		case IntervalWeek:
			period = day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7)).Format(time.DateOnly)
		case IntervalMonth:
			period = time.Date(st.Year(), st.Month(), 1, 0, 0, 0, 0, kpiZone).Format(time.DateOnly)
		}
		k := [2]string{period, key}
		ac := accs[k]
		if ac == nil {
			ac = &acc{k: HandlingKPI{Period: period, Key: key, DismissedBy: map[string]uint64{}}}
			accs[k] = ac
		}
		deadline := map[string]time.Duration{"severe": ack.Severe, "warning": ack.Warning, "info": ack.Info}[a.openSeverity]
		ac.k.Raised++
		if !dispatchAt.IsZero() {
			ac.k.Dispatched++
		}
		if !ackAt.IsZero() {
			ac.k.Acknowledged++
		}
		if !resolveAt.IsZero() {
			ac.k.Resolved++
			ac.resolve = append(ac.resolve, float64(resolveAt.Sub(a.start).Milliseconds())/1000)
			if outcome != "" {
				ac.k.ClosedLoop++
			}
		}
		if !dismissAt.IsZero() {
			ac.k.Dismissed++
			ac.k.DismissedBy[reason]++
		}
		if !firstAt.IsZero() {
			ac.k.Acted++
			ac.first = append(ac.first, float64(firstAt.Sub(a.start).Milliseconds())/1000)
			if firstAt.Sub(a.start) <= deadline {
				ac.k.WithinDeadline++
			} else {
				ac.k.Overdue++
			}
		} else if time.Since(a.start) >= deadline {
			ac.k.Overdue++
		}
	}
	// the quantile at level q of n values: the value at 0-based position ⌊q·n⌋ of the sorted
	// values (docs/kpis.md)
	quant := func(v []float64, q float64) *float64 {
		if len(v) == 0 {
			return nil
		}
		s := slices.Clone(v)
		sort.Float64s(s)
		x := s[min(int(q*float64(len(s))), len(s)-1)]
		return &x
	}
	out := map[[2]string]HandlingKPI{}
	for k, ac := range accs {
		r := ac.k
		r.FirstActionP50S, r.FirstActionP90S = quant(ac.first, 0.5), quant(ac.first, 0.9)
		r.ResolutionP50S, r.ResolutionP90S = quant(ac.resolve, 0.5), quant(ac.resolve, 0.9)
		r.WithinDeadlineShare = math.Round(float64(r.WithinDeadline)/float64(r.Raised)*10000) / 10000
		r.OverdueShare = math.Round(float64(r.Overdue)/float64(r.Raised)*10000) / 10000
		r.DismissedShare = math.Round(float64(r.Dismissed)/float64(r.Raised)*10000) / 10000
		r.ClosedLoopRate = math.Round(float64(r.ClosedLoop)/float64(r.Raised)*10000) / 10000
		out[k] = r
	}
	return out
}

// wantKm computes every vehicle's km per day (in the city's zone) from the generated fixes:
// consecutive fixes of a vehicle and day in time order, a step counted when not faster than
// 150 km/h.
func (h *kpiHistory) wantKm() map[[2]string]float64 {
	type fix struct {
		ms       int64
		lat, lon float64
	}
	byDay := map[[2]string][]fix{}
	seen := map[string]bool{}
	for _, f := range h.fixes {
		if seen[f.id] {
			continue
		}
		seen[f.id] = true
		k := [2]string{f.at.In(kpiZone).Format(time.DateOnly), f.vehicle}
		byDay[k] = append(byDay[k], fix{f.at.UnixMilli(), f.lat, f.lon})
	}
	out := map[[2]string]float64{}
	for k, fs := range byDay {
		sort.Slice(fs, func(i, j int) bool { return fs[i].ms < fs[j].ms })
		m := 0.0
		for i := 1; i < len(fs); i++ {
			p, n := fs[i-1], fs[i]
			rad := math.Pi / 180
			dy := (n.lat - p.lat) * rad
			dx := math.Cos((n.lat+p.lat)/2*rad) * (n.lon - p.lon) * rad
			d := 6371008.8 * math.Hypot(dx, dy)
			if d/(float64(n.ms-p.ms)/3.6e6) <= 150_000 { // m per hour
				m += d
			}
		}
		out[k] = m / 1000
	}
	return out
}

// wantActivity is every vehicle's activity in whole days [from, to), per period.
func (h *kpiHistory) wantActivity(from, to time.Time, interval string) []VehicleActivity {
	periodOf := func(t time.Time) string {
		t = t.In(kpiZone)
		day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, kpiZone)
		switch interval {
		case IntervalDay:
			return day.Format(time.DateOnly)
		case IntervalWeek:
			return day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7)).Format(time.DateOnly)
		case IntervalMonth:
			return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, kpiZone).Format(time.DateOnly)
		}
		return ""
	}
	acts := map[[2]string]*VehicleActivity{}
	get := func(p, v string) *VehicleActivity {
		k := [2]string{p, v}
		if acts[k] == nil {
			acts[k] = &VehicleActivity{Period: p, Vehicle: v, Violations: map[string]uint64{}}
		}
		return acts[k]
	}
	in := func(t time.Time) bool { return !t.Before(from) && t.Before(to) }
	for _, a := range h.alerts {
		if in(a.start) {
			x := get(periodOf(a.start), a.vehicle)
			x.Violations[a.rule]++
			x.Company = a.company
		}
	}
	construction := map[string]bool{}
	for _, s := range constructionSites(h.c) {
		construction[s] = true
	}
	for _, x := range h.exits {
		if in(x.at) && construction[x.site] {
			get(periodOf(x.at), x.vehicle).Trips++
		}
	}
	for k, km := range h.wantKm() {
		day, _ := time.ParseInLocation(time.DateOnly, k[0], kpiZone)
		if in(day) {
			get(periodOf(day), k[1]).Km += km
		}
	}
	var out []VehicleActivity
	for _, a := range acts {
		out = append(out, *a)
	}
	return out
}

func newKPIEnv(t *testing.T) (*histEnv, *kpiHistory) {
	t.Helper()
	e := newHistEnv(t)
	h := genKPIHistory(e.city, 22)
	h.insert(e)
	e.srv = e.newServerWith(NewStore(e.conn, e.db, histLogger()), func(c *Config) {
		c.Dispatch.Teams = h.teams
		c.Dispatch.GridStaff = h.grid
		c.MaxWindow = 400 * 24 * time.Hour
	})
	e.h = e.srv.Handler()
	return e, h
}

func TestHandlingKPIs(t *testing.T) {
	e, h := newKPIEnv(t)
	ack := e.srv.cfg.AckWithin
	// the handling of some days is rolled up (handling_daily), a week at once, one day at a
	// time and one day twice, the rest read from alerts and actions: the answers must be the
	// values computed here from the generated records
	ctx := context.Background()
	if err := e.srv.store.RollUpHandling(ctx, h.from.AddDate(0, 0, 10), h.from.AddDate(0, 0, 17), kpiZone, ack, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, day := range []int{0, 1, 2, 40, 40, 59, 60} {
		d := h.from.AddDate(0, 0, day)
		if err := e.srv.store.RollUpHandling(ctx, d, d.AddDate(0, 0, 1), kpiZone, ack, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	check := func(t *testing.T, from, to time.Time, by, interval string) {
		t.Helper()
		var ans HandlingAnswer
		e.getJSON(histQuery("/api/v1/kpis/handling", "from", from.Format(time.RFC3339), "to", to.Format(time.RFC3339), "by", by, "interval", interval),
			"application/json; charset=utf-8", &ans)
		want := h.wantHandling(from, to, by, interval, ack)
		if len(ans.Rows) != len(want) {
			t.Errorf("%d rows, want %d", len(ans.Rows), len(want))
		}
		raised, wantRaised := uint64(0), uint64(0)
		for _, w := range want {
			wantRaised += w.Raised
		}
		for _, got := range ans.Rows {
			w, ok := want[[2]string{got.Period, got.Key}]
			if !ok {
				t.Errorf("unexpected row %s %s", got.Period, got.Key)
				continue
			}
			raised += got.Raised
			if msg := diffHandling(got, w); msg != "" {
				t.Errorf("%s %s: %s", got.Period, got.Key, msg)
			}
		}
		if raised != wantRaised || wantRaised == 0 {
			t.Errorf("%d alerts raised in all, want the %d in the window", raised, wantRaised)
		}
	}
	for _, by := range []string{"district", "unit"} {
		for _, interval := range []string{IntervalAll, IntervalDay, IntervalWeek, IntervalMonth} {
			t.Run(by+"/"+interval, func(t *testing.T) { check(t, h.from, h.to, by, interval) })
		}
	}
	// a window that starts and ends within days rolled up: its first and last days are partly
	// read from alerts and actions
	t.Run("partial days", func(t *testing.T) {
		check(t, h.from.AddDate(0, 0, 1).Add(7*time.Hour+30*time.Minute), h.from.AddDate(0, 0, 40).Add(15*time.Hour), "unit", IntervalDay)
		check(t, h.from.AddDate(0, 0, 1).Add(7*time.Hour+30*time.Minute), h.from.AddDate(0, 0, 40).Add(15*time.Hour), "district", IntervalAll)
	})
	t.Run("district filter and csv", func(t *testing.T) {
		code, hdr, body := e.get(histAnalystToken, histQuery("/api/v1/kpis/handling", "from", h.from.Format(time.RFC3339), "to", h.to.Format(time.RFC3339),
			"district", "futian", "format", "csv"))
		if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") {
			t.Fatalf("status %d, %s: %s", code, hdr.Get("Content-Type"), body)
		}
		recs, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(string(body), "\ufeff"))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		w := h.wantHandling(h.from, h.to, "district", IntervalAll, ack)[[2]string{h.from.Format(time.RFC3339), "futian"}]
		if len(recs) != 2 || recs[1][1] != "futian" || recs[1][2] != fmt.Sprint(w.Raised) || recs[1][10] != fmt.Sprint(w.ClosedLoop) {
			t.Errorf("csv = %q, want one futian row with %d raised and %d closed-loop", recs, w.Raised, w.ClosedLoop)
		}
	})
}

func diffHandling(got, want HandlingKPI) string {
	var d []string
	u := func(name string, g, w uint64) {
		if g != w {
			d = append(d, fmt.Sprintf("%s %d, want %d", name, g, w))
		}
	}
	u("raised", got.Raised, want.Raised)
	u("dispatched", got.Dispatched, want.Dispatched)
	u("acknowledged", got.Acknowledged, want.Acknowledged)
	u("resolved", got.Resolved, want.Resolved)
	u("dismissed", got.Dismissed, want.Dismissed)
	u("acted", got.Acted, want.Acted)
	u("within_deadline", got.WithinDeadline, want.WithinDeadline)
	u("overdue", got.Overdue, want.Overdue)
	u("closed_loop", got.ClosedLoop, want.ClosedLoop)
	f := func(name string, g, w float64) {
		if g != w {
			d = append(d, fmt.Sprintf("%s %g, want %g", name, g, w))
		}
	}
	f("within_deadline_share", got.WithinDeadlineShare, want.WithinDeadlineShare)
	f("overdue_share", got.OverdueShare, want.OverdueShare)
	f("dismissed_share", got.DismissedShare, want.DismissedShare)
	f("closed_loop_rate", got.ClosedLoopRate, want.ClosedLoopRate)
	p := func(name string, g, w *float64) {
		switch {
		case (g == nil) != (w == nil):
			d = append(d, fmt.Sprintf("%s %v, want %v", name, g, w))
		case g != nil && math.Abs(*g-*w) > 1e-9:
			d = append(d, fmt.Sprintf("%s %g, want %g", name, *g, *w))
		}
	}
	p("first_action_p50_s", got.FirstActionP50S, want.FirstActionP50S)
	p("first_action_p90_s", got.FirstActionP90S, want.FirstActionP90S)
	p("resolution_p50_s", got.ResolutionP50S, want.ResolutionP50S)
	p("resolution_p90_s", got.ResolutionP90S, want.ResolutionP90S)
	if fmt.Sprint(got.DismissedBy) != fmt.Sprint(want.DismissedBy) {
		d = append(d, fmt.Sprintf("dismissed_by %v, want %v", got.DismissedBy, want.DismissedBy))
	}
	return strings.Join(d, "; ")
}

// wantScorecards scores the expected activity as docs/kpis.md defines the score, by name and
// period.
func wantScorecards(acts []VehicleActivity, of string, c *city.City, cfg KPIConfig) map[[2]string]PeriodScorecard {
	type group struct {
		km         float64
		trips      uint64
		violations map[string]uint64
		repeat     int
		vehicles   int
	}
	groups := map[[2]string]*group{}
	for _, a := range acts {
		name := a.Company
		if v := c.Vehicle(a.Vehicle); v != nil {
			name = v.Company
		}
		if of == "vehicle" {
			name = a.Vehicle
		}
		k := [2]string{name, a.Period}
		g := groups[k]
		if g == nil {
			g = &group{violations: map[string]uint64{}}
			groups[k] = g
		}
		g.vehicles++
		g.km += a.Km
		g.trips += a.Trips
		total := uint64(0)
		for r, n := range a.Violations {
			g.violations[r] += n
			total += n
		}
		if total >= uint64(cfg.RepeatOffender) {
			g.repeat++
		}
	}
	out := map[[2]string]PeriodScorecard{}
	w := cfg.Company
	for k, g := range groups {
		points := 0.0
		weighted := 0.0
		for _, n := range g.violations {
			weighted += float64(n) // every rule weighs 1 in the test's configuration
		}
		if weighted > 0 {
			if g.km >= 1 {
				points += math.Min(w.MaxViolations, w.PerViolationRate*weighted*1000/g.km)
			} else {
				points += w.MaxViolations
			}
		}
		closed := g.trips
		if g.trips > 0 {
			closed = g.trips - min(g.trips, g.violations[ruleTripUnclosed])
			points += w.UnclosedShare * float64(g.trips-closed) / float64(g.trips)
		}
		points += math.Min(w.MaxUnlicensed, w.PerUnlicensed*float64(g.violations[ruleUnlicensed]))
		points += math.Min(w.MaxRepeatOffenders, w.PerRepeatOffender*float64(g.repeat))
		out[k] = PeriodScorecard{Period: k[1], Vehicles: g.vehicles, Km: g.km, Trips: g.trips, TripsClosed: closed,
			UnlicensedTrips: g.violations[ruleUnlicensed], Violations: g.violations, Score: math.Round(math.Max(0, 100-points)*10) / 10,
			RepeatOffenders: make([]string, g.repeat)}
	}
	return out
}

func TestScorecards(t *testing.T) {
	e, h := newKPIEnv(t)
	cfg := e.srv.cfg.KPI
	// roll up some of the days (the rest are read from positions): the answers must not change
	for _, day := range []int{3, 30} {
		if err := e.srv.store.RollUpKm(context.Background(), h.from.AddDate(0, 0, day), kpiZone, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	// and one day twice, the second time after more fixes arrived: the newer roll-up wins
	if err := e.srv.store.RollUpKm(context.Background(), h.from.AddDate(0, 0, 17), kpiZone, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.store.RollUpKm(context.Background(), h.from.AddDate(0, 0, 17), kpiZone, time.Now()); err != nil {
		t.Fatal(err)
	}
	// the violations and gate exits of most days are rolled up (vehicle_violations_daily,
	// vehicle_exits_daily), October at once, some days of November one at a time and one twice
	if err := e.srv.store.RollUpDaily(context.Background(), h.from, h.from.AddDate(0, 1, 0), kpiZone, e.srv.cfg.AckWithin, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, day := range []int{31, 40, 45, 45, 59} {
		d := h.from.AddDate(0, 0, day)
		if err := e.srv.store.RollUpDaily(context.Background(), d, d.AddDate(0, 0, 1), kpiZone, e.srv.cfg.AckWithin, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	for _, of := range []string{"company", "vehicle"} {
		for _, interval := range []string{IntervalAll, IntervalWeek, IntervalMonth} {
			t.Run(of+"/"+interval, func(t *testing.T) {
				var ans ScorecardsAnswer
				e.getJSON(histQuery("/api/v1/scorecards", "from", h.from.Format(time.RFC3339), "to", h.to.Format(time.RFC3339), "of", of, "interval", interval),
					"application/json; charset=utf-8", &ans)
				acts := h.wantActivity(h.from, h.to, interval)
				if interval == IntervalAll {
					for i := range acts {
						acts[i].Period = h.from.Format(time.RFC3339)
					}
				}
				want := wantScorecards(acts, of, e.city, cfg)
				got := 0
				for _, sc := range ans.Scorecards {
					for i, p := range sc.Periods {
						got++
						w, ok := want[[2]string{sc.Name, p.Period}]
						if !ok {
							t.Errorf("unexpected scorecard %s %s", sc.Name, p.Period)
							continue
						}
						if p.Vehicles != w.Vehicles || p.Trips != w.Trips || p.TripsClosed != w.TripsClosed || p.UnlicensedTrips != w.UnlicensedTrips ||
							fmt.Sprint(p.Violations) != fmt.Sprint(w.Violations) || len(p.RepeatOffenders) != len(w.RepeatOffenders) {
							t.Errorf("%s %s: %d vehicles, %d trips (%d closed), %d unlicensed, violations %v, %d repeat offenders; want %d, %d (%d), %d, %v, %d",
								sc.Name, p.Period, p.Vehicles, p.Trips, p.TripsClosed, p.UnlicensedTrips, p.Violations, len(p.RepeatOffenders),
								w.Vehicles, w.Trips, w.TripsClosed, w.UnlicensedTrips, w.Violations, len(w.RepeatOffenders))
						}
						if math.Abs(p.Km-w.Km) > 0.002 {
							t.Errorf("%s %s: %.4f km, want %.4f", sc.Name, p.Period, p.Km, w.Km)
						}
						if math.Abs(p.Score-w.Score) > 0.1001 { // km rounding may move the last digit
							t.Errorf("%s %s: score %.1f (%v), want %.1f", sc.Name, p.Period, p.Score, p.Reasons, w.Score)
						}
						if p.Score < 100 && len(p.Reasons) == 0 {
							t.Errorf("%s %s: score %.1f without reasons", sc.Name, p.Period, p.Score)
						}
						if i > 0 && i == len(sc.Periods)-1 && (sc.Change == nil || math.Abs(*sc.Change-(p.Score-sc.Periods[i-1].Score)) > 0.05) {
							t.Errorf("%s: change %v, want %.1f", sc.Name, fmtPtr(sc.Change), p.Score-sc.Periods[i-1].Score)
						}
					}
				}
				if got != len(want) {
					t.Errorf("%d scorecards, want %d", got, len(want))
				}
			})
		}
	}
	t.Run("one vehicle is audited", func(t *testing.T) {
		plate := h.vehicle[0].Plate
		var ans ScorecardsAnswer
		e.getJSON(histQuery("/api/v1/scorecards", "from", h.from.Format(time.RFC3339), "to", h.to.Format(time.RFC3339), "of", "vehicle", "vehicle", plate),
			"application/json; charset=utf-8", &ans)
		if len(ans.Scorecards) != 1 || ans.Scorecards[0].Name != plate {
			t.Fatalf("scorecards %+v, want %s's", ans.Scorecards, plate)
		}
		if err := e.srv.store.FlushAudit(context.Background()); err != nil {
			t.Fatal(err)
		}
		var n uint64
		if err := e.conn.QueryRow(context.Background(), "SELECT count() FROM "+e.db+".api_audit WHERE path = '/api/v1/scorecards' AND plate = ?", plate).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("%d audit rows of the scorecard of %s, want 1", n, plate)
		}
	})
}

func TestRankings(t *testing.T) {
	e, h := newKPIEnv(t)
	cfg := e.srv.cfg
	at := time.Date(2026, 11, 15, 0, 0, 0, 0, kpiZone)
	cur0, cur1 := time.Date(2026, 11, 1, 0, 0, 0, 0, kpiZone), time.Date(2026, 12, 1, 0, 0, 0, 0, kpiZone)
	prev0 := time.Date(2026, 10, 1, 0, 0, 0, 0, kpiZone)
	// the previous period is read from the daily roll-ups, the current one raw
	if err := e.srv.store.RollUpDaily(context.Background(), prev0, cur0, kpiZone, cfg.AckWithin, time.Now()); err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, ans RankingAnswer, cur, prev map[string]float64) {
		t.Helper()
		if len(ans.Rankings) != len(cur) {
			t.Errorf("%d ranked, want %d", len(ans.Rankings), len(cur))
		}
		for i, r := range ans.Rankings {
			if w, ok := cur[r.Name]; !ok || math.Abs(r.Score-w) > 0.1001 {
				t.Errorf("%s: score %.1f, want %.1f", r.Name, r.Score, w)
			}
			better := 0
			for _, s := range cur {
				if s > r.Score {
					better++
				}
			}
			if r.Rank != better+1 {
				t.Errorf("%s: rank %d with %d better scores", r.Name, r.Rank, better)
			}
			if i > 0 && ans.Rankings[i-1].Score < r.Score {
				t.Errorf("ranking not ordered by score at %d", i)
			}
			p, ok := prev[r.Name]
			if ok != (r.PreviousScore != nil) || (ok && (math.Abs(*r.PreviousScore-p) > 0.1001 || math.Abs(*r.Change-(r.Score-p)) > 0.2)) {
				t.Errorf("%s: previous %v change %v, want %.1f (%v)", r.Name, r.PreviousScore, r.Change, p, ok)
			}
		}
	}
	t.Run("districts", func(t *testing.T) {
		var ans RankingAnswer
		e.getJSON(histQuery("/api/v1/rankings", "of", "districts", "period", "month", "at", at.Format(time.DateOnly)), "application/json; charset=utf-8", &ans)
		if ans.Current.From != formatTime(cur0, kpiZone) || ans.Previous.From != formatTime(prev0, kpiZone) {
			t.Errorf("periods %+v %+v", ans.Current, ans.Previous)
		}
		score := func(from, to time.Time) map[string]float64 {
			out := map[string]float64{}
			for k, v := range h.wantHandling(from, to, "district", IntervalAll, cfg.AckWithin) {
				w := cfg.KPI.District
				n := float64(v.Raised)
				out[k[1]] = math.Round(100*(w.WithinDeadline*float64(v.WithinDeadline)/n+w.ClosedLoop*float64(v.ClosedLoop)/n+w.NotDismissed*(1-float64(v.Dismissed)/n))/
					(w.WithinDeadline+w.ClosedLoop+w.NotDismissed)*10) / 10
			}
			return out
		}
		check(t, ans, score(cur0, cur1), score(prev0, cur0))
	})
	t.Run("companies", func(t *testing.T) {
		var ans RankingAnswer
		e.getJSON(histQuery("/api/v1/rankings", "of", "companies", "period", "month", "at", at.Format(time.DateOnly)), "application/json; charset=utf-8", &ans)
		score := func(from, to time.Time) map[string]float64 {
			out := map[string]float64{}
			for k, v := range wantScorecards(h.wantActivity(from, to, IntervalAll), "company", e.city, cfg.KPI) {
				out[k[0]] = v.Score
			}
			return out
		}
		check(t, ans, score(cur0, cur1), score(prev0, cur0))
		code, _, body := e.get(histAnalystToken, histQuery("/api/v1/rankings", "of", "companies", "period", "month", "at", at.Format(time.DateOnly), "format", "csv"))
		if code != http.StatusOK || !strings.Contains(string(body), "rank,company,score,previous_rank") {
			t.Errorf("csv: %d %s", code, body)
		}
	})
}

func TestKPIAccessAndBadRequests(t *testing.T) {
	e := newHistEnv(t)
	f := func(token, path string, want int, wantMsg string) {
		t.Helper()
		code, _, body := e.get(token, path)
		if code != want || !strings.Contains(string(body), wantMsg) {
			t.Errorf("GET %s: %d %s, want %d with %q", path, code, body, want, wantMsg)
		}
	}
	f(histSquadToken, "/api/v1/kpis/handling?"+histWindowQuery(), http.StatusForbidden, "role squad may not use")
	f(histSquadToken, "/api/v1/scorecards?"+histWindowQuery(), http.StatusForbidden, "role squad may not use")
	f(histSquadToken, "/api/v1/rankings", http.StatusForbidden, "role squad may not use")
	f(histAnalystToken, "/api/v1/kpis/handling?"+histWindowQuery()+"&by=officer", http.StatusBadRequest, "by must be one of district, unit")
	f(histAnalystToken, "/api/v1/kpis/handling?"+histWindowQuery()+"&interval=year", http.StatusBadRequest, "interval must be one of")
	f(histAnalystToken, "/api/v1/kpis/handling?"+histWindowQuery()+"&district=atlantis", http.StatusBadRequest, "is not a district")
	f(histAnalystToken, "/api/v1/scorecards?"+histWindowQuery()+"&of=driver", http.StatusBadRequest, "of must be one of company, vehicle")
	f(histAnalystToken, "/api/v1/rankings?at=yesterday", http.StatusBadRequest, "at must be a date")
	f(histAnalystToken, "/api/v1/rankings?period=year", http.StatusBadRequest, "period must be one of day, week, month")
	f(histAnalystToken, "/api/v1/rankings?of=districts&of=companies", http.StatusBadRequest, "given 2 times")
	// an empty history answers empty lists
	var ans RankingAnswer
	e.getJSON("/api/v1/rankings?of=companies", "application/json; charset=utf-8", &ans)
	if ans.Rankings == nil || len(ans.Rankings) != 0 {
		t.Errorf("rankings of an empty history: %+v", ans.Rankings)
	}
}

func histWindowQuery() string {
	return "from=" + strings.ReplaceAll(histFrom.Format(time.RFC3339), "+", "%2B") + "&to=" + strings.ReplaceAll(histTo.Format(time.RFC3339), "+", "%2B")
}

// The background roll-up fills vehicle_km_daily with the ended days, marking the days without
// positions, and leaves a day that ended less than an hour ago.
func TestRollUpKm(t *testing.T) {
	e := newHistEnv(t)
	now := time.Date(2026, 11, 10, 0, 30, 0, 0, kpiZone)
	e.srv = e.newServerWith(NewStore(e.conn, e.db, histLogger()), func(c *Config) { c.KPI.RollupDays = 3 })
	e.srv.now = func() time.Time { return now }
	e.insertFixes(
		histFix{id: "a", vehicle: "粤B1", at: time.Date(2026, 11, 8, 9, 0, 0, 0, kpiZone), lat: 22.5, lon: 114.0},
		histFix{id: "b", vehicle: "粤B1", at: time.Date(2026, 11, 8, 9, 1, 0, 0, kpiZone), lat: 22.505, lon: 114.0},
		histFix{id: "c", vehicle: "粤B1", at: time.Date(2026, 11, 9, 9, 0, 0, 0, kpiZone), lat: 22.5, lon: 114.0},
	)
	days, err := e.srv.rollUpKm(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// the 9th ended 30 minutes ago: not yet; the 8th, 7th and 6th, newest first
	var got []string
	for _, d := range days {
		got = append(got, d.Format(time.DateOnly))
	}
	if want := []string{"2026-11-08", "2026-11-07", "2026-11-06"}; !slices.Equal(got, want) {
		t.Errorf("rolled up %v, want %v", got, want)
	}
	var km float64
	if err := e.conn.QueryRow(context.Background(), "SELECT km FROM "+e.db+".vehicle_km_daily WHERE day = '2026-11-08' AND vehicle_id = '粤B1'").Scan(&km); err != nil {
		t.Fatal(err)
	}
	if want := 0.005 * math.Pi / 180 * 6371.0088; math.Abs(km-want) > 1e-9 {
		t.Errorf("km of the 8th = %g, want %g", km, want)
	}
	days, err = e.srv.rollUpKm(context.Background())
	if err != nil || len(days) != 3 || days[0].Format(time.DateOnly) != "2026-11-05" {
		t.Errorf("second roll-up: %v %v, want the 5th, 4th and 3rd", days, err)
	}
	// the handling waits a week after the day's end
	days, err = e.srv.rollUpDaily(context.Background())
	if err != nil || len(days) != 3 || days[0].Format(time.DateOnly) != "2026-11-02" || days[2].Format(time.DateOnly) != "2026-10-31" {
		t.Errorf("handling roll-up: %v %v, want the 2nd of November and the two days before", days, err)
	}
}

// An action taken after its alert's day was rolled up reaches the KPIs: rollUpLate rolls the
// day up again, once.
func TestLateActions(t *testing.T) {
	e, h := newKPIEnv(t)
	ctx := context.Background()
	clock := time.Now()
	e.srv.now = func() time.Time { return clock }
	ack := e.srv.cfg.AckWithin
	if days, err := e.srv.rollUpLate(ctx); err != nil || len(days) != 0 {
		t.Fatalf("late roll-up before any roll-up: %v %v, want none", days, err)
	}
	if err := e.srv.store.RollUpDaily(ctx, h.from, h.to, kpiZone, ack, clock.Add(-2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	// two alerts never handled get actions an hour after the roll-up: one is dispatched to an
	// officer of team-west and resolved (its unit changes from the grid staff), one dismissed
	var late []int
	for i, a := range h.alerts {
		if len(a.actions) == 0 && !a.start.Before(h.from) && a.start.Before(h.to) && (len(late) == 0 || !sameDay(h.alerts[late[0]].start, a.start)) {
			late = append(late, i)
		}
		if len(late) == 2 {
			break
		}
	}
	if len(late) != 2 {
		t.Fatal("the history has no two unhandled alerts on different days")
	}
	at := clock.Add(-time.Hour).Truncate(time.Millisecond)
	h.alerts[late[0]].actions = []kpiAction{{action: "dispatch", officer: "OFF-3", at: at}, {action: "resolve", reason: "fined", at: at.Add(time.Second)}}
	h.alerts[late[1]].actions = []kpiAction{{action: "dismiss", reason: "duplicate", at: at}}
	b, err := e.conn.PrepareBatch(ctx, tables.AlertActions.Insert(e.db))
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range late {
		for _, x := range h.alerts[i].actions {
			if err := b.Append(h.alerts[i].id, x.action, x.action, "sup", "supervisor", x.officer, x.reason, x.at, x.at.UnixMilli()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	mismatches := func() int {
		n := 0
		for _, by := range []string{"district", "unit"} {
			var ans HandlingAnswer
			e.getJSON(histQuery("/api/v1/kpis/handling", "from", h.from.Format(time.RFC3339), "to", h.to.Format(time.RFC3339), "by", by, "interval", IntervalDay),
				"application/json; charset=utf-8", &ans)
			want := h.wantHandling(h.from, h.to, by, IntervalDay, ack)
			for _, got := range ans.Rows {
				if diffHandling(got, want[[2]string{got.Period, got.Key}]) != "" {
					n++
				}
				delete(want, [2]string{got.Period, got.Key})
			}
			n += len(want) // rows missing
		}
		return n
	}
	if n := mismatches(); n == 0 {
		t.Fatal("the roll-ups already count the late actions")
	}
	days, err := e.srv.rollUpLate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range days {
		got = append(got, d.Format(time.DateOnly))
	}
	want := []string{h.alerts[late[0]].start.In(kpiZone).Format(time.DateOnly), h.alerts[late[1]].start.In(kpiZone).Format(time.DateOnly)}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("rolled up again %v, want the days of the late actions %v", got, want)
	}
	if n := mismatches(); n != 0 {
		t.Errorf("%d rows differ from the records after the late roll-up", n)
	}
	// the next run, ten minutes later, has nothing more to do
	clock = clock.Add(10 * time.Minute)
	if days, err := e.srv.rollUpLate(ctx); err != nil || len(days) != 0 {
		t.Errorf("second late roll-up: %v %v, want none", days, err)
	}
}

func sameDay(a, b time.Time) bool {
	return a.In(kpiZone).Format(time.DateOnly) == b.In(kpiZone).Format(time.DateOnly)
}

func fmtPtr(p *float64) string {
	if p == nil {
		return "null"
	}
	return fmt.Sprint(*p)
}

// sqlRecorder is a connection that keeps the text of every query and statement, with its
// arguments bound, for running them through another ClickHouse (MUCKWATCH_KPI_SQL_OUT).
type sqlRecorder struct {
	driver.Conn
	mu   sync.Mutex
	sqls []string
}

func (r *sqlRecorder) keep(query string, args []any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	i := 0
	for _, part := range strings.SplitAfter(query, "?") {
		if !strings.HasSuffix(part, "?") {
			b.WriteString(part)
			continue
		}
		b.WriteString(strings.TrimSuffix(part, "?"))
		b.WriteString(sqlLiteral(args[i]))
		i++
	}
	r.sqls = append(r.sqls, b.String())
}

func sqlLiteral(v any) string {
	quote := func(s string) string { return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'" }
	switch x := v.(type) {
	case string:
		return quote(x)
	case []string:
		q := make([]string, len(x))
		for i, s := range x {
			q[i] = quote(s)
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	return fmt.Sprint(v)
}

func (r *sqlRecorder) Query(ctx context.Context, query string, args ...any) (driver.Rows, error) {
	r.keep(query, args)
	return r.Conn.Query(ctx, query, args...)
}

func (r *sqlRecorder) QueryRow(ctx context.Context, query string, args ...any) driver.Row {
	r.keep(query, args)
	return r.Conn.QueryRow(ctx, query, args...)
}

func (r *sqlRecorder) Exec(ctx context.Context, query string, args ...any) error {
	r.keep(query, args)
	return r.Conn.Exec(ctx, query, args...)
}

// TestKPISQLOnModernClickHouse writes every KPI query, as run against the test server (Debian's
// 18.16), to the file MUCKWATCH_KPI_SQL_OUT names, after the schema, for
// /work/shared/tools/ch-modern (current ClickHouse): docs/kpis.md, Checking the SQL. Without the
// variable it checks only that the queries were recorded.
func TestKPISQLOnModernClickHouse(t *testing.T) {
	e, h := newKPIEnv(t)
	rec := &sqlRecorder{Conn: e.conn}
	e.srv = e.newServerWith(NewStore(rec, e.db, histLogger()), func(c *Config) {
		c.Dispatch.Teams = h.teams
		c.Dispatch.GridStaff = h.grid
		c.MaxWindow = 400 * 24 * time.Hour
	})
	e.h = e.srv.Handler()
	if err := e.srv.store.RollUpKm(context.Background(), h.from.AddDate(0, 0, 3), kpiZone, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.store.RollUpKmHour(context.Background(), h.from.AddDate(0, 0, 5).Add(10*time.Hour), kpiZone, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.store.RollUpDaily(context.Background(), h.from.AddDate(0, 0, 40), h.from.AddDate(0, 0, 42), kpiZone, e.srv.cfg.AckWithin, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.rollUpLate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.store.LateHandlingDays(context.Background(), h.from, kpiZone, lateMargin); err != nil {
		t.Fatal(err)
	}
	w := []string{"from", h.from.Format(time.RFC3339), "to", h.to.Format(time.RFC3339)}
	for _, path := range []string{
		histQuery("/api/v1/kpis/handling", append(w, "by", "unit", "interval", "week")...),
		histQuery("/api/v1/kpis/handling", append(w, "by", "district", "interval", "day", "district", "futian")...),
		histQuery("/api/v1/scorecards", append(w, "of", "company", "interval", "month")...),
		histQuery("/api/v1/scorecards", append(w, "of", "vehicle", "vehicle", h.vehicle[0].Plate)...),
		histQuery("/api/v1/rankings", "of", "districts", "period", "week", "at", "2026-11-15"),
		histQuery("/api/v1/rankings", "of", "companies", "period", "day", "at", "2026-11-15"),
	} {
		if code, _, body := e.get(histAnalystToken, path); code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
	}
	if len(rec.sqls) < 10 {
		t.Fatalf("recorded %d statements", len(rec.sqls))
	}
	out := os.Getenv("MUCKWATCH_KPI_SQL_OUT")
	if out == "" {
		return
	}
	ms, err := sink.Migrations("kpi_modern")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, m := range ms {
		for _, s := range m.Statements {
			b.WriteString(s + ";\n")
		}
	}
	for _, s := range rec.sqls {
		b.WriteString(strings.ReplaceAll(s, e.db+".", "kpi_modern.") + ";\n")
	}
	if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The SQL of docs/kpis.md runs as written (on the test's database), and its handling per district
// and day, from the alerts and actions and from handling_daily, gives the API's figures.
func TestKPIDocsSQL(t *testing.T) {
	e, h := newKPIEnv(t)
	nov := time.Date(2026, 11, 1, 0, 0, 0, 0, kpiZone)
	ctx := context.Background()
	if err := e.srv.store.RollUpDaily(ctx, nov, h.to, kpiZone, e.srv.cfg.AckWithin, time.Now()); err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../docs/kpis.md")
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	for _, part := range strings.Split(string(doc), "```sql\n")[1:] {
		sql, _, _ := strings.Cut(part, "```")
		if strings.HasPrefix(sql, "SELECT") {
			blocks = append(blocks, strings.ReplaceAll(sql, "muckwatch.", e.db+"."))
		}
	}
	if len(blocks) != 8 {
		t.Fatalf("docs/kpis.md has %d SELECT blocks, want 8", len(blocks))
	}
	for _, sql := range blocks {
		rows, err := e.conn.Query(ctx, sql)
		if err != nil {
			t.Errorf("docs/kpis.md: %v in\n%s", err, sql)
			continue
		}
		rows.Close()
	}
	var ans HandlingAnswer
	e.getJSON(histQuery("/api/v1/kpis/handling", "from", nov.Format(time.RFC3339), "to", h.to.Format(time.RFC3339), "interval", "day"), "application/json; charset=utf-8", &ans)
	for _, prefix := range []string{"SELECT toString(toDate(k_time", "SELECT toString(day) AS k_day"} {
		var perDay *string
		for i := range blocks {
			if strings.HasPrefix(blocks[i], prefix) {
				perDay = &blocks[i]
			}
		}
		if perDay == nil {
			t.Fatalf("docs/kpis.md has no handling per district and day starting %q", prefix)
		}
		type row struct {
			raised, within, closed uint64
			p50                    float64
		}
		doc2 := map[[2]string]row{}
		rows, err := e.conn.Query(ctx, *perDay)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var day, district string
			var r row
			dest := []any{&day, &district, &r.raised, &r.within, &r.closed, &r.p50}
			if n := len(rows.Columns()); n == 7 {
				var overdue uint64
				dest = append(dest, &overdue)
			}
			if err := rows.Scan(dest...); err != nil {
				t.Fatal(err)
			}
			doc2[[2]string{day, district}] = r
		}
		rows.Close()
		if len(ans.Rows) != len(doc2) || len(ans.Rows) == 0 {
			t.Fatalf("the API has %d rows, the documented SQL (%s) %d", len(ans.Rows), prefix, len(doc2))
		}
		for _, a := range ans.Rows {
			d := doc2[[2]string{a.Period, a.Key}]
			p50 := 0.0
			if a.FirstActionP50S != nil {
				p50 = *a.FirstActionP50S
			}
			if d.raised != a.Raised || d.within != a.WithinDeadline || d.closed != a.ClosedLoop || math.Abs(d.p50-p50) > 1e-9 {
				t.Errorf("%s %s: the documented SQL (%s) gives %+v, the API %d raised, %d within, %d closed-loop, p50 %g", a.Period, a.Key, prefix, d, a.Raised, a.WithinDeadline, a.ClosedLoop, p50)
			}
		}
	}
}
