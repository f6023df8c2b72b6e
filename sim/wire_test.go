package sim

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// The fixes' number formatting gives what strconv's 'f' format gives, to within the last decimal
// (the two round a half differently), and parses back to v.
func TestAppendDecimal(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	values := []float64{0, -0.0000004, 0.0000005, 22.5431, -114.0579, 359.6, 99.95, 1e6 + 0.25, -3}
	for range 2000 {
		values = append(values, (rng.Float64()-0.5)*400)
	}
	for _, v := range values {
		for _, places := range []int{0, 1, 6} {
			got := string(appendDecimal(nil, v, places))
			g, err := strconv.ParseFloat(got, 64)
			if err != nil {
				t.Fatalf("appendDecimal(%v, %d) = %q: not a number", v, places, got)
			}
			want := strconv.FormatFloat(v, 'f', places, 64)
			w, _ := strconv.ParseFloat(want, 64)
			if ulp := math.Pow10(-places); math.Abs(g-w) > ulp*1.01 || math.Abs(g-v) > ulp/2*1.01 {
				t.Fatalf("appendDecimal(%v, %d) = %q, strconv gives %q", v, places, got, want)
			}
			if frac := strings.IndexByte(got, '.'); (places == 0 && frac >= 0) || (places > 0 && len(got)-frac-1 != places) {
				t.Fatalf("appendDecimal(%v, %d) = %q: not %d decimals", v, places, got, places)
			}
		}
	}
}
