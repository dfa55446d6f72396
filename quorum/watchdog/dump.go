package watchdog

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// String says which loop stalled and since when, for the post-mortem.
func (s Stale) String() string {
	return fmt.Sprintf("%s (last progress %v ago, never: %v)", s.Name, s.Age.Round(time.Millisecond), s.Never)
}

// Describe joins the stale loops' descriptions ("" when none is stale).
func Describe(stale []Stale) string {
	out := make([]string, len(stale))
	for i, s := range stale {
		out[i] = s.String()
	}
	return strings.Join(out, "; ")
}

// DumpGoroutines writes every goroutine's stack to a file in dir, named
// after now, and returns its path (or why it was not written): when a loop
// stalls, the stacks show where it waits.
func DumpGoroutines(dir string, now time.Time) string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	p := filepath.Join(dir, fmt.Sprintf("watchdog-expired-%s.txt", now.UTC().Format("20060102T150405")))
	if err := os.WriteFile(p, buf, 0o600); err != nil {
		return "not written: " + err.Error()
	}
	return p
}
