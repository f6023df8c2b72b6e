package record

import (
	"fmt"
	"strings"
	"testing"
)

func TestVehicleTable(t *testing.T) {
	var tb vehicleTable
	ids := []string{
		"粤B12345",               // 9 bytes, as most plates
		"粤BD12345",              // 10: a new-energy plate
		"粤B·12345",              // 11
		"abcdefghijklmno",       // 15: the longest kept in a slot
		"abcdefghijklmnop",      // 16: in the map
		"粤B12345 with a suffix", // long
		"",                      // empty: in the map
	}
	name := func(id string) vehicleName {
		return vehicleName{plate: "N" + strings.ToUpper(id), no: uint32(len(id) + 1)}
	}
	for _, id := range ids {
		if _, ok := tb.get([]byte(id)); ok {
			t.Fatalf("%q found in an empty table", id)
		}
		tb.put([]byte(id), name(id))
	}
	// enough more to grow the table several times; ids alike but for a byte or the length
	for i := range 5000 {
		id := fmt.Sprintf("粤B%05d", i)
		tb.put([]byte(id), name(id))
		ids = append(ids, id, id[:len(id)-1]+"X")
		tb.put([]byte(id[:len(id)-1]+"X"), name(id[:len(id)-1]+"X"))
	}
	for _, id := range ids {
		got, ok := tb.get([]byte(id))
		if !ok || got != name(id) {
			t.Fatalf("get(%q) = %+v, %v; want %+v", id, got, ok, name(id))
		}
	}
	if want := 7 + 5000 + 500; tb.len() != want { // the "X" ids repeat ten times each
		t.Fatalf("%d entries, want %d", tb.len(), want)
	}
	// a name set again replaces the old one and takes no slot
	before := tb.len()
	tb.put([]byte("粤B12345"), vehicleName{plate: "other", no: 7})
	if got, _ := tb.get([]byte("粤B12345")); got.plate != "other" || got.no != 7 || tb.len() != before {
		t.Fatalf("after a second put: %+v, %d entries (want %d)", got, tb.len(), before)
	}
	for _, id := range []string{"粤B1234", "粤B123456", "粤B5000X", "abcdefghijklmn", "abcdefghijklmnopq"} {
		if got, ok := tb.get([]byte(id)); ok {
			t.Fatalf("get(%q) = %+v for an id never put", id, got)
		}
	}
	if used := tb.used * 4; used > len(tb.slots)*3 {
		t.Fatalf("%d of %d slots used: more than 3/4", tb.used, len(tb.slots))
	}
}
