package heartbeat

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// rtPriority is the SCHED_RR priority of the heartbeat loop's
// thread: above every normal process (QEMU, libvirtd, a boot storm of
// guests), below the kernel's own real-time threads at 99. corosync and
// sanlock run their heartbeats real-time for the same reason: a heartbeat
// that misses its interval under CPU load fences a healthy host.
const rtPriority = 50

// fallbackNice is the nice value where real-time scheduling is not allowed.
const fallbackNice = -10

// LockThread wires the calling goroutine to its own OS thread and
// raises that thread's CPU priority: SCHED_RR at rtPriority, or,
// where that is refused (no CAP_SYS_NICE, an RT-limited cgroup), nice
// fallbackNice. Only this thread is raised: the rest of wingmand (the API,
// the planner, the VM manager) stays at normal priority, so a busy wingmand
// cannot starve the guests. The caller must stay on this goroutine; it
// returns what it set, for the log.
func LockThread() (string, error) {
	runtime.LockOSThread()
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_RR, Priority: rtPriority}
	rtErr := unix.SchedSetAttr(0, &attr, 0)
	if rtErr == nil {
		return fmt.Sprintf("SCHED_RR priority %d", rtPriority), nil
	}
	// setpriority(PRIO_PROCESS, tid) sets one thread's nice value on Linux.
	if err := unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), fallbackNice); err != nil {
		return "", fmt.Errorf("real-time scheduling refused (%v) and nice %d too (%v): the heartbeat loop runs at normal priority; "+
			"give wingmand CAP_SYS_NICE (the packaged unit runs it as root)", rtErr, fallbackNice, err)
	}
	return fmt.Sprintf("nice %d (real-time scheduling refused: %v)", fallbackNice, rtErr), nil
}
