package watchdog

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestPostMortem(t *testing.T) {
	got := Describe([]Stale{{Name: "heartbeat", Age: 1500 * time.Millisecond}, {Name: "vm-manager", Never: true}})
	if got != "heartbeat (last progress 1.5s ago, never: false); vm-manager (last progress 0s ago, never: true)" {
		t.Errorf("Describe = %q", got)
	}
	p := DumpGoroutines(t.TempDir(), time.Date(2026, 12, 5, 4, 10, 0, 0, time.UTC))
	b, err := os.ReadFile(p)
	if !strings.HasSuffix(p, "watchdog-expired-20261205T041000.txt") || err != nil || !strings.Contains(string(b), "TestPostMortem") {
		t.Errorf("dump %s: %v, %d bytes", p, err, len(b))
	}
}
