package record

import (
	"fmt"
	"sync"
	"testing"
)

// Two decoders sharing a numbering give a vehicle one number however its plate was written, and
// different vehicles different numbers; a decoder without a numbering gives none.
func TestDecodersNumberPlates(t *testing.T) {
	plates := NewPlateNumbers()
	a, b := NewDecoder(DecodeConfig{}, normalizeForTest), NewDecoder(DecodeConfig{}, normalizeForTest)
	a.NumberPlates(plates)
	b.NumberPlates(plates)
	decode := func(d *Decoder, vehicle string) Fix {
		t.Helper()
		var f Fix
		if err := d.DecodeFix(fmt.Appendf(nil, `{"vehicle_id":%q,"ts":1795420800000,"lat":22.5,"lon":114}`, vehicle), ref, &f); err != nil {
			t.Fatalf("DecodeFix(%s): %v", vehicle, err)
		}
		return f
	}
	cases := []struct {
		d       *Decoder
		sent    string
		plate   string
		no      uint32
		numbers int // plates numbered after it
	}{
		{a, "粤B12345", "粤B12345", 1, 1},
		{a, "粤B12345", "粤B12345", 1, 1},  // the decoder's own table
		{b, "粤b 12345", "粤B12345", 1, 1}, // another spelling, another decoder: the same vehicle
		{b, "粤B54321", "粤B54321", 2, 2},
		{a, "粤b54321", "粤B54321", 2, 2},
		{a, "粤B00001", "粤B00001", 3, 3},
	}
	for i, c := range cases {
		f := decode(c.d, c.sent)
		if f.VehicleID != c.plate || f.VehicleNo != c.no || numbered(plates) != c.numbers {
			t.Errorf("case %d (%s): plate %s, number %d, %d numbered; want %s, %d, %d", i, c.sent, f.VehicleID, f.VehicleNo, numbered(plates), c.plate, c.no, c.numbers)
		}
	}
	if f := decode(NewDecoder(DecodeConfig{}, normalizeForTest), "粤B12345"); f.VehicleNo != 0 {
		t.Errorf("a decoder without a numbering gave number %d", f.VehicleNo)
	}
	// A plate that normalises to nothing is still rejected, and gets no number.
	var f Fix
	if err := a.DecodeFix([]byte(`{"vehicle_id":"  ","ts":1795420800000,"lat":22.5,"lon":114}`), ref, &f); err == nil || ReasonOf(err) != ReasonMissingField {
		t.Errorf("an all-space plate: got %v, want %s", err, ReasonMissingField)
	}
	if numbered(plates) != 3 {
		t.Errorf("%d plates numbered after the empty one, want 3", numbered(plates))
	}
}

// A full numbering gives new plates 0 and keeps the numbers it gave; numbers are unique under
// concurrent use.
func TestPlateNumbersBoundAndConcurrency(t *testing.T) {
	p := NewPlateNumbers()
	p.limit = 1000
	var wg sync.WaitGroup
	got := make([][]uint32, 4)
	for g := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1200 {
				got[g] = append(got[g], p.Number(fmt.Sprintf("粤B%05d", i)))
			}
		}()
	}
	wg.Wait()
	owner := map[uint32]int{}
	zeros := 0
	for i := range 1200 {
		n := got[0][i]
		for g := 1; g < len(got); g++ {
			if got[g][i] != n {
				t.Fatalf("plate %d numbered %d and %d", i, n, got[g][i])
			}
		}
		if n == 0 {
			zeros++
			continue
		}
		if j, ok := owner[n]; ok {
			t.Fatalf("plates %d and %d share number %d", j, i, n)
		}
		owner[n] = i
		if n > 1000 {
			t.Fatalf("number %d past the limit", n)
		}
	}
	if zeros != 200 || numbered(p) != 1000 {
		t.Errorf("%d plates without a number and %d numbered, want 200 and 1000", zeros, numbered(p))
	}
	if p.Number("") != 0 {
		t.Error("the empty plate got a number")
	}
}

// numbered returns how many plates p has given a number.
func numbered(p *PlateNumbers) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.nums)
}
