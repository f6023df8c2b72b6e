package sim

import (
	"math"
	"strconv"

	"github.com/paulmach/orb"
)

// How both simulators (the day's Simulator and the load's Fleet) write a GPS fix as a terminal
// sends it, appended to the caller's buffer: the Fleet writes a hundred thousand a second on the
// pipeline's two cores, so numbers are formatted from integers (appendDecimal), not with
// strconv.AppendFloat, which was most of the bench producer's time.

// appendFix appends a GPS fix of vehicle plate at device time ms (Unix milliseconds), at ll
// (lon/lat), with its speed in km/h (1 decimal), heading in degrees (whole) and dump body state.
func appendFix(b []byte, plate string, ms int64, ll orb.Point, kmh, heading float64, lifted bool) []byte {
	b = append(b, `{"vehicle_id":"`...)
	b = append(b, plate...)
	b = append(b, `","ts":`...)
	b = strconv.AppendInt(b, ms, 10)
	b = appendLatLon(b, ll)
	if kmh >= 0 { // a negative speed: the terminal reports none
		b = append(b, `,"speed_kmh":`...)
		b = appendDecimal(b, kmh, 1)
	}
	b = append(b, `,"heading":`...)
	b = appendDecimal(b, heading, 0)
	b = append(b, `,"acc":true,"lifted":`...)
	b = strconv.AppendBool(b, lifted)
	return append(b, '}')
}

// appendLatLon appends the "lat" and "lon" fields of ll, with 6 decimals.
func appendLatLon(b []byte, ll orb.Point) []byte {
	b = append(b, `,"lat":`...)
	b = appendDecimal(b, ll[1], 6)
	b = append(b, `,"lon":`...)
	return appendDecimal(b, ll[0], 6)
}

var decimalScale = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6}

// appendDecimal appends v rounded to places decimals (at most 6), as strconv's 'f' format does,
// from an integer instead (the two may round a half differently in the last decimal).
func appendDecimal(b []byte, v float64, places int) []byte {
	scale := decimalScale[places]
	n := int64(math.Round(math.Abs(v) * scale))
	if v < 0 && n != 0 {
		b = append(b, '-')
	}
	unit := int64(scale)
	b = strconv.AppendInt(b, n/unit, 10)
	if places == 0 {
		return b
	}
	b = append(b, '.')
	end := len(b) + places
	for range places {
		b = append(b, '0')
	}
	for k, frac := end-1, n%unit; frac > 0; k, frac = k-1, frac/10 {
		b[k] = byte('0' + frac%10)
	}
	return b
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
