package main

import (
	"errors"
	"flag"
	"slices"
	"testing"
	"time"
)

// TestCommands: the bench's and the evaluation's -h end in flag.ErrHelp (exit 0), a child process
// that cannot run, a bench of no vehicles and an evaluation of impossible days fail (before
// starting anything). The switch itself is tested in internal/cli.
func TestCommands(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		help bool
	}{
		{"bench", []string{"-h"}, true},
		{"evaluate", []string{"-h"}, true},
		{"broker", nil, false},
		{"bench", []string{"--vehicles", "0"}, false},
		{"evaluate", []string{"--interval", "500ms"}, false},
		{"evaluate", []string{"--interval", "5s,often"}, false},
		{"evaluate", []string{"--street", "--away", "2"}, false},
	} {
		err := commands()[tc.name](t.Context(), tc.args)
		if errors.Is(err, flag.ErrHelp) != tc.help || err == nil {
			t.Errorf("muckbench %s %v: %v; want help %v, or an error", tc.name, tc.args, err, tc.help)
		}
	}
}

func TestParseIntervals(t *testing.T) {
	f := func(in string, want ...time.Duration) {
		t.Helper()
		got, err := parseIntervals(in)
		if want == nil {
			if err == nil {
				t.Errorf("parseIntervals(%q) = %v, want an error", in, got)
			}
			return
		}
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("parseIntervals(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	f("30s", 30*time.Second)
	f("1s,5s, 30s", time.Second, 5*time.Second, 30*time.Second)
	f("")
	f("1s,,5s")
	f("0s")
	f("-5s")
}
