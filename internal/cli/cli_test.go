package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"
)

func TestProgram(t *testing.T) {
	var got []string
	p := Program{Name: "tool", Usage: "usage: tool CMD\n", Commands: map[string]Command{
		"ok":   func(_ context.Context, args []string) error { got = args; return nil },
		"fail": func(context.Context, []string) error { return errors.New("cannot reach the broker at b:9092") },
		"help": nil, // shadowed by the built-in help
		"flags": func(context.Context, []string) error {
			return flag.ErrHelp // a command's -h: its flag set printed its usage
		},
	}}
	for _, tc := range []struct {
		args           []string
		code           int
		stdout, stderr string
	}{
		{nil, 2, "", "usage: tool CMD"},
		{[]string{"ok", "-x", "1"}, 0, "", ""},
		{[]string{"fail"}, 1, "", "tool fail: cannot reach the broker at b:9092"},
		{[]string{"nope"}, 2, "", `tool: unknown command "nope"`},
		{[]string{"--help"}, 0, "usage: tool CMD", ""},
		{[]string{"help"}, 0, "usage: tool CMD", ""},
		{[]string{"flags", "-h"}, 0, "", ""},
	} {
		var stdout, stderr bytes.Buffer
		code := p.run(context.Background(), tc.args, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stdout.String(), tc.stdout) || !strings.Contains(stderr.String(), tc.stderr) ||
			(tc.stdout == "" && stdout.Len() > 0) || (tc.stderr == "" && stderr.Len() > 0) {
			t.Errorf("%v: code %d, stdout %q, stderr %q; want %d, %q, %q", tc.args, code, stdout.String(), stderr.String(), tc.code, tc.stdout, tc.stderr)
		}
	}
	if strings.Join(got, " ") != "-x 1" {
		t.Errorf("the command got args %q", got)
	}
}
