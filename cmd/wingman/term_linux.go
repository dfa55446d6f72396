package main

import (
	"os"

	"golang.org/x/term"
)

// isTerminal reports whether f is a terminal. A character device is not
// enough (/dev/null is one, and a shell must not start on it): this asks the
// tty driver for its settings, as isatty(3) does.
func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }
