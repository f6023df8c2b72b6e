package bench

import (
	"math"
	"strings"
	"testing"
)

func TestRunDelayIn(t *testing.T) {
	cases := []struct {
		dir     string
		want    float64
		wantErr string
	}{
		{"testdata/schedstat/ok", 1.500892389, ""}, // two threads' run delays; 103 ended before its read
		{"testdata/schedstat/bad", 0, `cannot read the run delay of thread 7 of process p: "garbage\n"`},
		{"testdata/schedstat/empty", 0, "cannot read the run delay of any thread of process p"},
		{"testdata/schedstat/none", 0, "cannot list the threads of process p"},
	}
	for _, tc := range cases {
		got, err := runDelayIn(tc.dir, "p")
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: err %v, want one saying %q", tc.dir, err, tc.wantErr)
			}
			continue
		}
		if err != nil || math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: %v s, %v; want %v s", tc.dir, got, err, tc.want)
		}
	}
}

// TestRunDelayOfThisProcess reads this process's threads: the kernel keeps schedstat on every
// machine the bench runs on, and a thread's waiting time never goes back.
func TestRunDelayOfThisProcess(t *testing.T) {
	a, err := runDelay("self")
	if err != nil {
		t.Fatal(err)
	}
	b, err := runDelay("self")
	if err != nil {
		t.Fatal(err)
	}
	if a < 0 || b < a {
		t.Errorf("run delay %v s, then %v s", a, b)
	}
}
