package main

import "testing"

// TestRunCommand: help exits 0, an unknown command 2 (and a child process that cannot run, 1).
func TestRunCommand(t *testing.T) {
	f := func(name string, args []string, want int) {
		t.Helper()
		if got := runCommand(name, args); got != want {
			t.Errorf("muckbench %s %v: exit code %d, want %d", name, args, got, want)
		}
	}
	f("help", nil, 0)
	f("bench", []string{"-h"}, 0)
	f("evaluate", []string{"-h"}, 0)
	f("run", nil, 2)
	f("broker", nil, 1)
	f("bench", []string{"--vehicles", "0"}, 1)
}
