package jsonenc

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
)

// encodingJSON is what encoding/json writes for v without HTML escaping.
func encodingJSON(t *testing.T, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func TestAppendFloat(t *testing.T) {
	f := func(x float64) {
		t.Helper()
		if got, want := AppendFloat(nil, x), encodingJSON(t, x); !bytes.Equal(got, want) {
			t.Errorf("AppendFloat(%v) = %s, want %s", x, got, want)
		}
	}
	for _, x := range []float64{0, math.Copysign(0, -1), 1, -1, 40, 62.5, 22.543099, 114.057868, 1e-7, -1e21, 1e20, 123456789.125,
		-0.000001, 1e-6, 5e-324, math.MaxFloat64} {
		f(x)
	}
	for _, x := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if got := string(AppendFloat(nil, x)); got != "null" {
			t.Errorf("AppendFloat(%v) = %s, want null", x, got)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "粤B12345", "a\"b\\c\n\x00", "\xff\xe4\xb8", "\u2028<&>", "\x7f\u00e9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := AppendString(nil, s), encodingJSON(t, s); !bytes.Equal(got, want) {
			t.Errorf("AppendString(%q) = %s, want %s", s, got, want)
		}
	})
}
