package heartbeat

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestHeartbeatThreadPriority: the heartbeat loop's thread runs real-time
// where allowed (root here), else at nice -10, and no other thread of the
// process is raised.
func TestHeartbeatThreadPriority(t *testing.T) {
	type result struct {
		desc   string
		err    error
		policy uint32
		nice   int
		tid    int
	}
	ch := make(chan result)
	go func() {
		// This goroutine ends locked: Go then ends its raised thread too.
		desc, err := LockThread()
		r := result{desc: desc, err: err, tid: unix.Gettid()}
		if a, gerr := unix.SchedGetAttr(0, 0); gerr == nil {
			r.policy = a.Policy
		}
		if p, gerr := unix.Getpriority(unix.PRIO_PROCESS, r.tid); gerr == nil {
			r.nice = 20 - p // the raw syscall returns 20 - nice
		}
		ch <- r
	}()
	r := <-ch
	if r.err != nil {
		t.Skipf("this machine refuses both: %v", r.err)
	}
	t.Logf("heartbeat thread %d: %s", r.tid, r.desc)
	if r.policy != unix.SCHED_RR && r.nice != fallbackNice {
		t.Errorf("thread %d: policy %d nice %d after %q; want SCHED_RR or nice %d", r.tid, r.policy, r.nice, r.desc, fallbackNice)
	}
	if a, err := unix.SchedGetAttr(0, 0); err != nil || a.Policy != unix.SCHED_NORMAL {
		t.Errorf("the test's own thread: %+v %v; only the heartbeat thread may be raised", a, err)
	}
}
