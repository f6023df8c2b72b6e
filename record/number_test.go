package record

import (
	"math"
	"strconv"
	"testing"
)

func TestFastNumbers(t *testing.T) {
	f := func(in string, wantFloat, wantInt bool) {
		t.Helper()
		x, ok := fastFloat([]byte(in))
		if ok != wantFloat {
			t.Errorf("fastFloat(%q) ok = %v, want %v", in, ok, wantFloat)
		}
		if ok {
			want, err := strconv.ParseFloat(in, 64)
			if err != nil || math.Float64bits(x) != math.Float64bits(want) {
				t.Errorf("fastFloat(%q) = %v, strconv %v (%v)", in, x, want, err)
			}
		}
		n, ok := fastInt([]byte(in))
		if ok != wantInt {
			t.Errorf("fastInt(%q) ok = %v, want %v", in, ok, wantInt)
		}
		if ok {
			if want, err := strconv.ParseInt(in, 10, 64); err != nil || n != want {
				t.Errorf("fastInt(%q) = %d, strconv %d (%v)", in, n, want, err)
			}
		}
	}
	f("22.5431", true, false)
	f("-114.0579", true, false)
	f("0", true, true)
	f("-0", true, true)
	f("0.1", true, false)
	f("0.0000000000000000000001", true, false) // 22 decimals
	f("0.00000000000000000000001", false, false)
	f("1795420800000", true, true)
	f("-1795420800000", true, true)
	f("123456789012345", true, true)
	f("1234567890123456", false, true) // 16 digits: past the exact fast path
	f("999999999999999999", false, true)
	f("9999999999999999999", false, false) // 19 digits: strconv's
	f("1e3", false, false)
	f("2.5E-3", false, false)
	f("90", true, true)
}

// FuzzNumberFastPaths compares the fast paths with strconv, the decoder's parsers before them,
// over every input that JSON's number grammar (the scanner) accepts: where a fast path answers,
// it answers the same, bit for bit.
func FuzzNumberFastPaths(f *testing.F) {
	for _, s := range []string{"22.5431", "-114.0579", "0", "-0", "1795420800000", "35.5", "1e3", "0.0000000000000000000001",
		"123456789012345", "9999999999999999999", "-9223372036854775808", "4.9406564584124654e-324"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		sc := objectScanner{in: in}
		if sc.readNumber() != nil || sc.i != len(in) {
			return // not a JSON number: the fast paths never see it
		}
		if x, ok := fastFloat(in); ok {
			want, err := strconv.ParseFloat(string(in), 64)
			if err != nil || math.Float64bits(x) != math.Float64bits(want) {
				t.Fatalf("fastFloat(%q) = %v (%x), strconv %v (%x, %v)", in, x, math.Float64bits(x), want, math.Float64bits(want), err)
			}
		}
		if n, ok := fastInt(in); ok {
			if want, err := strconv.ParseInt(string(in), 10, 64); err != nil || n != want {
				t.Fatalf("fastInt(%q) = %d, strconv %d (%v)", in, n, want, err)
			}
		}
	})
}
