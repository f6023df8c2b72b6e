package city

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
)

// feature is one decoded GeoJSON feature with what an error message needs to point at it.
type feature struct {
	file  string // display name of the file
	index int    // position in the features array, from 0
	line  int    // line of the feature's opening brace, from 1
	id    string
	f     *geojson.Feature
}

// errorf returns an error naming the file and the feature.
func (ft *feature) errorf(format string, args ...any) error {
	return fmt.Errorf("%s: %s: %s", ft.file, ft.where(), fmt.Sprintf(format, args...))
}

func (ft *feature) where() string {
	if ft.id != "" {
		return fmt.Sprintf("feature %d (id %q, line %d)", ft.index, ft.id, ft.line)
	}
	return fmt.Sprintf("feature %d (line %d)", ft.index, ft.line)
}

// lineCol turns a byte offset into a 1-based line and column.
func lineCol(data []byte, off int64) (line, col int) {
	off = max(0, min(off, int64(len(data))))
	before := data[:off]
	line = bytes.Count(before, []byte{'\n'}) + 1
	col = int(off) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}

// jsonError describes a JSON decoding error with its position where known.
func jsonError(file string, data []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off := max(se.Offset-1, 0) // Offset counts the bytes read, the offending one included
		if strings.Contains(se.Error(), "unexpected end") {
			off = int64(len(data)) // truncated: point past the end
		}
		l, c := lineCol(data, off)
		return fmt.Errorf("%s: line %d col %d: invalid JSON: %v", file, l, c, se)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		l, c := lineCol(data, te.Offset)
		return fmt.Errorf("%s: line %d col %d: invalid JSON: %v", file, l, c, te)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: invalid JSON: unexpected end of file", file)
	}
	return fmt.Errorf("%s: invalid JSON: %v", file, err)
}

// readFeatures decodes a GeoJSON FeatureCollection one feature at a time, so that errors can
// name the feature's index and line. A feature that does not decode is reported in errs and
// skipped; a file that is not a FeatureCollection at all returns only a fatal error.
func readFeatures(file string, data []byte) (feats []*feature, errs []error, fatal error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil, fmt.Errorf("%s: empty file, want a GeoJSON FeatureCollection", file)
	}
	if !json.Valid(data) {
		// json.Unmarshal reports the exact position of a syntax error; the streaming decoder
		// below does not always.
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			return nil, nil, jsonError(file, data, err)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, jsonError(file, data, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, nil, fmt.Errorf("%s: want a GeoJSON FeatureCollection object, got %v", file, tokenString(tok))
	}
	lines := lineCounter{data: data, line: 1}
	sawType, sawFeatures := false, false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, jsonError(file, data, err)
		}
		key, _ := tok.(string)
		switch key {
		case "type":
			var typ any
			if err := dec.Decode(&typ); err != nil {
				return nil, nil, jsonError(file, data, err)
			}
			if typ != "FeatureCollection" {
				return nil, nil, fmt.Errorf("%s: type is %v, want \"FeatureCollection\"", file, tokenString(typ))
			}
			sawType = true
		case "features":
			sawFeatures = true
			tok, err := dec.Token()
			if err != nil {
				return nil, nil, jsonError(file, data, err)
			}
			if d, ok := tok.(json.Delim); !ok || d != '[' {
				if tok == nil {
					continue // "features": null, an empty collection
				}
				return nil, nil, fmt.Errorf("%s: features is %v, want an array", file, tokenString(tok))
			}
			for i := 0; dec.More(); i++ {
				off := skipSpace(data, dec.InputOffset())
				var raw json.RawMessage
				if err := dec.Decode(&raw); err != nil {
					return nil, nil, jsonError(file, data, err)
				}
				ft := &feature{file: file, index: i, line: lines.at(off)}
				f, err := geojson.UnmarshalFeature(raw)
				if err != nil {
					errs = append(errs, ft.errorf("not a valid GeoJSON feature: %s", trimGeojsonErr(err)))
					continue
				}
				ft.f = f
				id, err := featureID(f)
				if err != nil {
					errs = append(errs, ft.errorf("%v", err))
					continue
				}
				ft.id = id
				feats = append(feats, ft)
			}
			if _, err := dec.Token(); err != nil { // ']'
				return nil, nil, jsonError(file, data, err)
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, nil, jsonError(file, data, err)
			}
		}
	}
	if _, err := dec.Token(); err != nil { // '}'
		return nil, nil, jsonError(file, data, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		if err != nil {
			return nil, nil, jsonError(file, data, err)
		}
		l, c := lineCol(data, dec.InputOffset())
		return nil, nil, fmt.Errorf("%s: line %d col %d: unexpected data after the FeatureCollection", file, l, c)
	}
	if !sawType {
		return nil, nil, fmt.Errorf("%s: missing \"type\": \"FeatureCollection\"", file)
	}
	if !sawFeatures {
		return nil, nil, fmt.Errorf("%s: missing \"features\" array", file)
	}
	return feats, errs, nil
}

// lineCounter finds the lines of increasing offsets in linear time overall.
type lineCounter struct {
	data []byte
	off  int64 // lines counted up to here
	line int   // line at off
}

func (lc *lineCounter) at(off int64) int {
	off = max(lc.off, min(off, int64(len(lc.data))))
	lc.line += bytes.Count(lc.data[lc.off:off], []byte{'\n'})
	lc.off = off
	return lc.line
}

func skipSpace(data []byte, off int64) int64 {
	for off < int64(len(data)) {
		switch data[off] {
		case ' ', '\t', '\r', '\n', ',':
			off++
		default:
			return off
		}
	}
	return off
}

func tokenString(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(v)
	case json.Delim:
		switch v {
		case '[':
			return "an array"
		case '{':
			return "an object"
		}
		return string(v)
	default:
		return fmt.Sprint(v)
	}
}

func trimGeojsonErr(err error) string {
	if errors.Is(err, geojson.ErrInvalidGeometry) {
		return "unknown or missing geometry type"
	}
	return strings.TrimPrefix(err.Error(), "geojson: ")
}

// featureID is properties.id, else the feature's own id; strings and integers are accepted.
func featureID(f *geojson.Feature) (string, error) {
	v, ok := f.Properties["id"]
	if !ok || v == nil {
		v = f.ID
	}
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return strings.TrimSpace(v), nil
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1e15 {
			return strconv.FormatInt(int64(v), 10), nil
		}
		return "", fmt.Errorf("id %v is not a string or an integer", v)
	default:
		return "", fmt.Errorf("id has type %T, want a string", v)
	}
}

// str returns a string property; a missing or null property is "", a non-string an error.
func (ft *feature) str(key string) (string, error) {
	v, ok := ft.f.Properties[key]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", ft.errorf("property %s: want a string, got %s", key, jsonTypeName(v))
	}
	return strings.TrimSpace(s), nil
}

// num returns a number property (a numeric string is accepted); ok is false if it is missing.
func (ft *feature) num(key string) (v float64, ok bool, err error) {
	raw, present := ft.f.Properties[key]
	if !present || raw == nil {
		return 0, false, nil
	}
	switch x := raw.(type) {
	case float64:
		v = x
	case string:
		v, err = strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return 0, false, ft.errorf("property %s: %q is not a number", key, x)
		}
	default:
		return 0, false, ft.errorf("property %s: want a number, got %s", key, jsonTypeName(raw))
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false, ft.errorf("property %s: %v is not a finite number", key, v)
	}
	return v, true, nil
}

// strs returns a property holding an array of strings; a lone string is accepted as a
// one-element array.
func (ft *feature) strs(key string) ([]string, error) {
	raw, ok := ft.f.Properties[key]
	if !ok || raw == nil {
		return nil, nil
	}
	switch x := raw.(type) {
	case string:
		return []string{x}, nil
	case []any:
		out := make([]string, 0, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, ft.errorf("property %s: element %d: want a string, got %s", key, i, jsonTypeName(e))
			}
			out = append(out, s)
		}
		return out, nil
	default:
		return nil, ft.errorf("property %s: want an array of strings, got %s", key, jsonTypeName(raw))
	}
}

func jsonTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// areaGeometry returns the feature's Polygon or MultiPolygon, validated, as a MultiPolygon in
// the file's own coordinates.
func (ft *feature) areaGeometry() (orb.MultiPolygon, error) {
	var mp orb.MultiPolygon
	multi := false
	switch g := ft.f.Geometry.(type) {
	case nil:
		return nil, ft.errorf("has no geometry")
	case orb.Polygon:
		mp = orb.MultiPolygon{g}
	case orb.MultiPolygon:
		mp, multi = g, true
	default:
		return nil, ft.errorf("geometry is a %s, want a Polygon or MultiPolygon", g.GeoJSONType())
	}
	if len(mp) == 0 {
		return nil, ft.errorf("geometry has no polygon")
	}
	for pi, pg := range mp {
		if len(pg) == 0 {
			return nil, ft.errorf("%s has no ring", polyName(multi, pi))
		}
		for ri, ring := range pg {
			if err := checkRing(ring); err != nil {
				return nil, ft.errorf("%s: %v", ringName(multi, pi, ri), err)
			}
		}
	}
	return mp, nil
}

func polyName(multi bool, pi int) string {
	if multi {
		return fmt.Sprintf("polygon %d", pi)
	}
	return "polygon"
}

func ringName(multi bool, pi, ri int) string {
	r := fmt.Sprintf("ring %d (outer)", ri)
	if ri > 0 {
		r = fmt.Sprintf("ring %d (hole)", ri)
	}
	if multi {
		return fmt.Sprintf("polygon %d %s", pi, r)
	}
	return r
}

// lineGeometry returns the feature's LineString, validated.
func (ft *feature) lineGeometry() (orb.LineString, error) {
	switch g := ft.f.Geometry.(type) {
	case nil:
		return nil, ft.errorf("has no geometry")
	case orb.LineString:
		if len(g) < 2 {
			return nil, ft.errorf("line has %d points, want at least 2", len(g))
		}
		distinct := false
		for i, p := range g {
			if err := checkCoord(p); err != nil {
				return nil, ft.errorf("point %d: %v", i, err)
			}
			if p != g[0] {
				distinct = true
			}
		}
		if !distinct {
			return nil, ft.errorf("line has no two distinct points")
		}
		return g, nil
	default:
		return nil, ft.errorf("geometry is a %s, want a LineString", g.GeoJSONType())
	}
}
