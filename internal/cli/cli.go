// Package cli is what muckwatch's commands share: a name, a usage text and subcommands, each run
// until it ends or SIGINT/SIGTERM stops it.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Command runs one subcommand with its arguments; ctx is cancelled by SIGINT or SIGTERM.
type Command func(ctx context.Context, args []string) error

// Program is a command with subcommands.
type Program struct {
	Name     string
	Usage    string
	Commands map[string]Command
}

// Main runs the subcommand args[0] with the rest of args and returns the process's exit code: 0,
// 1 when it failed (its error printed), 2 for a usage error.
func (p Program) Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return p.run(ctx, args, os.Stdout, os.Stderr)
}

func (p Program) run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, p.Usage)
		return 2
	}
	name := args[0]
	switch name {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, p.Usage)
		return 0
	}
	cmd, ok := p.Commands[name]
	if !ok {
		fmt.Fprintf(stderr, "%s: unknown command %q\n\n%s", p.Name, name, p.Usage)
		return 2
	}
	err := cmd(ctx, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s %s: %v\n", p.Name, name, err)
		return 1
	}
	return 0
}
