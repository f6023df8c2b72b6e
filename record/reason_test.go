package record

import (
	"os"
	"strings"
	"testing"
)

// TestReasonsDocumented: the README's muck.dlq section lists every reason a record can be
// dead-lettered for, so that whoever reads the dead-letter topic knows each one.
func TestReasonsDocumented(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, dlq, ok := strings.Cut(string(data), "**`muck.dlq`**")
	if !ok {
		t.Fatal("README.md has no **`muck.dlq`** section")
	}
	dlq, _, _ = strings.Cut(dlq, "\n## ")
	for _, r := range AllReasons() {
		if !strings.Contains(dlq, "`"+string(r)+"`") {
			t.Errorf("README.md's muck.dlq section does not name the reason %q", r)
		}
	}
}
