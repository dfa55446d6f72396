package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/spf13/pflag"
)

// Exit codes, documented in doc.go.
const (
	exitOK       = 0
	exitFailed   = 1
	exitUsage    = 2
	exitDamaged  = 3
	programName  = "wingman"
	helpHintText = "run 'wingman help' for the list of commands"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// stdio is where a command writes: data to out, diagnostics to errOut.
type stdio struct {
	out    io.Writer
	errOut io.Writer
}

// command is one entry of the command table. bind registers the command's
// flags on its own FlagSet and returns the function that runs it.
type command struct {
	name    string // "lun format"
	args    string // synopsis of positional arguments, e.g. "PATH"
	summary string // one line for `wingman help`
	help    string // paragraphs for `wingman help NAME`
	nargs   [2]int // minimum and maximum positional arguments (-1: no maximum)
	bind    func(fs *pflag.FlagSet) func(ctx context.Context, s stdio, args []string) error
}

// usageError is a mistake in the command line: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// exitError carries a specific exit code for a failure that was already reported.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], stdio{out: os.Stdout, errOut: os.Stderr})
	stop()
	os.Exit(code)
}

// run executes one command line and returns the process exit code.
func run(ctx context.Context, argv []string, s stdio) int {
	if len(argv) == 0 {
		printHelp(s.out)
		return exitOK
	}
	switch argv[0] {
	case "-h", "--help", "help":
		if len(argv) > 1 {
			return helpFor(strings.Join(argv[1:], " "), s)
		}
		printHelp(s.out)
		return exitOK
	case "-V", "--version":
		argv = []string{"version"}
	}
	cmd, rest := lookup(argv)
	if cmd == nil {
		if subs := subcommands(argv[0]); len(subs) > 0 && len(prefixWords(argv)) == 1 {
			fmt.Fprintf(s.errOut, "%s %s: missing subcommand: use one of %s\n", programName, argv[0], strings.Join(subs, ", "))
			return exitUsage
		}
		fmt.Fprintf(s.errOut, "%s: unknown command %q%s; %s\n", programName, strings.Join(prefixWords(argv), " "), suggest(argv), helpHintText)
		return exitUsage
	}
	fs := pflag.NewFlagSet(programName+" "+cmd.name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	help := fs.BoolP("help", "h", false, "show this help")
	exec := cmd.bind(fs)
	if err := fs.Parse(rest); err != nil {
		fmt.Fprintf(s.errOut, "%s %s: %v; run 'wingman help %s'\n", programName, cmd.name, err, cmd.name)
		return exitUsage
	}
	if *help {
		printCommandHelp(s.out, cmd, fs)
		return exitOK
	}
	args := fs.Args()
	if n := len(args); n < cmd.nargs[0] || (cmd.nargs[1] >= 0 && n > cmd.nargs[1]) {
		fmt.Fprintf(s.errOut, "%s %s: %s; usage: %s %s [flags] %s\n", programName, cmd.name, argCountProblem(cmd, n), programName, cmd.name, cmd.args)
		return exitUsage
	}
	err := exec(ctx, s, args)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(s.errOut, "%s %s: %v\n", programName, cmd.name, err)
	var ue *usageError
	var ee *exitError
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &ee):
		return ee.code
	}
	return exitFailed
}

func argCountProblem(c *command, n int) string {
	switch {
	case n < c.nargs[0] && n == 0:
		return "missing argument " + c.args
	case n < c.nargs[0]:
		return fmt.Sprintf("need %d arguments (%s), got %d", c.nargs[0], c.args, n)
	default:
		return fmt.Sprintf("too many arguments: want at most %d (%s), got %d", c.nargs[1], c.args, n)
	}
}

// lookup finds the longest command name that prefixes argv (flags excluded).
func lookup(argv []string) (*command, []string) {
	words := prefixWords(argv)
	for n := len(words); n > 0; n-- {
		name := strings.Join(words[:n], " ")
		for i := range commands {
			if commands[i].name == name {
				return &commands[i], argv[n:]
			}
		}
	}
	return nil, nil
}

// prefixWords is the leading non-flag words of argv (at most two: "lun format").
func prefixWords(argv []string) []string {
	var w []string
	for _, a := range argv {
		if strings.HasPrefix(a, "-") || len(w) == 2 {
			break
		}
		w = append(w, a)
	}
	return w
}

// suggest proposes the closest command name for a typo.
func suggest(argv []string) string {
	typed := strings.Join(prefixWords(argv), " ")
	best, bestD := "", 3
	for _, c := range commands {
		for _, cand := range []string{c.name, strings.Fields(c.name)[0]} {
			if d := editDistance(typed, cand); d < bestD {
				best, bestD = cand, d
			}
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return ""
}

// subcommands lists the subcommands of a command group such as "lun".
func subcommands(group string) []string {
	var subs []string
	for _, c := range commands {
		if f := strings.Fields(c.name); len(f) > 1 && f[0] == group {
			subs = append(subs, f[1])
		}
	}
	return subs
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func printHelp(w io.Writer) {
	fmt.Fprintf(w, "%s: manage a Wingman KVM failover cluster\n\nUsage: %s COMMAND [flags] [args]\n\nCommands:\n", programName, programName)
	names := make([]int, len(commands))
	for i := range names {
		names[i] = i
	}
	sort.SliceStable(names, func(a, b int) bool { return commands[names[a]].name < commands[names[b]].name })
	for _, i := range names {
		c := commands[i]
		fmt.Fprintf(w, "  %-14s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun '%s help COMMAND' or '%s COMMAND --help' for a command's flags.\n", programName, programName)
	fmt.Fprintf(w, "Exit codes: 0 success, 1 failure, 2 usage error, 3 damaged LUN records (lun verify).\n")
}

func helpFor(name string, s stdio) int {
	c, rest := lookup(strings.Fields(name))
	if c == nil || len(rest) > 0 {
		fmt.Fprintf(s.errOut, "%s help: unknown command %q; %s\n", programName, name, helpHintText)
		return exitUsage
	}
	fs := pflag.NewFlagSet(c.name, pflag.ContinueOnError)
	fs.SortFlags = false
	fs.BoolP("help", "h", false, "show this help")
	c.bind(fs)
	printCommandHelp(s.out, c, fs)
	return exitOK
}

func printCommandHelp(w io.Writer, c *command, fs *pflag.FlagSet) {
	fmt.Fprintf(w, "Usage: %s %s [flags] %s\n\n%s\n", programName, c.name, c.args, c.summary)
	if c.help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.help))
	}
	fmt.Fprintf(w, "\nFlags:\n%s", fs.FlagUsages())
}
