package heartbeat

import (
	"context"
	"testing"
	"time"

	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/storage/storagetest"
)

// A disarm accepted by one host reaches the others through the LUN; a host
// then cut off from the LUN and the network keeps its VMs until its own
// timer runs out, and is declared dead only after that plus D.
func TestDisarmReachesTheLUNAndHoldsOffFencing(t *testing.T) {
	c := newCluster(t, 3)
	waitFor(t, "a settled cluster", func() bool {
		in := c.hosts[1].loop.input()
		return in.Now-in.ReadFreshSince >= in.Timings.Dead && c.state(1, 3) == quorum.StateAlive
	})
	const length = 3 * time.Second
	dm, err := c.hosts[1].loop.Disarm(quorum.DisarmRequest{For: length, Reason: "SAN work"})
	if err != nil {
		t.Fatal(err)
	}
	disarmed := time.Now()
	waitFor(t, "every slot on the LUN to acknowledge the disarm", func() bool {
		views, err := c.reader().ReadSlots(context.Background())
		if err != nil {
			return false
		}
		for _, v := range views[:3] {
			if d := v.Record.Disarm; d.Gen != dm.Gen || !d.Disarmed || d.Reason != "SAN work" {
				return false
			}
		}
		return true
	})
	if st, left := c.hosts[3].loop.DisarmStatus(); !st.Disarmed || left <= 0 || left > length {
		t.Fatalf("host 3: %+v, %v left", st, left)
	}
	c.faults.Inject("kvm3", storagetest.Fault{Op: storagetest.AllIO, EIO: true})
	c.net.partition([]int{1, 2}, []int{3})
	for time.Since(disarmed) < length-300*time.Millisecond {
		if f, _ := c.hosts[3].vms.counts(); f != 0 {
			t.Fatalf("host 3 self-fenced while disarmed: %v", c.hosts[3].vms.fenced)
		}
		if c.hosts[1].sawEvent("declared-dead", 3) {
			t.Fatal("host 1 declared host 3 dead while the cluster was disarmed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitFor(t, "host 3 to re-arm by itself and self-fence", func() bool { f, _ := c.hosts[3].vms.counts(); return f > 0 })
	fenced := time.Now()
	waitFor(t, "host 1 to declare host 3 dead", func() bool { return c.hosts[1].sawEvent("declared-dead", 3) })
	if !c.hosts[3].sawEvent("ha-rearmed", 3) || !c.hosts[1].sawEvent("ha-disarmed", 1) {
		t.Error("missing ha-disarmed or ha-rearmed events")
	}
	if since := time.Since(fenced); since < testTimings().Watchdog {
		t.Errorf("host 3 declared dead %v after it self-fenced: before W = %v", since, testTimings().Watchdog)
	}
}
