package api

import (
	"context"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

// rawKm is the km per day and vehicle of [from, to) by the per-day SQL of docs/kpis.md (every fix
// of the day from positions), the reference the roll-ups must equal.
func rawKm(t *testing.T, e *histEnv, from, to time.Time) map[[2]string]float64 {
	t.Helper()
	var q sqlText
	q.add("SELECT toString(k_day), vehicle_id, km FROM (")
	e.srv.store.kmFromPositions(&q, from, to, kpiZone.String(), nil)
	q.add(")")
	rows, err := e.conn.Query(context.Background(), q.String(), q.args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[[2]string]float64{}
	for rows.Next() {
		var d, v string
		var km float64
		if err := rows.Scan(&d, &v, &km); err != nil {
			t.Fatal(err)
		}
		out[[2]string{d, v}] = km
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// The km of the days not in vehicle_km_daily are summed from vehicle_km_hourly's ended hours and
// positions' hour going on, and equal the per-day computation from every fix (to rounding): with
// no hour rolled up, all of them, and after an hour is rolled up again with a late fix; over whole
// days and a window starting and ending inside hours. The background roll-up rolls the hours of
// the missing days that ended hourSettle ago, newest first, and none twice.
func TestKmHourly(t *testing.T) {
	e := newHistEnv(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 10, 15, 20, 0, 0, kpiZone)
	e.srv = e.newServerWith(NewStore(e.conn, e.db, histLogger()), func(c *Config) { c.KPI.RollupDays = 3 })
	e.srv.now = func() time.Time { return now }
	day := time.Date(2026, 11, 9, 0, 0, 0, 0, kpiZone)
	var fixes []histFix
	add := func(v string, at time.Time, lat, lon float64) {
		fixes = append(fixes, histFix{id: fmt.Sprintf("%s-%d", v, at.UnixMilli()), vehicle: v, at: at, lat: lat, lon: lon})
	}
	// A drives every 7 minutes from the 9th to now; B once an hour, with a GPS jump across the
	// boundary of 10:00 on the 10th and a gap of three hours; C has one fix (no step)
	for m := 0; m < (24+15)*60+15; m += 7 {
		add("A", day.Add(time.Duration(m)*time.Minute+13*time.Second), 22.5+0.001*math.Sin(float64(m)/50), 114+0.0007*float64(m%90))
	}
	for h := 0; h < 24+15; h++ {
		if h >= 30 && h < 33 {
			continue
		}
		add("B", day.Add(time.Duration(h)*time.Hour+59*time.Minute), 22.6+0.002*float64(h%5), 114.1)
		add("B", day.Add(time.Duration(h)*time.Hour+time.Hour+10*time.Second), 22.6+0.002*float64(h%5)+0.001, 114.1)
	}
	add("B", day.Add(33*time.Hour+59*time.Minute+50*time.Second), 23.5, 114.1) // 100 km in 20 s: counts nothing
	add("C", day.Add(36*time.Hour+30*time.Minute), 22.55, 114.05)
	e.insertFixes(fixes...)

	check := func(name string, from, to time.Time) {
		t.Helper()
		want := rawKm(t, e, from, to)
		acts, err := e.srv.store.Activity(ctx, ActivityQuery{From: from, To: to, Interval: IntervalDay, Location: kpiZone})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := map[[2]string]float64{}
		for _, a := range acts {
			got[[2]string{a.Period, a.Vehicle}] = a.Km
		}
		if len(got) != len(want) {
			t.Errorf("%s: %d days and vehicles %v, want %d %v", name, len(got), got, len(want), want)
		}
		for k, w := range want {
			if g, ok := got[k]; !ok || math.Abs(g-w) > 1e-9*math.Max(1, w) {
				t.Errorf("%s: km of %v = %.12f, want %.12f", name, k, g, w)
			}
		}
	}
	windows := []struct {
		name     string
		from, to time.Time
	}{
		{"two whole days", day, day.AddDate(0, 0, 2)},
		{"inside hours", day.Add(33*time.Hour + 30*time.Minute), now},
		{"yesterday's evening to now", day.Add(20*time.Hour + 7*time.Minute), now},
	}
	for _, w := range windows {
		check("before the roll-up: "+w.name, w.from, w.to)
	}
	hours, err := e.srv.rollUpKmHours(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// the 9th and the 10th up to 15:00 (15:00-16:00 is going on)
	if len(hours) != 24+15 || !hours[0].Equal(day.Add(38*time.Hour)) || !hours[len(hours)-1].Equal(day) {
		t.Fatalf("rolled up %d hours, %v … %v, want 39 from 14:00 on the 10th back to the 9th's midnight", len(hours), hours[0], hours[len(hours)-1])
	}
	for _, w := range windows {
		check("after the roll-up: "+w.name, w.from, w.to)
	}
	// the docs' SQL summing a day from its hours gives the 9th's km (all its hours are rolled up)
	doc, err := os.ReadFile("../docs/kpis.md")
	if err != nil {
		t.Fatal(err)
	}
	var hourly string
	for _, part := range strings.Split(string(doc), "```sql\n")[1:] {
		if sql, _, _ := strings.Cut(part, "```"); strings.Contains(sql, "FROM muckwatch.vehicle_km_hourly FINAL") {
			hourly = strings.ReplaceAll(strings.ReplaceAll(sql, "muckwatch.", e.db+"."), "day = '2026-12-11'", "day = '2026-11-09'")
		}
	}
	if hourly == "" {
		t.Fatal("docs/kpis.md has no SQL summing a day's km from vehicle_km_hourly")
	}
	rows, err := e.conn.Query(ctx, hourly)
	if err != nil {
		t.Fatalf("docs/kpis.md: %v in\n%s", err, hourly)
	}
	want, n := rawKm(t, e, day, day.AddDate(0, 0, 1)), 0
	for rows.Next() {
		var v string
		var d time.Time
		var km float64
		if err := rows.Scan(&v, &d, &km); err != nil {
			t.Fatal(err)
		}
		n++
		if w := want[[2]string{d.Format(time.DateOnly), v}]; math.Abs(km-w) > 1e-9*math.Max(1, w) {
			t.Errorf("docs/kpis.md: the km of %s on %s = %.12f, want %.12f", v, d.Format(time.DateOnly), km, w)
		}
	}
	rows.Close()
	if n != len(want) || n == 0 {
		t.Errorf("docs/kpis.md: %d vehicles on the 9th, want %d", n, len(want))
	}
	if again, err := e.srv.rollUpKmHours(ctx); err != nil || len(again) != 0 {
		t.Errorf("second roll-up: %v %v, want none", again, err)
	}
	// a late fix in a rolled hour, rolled up again later: the newest roll-up counts
	e.insertFixes(histFix{id: "A-late", vehicle: "A", at: day.Add(34*time.Hour + 3*time.Minute + 30*time.Second), lat: 22.52, lon: 114.01})
	if err := e.srv.store.RollUpKmHour(ctx, day.Add(34*time.Hour), kpiZone, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, w := range windows {
		check("after a late fix: "+w.name, w.from, w.to)
	}
	// once the 9th is in vehicle_km_daily, only the 10th's hours are rolled up
	if err := e.srv.store.RollUpKm(ctx, day, kpiZone, time.Now()); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Hour)
	if hours, err := e.srv.rollUpKmHours(ctx); err != nil || len(hours) != 1 || !hours[0].Equal(day.Add(39*time.Hour)) {
		t.Errorf("roll-up an hour later: %v %v, want the hour from 15:00 on the 10th", hours, err)
	}
	check("with the 9th rolled up per day", day, now)
}
