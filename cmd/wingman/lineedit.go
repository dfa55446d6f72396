package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"
)

// lineEditor reads the interactive shell's lines on a terminal, with line
// editing and a history of the session's last 100 lines (golang.org/x/term's
// Terminal): Left/Right, Home/End, Ctrl-A/E/B/F, Alt-Left/Right by word,
// Backspace, Delete, Ctrl-K/U/W, Ctrl-L, and Up/Down or Ctrl-P/N through the
// history. Ctrl-C drops the line typed so far; Ctrl-D on an empty line
// leaves. The terminal is raw only while a line is read, so the commands
// run, and print, with the terminal as it was.
type lineEditor struct {
	tty  *os.File
	term *term.Terminal
}

// newLineEditor edits lines read from tty, echoing them and the prompt to
// echo (stderr, so that stdout holds only the commands' data).
func newLineEditor(tty *os.File, echo io.Writer) *lineEditor {
	rw := struct {
		io.Reader
		io.Writer
	}{&dropOnCtrlC{r: tty}, echo}
	return &lineEditor{tty: tty, term: term.NewTerminal(rw, shellPrompt)}
}

// readLine reads one line, without its newline; io.EOF at Ctrl-D on an
// empty line.
func (e *lineEditor) readLine() (string, error) {
	fd := int(e.tty.Fd())
	old, err := term.MakeRaw(fd)
	if err != nil {
		return "", fmt.Errorf("set the terminal to raw mode: %w", err)
	}
	defer term.Restore(fd, old)
	if w, h, err := term.GetSize(fd); err == nil && w > 0 {
		e.term.SetSize(w, h)
	}
	line, err := e.term.ReadLine()
	if errors.Is(err, term.ErrPasteIndicator) {
		err = nil // a pasted line is a line
	}
	return line, err
}

// dropOnCtrlC turns Ctrl-C, which the Terminal takes for the end of input,
// into Ctrl-E Ctrl-U (end of line, erase to its start): the line typed so
// far is dropped and the shell goes on, as bash's does.
type dropOnCtrlC struct {
	r       io.Reader
	pending []byte
	err     error
}

func (d *dropOnCtrlC) Read(p []byte) (int, error) {
	for len(d.pending) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		buf := make([]byte, max(len(p), 1))
		n, err := d.r.Read(buf)
		d.pending, d.err = bytes.ReplaceAll(buf[:n], []byte{3}, []byte{5, 21}), err
	}
	n := copy(p, d.pending)
	d.pending = d.pending[n:]
	return n, nil
}
