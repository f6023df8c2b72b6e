package main

import (
	"errors"
	"flag"
	"testing"
)

// TestCommands: the bench's and the evaluation's -h end in flag.ErrHelp (exit 0), a child process
// that cannot run and a bench of no vehicles fail. The switch itself is tested in internal/cli.
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
	} {
		err := commands()[tc.name](t.Context(), tc.args)
		if errors.Is(err, flag.ErrHelp) != tc.help || err == nil {
			t.Errorf("muckbench %s %v: %v; want help %v, or an error", tc.name, tc.args, err, tc.help)
		}
	}
}
