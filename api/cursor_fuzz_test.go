package api

import (
	"strings"
	"testing"
)

// FuzzParseCursor: any query text either is refused with a message that does not echo more than
// 60 bytes of it, or reads as a cursor that writes back to text reading as the same cursor.
func FuzzParseCursor(f *testing.F) {
	for _, s := range []string{"", "xyz", alertCursor{rank: 3, startMs: 1795392000000, id: "a.b"}.String(), "MS4yLjM", "LS0uLi4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseCursor(s)
		if err != nil {
			if len(err.Error()) > 400 { // 60 bytes quoted, each at most \xNN or \uNNNN
				t.Fatalf("message of %d bytes for an input of %d", len(err.Error()), len(s))
			}
			return
		}
		again, err := parseCursor(c.String())
		if err != nil || *again != *c {
			t.Fatalf("cursor %+v from %q does not read back: %+v %v", c, s, again, err)
		}
		if strings.ContainsRune(c.String(), '=') {
			t.Fatalf("cursor text %q needs escaping in a query", c.String())
		}
	})
}
