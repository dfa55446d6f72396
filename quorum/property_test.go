package quorum

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRandomFaultSchedules runs the simulator over many random fault
// schedules (crashes, reboots, partitions, whole-machine freezes, daemon
// stalls, LUN loss and latency, failing power fences) and checks at every
// step that no VM runs on two hosts, that a host is declared dead only once
// it can no longer run VMs, and that coordinators of two network partitions
// never act within D of each other. A failing seed prints its schedule, to
// be turned into a scenario file.
//
// WINGMAN_SIM_SEEDS sets the number of schedules (default 300; -short 50),
// WINGMAN_SIM_HOSTS a fixed cluster size (default: 2 to 7 hosts at random).
func TestRandomFaultSchedules(t *testing.T) {
	n := 300
	if testing.Short() {
		n = 50
	}
	if v, err := strconv.Atoi(os.Getenv("WINGMAN_SIM_SEEDS")); err == nil && v > 0 {
		n = v
	}
	for seed := uint64(1); seed <= uint64(n); seed++ {
		if hist, violation := randomSchedule(seed); violation != "" {
			t.Fatalf("seed %d: %s\nschedule:\n%s", seed, violation, hist)
		}
	}
}

// randomSchedule runs one seeded schedule and returns its history and the
// first invariant violation, if any.
func randomSchedule(seed uint64) (string, string) {
	rng := rand.New(rand.NewPCG(seed, 7))
	hosts := 2 + rng.IntN(6)
	if n, err := strconv.Atoi(os.Getenv("WINGMAN_SIM_HOSTS")); err == nil && n >= 2 && n <= 255 {
		hosts = n
	}
	tm := DefaultTimings()
	if rng.IntN(2) == 0 {
		tm = FastTimings()
	}
	s := newSim(hosts, tm, seed)
	s.serfDelay = time.Duration(1+rng.IntN(6)) * time.Second
	s.fenceOK = rng.IntN(3) != 0
	for _, h := range s.hosts {
		h.fenceable = rng.IntN(3) == 0
	}
	var hist []string
	note := func(format string, a ...any) {
		hist = append(hist, fmt.Sprintf("%7.2fs ", s.now.Seconds())+fmt.Sprintf(format, a...))
	}
	s.run(5 * time.Second)
	for range 12 {
		h := s.hosts[rng.IntN(hosts)]
		switch rng.IntN(10) {
		case 0:
			h.up, h.vms = false, false
			note("crash %d", h.id)
		case 1:
			if !h.up {
				s.boot(h)
				note("boot %d", h.id)
			}
		case 2:
			var a, b []string
			for _, o := range s.hosts {
				o.group = rng.IntN(2)
				if o.group == 0 {
					a = append(a, fmt.Sprint(o.id))
				} else {
					b = append(b, fmt.Sprint(o.id))
				}
			}
			note("partition %s | %s", strings.Join(a, ","), strings.Join(b, ","))
		case 3:
			for _, o := range s.hosts {
				o.group = 0
			}
			note("heal")
		case 4:
			h.frozen = true
			note("freeze %d", h.id)
		case 5:
			if h.frozen || h.stalled {
				h.frozen, h.stalled = false, false
				if h.up {
					h.nextBeat = s.now + s.t.Renew
					s.cycle(h)
				}
				note("thaw %d", h.id)
			} else {
				h.stalled = true
				note("stall %d", h.id)
			}
		case 6:
			h.lunOK = !h.lunOK
			note("lun-%s %d", map[bool]string{true: "back", false: "lost"}[h.lunOK], h.id)
		case 7:
			h.latency = time.Duration(rng.IntN(4000)) * time.Millisecond
			note("latency %d %v", h.id, h.latency)
		case 8:
			for _, o := range s.hosts {
				o.lunOK = rng.IntN(4) != 0
			}
			note("lun flaps")
		case 9:
			note("quiet")
		}
		s.check()
		s.run(time.Duration(1+rng.IntN(25)) * time.Second)
		if s.violation != "" {
			break
		}
	}
	return strings.Join(hist, "\n") + "\n--- events\n" + strings.Join(s.log, "\n"), s.violation
}
