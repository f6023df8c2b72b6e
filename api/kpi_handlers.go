package api

// The analysts' and supervisors' KPI endpoints: GET /api/v1/kpis/handling, /api/v1/scorecards
// and /api/v1/rankings (docs/kpis.md), each as JSON or CSV.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/muckwatch/muckwatch/city"
)

// HandlingAnswer is GET /api/v1/kpis/handling's answer.
type HandlingAnswer struct {
	From     string        `json:"from"`
	To       string        `json:"to"`
	By       string        `json:"by"`
	Interval string        `json:"interval"`
	Rows     []HandlingKPI `json:"rows"`
}

// ScorecardsAnswer is GET /api/v1/scorecards' answer.
type ScorecardsAnswer struct {
	From       string      `json:"from"`
	To         string      `json:"to"`
	Of         string      `json:"of"`
	Interval   string      `json:"interval"`
	Scorecards []Scorecard `json:"scorecards"`
}

// RankingAnswer is GET /api/v1/rankings' answer.
type RankingAnswer struct {
	Of       string      `json:"of"`
	Period   string      `json:"period"`
	Current  PeriodRange `json:"current"`
	Previous PeriodRange `json:"previous"`
	Rankings []Ranked    `json:"rankings"`
}

// PeriodRange is a period's bounds.
type PeriodRange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

func oneOf(v, name string, allowed ...string) (string, error) {
	if slices.Contains(allowed, v) {
		return v, nil
	}
	return v, fmt.Errorf("%s must be one of %s, got %q", name, strings.Join(allowed, ", "), v)
}

func formatParam(r *http.Request) (string, error) {
	return oneOf(orDefault(r.URL.Query().Get("format"), "json"), "format", "json", "csv")
}

// teamsByOfficer inverts api.dispatch.teams.
func (s *Server) teamsByOfficer() map[string]string {
	out := map[string]string{}
	for team, officers := range s.cfg.Dispatch.Teams {
		for _, o := range officers {
			out[o] = team
		}
	}
	return out
}

func (s *Server) handlingQuery(r *http.Request) (HandlingQuery, string, error) {
	q := r.URL.Query()
	hq := HandlingQuery{Location: s.city.City().Location, AckWithin: s.cfg.AckWithin, NowMs: s.now().UnixMilli(),
		Teams: s.teamsByOfficer(), GridStaff: s.cfg.Dispatch.GridStaff}
	var errs []error
	var err error
	if hq.From, hq.To, err = s.window(r); err != nil {
		errs = append(errs, err)
	}
	if hq.By, err = oneOf(orDefault(q.Get("by"), "district"), "by", "district", "unit"); err != nil {
		errs = append(errs, err)
	}
	if hq.Interval, err = oneOf(orDefault(q.Get("interval"), IntervalAll), "interval", IntervalDay, IntervalWeek, IntervalMonth, IntervalAll); err != nil {
		errs = append(errs, err)
	}
	districts, err := s.districtParam(q.Get("district"))
	if err != nil {
		errs = append(errs, err)
	}
	hq.Districts = sortedKeys(districts)
	format, err := formatParam(r)
	if err != nil {
		errs = append(errs, err)
	}
	return hq, format, errors.Join(errs...)
}

func (s *Server) handleHandlingKPIs(w http.ResponseWriter, r *http.Request) {
	hq, format, err := s.handlingQuery(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if s.noStore(w) {
		return
	}
	var rows []HandlingRow
	if err := s.queryWithin(r.Context(), s.cfg.KPI.QueryTimeout, func(ctx context.Context) (err error) {
		rows, err = s.store.Handling(ctx, hq)
		return err
	}); err != nil {
		s.historyFailed(w, r, err)
		return
	}
	loc := hq.Location
	ans := HandlingAnswer{From: formatTime(hq.From, loc), To: formatTime(hq.To, loc), By: hq.By, Interval: hq.Interval, Rows: make([]HandlingKPI, len(rows))}
	for i, row := range rows {
		if hq.Interval == IntervalAll {
			row.Period = ans.From
		}
		ans.Rows[i] = handlingKPI(row)
	}
	if format == "csv" {
		writeCSV(w, "handling.csv", handlingCSV(hq.By, ans.Rows))
		return
	}
	writeBody(w, "application/json; charset=utf-8", ans)
}

func optFloat(p *float64) string {
	if p == nil {
		return ""
	}
	return strconv.FormatFloat(*p, 'f', -1, 64)
}

func handlingCSV(by string, rows []HandlingKPI) [][]string {
	out := [][]string{{"period", by, "raised", "dispatched", "acknowledged", "resolved", "dismissed", "acted", "within_deadline", "overdue", "closed_loop",
		"within_deadline_share", "overdue_share", "dismissed_share", "closed_loop_rate", "first_action_p50_s", "first_action_p90_s",
		"resolution_p50_s", "resolution_p90_s", "dismissed_by"}}
	u := func(n uint64) string { return strconv.FormatUint(n, 10) }
	f := func(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }
	for _, k := range rows {
		var reasons []string
		for _, reason := range slices.Sorted(maps.Keys(k.DismissedBy)) {
			reasons = append(reasons, fmt.Sprintf("%s=%d", reason, k.DismissedBy[reason]))
		}
		out = append(out, []string{k.Period, csvText(k.Key), u(k.Raised), u(k.Dispatched), u(k.Acknowledged), u(k.Resolved), u(k.Dismissed), u(k.Acted),
			u(k.WithinDeadline), u(k.Overdue), u(k.ClosedLoop), f(k.WithinDeadlineShare), f(k.OverdueShare), f(k.DismissedShare), f(k.ClosedLoopRate),
			optFloat(k.FirstActionP50S), optFloat(k.FirstActionP90S), optFloat(k.ResolutionP50S), optFloat(k.ResolutionP90S), csvText(strings.Join(reasons, "; "))})
	}
	return out
}

// activity reads the vehicles' activity over whole days [from, to) of the city's zone.
func (s *Server) activity(ctx context.Context, c *city.City, from, to time.Time, interval string, vehicles []string) ([]VehicleActivity, error) {
	var acts []VehicleActivity
	err := s.queryWithin(ctx, s.cfg.KPI.QueryTimeout, func(ctx context.Context) (err error) {
		acts, err = s.store.Activity(ctx, ActivityQuery{From: from, To: to, Interval: interval, Location: c.Location,
			ConstructionSites: constructionSites(c), Vehicles: vehicles})
		return err
	})
	if err != nil {
		// acts is not read: a query given up on may still be writing it
		return nil, err
	}
	return acts, nil
}

func (s *Server) handleScorecards(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	c := s.city.City()
	from, to, werr := s.window(r)
	from, to = dayFloor(from, c.Location), dayCeil(to, c.Location)
	of, oerr := oneOf(orDefault(q.Get("of"), "company"), "of", "company", "vehicle")
	interval, ierr := oneOf(orDefault(q.Get("interval"), IntervalAll), "interval", IntervalDay, IntervalWeek, IntervalMonth, IntervalAll)
	company, cerr := textParam(q.Get("company"), "company")
	var vehicle string
	var verr error
	if raw := q.Get("vehicle"); raw != "" {
		vehicle, verr = plateParam(raw, "vehicle")
		auditPlates(r, vehicle)
	}
	format, ferr := formatParam(r)
	if err := errors.Join(werr, oerr, ierr, cerr, verr, ferr); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if s.noStore(w) {
		return
	}
	var vehicles []string
	if company != "" {
		// the company's registered vehicles; its unregistered ones are found by their alerts below
		for _, v := range c.Vehicles {
			if v.Company == company {
				vehicles = append(vehicles, v.Plate)
			}
		}
	}
	if vehicle != "" {
		vehicles = []string{vehicle}
	}
	var acts []VehicleActivity
	var err error
	if company == "" || len(vehicles) > 0 {
		acts, err = s.activity(r.Context(), c, from, to, interval, vehicles)
	}
	if err != nil {
		s.historyFailed(w, r, err)
		return
	}
	cards := scorecards(acts, of, c, s.cfg.KPI)
	if company != "" {
		cards = slices.DeleteFunc(cards, func(sc Scorecard) bool { return sc.Name != company && sc.Company != company })
	}
	ans := ScorecardsAnswer{From: formatTime(from, c.Location), To: formatTime(to, c.Location), Of: of, Interval: interval, Scorecards: cards}
	if interval == IntervalAll {
		for i := range cards {
			for j := range cards[i].Periods {
				cards[i].Periods[j].Period = ans.From
			}
		}
	}
	if format == "csv" {
		writeCSV(w, "scorecards.csv", scorecardsCSV(of, cards))
		return
	}
	writeBody(w, "application/json; charset=utf-8", ans)
}

func scorecardsCSV(of string, cards []Scorecard) [][]string {
	head := []string{"company"}
	if of == "vehicle" {
		head = []string{"vehicle", "company"}
	}
	out := [][]string{append(head, "period", "score", "reasons", "vehicles", "km", "trips", "trips_closed", "trips_closed_share", "unlicensed_trips",
		"violations_total", "violations", "violations_per_1000_km", "repeat_offenders")}
	for _, sc := range cards {
		for _, p := range sc.Periods {
			var v, rate []string
			for _, r := range slices.Sorted(maps.Keys(p.Violations)) {
				v = append(v, fmt.Sprintf("%s=%d", r, p.Violations[r]))
				if p.Per1000Km != nil {
					rate = append(rate, fmt.Sprintf("%s=%g", r, p.Per1000Km[r]))
				}
			}
			rec := []string{csvText(sc.Name)}
			if of == "vehicle" {
				rec = append(rec, csvText(sc.Company))
			}
			out = append(out, append(rec, p.Period, strconv.FormatFloat(p.Score, 'f', 1, 64), csvText(strings.Join(p.Reasons, "; ")),
				strconv.Itoa(p.Vehicles), strconv.FormatFloat(p.Km, 'f', 3, 64), strconv.FormatUint(p.Trips, 10), strconv.FormatUint(p.TripsClosed, 10),
				optFloat(p.TripsClosedShare), strconv.FormatUint(p.UnlicensedTrips, 10), strconv.FormatUint(p.ViolationsTotal, 10),
				csvText(strings.Join(v, "; ")), csvText(strings.Join(rate, "; ")), csvText(strings.Join(p.RepeatOffenders, " "))))
		}
	}
	return out
}

func (s *Server) handleRankings(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	c := s.city.City()
	loc := c.Location
	of, oerr := oneOf(orDefault(q.Get("of"), "districts"), "of", "districts", "companies")
	period, perr := oneOf(orDefault(q.Get("period"), IntervalMonth), "period", IntervalDay, IntervalWeek, IntervalMonth)
	at := s.now()
	var aerr error
	if raw := q.Get("at"); raw != "" {
		if d, err := time.ParseInLocation(time.DateOnly, raw, loc); err == nil {
			at = d
		} else if t, err := time.Parse(time.RFC3339, raw); err == nil {
			at = t
		} else {
			aerr = fmt.Errorf("at must be a date (2006-01-02) or an RFC 3339 time, got %q", raw)
		}
	}
	format, ferr := formatParam(r)
	if err := errors.Join(oerr, perr, aerr, ferr); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if s.noStore(w) {
		return
	}
	prevStart, start, end := periodBounds(period, at, loc)
	curLabel, prevLabel := start.Format(time.DateOnly), prevStart.Format(time.DateOnly)
	cur, prev := map[string]float64{}, map[string]float64{}
	pick := func(label string) map[string]float64 {
		switch label {
		case curLabel:
			return cur
		case prevLabel:
			return prev
		}
		return nil
	}
	var err error
	if of == "districts" {
		var rows []HandlingRow
		hq := HandlingQuery{From: prevStart, To: end, By: "district", Interval: period, Location: loc, AckWithin: s.cfg.AckWithin, NowMs: s.now().UnixMilli()}
		err = s.queryWithin(r.Context(), s.cfg.KPI.QueryTimeout, func(ctx context.Context) (err error) {
			rows, err = s.store.Handling(ctx, hq)
			return err
		})
		if err != nil {
			// rows are not read: a query given up on (timeout, the client gone) may still be
			// writing them
			s.historyFailed(w, r, err)
			return
		}
		for _, row := range rows {
			if m := pick(row.Period); m != nil && row.Key != "" {
				m[row.Key] = districtScore(handlingKPI(row), s.cfg.KPI.District)
			}
		}
	} else {
		var acts []VehicleActivity
		acts, err = s.activity(r.Context(), c, prevStart, end, period, nil)
		if err != nil {
			s.historyFailed(w, r, err)
			return
		}
		for _, sc := range scorecards(acts, "company", c, s.cfg.KPI) {
			for _, p := range sc.Periods {
				if m := pick(p.Period); m != nil {
					m[sc.Name] = p.Score
				}
			}
		}
	}
	ans := RankingAnswer{Of: of, Period: period, Current: PeriodRange{formatTime(start, loc), formatTime(end, loc)},
		Previous: PeriodRange{formatTime(prevStart, loc), formatTime(start, loc)}, Rankings: ranking(cur, prev)}
	if format == "csv" {
		name := map[string]string{"districts": "district", "companies": "company"}[of]
		out := [][]string{{"rank", name, "score", "previous_rank", "previous_score", "change", "rank_change"}}
		for _, rk := range ans.Rankings {
			pr, rc := "", ""
			if rk.PreviousRank != nil {
				pr, rc = strconv.Itoa(*rk.PreviousRank), strconv.Itoa(*rk.RankChange)
			}
			out = append(out, []string{strconv.Itoa(rk.Rank), csvText(rk.Name), strconv.FormatFloat(rk.Score, 'f', 1, 64), pr, optFloat(rk.PreviousScore), optFloat(rk.Change), rc})
		}
		writeCSV(w, "rankings.csv", out)
		return
	}
	writeBody(w, "application/json; charset=utf-8", ans)
}

// rollUpKm rolls up, into vehicle_km_daily, up to api.kpi.rollup_days of the days that ended
// more than an hour ago and are missing, newest first. It returns the days it rolled up.
func (s *Server) rollUpKm(ctx context.Context) ([]time.Time, error) {
	loc := s.city.City().Location
	return s.rollUp(ctx, time.Hour, func(ctx context.Context, from, to time.Time) ([]time.Time, error) {
		return s.store.MissingKmDays(ctx, from, to, loc)
	}, func(ctx context.Context, day time.Time) error {
		return s.store.RollUpKm(ctx, day, loc, s.now())
	})
}

// rollUpKmHours rolls up, into vehicle_km_hourly, the hours of the days not in vehicle_km_daily
// (of today and yesterday) that ended more than hourSettle ago and are missing, newest first. It
// returns the hours it rolled up.
func (s *Server) rollUpKmHours(ctx context.Context) ([]time.Time, error) {
	if s.store == nil || s.cfg.KPI.RollupDays < 1 {
		return nil, nil
	}
	loc := s.city.City().Location
	now := s.now()
	today := dayFloor(now, loc)
	days, err := s.store.MissingKmDays(ctx, today.AddDate(0, 0, -1), today.AddDate(0, 0, 1), loc)
	if err != nil || len(days) == 0 {
		return nil, err
	}
	hours, err := s.store.MissingKmHours(ctx, days[0], minTime(days[len(days)-1].AddDate(0, 0, 1), now.Add(-hourSettle).Truncate(time.Hour)))
	if err != nil {
		return nil, err
	}
	// not the hours of a day already in vehicle_km_daily (yesterday's, when today's is missing)
	hours = slices.DeleteFunc(hours, func(h time.Time) bool {
		return !slices.ContainsFunc(days, func(d time.Time) bool { return h.Add(time.Hour).After(d) && h.Before(d.AddDate(0, 0, 1)) })
	})
	slices.Reverse(hours)
	for i, h := range hours {
		if err := s.store.RollUpKmHour(ctx, h, loc, s.now()); err != nil {
			return hours[:i], err
		}
	}
	return hours, nil
}

// rollUpDaily rolls up, into the daily roll-ups of the alerts and gate exits (RollUpDaily), up
// to api.kpi.rollup_days of the days that ended more than api.kpi.handling_settle ago and are
// missing, newest first.
func (s *Server) rollUpDaily(ctx context.Context) ([]time.Time, error) {
	loc := s.city.City().Location
	// the days come newest first; consecutive ones are rolled up in one statement
	var run []time.Time
	flush := func(ctx context.Context) error {
		if len(run) == 0 {
			return nil
		}
		from, to := run[len(run)-1], run[0].AddDate(0, 0, 1)
		run = run[:0]
		return s.store.RollUpDaily(ctx, from, to, loc, s.cfg.AckWithin, s.now())
	}
	days, err := s.rollUp(ctx, s.cfg.KPI.HandlingSettle, s.store.MissingDailyDays, func(ctx context.Context, day time.Time) error {
		if len(run) > 0 && !run[len(run)-1].AddDate(0, 0, -1).Equal(day) {
			if err := flush(ctx); err != nil {
				return err
			}
		}
		run = append(run, day)
		return nil
	})
	if err == nil {
		err = flush(ctx)
	}
	if err != nil {
		return nil, err
	}
	return days, nil
}

// lateMargin: an action taken up to this long before a day's roll-up may still have been
// written after it (the roll-up did not see it), so it counts as late too.
const lateMargin = 5 * time.Minute

// rollUpLate rolls up again the days of handling_daily whose alerts got actions after the
// day's roll-up (an alert resolved weeks after it started): it reads the actions taken since
// the last check (less lateMargin), rolls their days up again, and records the check.
func (s *Server) rollUpLate(ctx context.Context) ([]time.Time, error) {
	if s.store == nil || s.cfg.KPI.RollupDays < 1 {
		return nil, nil
	}
	loc := s.city.City().Location
	now := s.now()
	since, ok, err := s.store.ActionsChecked(ctx)
	if err != nil || !ok {
		return nil, err // nothing rolled up yet: nothing can be late
	}
	days, err := s.store.LateHandlingDays(ctx, since.Add(-lateMargin), loc, lateMargin)
	if err != nil {
		return nil, err
	}
	for i, d := range days {
		if err := s.store.RollUpHandling(ctx, d, d.AddDate(0, 0, 1), loc, s.cfg.AckWithin, s.now()); err != nil {
			return days[:i], err
		}
	}
	return days, s.store.SetActionsChecked(ctx, now)
}

// rollUp rolls up the missing days (as missing lists them) that ended settle ago, newest
// first, up to api.kpi.rollup_days, with roll.
func (s *Server) rollUp(ctx context.Context, settle time.Duration, missing func(ctx context.Context, from, to time.Time) ([]time.Time, error),
	roll func(ctx context.Context, day time.Time) error) ([]time.Time, error) {
	if s.store == nil || s.cfg.KPI.RollupDays < 1 {
		return nil, nil
	}
	loc := s.city.City().Location
	now := s.now()
	days, err := missing(ctx, dayFloor(now.Add(-s.cfg.KPI.RollupBack), loc), dayFloor(now.Add(-settle), loc))
	if err != nil {
		return nil, err
	}
	slices.Reverse(days)
	days = days[:min(len(days), s.cfg.KPI.RollupDays)]
	for i, d := range days {
		if err := roll(ctx, d); err != nil {
			return days[:i], err
		}
	}
	return days, nil
}

// kpiRollup runs the roll-ups (rollUpKm, rollUpKmHours, rollUpDaily, rollUpLate) from the background loop every rollupEvery, one run
// at a time, beside the loop.
type kpiRollup struct {
	next time.Time
	done chan struct{} // nil when no run is going
}

const rollupEvery = 10 * time.Minute

// maybe starts a run when none is going and the last started rollupEvery ago.
func (k *kpiRollup) maybe(ctx context.Context, s *Server) {
	if k.done != nil {
		select {
		case <-k.done:
			k.done = nil
		default:
			return
		}
	}
	now := time.Now()
	if s.store == nil || s.cfg.KPI.RollupDays < 1 || now.Before(k.next) {
		return
	}
	k.next = now.Add(rollupEvery)
	k.done = make(chan struct{})
	go func(done chan struct{}) {
		defer close(done)
		for _, r := range []struct {
			what string
			run  func(context.Context) ([]time.Time, error)
		}{{"the km driven per day (the scorecards read positions for the days missing)", s.rollUpKm},
			{"the km driven per hour of the days not rolled up (the scorecards read positions for the hours missing)", s.rollUpKmHours},
			{"the alerts and gate exits per day (the KPIs read alerts, actions and events for the days missing)", s.rollUpDaily},
			{"again the handling of the days with late actions", s.rollUpLate}} {
			days, err := r.run(ctx)
			if err != nil && ctx.Err() == nil {
				s.log.Warn("cannot roll up "+r.what, "rolled_up", len(days), "err", err)
			} else if len(days) > 0 {
				s.log.Info("rolled up "+r.what, "count", len(days), "newest", days[0].Format(time.RFC3339))
			}
		}
	}(k.done)
}

// wait waits for a run going.
func (k *kpiRollup) wait() {
	if k.done != nil {
		<-k.done
	}
}
