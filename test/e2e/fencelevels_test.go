package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestFenceLevelsFirstHangs: a host loses power; its first fencing level hangs past its timeout,
// the second confirms. The VMs run again elsewhere, never on two hosts, before D: through
// level 2, not through the disk rule; the events say so attempt by attempt.
func TestFenceLevelsFirstHangs(t *testing.T) {
	full(t)
	t0, took, evs := powerLossFailover(t, Options{Profile: "fast", Fence: true, FenceLevels: FirstLevelHangs}, "fl")
	const lost, lostName = 1, "kvm1" // the cluster's first host
	t.Logf("failover with level 1 hanging (timeout %v), level 2 confirming: %v (S %v, D %v)",
		FirstLevelHangs[0].Timeout, took.Round(time.Millisecond), fastTimings.PowerFence, fastTimings.Dead)
	var attempts []string
	confirmed := false
	declared := time.Duration(-1)
	for _, ev := range evs {
		t.Log(FormatEvent(ev))
		switch ev.Kind {
		case "fence-attempt":
			attempts = append(attempts, ev.Message)
		case "power-fence-confirmed":
			confirmed = true
		case "power-fence-failed":
			t.Errorf("the fence failed: %s", ev.Message)
		case "declared-dead":
			if declared < 0 && ev.Subject == lost {
				declared = ev.Time.Sub(t0)
			}
		}
	}
	if len(attempts) != 2 || !strings.Contains(attempts[0], "level 1/2 device "+lostName+"-1 (fenceagent) timed out") ||
		!strings.Contains(attempts[1], "level 2/2 device "+lostName+"-2 (fenceagent) confirmed off") ||
		!strings.Contains(attempts[1], "fence confirmed by level 2") {
		t.Errorf("fence attempts %q: want level 1 timed out, then level 2 confirming the fence", attempts)
	}
	if !confirmed {
		t.Error("no power-fence-confirmed event")
	}
	t.Logf("declared dead %v after the power cut (S %v + level 1's timeout %v + level 2), every guest running after %v",
		declared.Round(time.Millisecond), fastTimings.PowerFence, FirstLevelHangs[0].Timeout, took.Round(time.Millisecond))
	// The verdict, not the guests' boot (slow on a loaded machine), is what the levels decide:
	// through level 2 it comes before the disk rule could give it at D.
	if declared < 0 || declared >= fastTimings.Dead {
		t.Errorf("declared dead %v after the power cut: through level 2 it must come before D = %v", declared, fastTimings.Dead)
	}
}
