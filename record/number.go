package record

// Fast paths for the numbers of the wire contract: coordinates with a handful of decimals, speeds,
// headings, millisecond timestamps. They read the bytes the scanner has already checked against
// JSON's number grammar and give exactly what strconv would; anything they cannot do exactly
// (exponents, too many digits) they leave to strconv (ok false).

// pow10 are the powers of ten a float64 holds exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// fastFloat parses a JSON number without an exponent whose digits, the point taken out, make an
// integer below 2^53, with at most 22 of them after the point: that integer and the power of
// ten are exact in a float64, and their quotient, one IEEE division, is the correctly rounded
// value (Clinger's fast path), as strconv.ParseFloat gives it.
func fastFloat(raw []byte) (float64, bool) {
	i, neg := 0, false
	if i < len(raw) && raw[i] == '-' {
		neg, i = true, 1
	}
	var mant uint64
	frac, point, digits := 0, false, 0
	for ; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c >= '0' && c <= '9':
			if digits > 0 || c != '0' {
				digits++
			}
			if digits > 15 { // 10^15 < 2^53: fifteen digits always fit exactly
				return 0, false
			}
			mant = mant*10 + uint64(c-'0')
			if point {
				frac++
			}
		case c == '.' && !point:
			point = true
		default: // an exponent
			return 0, false
		}
	}
	if frac >= len(pow10) {
		return 0, false
	}
	f := float64(mant) / pow10[frac]
	if neg {
		f = -f
	}
	return f, true
}

// fastInt parses a JSON number that is an integer of at most 18 digits (no point, no exponent),
// as strconv.ParseInt gives it.
func fastInt(raw []byte) (int64, bool) {
	i, neg := 0, false
	if i < len(raw) && raw[i] == '-' {
		neg, i = true, 1
	}
	if i == len(raw) || len(raw)-i > 18 {
		return 0, false
	}
	var n int64
	for ; i < len(raw); i++ {
		c := raw[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}
