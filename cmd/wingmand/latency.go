package main

import (
	"fmt"
	"time"
)

// latencyWarning is the status warning for a slow heartbeat LUN, or "". worst
// is the slowest heartbeat renewal (one read of the slots, one write of this
// host's) in the last minute. It warns above half of io_timeout: a write
// slower than io_timeout counts as failed, so this is the last point at which
// a warning comes before anything fails (half of F would only warn once
// writes already time out: F/2 >= io_timeout in every valid profile).
func latencyWarning(worst, ioTimeout, selfFence time.Duration) string {
	if worst <= ioTimeout/2 {
		return ""
	}
	return fmt.Sprintf("heartbeat LUN latency reached %v in the last minute, over half of io_timeout (%v): "+
		"a write slower than that counts as failed and F (%v) later this host self-fences unless the others grant it a network lease; check the storage path",
		worst.Round(time.Millisecond), ioTimeout, selfFence)
}
