package sim

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"time"
)

// Detection is one alert as the scorer needs it.
type Detection struct {
	Rule      string
	VehicleID string
	Start     time.Time // when the alert says the violation started
	End       time.Time // zero while open
	Opened    time.Time // event time the alert was raised
	Place     string    // zone, site or route, for reports
}

// RuleScore is the accuracy of one rule against the ground truth.
type RuleScore struct {
	Rule                  string
	Episodes, Alerts      int
	TP, FP, FN            int // TP: episodes alerted; FP: alerts matching no episode; FN: episodes not alerted
	Split                 int // episodes matched by more than one alert (one episode should be one alert)
	Precision, Recall     float64
	DelayMedian, DelayP95 time.Duration // from the violation's start to the alert, over alerted episodes
}

// MatchSlack is how far an alert may lie outside its episode's span and still match it: two
// reporting intervals and 5 s. A feed reporting irregularly (IntervalSpread) is judged by its
// longest interval: a 1–5 s feed has the slack of a 5 s one, since a stop, an entry or a turn
// between two of its fixes is seen only at the later one.
func (o Options) MatchSlack() time.Duration {
	return 2*(o.Interval+o.IntervalSpread) + 5*time.Second
}

// Score matches detections to ground-truth episodes: a detection matches an episode of the same
// rule and vehicle whose time span overlaps its own, widened by slack on both sides. Precision is
// matched alerts over alerts, recall alerted episodes over episodes, and the delay of an alerted
// episode is from its start to the first matching alert being raised (0 when raised earlier).
func Score(truth []Episode, dets []Detection, slack time.Duration) []RuleScore {
	forever := time.Unix(1<<40, 0)
	endOr := func(t time.Time) time.Time {
		if t.IsZero() {
			return forever
		}
		return t
	}
	type key struct{ rule, vehicle string }
	byKey := map[key][]int{}
	for i, d := range dets {
		k := key{d.Rule, d.VehicleID}
		byKey[k] = append(byKey[k], i)
	}
	matched := make([]bool, len(dets))
	scores := map[string]*RuleScore{}
	get := func(rule string) *RuleScore {
		if scores[rule] == nil {
			scores[rule] = &RuleScore{Rule: rule}
		}
		return scores[rule]
	}
	delays := map[string][]time.Duration{}
	for _, ep := range truth {
		rs := get(ep.Rule)
		rs.Episodes++
		var first time.Time
		n := 0
		for _, i := range byKey[key{ep.Rule, ep.VehicleID}] {
			d := dets[i]
			if d.Start.After(endOr(ep.End).Add(slack)) || endOr(d.End).Before(ep.Start.Add(-slack)) {
				continue
			}
			matched[i] = true
			n++
			if first.IsZero() || d.Opened.Before(first) {
				first = d.Opened
			}
		}
		if first.IsZero() {
			rs.FN++
			continue
		}
		rs.TP++
		if n > 1 {
			rs.Split++
		}
		delays[ep.Rule] = append(delays[ep.Rule], max(0, first.Sub(ep.Start)))
	}
	for i, d := range dets {
		rs := get(d.Rule)
		rs.Alerts++
		if !matched[i] {
			rs.FP++
		}
	}
	out := make([]RuleScore, 0, len(scores))
	for _, rs := range scores {
		if rs.Alerts > 0 {
			rs.Precision = float64(rs.Alerts-rs.FP) / float64(rs.Alerts)
		} else {
			rs.Precision = 1
		}
		if rs.Episodes > 0 {
			rs.Recall = float64(rs.TP) / float64(rs.Episodes)
		} else {
			rs.Recall = 1
		}
		if d := delays[rs.Rule]; len(d) > 0 {
			slices.Sort(d)
			rs.DelayMedian = d[len(d)/2]
			rs.DelayP95 = d[min(len(d)-1, len(d)*95/100)]
		}
		out = append(out, *rs)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Rule < out[j].Rule })
	return out
}

// WriteScores prints a score table; interval expresses delays in reporting intervals too.
func WriteScores(w io.Writer, scores []RuleScore, interval time.Duration) {
	fmt.Fprintf(w, "%-16s %8s %6s %5s %5s %5s %5s %9s %7s %14s %14s\n", "rule", "episodes", "alerts", "TP", "FP", "FN", "split", "precision", "recall", "delay median", "delay p95")
	for _, s := range scores {
		fmt.Fprintf(w, "%-16s %8d %6d %5d %5d %5d %5d %9.3f %7.3f %8s %4.1fi %8s %4.1fi\n", s.Rule, s.Episodes, s.Alerts, s.TP, s.FP, s.FN, s.Split,
			s.Precision, s.Recall, s.DelayMedian, float64(s.DelayMedian)/float64(interval), s.DelayP95, float64(s.DelayP95)/float64(interval))
	}
}

// overlaps reports whether detection d matches episode ep by Score's matching.
func overlaps(ep Episode, d Detection, slack time.Duration) bool {
	forever := time.Unix(1<<40, 0)
	endOr := func(t time.Time) time.Time {
		if t.IsZero() {
			return forever
		}
		return t
	}
	return d.Rule == ep.Rule && d.VehicleID == ep.VehicleID &&
		!d.Start.After(endOr(ep.End).Add(slack)) && !endOr(d.End).Before(ep.Start.Add(-slack))
}

// Observable returns dets without the detections that start after the run's horizon (its last
// two intervals) and match no episode: the ground truth leaves out the episodes starting there,
// which two fixes before the end cannot confirm, so an alert for one (a trip's timeout decided an
// interval before a deadline that falls just after the end) has nothing to match. An alert there
// that matches an episode still counts. dets is filtered in place.
func (r Result) Observable(dets []Detection, slack time.Duration) []Detection {
	if r.Horizon.IsZero() {
		return dets
	}
	out := dets[:0]
	for _, d := range dets {
		if !d.Start.After(r.Horizon) || slices.ContainsFunc(r.Truth, func(ep Episode) bool { return overlaps(ep, d, slack) }) {
			out = append(out, d)
		}
	}
	return out
}

// Unmatched returns the episodes of rule no detection matched and the detections of rule that
// matched no episode, by Score's matching, to explain a score.
func Unmatched(truth []Episode, dets []Detection, slack time.Duration, rule string) ([]Episode, []Detection) {
	overlap := func(ep Episode, d Detection) bool { return overlaps(ep, d, slack) }
	var eps []Episode
	var ds []Detection
	for _, ep := range truth {
		if ep.Rule == rule && !slices.ContainsFunc(dets, func(d Detection) bool { return overlap(ep, d) }) {
			eps = append(eps, ep)
		}
	}
	for _, d := range dets {
		if d.Rule == rule && !slices.ContainsFunc(truth, func(ep Episode) bool { return overlap(ep, d) }) {
			ds = append(ds, d)
		}
	}
	return eps, ds
}
