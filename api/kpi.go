package api

// The handling KPIs, the company and vehicle scorecards and the rankings (晾晒) as the API answers
// them: the counts come from ClickHouse (kpi_store.go); the shares, scores and ranks are derived
// here, as docs/kpis.md defines them.

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/muckwatch/muckwatch/city"
)

// Rules the scorecards read beside the violation rates.
const (
	ruleTripUnclosed = "trip_unclosed"
	ruleUnlicensed   = "unlicensed"
)

// HandlingKPI is the handling of one period's alerts of one district or unit.
type HandlingKPI struct {
	Period       string `json:"period"`
	Key          string `json:"key"`
	Raised       uint64 `json:"raised"`
	Dispatched   uint64 `json:"dispatched"`
	Acknowledged uint64 `json:"acknowledged"`
	Resolved     uint64 `json:"resolved"`
	Dismissed    uint64 `json:"dismissed"`
	// Acted counts the alerts with any action.
	Acted          uint64 `json:"acted"`
	WithinDeadline uint64 `json:"within_deadline"`
	Overdue        uint64 `json:"overdue"`
	ClosedLoop     uint64 `json:"closed_loop"`
	// Shares of Raised, 0–1, rounded to 4 places.
	WithinDeadlineShare float64 `json:"within_deadline_share"`
	OverdueShare        float64 `json:"overdue_share"`
	DismissedShare      float64 `json:"dismissed_share"`
	ClosedLoopRate      float64 `json:"closed_loop_rate"`
	// Seconds from the start of the alert; null when no alert had that action.
	FirstActionP50S *float64 `json:"first_action_p50_s"`
	FirstActionP90S *float64 `json:"first_action_p90_s"`
	ResolutionP50S  *float64 `json:"resolution_p50_s"`
	ResolutionP90S  *float64 `json:"resolution_p90_s"`
	// DismissedBy counts the dismissals by reason.
	DismissedBy map[string]uint64 `json:"dismissed_by"`
}

func share(n, of uint64) float64 {
	if of == 0 {
		return 0
	}
	return math.Round(float64(n)/float64(of)*10_000) / 10_000
}

func handlingKPI(r HandlingRow) HandlingKPI {
	k := HandlingKPI{Period: r.Period, Key: r.Key, Raised: r.Raised, Dispatched: r.Dispatched, Acknowledged: r.Acknowledged,
		Resolved: r.Resolved, Dismissed: r.Dismissed, Acted: r.Acted, WithinDeadline: r.WithinDeadline, Overdue: r.Overdue,
		ClosedLoop: r.ClosedLoop, WithinDeadlineShare: share(r.WithinDeadline, r.Raised), OverdueShare: share(r.Overdue, r.Raised),
		DismissedShare: share(r.Dismissed, r.Raised), ClosedLoopRate: share(r.ClosedLoop, r.Raised), DismissedBy: r.DismissedBy}
	if r.Acted > 0 {
		k.FirstActionP50S, k.FirstActionP90S = ptr(r.FirstActionP50), ptr(r.FirstActionP90)
	}
	if r.Resolved > 0 {
		k.ResolutionP50S, k.ResolutionP90S = ptr(r.ResolutionP50), ptr(r.ResolutionP90)
	}
	if k.DismissedBy == nil {
		k.DismissedBy = map[string]uint64{}
	}
	return k
}

func ptr(x float64) *float64 { return &x }

// districtScore is a district's score for its handling: 100 × the weighted mean of the share
// handled within the deadline, the closed-loop rate and the share not dismissed.
func districtScore(k HandlingKPI, w DistrictWeights) float64 {
	sum := w.WithinDeadline + w.ClosedLoop + w.NotDismissed
	if sum == 0 || k.Raised == 0 {
		return 0
	}
	within := float64(k.WithinDeadline) / float64(k.Raised)
	closed := float64(k.ClosedLoop) / float64(k.Raised)
	kept := 1 - float64(k.Dismissed)/float64(k.Raised)
	return roundTenth(100 * (w.WithinDeadline*within + w.ClosedLoop*closed + w.NotDismissed*kept) / sum)
}

// PeriodScorecard is a company's or a vehicle's record and score in one period.
type PeriodScorecard struct {
	Period   string  `json:"period"`
	Vehicles int     `json:"vehicles"`
	Km       float64 `json:"km"`
	Trips    uint64  `json:"trips"`
	// TripsClosed: trips less the trip_unclosed alerts; TripsClosedShare of Trips (null without
	// trips).
	TripsClosed      uint64   `json:"trips_closed"`
	TripsClosedShare *float64 `json:"trips_closed_share"`
	UnlicensedTrips  uint64   `json:"unlicensed_trips"`
	// Violations counts the distinct alerts by rule; Per1000Km and PerTrip are the rates (null
	// without km, trips).
	Violations      map[string]uint64  `json:"violations"`
	ViolationsTotal uint64             `json:"violations_total"`
	Per1000Km       map[string]float64 `json:"violations_per_1000_km"`
	PerTrip         map[string]float64 `json:"violations_per_trip"`
	// RepeatOffenders are the vehicles with at least api.kpi.repeat_offender violations.
	RepeatOffenders []string `json:"repeat_offenders"`
	Score           float64  `json:"score"`
	// Reasons say what took points off the score, largest first ("POINTS points off: why").
	Reasons []string `json:"reasons"`
}

// Scorecard is a company's or a vehicle's scorecards over the periods it was active in.
type Scorecard struct {
	Name    string `json:"name"`
	Company string `json:"company,omitempty"`
	// Score is the last period's; Change the change from the period before it (null with one).
	Score   float64           `json:"score"`
	Change  *float64          `json:"change"`
	Periods []PeriodScorecard `json:"periods"`
}

// companyOf is the company a vehicle belongs to: the city's registry, else its alerts', else
// "(unregistered)".
func companyOf(c *city.City, a VehicleActivity) string {
	if v := c.Vehicle(a.Vehicle); v != nil && v.Company != "" {
		return v.Company
	}
	if a.Company != "" {
		return a.Company
	}
	return "(unregistered)"
}

// scorecards groups the vehicles' activity per company (of "company") or per vehicle and scores
// each period.
func scorecards(acts []VehicleActivity, of string, c *city.City, cfg KPIConfig) []Scorecard {
	type key struct{ name, period string }
	groups := map[key][]VehicleActivity{}
	names := map[string]string{} // name → company
	for _, a := range acts {
		company := companyOf(c, a)
		name := company
		if of == "vehicle" {
			name = a.Vehicle
		}
		names[name] = company
		k := key{name, a.Period}
		groups[k] = append(groups[k], a)
	}
	byName := map[string][]PeriodScorecard{}
	for k, as := range groups {
		byName[k.name] = append(byName[k.name], scorePeriod(k.period, as, cfg))
	}
	out := make([]Scorecard, 0, len(byName))
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		ps := byName[name]
		slices.SortFunc(ps, func(a, b PeriodScorecard) int { return strings.Compare(a.Period, b.Period) })
		sc := Scorecard{Name: name, Periods: ps, Score: ps[len(ps)-1].Score}
		if of == "vehicle" {
			sc.Company = names[name]
		}
		if len(ps) > 1 {
			sc.Change = ptr(roundTenth(ps[len(ps)-1].Score - ps[len(ps)-2].Score))
		}
		out = append(out, sc)
	}
	return out
}

// scorePeriod sums the vehicles' activity of one period and scores it.
func scorePeriod(period string, as []VehicleActivity, cfg KPIConfig) PeriodScorecard {
	p := PeriodScorecard{Period: period, Vehicles: len(as), Violations: map[string]uint64{}, RepeatOffenders: []string{}, Reasons: []string{}}
	for _, a := range as {
		p.Km += a.Km
		p.Trips += a.Trips
		var n uint64
		for r, v := range a.Violations {
			p.Violations[r] += v
			n += v
		}
		p.ViolationsTotal += n
		if n >= uint64(cfg.RepeatOffender) {
			p.RepeatOffenders = append(p.RepeatOffenders, a.Vehicle)
		}
	}
	slices.Sort(p.RepeatOffenders)
	unclosed := p.Violations[ruleTripUnclosed]
	p.UnlicensedTrips = p.Violations[ruleUnlicensed]
	if p.Trips > 0 {
		p.TripsClosed = p.Trips - min(unclosed, p.Trips)
		p.TripsClosedShare = ptr(share(p.TripsClosed, p.Trips))
		p.PerTrip = map[string]float64{}
		for r, v := range p.Violations {
			p.PerTrip[r] = math.Round(float64(v)/float64(p.Trips)*10_000) / 10_000
		}
	}
	weighted := 0.0
	for r, v := range p.Violations {
		w, ok := cfg.RuleWeights[r]
		if !ok {
			w = 1
		}
		weighted += w * float64(v)
	}
	if p.Km >= 1 {
		p.Per1000Km = map[string]float64{}
		for r, v := range p.Violations {
			p.Per1000Km[r] = math.Round(float64(v)/p.Km*1000*10_000) / 10_000
		}
	}
	p.Km = math.Round(p.Km*1000) / 1000

	w := cfg.Company
	type cut struct {
		points float64
		why    string
	}
	var cuts []cut
	if weighted > 0 {
		if p.Km >= 1 {
			rate := weighted / p.Km * 1000
			cuts = append(cuts, cut{min(w.MaxViolations, w.PerViolationRate*rate), fmt.Sprintf("%.2f weighted violations per 1,000 km", rate)})
		} else {
			cuts = append(cuts, cut{w.MaxViolations, fmt.Sprintf("%g weighted violations with under 1 km driven", weighted)})
		}
	}
	if p.Trips > 0 && p.TripsClosed < p.Trips {
		notClosed := 1 - float64(p.TripsClosed)/float64(p.Trips)
		cuts = append(cuts, cut{w.UnclosedShare * notClosed, fmt.Sprintf("%d of %d trips not closed at the permit's disposal site", p.Trips-p.TripsClosed, p.Trips)})
	}
	if p.UnlicensedTrips > 0 {
		cuts = append(cuts, cut{min(w.MaxUnlicensed, w.PerUnlicensed*float64(p.UnlicensedTrips)), fmt.Sprintf("%d unlicensed trips", p.UnlicensedTrips)})
	}
	if n := len(p.RepeatOffenders); n > 0 {
		cuts = append(cuts, cut{min(w.MaxRepeatOffenders, w.PerRepeatOffender*float64(n)), fmt.Sprintf("%d repeat offenders (%d or more violations)", n, cfg.RepeatOffender)})
	}
	slices.SortStableFunc(cuts, func(a, b cut) int {
		switch {
		case a.points > b.points:
			return -1
		case a.points < b.points:
			return 1
		}
		return 0
	})
	total := 0.0
	for _, c := range cuts {
		if c.points <= 0 {
			continue
		}
		total += c.points
		p.Reasons = append(p.Reasons, fmt.Sprintf("%.1f points off: %s", c.points, c.why))
	}
	p.Score = roundTenth(max(0, 100-total))
	return p
}

// Ranked is a district or company in a ranking.
type Ranked struct {
	Rank  int     `json:"rank"`
	Name  string  `json:"name"`
	Score float64 `json:"score"`
	// The previous period's score and rank, and the changes (null when it was not ranked then).
	PreviousScore *float64 `json:"previous_score"`
	PreviousRank  *int     `json:"previous_rank"`
	Change        *float64 `json:"change"`
	RankChange    *int     `json:"rank_change"`
}

// rank orders scores (name → score) best first, ties by name, and numbers them from 1 (equal
// scores share a rank).
func rank(scores map[string]float64) []Ranked {
	out := make([]Ranked, 0, len(scores))
	for n, s := range scores {
		out = append(out, Ranked{Name: n, Score: s})
	}
	slices.SortFunc(out, func(a, b Ranked) int {
		switch {
		case a.Score > b.Score:
			return -1
		case a.Score < b.Score:
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	for i := range out {
		out[i].Rank = i + 1
		if i > 0 && out[i].Score == out[i-1].Score {
			out[i].Rank = out[i-1].Rank
		}
	}
	return out
}

// ranking ranks cur with the change from prev.
func ranking(cur, prev map[string]float64) []Ranked {
	out := rank(cur)
	before := map[string]Ranked{}
	for _, r := range rank(prev) {
		before[r.Name] = r
	}
	for i := range out {
		if b, ok := before[out[i].Name]; ok {
			out[i].PreviousScore, out[i].PreviousRank = ptr(b.Score), &b.Rank
			out[i].Change = ptr(roundTenth(out[i].Score - b.Score))
			d := b.Rank - out[i].Rank
			out[i].RankChange = &d
		}
	}
	return out
}

// periodBounds returns the period of interval (day, week from Monday, month) containing t in
// loc, and the one before it.
func periodBounds(interval string, t time.Time, loc *time.Location) (prevStart, start, end time.Time) {
	t = t.In(loc)
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
	switch interval {
	case IntervalWeek:
		start = day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
		return start.AddDate(0, 0, -7), start, start.AddDate(0, 0, 7)
	case IntervalMonth:
		start = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, loc)
		return start.AddDate(0, -1, 0), start, start.AddDate(0, 1, 0)
	}
	return day.AddDate(0, 0, -1), day, day.AddDate(0, 0, 1)
}

// dayFloor and dayCeil are the midnights in loc at or before, and at or after, t.
func dayFloor(t time.Time, loc *time.Location) time.Time {
	t = t.In(loc)
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
}

func dayCeil(t time.Time, loc *time.Location) time.Time {
	d := dayFloor(t, loc)
	if d.Equal(t) {
		return d
	}
	return d.AddDate(0, 0, 1)
}

// constructionSites lists the ids of the city's construction sites.
func constructionSites(c *city.City) []string {
	var out []string
	for _, s := range c.Sites {
		if s.Kind == city.SiteConstruction {
			out = append(out, s.ID)
		}
	}
	return out
}

// roundTenth rounds x to 0.1, halves away from zero (negative changes too).
func roundTenth(x float64) float64 { return math.Round(x*10) / 10 }
