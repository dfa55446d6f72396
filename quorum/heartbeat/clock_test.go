package heartbeat

import (
	"testing"
	"time"
)

// The loop's default clock starts at zero and keeps pace with the monotonic
// clock while the machine runs (it differs only across a suspend, which a
// test cannot cause).
func TestBootClockKeepsPace(t *testing.T) {
	start := time.Now()
	now := bootClock()
	first := now()
	if first < 0 || first > time.Second {
		t.Fatalf("first reading %v, want about 0", first)
	}
	time.Sleep(20 * time.Millisecond)
	got, want := now(), time.Since(start)
	if got < 20*time.Millisecond || got > want+5*time.Millisecond {
		t.Errorf("after %v the boot clock reads %v", want, got)
	}
}
