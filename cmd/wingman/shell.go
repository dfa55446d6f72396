package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

const shellPrompt = "wingman# "

// shell is the interactive mode, like virsh's: it reads command lines from
// stdin and runs each with the command table. help lists the commands;
// quit, exit or end of input (Ctrl-D) leave. Global flags given to the
// process apply to every line. The prompt and the banner go to stderr, so
// stdout holds only the commands' data. On a terminal (s.tty) lines are
// edited and remembered (see lineEditor).
func shell(ctx context.Context, s stdio, g globals) int {
	fmt.Fprintf(s.errOut, "Welcome to wingman %s, the Wingman cluster shell.\n", version)
	fmt.Fprintf(s.errOut, "Type 'help' for the commands, 'quit' or Ctrl-D to leave.\n\n")
	readLine := plainLines(s)
	if s.tty != nil {
		readLine = newLineEditor(s.tty, s.errOut).readLine
	}
	for ctx.Err() == nil {
		line, err := readLine()
		if err != nil && line == "" {
			fmt.Fprintln(s.errOut)
			if errors.Is(err, io.EOF) {
				return exitOK
			}
			fmt.Fprintf(s.errOut, "%s: read stdin: %v\n", programName, err)
			return exitFailed
		}
		args, perr := splitArgs(line)
		if perr != nil {
			fmt.Fprintf(s.errOut, "%s: %v\n", programName, perr)
			continue
		}
		if len(args) > 0 && args[0] == programName {
			args = args[1:] // "wingman list" typed out of habit
		}
		if len(args) == 0 {
			continue
		}
		switch args[0] {
		case "quit", "exit":
			return exitOK
		}
		runCommand(ctx, args, s, g)
	}
	return exitOK
}

// plainLines reads lines from s's input as they come, the prompt on stderr.
func plainLines(s stdio) func() (string, error) {
	in := s.input()
	return func() (string, error) {
		fmt.Fprint(s.errOut, shellPrompt)
		return in.ReadString('\n')
	}
}

// splitArgs splits a command line like a POSIX shell does, without
// expansions: words are separated by blanks; 'single quotes' keep
// everything; "double quotes" keep everything but \" and \\; a backslash
// outside quotes escapes the next character; # starts a comment.
func splitArgs(line string) ([]string, error) {
	var (
		args  []string
		cur   strings.Builder
		inArg bool
	)
	r := []rune(line)
	for i := 0; i < len(r); i++ {
		c := r[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		case c == '#' && !inArg:
			return args, nil
		case c == '\\':
			inArg = true
			if i+1 < len(r) {
				i++
				if r[i] != '\n' {
					cur.WriteRune(r[i])
				}
			}
		case c == '\'':
			inArg = true
			closed := false
			for i++; i < len(r); i++ {
				if r[i] == '\'' {
					closed = true
					break
				}
				cur.WriteRune(r[i])
			}
			if !closed {
				return nil, errors.New("unterminated ' quote")
			}
		case c == '"':
			inArg = true
			closed := false
			for i++; i < len(r); i++ {
				if r[i] == '"' {
					closed = true
					break
				}
				if r[i] == '\\' && i+1 < len(r) && (r[i+1] == '"' || r[i+1] == '\\') {
					i++
				}
				cur.WriteRune(r[i])
			}
			if !closed {
				return nil, errors.New(`unterminated " quote`)
			}
		default:
			inArg = true
			cur.WriteRune(c)
		}
	}
	if inArg {
		args = append(args, cur.String())
	}
	return args, nil
}
