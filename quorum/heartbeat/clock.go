package heartbeat

import (
	"time"

	"golang.org/x/sys/unix"
)

// bootClock returns a clock that reads CLOCK_BOOTTIME from now on. It is
// monotonic like time.Since, but it also counts the time the machine spent
// suspended. Go's monotonic clock (CLOCK_MONOTONIC) stops during a suspend:
// a host that slept longer than D would take its last heartbeat write for
// recent on waking and keep running guests the others had restarted (found
// by the simulator: make sim SEED=259 SUSPEND=1). With CLOCK_BOOTTIME a
// suspend is a freeze, which the timing rule covers. Where the kernel lacks
// CLOCK_BOOTTIME (before Linux 2.6.39) it falls back to time.Since.
func bootClock() func() time.Duration {
	if t0, ok := BootTime(); ok {
		return func() time.Duration {
			t, _ := BootTime()
			return t - t0
		}
	}
	start := time.Now()
	return func() time.Duration { return time.Since(start) }
}

// BootTime reads CLOCK_BOOTTIME: the time since this host booted, suspends
// included. Unlike the clock of a loop, it means the same in the next
// daemon of this host (see ResumeFile); ok is false where the kernel lacks
// it.
func BootTime() (t time.Duration, ok bool) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}
