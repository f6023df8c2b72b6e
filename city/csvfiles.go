package city

import (
	"bytes"
	"cmp"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// csvTable is a CSV file read by header name.
type csvTable struct {
	file string
	col  map[string]int
	rows []csvRow
}

type csvRow struct {
	line   int
	fields []string
}

func (t *csvTable) get(r csvRow, name string) string {
	i, ok := t.col[name]
	if !ok || i >= len(r.fields) {
		return ""
	}
	return strings.TrimSpace(r.fields[i])
}

func (t *csvTable) errorf(r csvRow, format string, args ...any) error {
	return fmt.Errorf("%s: line %d: %s", t.file, r.line, fmt.Sprintf(format, args...))
}

// readCSV reads a CSV file with a header row naming at least the required columns (in any
// order; extra columns are ignored). A UTF-8 byte-order mark, blank lines and lines starting
// with '#' are skipped. ok is false when the file does not exist.
func (l *loader) readCSV(name string, required []string) (t *csvTable, ok bool) {
	data, ok, err := l.read(name)
	if err != nil {
		l.probs.add(err)
		return nil, false
	}
	if !ok {
		return nil, false
	}
	file := l.display(name)
	data = bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF"))
	r := csv.NewReader(bytes.NewReader(data))
	r.Comment = '#'
	r.TrimLeadingSpace = true
	r.ReuseRecord = false
	header, err := r.Read()
	if err == io.EOF {
		l.probs.add(fmt.Errorf("%s: empty: want a header line %s", file, strings.Join(required, ",")))
		return nil, false
	}
	if err != nil {
		l.probs.add(csvError(file, err))
		return nil, false
	}
	t = &csvTable{file: file, col: make(map[string]int, len(header))}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		if _, dup := t.col[h]; dup && h != "" {
			l.probs.add(fmt.Errorf("%s: line 1: column %q appears twice", file, h))
			return nil, false
		}
		t.col[h] = i
	}
	var missing []string
	for _, c := range required {
		if _, ok := t.col[c]; !ok {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		l.probs.add(fmt.Errorf("%s: line 1: header lacks column %s (want %s)", file,
			strings.Join(missing, ", "), strings.Join(required, ",")))
		return nil, false
	}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			l.probs.add(csvError(file, err))
			var pe *csv.ParseError
			if errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrFieldCount) {
				continue // the reader carries on after a wrong field count
			}
			return t, true
		}
		line, _ := r.FieldPos(0)
		t.rows = append(t.rows, csvRow{line: line, fields: rec})
	}
	return t, true
}

func csvError(file string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		if errors.Is(pe.Err, csv.ErrFieldCount) {
			return fmt.Errorf("%s: line %d: wrong number of fields (the header has a different count)", file, pe.StartLine)
		}
		return fmt.Errorf("%s: line %d col %d: %v", file, pe.Line, pe.Column, pe.Err)
	}
	return fmt.Errorf("%s: %v", file, err)
}

// parseAmount parses a non-negative number such as a load in kg; empty is allowed when
// optional and returns 0.
func parseAmount(s string, optional bool, max float64) (float64, error) {
	if s == "" {
		if optional {
			return 0, nil
		}
		return 0, errors.New("missing")
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || !finite(v) {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if v < 0 || v > max || (!optional && v == 0) {
		lo := "0"
		if !optional {
			lo = "above 0"
		}
		return 0, fmt.Errorf("%s out of range: want %s and at most %v", s, lo, max)
	}
	return v, nil
}

func (l *loader) readVehicles() {
	c := l.c
	t, ok := l.readCSV(FileVehicles, []string{"plate", "company", "rated_load_kg"})
	if !ok {
		c.vehicleByPlate = map[string]*Vehicle{}
		return
	}
	c.vehicleByPlate = make(map[string]*Vehicle, len(t.rows))
	lineOf := make(map[string]int, len(t.rows))
	c.Vehicles = make([]*Vehicle, 0, len(t.rows))
	for _, r := range t.rows {
		raw := t.get(r, "plate")
		plate := NormalizePlate(raw)
		if plate == "" {
			l.probs.add(t.errorf(r, "plate: missing"))
			continue
		}
		if prev, dup := lineOf[plate]; dup {
			l.probs.add(t.errorf(r, "plate %s: duplicate, also on line %d", plate, prev))
			continue
		}
		load, err := parseAmount(t.get(r, "rated_load_kg"), false, maxPlausibleLoadKg)
		if err != nil {
			l.probs.add(t.errorf(r, "plate %s: rated_load_kg: %v", plate, err))
			continue
		}
		v := &Vehicle{Plate: strings.Clone(plate), Company: l.keep(t.get(r, "company")), RatedLoadKg: load}
		lineOf[plate] = r.line
		c.vehicleByPlate[plate] = v
		c.Vehicles = append(c.Vehicles, v)
	}
}

// ParsePermitTime parses a permit time: RFC 3339 (with its own offset), or local time in loc
// as "2006-01-02 15:04", "2006-01-02 15:04:05" or "2006-01-02" (midnight), or those with a T
// for the space.
//
// Each layout is tried only where it can match, told by the character after the date and the
// colons: a failed parse allocates its error, and a city's 100,000 permits made 200,000 of them
// (67 MB) at every start.
func ParsePermitTime(s string, loc *time.Location) (time.Time, error) {
	var sep byte
	if len(s) > len(time.DateOnly) {
		sep = s[len(time.DateOnly)]
	}
	if sep == 'T' {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			return t, nil
		}
	}
	var layout string
	switch colons := strings.Count(s, ":"); {
	case len(s) == len(time.DateOnly):
		layout = time.DateOnly
	case sep == ' ' && colons == 1:
		layout = "2006-01-02 15:04"
	case sep == ' ' && colons == 2:
		layout = time.DateTime
	case sep == 'T' && colons == 1:
		layout = "2006-01-02T15:04"
	case sep == 'T' && colons == 2:
		layout = "2006-01-02T15:04:05"
	}
	if layout != "" {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time: want RFC 3339 (2026-01-01T08:00:00+08:00) or local \"2006-01-02 15:04\"", s)
}

func (l *loader) readPermits() {
	c := l.c
	c.permitByID = map[string]*Permit{}
	c.permitsByPlate = map[string][]*Permit{}
	t, ok := l.readCSV(FilePermits, []string{"permit_id", "plate", "company", "from_site", "to_site", "route_id", "valid_from", "valid_to", "max_load_kg"})
	if !ok {
		return
	}
	lineOf := make(map[string]int, len(t.rows))
	c.Permits = make([]*Permit, 0, len(t.rows))
	for _, r := range t.rows {
		p, err := l.permit(t, r, lineOf)
		if err != nil {
			l.probs.add(err)
			continue
		}
		lineOf[p.ID] = r.line
		c.permitByID[p.ID] = p
		c.Permits = append(c.Permits, p)
		c.permitsByPlate[p.Plate] = append(c.permitsByPlate[p.Plate], p)
	}
	for plate, ps := range c.permitsByPlate {
		slices.SortFunc(ps, func(a, b *Permit) int {
			return cmp.Or(a.ValidFrom.Compare(b.ValidFrom), cmp.Compare(a.ID, b.ID))
		})
		c.permitsByPlate[plate] = slices.Clip(ps)
	}
}

func (l *loader) permit(t *csvTable, r csvRow, lineOf map[string]int) (*Permit, error) {
	c := l.c
	p := &Permit{
		ID:       strings.Clone(t.get(r, "permit_id")),
		Plate:    l.keep(NormalizePlate(t.get(r, "plate"))), // a truck's permits share its plate
		Company:  l.keep(t.get(r, "company")),
		FromSite: l.keep(t.get(r, "from_site")),
		ToSite:   l.keep(t.get(r, "to_site")),
		RouteID:  l.keep(t.get(r, "route_id")),
	}
	if p.ID == "" {
		return nil, t.errorf(r, "permit_id: missing")
	}
	fail := func(format string, args ...any) error {
		return t.errorf(r, "permit %s: %s", p.ID, fmt.Sprintf(format, args...))
	}
	if prev, dup := lineOf[p.ID]; dup {
		return nil, fail("duplicate permit_id, also on line %d", prev)
	}
	if p.Plate == "" {
		return nil, fail("plate: missing")
	}
	for _, ref := range []struct{ key, id string }{{"from_site", p.FromSite}, {"to_site", p.ToSite}} {
		if ref.id == "" {
			return nil, fail("%s: missing", ref.key)
		}
		if c.siteByID[ref.id] == nil {
			return nil, fail("%s %q: no such site in %s", ref.key, ref.id, FileSites)
		}
	}
	if p.RouteID != "" {
		rt := c.routeByID[p.RouteID]
		if rt == nil {
			return nil, fail("route_id %q: no such route in %s", p.RouteID, FileRoutes)
		}
		if (rt.FromSite != "" && rt.FromSite != p.FromSite) || (rt.ToSite != "" && rt.ToSite != p.ToSite) {
			return nil, fail("route %s runs from %q to %q, but the permit is from %q to %q",
				rt.ID, rt.FromSite, rt.ToSite, p.FromSite, p.ToSite)
		}
	}
	var err error
	if p.ValidFrom, err = ParsePermitTime(t.get(r, "valid_from"), c.Location); err != nil {
		return nil, fail("valid_from: %v", err)
	}
	if p.ValidTo, err = ParsePermitTime(t.get(r, "valid_to"), c.Location); err != nil {
		return nil, fail("valid_to: %v", err)
	}
	if !p.ValidTo.After(p.ValidFrom) {
		return nil, fail("valid_to %s is not after valid_from %s", t.get(r, "valid_to"), t.get(r, "valid_from"))
	}
	if p.MaxLoadKg, err = parseAmount(t.get(r, "max_load_kg"), true, maxPlausibleLoadKg); err != nil {
		return nil, fail("max_load_kg: %v", err)
	}
	return p, nil
}
