package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/pflag"

	"github.com/wingmanha/wingman/cmd/api"
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

// stdio is a command's terminal: data to out, diagnostics to errOut, and
// in for the interactive shell and confirmations.
type stdio struct {
	in          *bufio.Reader
	out         io.Writer
	errOut      io.Writer
	terminal    bool             // stdin is a terminal: the shell and confirmations may ask
	errTerminal bool             // stderr is a terminal: spinners may redraw a line
	interrupt   <-chan os.Signal // Ctrl-C: cancels the running command (nil in tests)
	tty         *os.File         // stdin, when it and stderr are terminals: the shell edits lines on it
}

// input is where a command reads answers; no stdin reads as empty.
func (s stdio) input() *bufio.Reader {
	if s.in == nil {
		return bufio.NewReader(strings.NewReader(""))
	}
	return s.in
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
	// SIGTERM ends everything; Ctrl-C cancels the running command, which in
	// the interactive shell returns to the prompt.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	intr := make(chan os.Signal, 1)
	signal.Notify(intr, os.Interrupt)
	s := stdio{in: bufio.NewReader(os.Stdin), out: os.Stdout, errOut: os.Stderr,
		terminal: isTerminal(os.Stdin), errTerminal: isTerminal(os.Stderr), interrupt: intr}
	if s.terminal && s.errTerminal {
		s.tty = os.Stdin
	}
	code := run(ctx, os.Args[1:], s)
	stop()
	os.Exit(code)
}

// globals are the flags given before the command name; they apply to the
// command, or to every command of the interactive shell.
type globals struct {
	connect string
	json    bool
}

// parseGlobals takes -c/--connect SOCKET and --json off the front of argv.
func parseGlobals(argv []string) (globals, []string, error) {
	var g globals
	for len(argv) > 0 {
		a := argv[0]
		switch {
		case a == "-c" || a == "--connect":
			if len(argv) < 2 {
				return g, nil, usagef("%s needs a SOCKET argument", a)
			}
			g.connect, argv = argv[1], argv[2:]
		case strings.HasPrefix(a, "--connect="):
			g.connect, argv = strings.TrimPrefix(a, "--connect="), argv[1:]
		case strings.HasPrefix(a, "-c") && !strings.HasPrefix(a, "--"):
			g.connect, argv = strings.TrimPrefix(strings.TrimPrefix(a, "-c"), "="), argv[1:]
		case a == "--json":
			g.json, argv = true, argv[1:]
		default:
			return g, argv, nil
		}
	}
	return g, argv, nil
}

// run executes one command line and returns the process exit code. With no
// command it starts the interactive shell when stdin is a terminal, and
// prints the help otherwise.
func run(ctx context.Context, argv []string, s stdio) int {
	g, rest, err := parseGlobals(argv)
	if err != nil {
		fmt.Fprintf(s.errOut, "%s: %s; %s\n", programName, printable(err.Error()), helpHintText)
		return exitUsage
	}
	if len(rest) == 0 {
		if s.terminal {
			return shell(ctx, s, g)
		}
		printHelp(s.out)
		return exitOK
	}
	return runCommand(ctx, rest, s, g)
}

// runCommand runs one command of the table: the process's, or one line of
// the shell. Ctrl-C cancels only this command.
func runCommand(parent context.Context, argv []string, s stdio, g globals) int {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	if s.interrupt != nil {
		for len(s.interrupt) > 0 {
			<-s.interrupt // a Ctrl-C typed at the prompt is not for this command
		}
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-s.interrupt:
				cancel()
			case <-done:
			}
		}()
	}
	switch argv[0] {
	case "-h", "--help", "help":
		if len(argv) > 1 {
			return helpFor(strings.Join(argv[1:], " "), s)
		}
		printHelp(s.out)
		return exitOK
	case "-v", "-V", "--version": // -v as virsh has it
		argv = []string{"version"}
	}
	cmd, rest := lookup(argv)
	if cmd == nil {
		if subs := subcommands(argv[0]); len(subs) > 0 && len(prefixWords(argv)) == 1 {
			fmt.Fprintf(s.errOut, "%s %s: missing subcommand: use one of %s\n", programName, argv[0], strings.Join(subs, ", "))
			return exitUsage
		}
		if strings.HasPrefix(argv[0], "-") {
			fmt.Fprintf(s.errOut, "%s: unknown flag %s before the command; %s\n", programName, printable(argv[0]), helpHintText)
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
	if g.connect != "" && fs.Lookup("connect") != nil {
		fs.Set("connect", g.connect) // a --connect after the command still wins
	}
	if g.json {
		if fs.Lookup("json") == nil {
			fmt.Fprintf(s.errOut, "%s %s: --json: this command has no JSON output; run 'wingman help %s'\n", programName, cmd.name, cmd.name)
			return exitUsage
		}
		fs.Set("json", "true")
	}
	if err := fs.Parse(rest); err != nil {
		fmt.Fprintf(s.errOut, "%s %s: %s; run 'wingman help %s'\n", programName, cmd.name, printable(err.Error()), cmd.name)
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
	fmt.Fprintf(s.errOut, "%s %s: %s\n", programName, cmd.name, printable(err.Error()))
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
	fmt.Fprintf(w, "%s: manage a Wingman KVM failover cluster\n\nUsage: %s [-c SOCKET] [--json] COMMAND [flags] [args]\n       %s                 (an interactive shell on a terminal)\n\nCommands:\n", programName, programName, programName)
	for _, c := range sortedCommands() {
		fmt.Fprintf(w, "  %-20s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nGlobal flags:\n")
	fmt.Fprintf(w, "  -c, --connect SOCKET  wingmand's socket (default %s, or $%s)\n", api.DefaultSocket, socketEnv)
	fmt.Fprintf(w, "      --json            JSON output, for the commands that have it\n")
	fmt.Fprintf(w, "\nRun '%s help COMMAND' or '%s COMMAND --help' for a command's flags.\n", programName, programName)
	fmt.Fprintf(w, "\n%s", exitCodesText)
}

// exitCodesText documents the exit codes (also in doc.go and the man page).
const exitCodesText = `Exit codes:
  0  success
  1  the command failed, or wingmand is not reachable (stderr says why and what to do)
  2  usage error: unknown command or flag, bad value, wrong number of arguments
  3  'lun verify' found damaged records
`

// sortedCommands is the command table in name order.
func sortedCommands() []*command {
	out := make([]*command, len(commands))
	for i := range commands {
		out[i] = &commands[i]
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].name < out[b].name })
	return out
}

func helpFor(name string, s stdio) int {
	c, rest := lookup(strings.Fields(name))
	if c == nil || len(rest) > 0 {
		fmt.Fprintf(s.errOut, "%s help: unknown command %q; %s\n", programName, name, helpHintText)
		return exitUsage
	}
	printCommandHelp(s.out, c, flagSetFor(c))
	return exitOK
}

func printCommandHelp(w io.Writer, c *command, fs *pflag.FlagSet) {
	fmt.Fprintf(w, "Usage: %s %s [flags] %s\n\n%s\n", programName, c.name, c.args, c.summary)
	if c.help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.help))
	}
	fmt.Fprintf(w, "\nFlags:\n%s", flagUsages(fs))
}

// flagUsages is fs's list of flags, a boolean flag shown as --name: it
// takes no value (pflag shows --name[=true|false]).
func flagUsages(fs *pflag.FlagSet) string {
	shown := pflag.NewFlagSet(fs.Name(), pflag.ContinueOnError)
	shown.SortFlags = fs.SortFlags
	fs.VisitAll(func(f *pflag.Flag) {
		g := *f
		if f.Value.Type() == "bool" {
			g.Value = plainBool{f.Value}
		}
		shown.AddFlag(&g)
	})
	return shown.FlagUsages()
}

// plainBool is a boolean flag's value without IsBoolFlag, the method that
// makes pflag's usage show [=true|false]; its NoOptDefVal still lets
// --name alone set it.
type plainBool struct{ pflag.Value }

// printable escapes the control and format characters of s, but for
// newlines and tabs, as Go quotes them (\x1b, \u202e): a name typed on the
// command line, or read from the daemon or a LUN, must not drive the
// terminal (move the cursor, retitle the window, hide what follows). A
// byte that is not UTF-8 becomes U+FFFD.
func printable(s string) string {
	bad := func(r rune) bool {
		return r != '\n' && r != '\t' && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError)
	}
	if !strings.ContainsFunc(s, bad) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if bad(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}
