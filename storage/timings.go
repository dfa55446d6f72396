package storage

import (
	"fmt"
	"strings"
	"time"
)

// Timings is the cluster's timing rule (DESIGN.md, "Timing rule"). It lives
// in the LUN header so that every host uses the same values.
type Timings struct {
	// Renew (R) is the heartbeat write interval.
	Renew time.Duration
	// IOTimeout bounds one LUN I/O.
	IOTimeout time.Duration
	// SelfFence (F): a host that has neither completed a heartbeat write nor
	// held a network lease for F destroys its protected VMs.
	SelfFence time.Duration
	// Watchdog (W) is the watchdog timeout that backs self-fencing.
	Watchdog time.Duration
	// Dead (D): another host is declared dead when its sequence has not
	// changed for D of the observer's monotonic clock. D >= F + W + IOTimeout + R.
	Dead time.Duration
	// PowerFence (S): how long serf and the LUN must both show a host
	// unresponsive before a configured fence agent may power it off.
	PowerFence time.Duration
	// PathFailover is the SAN multipath failover time the operator declares
	// (0 if none); F must be above it, or a path switch would self-fence hosts.
	PathFailover time.Duration
	// LeaseCeiling (C): a host that cannot write the LUN runs its VMs on
	// network leases only until its last completed write is C old, then
	// self-fences; the last host standing may declare hosts lost at once
	// dead after C + D. Zero (a header of a release before it) means
	// DefaultLeaseCeiling; see Ceiling.
	LeaseCeiling time.Duration
}

// DefaultLeaseCeiling is the network-lease ceiling of a header that does not
// set one: longer than a SAN controller or path failover.
const DefaultLeaseCeiling = 60 * time.Second

// MinLeaseCeilingMargin is how far the ceiling must lie above F and above
// the declared path failover time. F already rides out a path switch that
// multipath declares; what network leases are for is the longer trouble of
// a SAN (a controller failover, an iSCSI session re-login, a switch
// reboot), which commonly takes 10 to 30 s. A ceiling closer to F would
// stop every VM of a host in such an event instead of riding it out.
const MinLeaseCeilingMargin = 10 * time.Second

// Ceiling is the network-lease ceiling in effect: LeaseCeiling, or
// DefaultLeaseCeiling when the header holds none.
func (t Timings) Ceiling() time.Duration {
	if t.LeaseCeiling == 0 {
		return DefaultLeaseCeiling
	}
	return t.LeaseCeiling
}

// DefaultTimings is the profile for ordinary SAN storage: R 1 s, io_timeout 2 s,
// F 4 s, W 5 s, D 12 s, S 3 s, lease ceiling 60 s.
func DefaultTimings() Timings {
	return Timings{Renew: time.Second, IOTimeout: 2 * time.Second, SelfFence: 4 * time.Second,
		Watchdog: 5 * time.Second, Dead: 12 * time.Second, PowerFence: 3 * time.Second, LeaseCeiling: DefaultLeaseCeiling}
}

// FastTimings is the profile for fast, low-latency storage: R 0.5 s,
// io_timeout 1 s, F 3 s, W 3 s, D 7.5 s, lease ceiling 60 s.
func FastTimings() Timings {
	return Timings{Renew: 500 * time.Millisecond, IOTimeout: time.Second, SelfFence: 3 * time.Second,
		Watchdog: 3 * time.Second, Dead: 7500 * time.Millisecond, PowerFence: 3 * time.Second, LeaseCeiling: DefaultLeaseCeiling}
}

// TimingsProfile returns a named profile: "default" or "fast".
func TimingsProfile(name string) (Timings, error) {
	switch name {
	case "", "default":
		return DefaultTimings(), nil
	case "fast":
		return FastTimings(), nil
	}
	return Timings{}, fmt.Errorf("%w: unknown timing profile %q: use \"default\" or \"fast\"", ErrInvalid, name)
}

// MinDead is the smallest safe D for these timings: F + W + IOTimeout + R.
func (t Timings) MinDead() time.Duration {
	return t.SelfFence + t.Watchdog + t.IOTimeout + t.Renew
}

// Validate rejects unsafe combinations, saying what to change.
func (t Timings) Validate() error {
	var probs []string
	const minStep = 10 * time.Millisecond
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"renew (R)", t.Renew}, {"io_timeout", t.IOTimeout}, {"self_fence (F)", t.SelfFence},
		{"watchdog (W)", t.Watchdog}, {"dead (D)", t.Dead}} {
		if f.v < minStep {
			probs = append(probs, fmt.Sprintf("%s is %v: set it to at least %v", f.name, f.v, minStep))
		}
		if f.v > time.Hour {
			probs = append(probs, fmt.Sprintf("%s is %v: set it below 1h", f.name, f.v))
		}
		if f.v%time.Millisecond != 0 {
			probs = append(probs, fmt.Sprintf("%s is %v: use whole milliseconds", f.name, f.v))
		}
	}
	if t.PowerFence < 0 || t.PathFailover < 0 {
		probs = append(probs, "power_fence and path_failover must not be negative")
	}
	if t.SelfFence < t.Renew+t.IOTimeout {
		probs = append(probs, fmt.Sprintf("self_fence (F) %v is below renew + io_timeout = %v: one slow write would self-fence the host; raise F", t.SelfFence, t.Renew+t.IOTimeout))
	}
	if t.PathFailover > 0 && t.SelfFence <= t.PathFailover {
		probs = append(probs, fmt.Sprintf("self_fence (F) %v is not above the SAN path failover time %v: a path switch would self-fence every host; raise F above it", t.SelfFence, t.PathFailover))
	}
	if c := t.LeaseCeiling; c != 0 {
		switch min := max(t.SelfFence, t.PathFailover) + MinLeaseCeilingMargin; {
		case c < min:
			probs = append(probs, fmt.Sprintf("lease_ceiling %v is below max(F, path_failover) + %v = %v: a SAN controller failover would stop the VMs of every host that rides it out on network leases; raise it to at least %v", c, MinLeaseCeilingMargin, min, min))
		case c > time.Hour:
			probs = append(probs, fmt.Sprintf("lease_ceiling %v: set it below 1h (hosts lost together are restarted only C + D after they were lost)", c))
		case c%time.Millisecond != 0:
			probs = append(probs, fmt.Sprintf("lease_ceiling %v: use whole milliseconds", c))
		}
	}
	if t.Dead < t.MinDead() {
		probs = append(probs, fmt.Sprintf("dead (D) %v is below F + W + io_timeout + R = %v: a host could be declared dead while it still runs its VMs; raise D to at least %v", t.Dead, t.MinDead(), t.MinDead()))
	}
	if len(probs) > 0 {
		return fmt.Errorf("%w: %s", ErrUnsafeTimings, strings.Join(probs, "; "))
	}
	return nil
}

// acquireDelay is how long a delta-lease acquirer waits between its write and
// its re-read. A competitor's read-to-write window is bounded by two I/O
// timeouts (it aborts otherwise), so waiting longer than that guarantees
// every competing write has landed before we look.
func (t Timings) acquireDelay() time.Duration { return 2*t.IOTimeout + t.Renew }

func (t Timings) String() string {
	return fmt.Sprintf("R=%v io_timeout=%v F=%v W=%v D=%v S=%v path_failover=%v lease_ceiling=%v",
		t.Renew, t.IOTimeout, t.SelfFence, t.Watchdog, t.Dead, t.PowerFence, t.PathFailover, t.Ceiling())
}
