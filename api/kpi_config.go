package api

import (
	"errors"
	"fmt"
	"time"
)

// KPIConfig configures the handling KPIs, the scorecards and the rankings (docs/kpis.md).
type KPIConfig struct {
	// RepeatOffender: a vehicle with at least this many violations in a period is a repeat
	// offender of that period.
	RepeatOffender int `yaml:"repeat_offender"`
	// RuleWeights weigh each rule's violations in a company's or vehicle's violation rate; a rule
	// not listed weighs 1.
	RuleWeights map[string]float64 `yaml:"rule_weights"`
	// Company are the points a company's (or vehicle's) score loses, from 100.
	Company CompanyWeights `yaml:"company"`
	// District weighs a district's handling into its score.
	District DistrictWeights `yaml:"district"`
	// RollupDays is how many ended days the background roll-ups (vehicle_km_daily, and
	// handling_daily, vehicle_violations_daily and vehicle_exits_daily) do at a time (default 7);
	// -1 turns them off (the KPIs then read the raw tables for those days).
	RollupDays int `yaml:"rollup_days"`
	// RollupBack is how far back the background roll-ups look for days missing from
	// vehicle_km_daily and handling_daily.
	RollupBack time.Duration `yaml:"rollup_back"`
	// HandlingSettle: a day's alerts and gate exits are rolled up into the daily roll-ups this long
	// after the day ended; actions taken later roll the day's handling up again (rollUpLate).
	HandlingSettle time.Duration `yaml:"handling_settle"`
	// QueryTimeout bounds the ClickHouse queries of a KPI, scorecard or ranking request (default
	// 60s) in place of api.query_timeout: a year's scorecards of a large city are a report that
	// takes seconds, not a lookup.
	QueryTimeout time.Duration `yaml:"query_timeout"`
}

// CompanyWeights are the points a company's score loses for each shortcoming, each capped.
type CompanyWeights struct {
	// PerViolationRate: points per weighted violation per 1,000 km; at most MaxViolations.
	PerViolationRate float64 `yaml:"per_violation_rate"`
	MaxViolations    float64 `yaml:"max_violations"`
	// UnclosedShare: points for all trips unclosed (scaled by the share of trips not closed
	// correctly).
	UnclosedShare float64 `yaml:"unclosed_share"`
	// PerUnlicensed: points per unlicensed trip; at most MaxUnlicensed.
	PerUnlicensed float64 `yaml:"per_unlicensed"`
	MaxUnlicensed float64 `yaml:"max_unlicensed"`
	// PerRepeatOffender: points per repeat-offending vehicle; at most MaxRepeatOffenders.
	PerRepeatOffender  float64 `yaml:"per_repeat_offender"`
	MaxRepeatOffenders float64 `yaml:"max_repeat_offenders"`
}

// DistrictWeights weigh a district's shares into its score, 100 × the weighted mean.
type DistrictWeights struct {
	WithinDeadline float64 `yaml:"within_deadline"`
	ClosedLoop     float64 `yaml:"closed_loop"`
	NotDismissed   float64 `yaml:"not_dismissed"`
}

// withDefaults fills the zero fields.
func (k KPIConfig) withDefaults() KPIConfig {
	if k.RepeatOffender == 0 {
		k.RepeatOffender = 3
	}
	c := &k.Company
	if c.PerViolationRate == 0 && c.MaxViolations == 0 && c.UnclosedShare == 0 && c.PerUnlicensed == 0 &&
		c.MaxUnlicensed == 0 && c.PerRepeatOffender == 0 && c.MaxRepeatOffenders == 0 {
		*c = CompanyWeights{PerViolationRate: 2, MaxViolations: 40, UnclosedShare: 20, PerUnlicensed: 5, MaxUnlicensed: 20,
			PerRepeatOffender: 5, MaxRepeatOffenders: 20}
	}
	d := &k.District
	if d.WithinDeadline == 0 && d.ClosedLoop == 0 && d.NotDismissed == 0 {
		*d = DistrictWeights{WithinDeadline: 0.4, ClosedLoop: 0.4, NotDismissed: 0.2}
	}
	if k.RollupDays == 0 {
		k.RollupDays = 7
	}
	if k.HandlingSettle == 0 {
		k.HandlingSettle = 7 * 24 * time.Hour
	}
	if k.RollupBack == 0 {
		k.RollupBack = 400 * 24 * time.Hour
	}
	if k.QueryTimeout == 0 {
		k.QueryTimeout = time.Minute
	}
	return k
}

// validate says what is wrong with the configuration, under api.kpi.
func (k KPIConfig) validate() error {
	var errs []error
	if k.RepeatOffender < 1 {
		errs = append(errs, fmt.Errorf("api.kpi.repeat_offender must be at least 1, got %d", k.RepeatOffender))
	}
	for r, w := range k.RuleWeights {
		if w < 0 {
			errs = append(errs, fmt.Errorf("api.kpi.rule_weights.%s must not be negative, got %g", r, w))
		}
	}
	c := k.Company
	for name, v := range map[string]float64{"per_violation_rate": c.PerViolationRate, "max_violations": c.MaxViolations,
		"unclosed_share": c.UnclosedShare, "per_unlicensed": c.PerUnlicensed, "max_unlicensed": c.MaxUnlicensed,
		"per_repeat_offender": c.PerRepeatOffender, "max_repeat_offenders": c.MaxRepeatOffenders} {
		if v < 0 {
			errs = append(errs, fmt.Errorf("api.kpi.company.%s must not be negative, got %g", name, v))
		}
	}
	if sum := c.MaxViolations + c.UnclosedShare + c.MaxUnlicensed + c.MaxRepeatOffenders; sum > 100 {
		errs = append(errs, fmt.Errorf("api.kpi.company: the caps (max_violations + unclosed_share + max_unlicensed + max_repeat_offenders) add up to %g, more than the 100 points a score has", sum))
	}
	d := k.District
	if d.WithinDeadline < 0 || d.ClosedLoop < 0 || d.NotDismissed < 0 {
		errs = append(errs, errors.New("api.kpi.district: the weights must not be negative"))
	}
	if k.HandlingSettle < time.Hour {
		errs = append(errs, fmt.Errorf("api.kpi.handling_settle must be at least 1h, got %s", k.HandlingSettle))
	}
	if k.QueryTimeout < 100*time.Millisecond || k.QueryTimeout > 10*time.Minute {
		errs = append(errs, fmt.Errorf("api.kpi.query_timeout must be within [100ms, 10m], got %s", k.QueryTimeout))
	}
	if k.RollupDays < -1 || k.RollupDays > 366 {
		errs = append(errs, fmt.Errorf("api.kpi.rollup_days must be within [1, 366], or -1 (off), got %d", k.RollupDays))
	}
	return errors.Join(errs...)
}
