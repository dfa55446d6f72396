package heartbeat

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/storage"
)

// These tests run one host's loop, host 1, in a synctest bubble against an
// in-memory heartbeat region whose peers write on a schedule of the fake
// clock. I/O takes no time there, so every read and write lands at a known
// instant and the verdict's lateness is exact.

// peer is a scripted host: it writes its slot at first, first+R, ... up to
// and including last (a power cut just after it); last 0: it never stops.
// From verdictAt on (if not 0) its slot publishes verdict.
type peer struct {
	first, last time.Duration
	verdictAt   time.Duration
	verdict     storage.Verdict
}

// fakeSlots is the heartbeat region as host 1 sees it (Slot).
type fakeSlots struct {
	epoch time.Time
	r     time.Duration
	peers map[int]peer

	mu      sync.Mutex
	rec     storage.SlotRecord // host 1's slot as last written
	renews  []time.Duration    // when each Renew ran
	reads   []time.Duration    // when each read of every slot ran (Renew's and Observe's)
	written []storage.SlotState
}

func (f *fakeSlots) since() time.Duration { return time.Since(f.epoch) }

func (f *fakeSlots) views() []storage.SlotView {
	now := f.since()
	f.reads = append(f.reads, now)
	views := []storage.SlotView{{HostID: 1, Record: f.rec}}
	for id := 2; id <= 3; id++ {
		p := f.peers[id]
		end := now
		if p.last > 0 {
			end = min(now, p.last)
		}
		seq := uint64(1) // the acquisition's write
		if end >= p.first {
			seq += uint64((end-p.first)/f.r) + 1
		}
		rec := storage.SlotRecord{HostID: id, State: storage.SlotAlive, Generation: 1, Incarnation: uint64(id), Sequence: seq,
			HostName: fmt.Sprintf("kvm%d", id)}
		if p.verdictAt > 0 && now >= p.verdictAt {
			rec.Verdicts = []storage.Verdict{p.verdict}
		}
		views = append(views, storage.SlotView{HostID: id, Record: rec})
	}
	return append(views, storage.SlotView{HostID: 4, Empty: true})
}

func (f *fakeSlots) HostID() int        { return 1 }
func (f *fakeSlots) Generation() uint64 { return 1 }

func (f *fakeSlots) Renew(context.Context) ([]storage.SlotView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.renews = append(f.renews, f.since())
	f.rec.Sequence++
	f.written = append(f.written, f.rec.State)
	return f.views(), nil
}

func (f *fakeSlots) Observe(context.Context) ([]storage.SlotView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.views(), nil
}

func (f *fakeSlots) SetState(s storage.SlotState) { f.mu.Lock(); f.rec.State = s; f.mu.Unlock() }
func (f *fakeSlots) SetSerfView(storage.HostSet)  {}
func (f *fakeSlots) SetGranted(storage.HostSet)   {}
func (f *fakeSlots) SetVerdicts(v []storage.Verdict) {
	f.mu.Lock()
	f.rec.Verdicts = v
	f.mu.Unlock()
}
func (f *fakeSlots) SetDisarm(storage.SlotDisarm)           {}
func (f *fakeSlots) SetReach(storage.AddressReach)          {}
func (f *fakeSlots) Ack(storage.Message, storage.AckResult) {}

// counts returns how many renewals and reads of every slot there were.
func (f *fakeSlots) counts() (renews, reads int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.renews), len(f.reads)
}

// firstReadAfter is when the first read at or after at ran.
func (f *fakeSlots) firstReadAfter(at time.Duration) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.reads {
		if r >= at {
			return r
		}
	}
	return -1
}

type emptyMailbox struct{}

func (emptyMailbox) ReadMailbox(context.Context, int) (storage.Message, error) {
	return storage.Message{}, nil
}
func (emptyMailbox) SendMessage(_ context.Context, m storage.Message) (storage.Message, error) {
	return m, nil
}

type allAlive struct{}

func (allAlive) Alive() quorum.Set                                          { return quorum.SetOf(1, 2, 3) }
func (allAlive) AskLease(context.Context, LeaseRequest) (quorum.Set, error) { return quorum.Set{}, nil }

// fenceProbe is a VM manager that notes what the loop had done on the LUN
// when it was told to self-fence.
type fenceProbe struct {
	slots *fakeSlots
	mu    sync.Mutex
	at    []time.Duration // when, on the bubble's clock
	seen  [][2]int        // renewals and reads by then
}

func (p *fenceProbe) SelfFence(context.Context, string) error {
	renews, reads := p.slots.counts()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.at = append(p.at, p.slots.since())
	p.seen = append(p.seen, [2]int{renews, reads})
	return nil
}

func (p *fenceProbe) ApplyIsolation(context.Context, string) error { return nil }

// fakeHost is host 1's loop running on fakeSlots in the current bubble.
type fakeHost struct {
	loop   *Loop
	slots  *fakeSlots
	vms    *fenceProbe
	jump   atomic.Int64 // added to the loop's clock: a freeze the loop did not see
	cancel context.CancelFunc
	done   chan error

	mu        sync.Mutex
	declared  []time.Duration // when host 3 was declared dead
	decisions []time.Duration // when OnDecision got each decision
	deadSeen  time.Duration   // when a decision first had host 3 dead; 0: never
	suspSeen  time.Duration   // when a decision first had host 3 suspect; 0: never
}

// startFake starts host 1's loop at the bubble's now with reads per R
// (Config.Reads) and peers 2 and 3.
func startFake(t *testing.T, reads int, peers map[int]peer) *fakeHost {
	t.Helper()
	return startFakeWith(t, reads, peers, nil)
}

// startFakeWith is startFake that also hands every event to onEvent (nil: none).
func startFakeWith(t *testing.T, reads int, peers map[int]peer, onEvent func(Event)) *fakeHost {
	t.Helper()
	timings := quorumTimings(testTimings())
	h := &fakeHost{slots: &fakeSlots{epoch: time.Now(), r: timings.Renew, peers: peers,
		rec: storage.SlotRecord{HostID: 1, State: storage.SlotAlive, Generation: 1, Incarnation: 1, Sequence: 1, HostName: "kvm1"}},
		done: make(chan error, 1)}
	h.vms = &fenceProbe{slots: h.slots}
	loop, err := New(Config{Timings: timings, Slot: h.slots, LUN: emptyMailbox{}, Serf: allAlive{}, VMs: h.vms, Reads: reads,
		Now: func() time.Duration { return h.slots.since() + time.Duration(h.jump.Load()) },
		OnDecision: func(d quorum.Decision) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.decisions = append(h.decisions, h.slots.since())
			if s, _ := d.Host(3); s.State == quorum.StateDead && h.deadSeen == 0 {
				h.deadSeen = h.slots.since()
			}
			if s, _ := d.Host(3); s.State == quorum.StateSuspect && h.suspSeen == 0 {
				h.suspSeen = h.slots.since()
			}
		},
		OnEvent: func(e Event) {
			if e.Kind == "declared-dead" && e.Subject == 3 {
				h.mu.Lock()
				h.declared = append(h.declared, h.slots.since())
				h.mu.Unlock()
			}
			if onEvent != nil {
				onEvent(e)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	h.loop = loop
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- loop.Run(ctx) }()
	return h
}

func (h *fakeHost) stop(t *testing.T) {
	t.Helper()
	h.cancel()
	if err := <-h.done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// TestDeadVerdictWithinReadSpacingOfD: host 3 writes its last heartbeat
// just after host 1's renewal read it. With renewals only, host 1 sees that
// write R later and declares host 3 dead R after D; with observation passes
// (4 reads per R for 3 hosts) at most R/4 after D. Either way D counts from
// the read that first showed the write. After a kick off the grid of reads,
// no read falls at D: the early wake (nextVerdict) then still runs a cycle
// at D, not at the next pass.
func TestDeadVerdictWithinReadSpacingOfD(t *testing.T) {
	timings := quorumTimings(testTimings())
	r, d := timings.Renew, timings.Dead
	const slack = 2 * time.Millisecond // nextVerdict's wake margin, and one more
	for _, tc := range []struct {
		name           string
		reads          int
		kick           time.Duration // when another host wakes host 1; 0: never
		minLag, maxLag time.Duration
	}{
		{"renewals only", 1, 0, r / 2, r + slack},
		{"observation passes", 0, 0, 0, r/4 + slack},
		{"observation passes, kicked off the grid", 0, 31*r + r/10, 0, r/4 + slack},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				last := 30*r + time.Millisecond // host 1 renews at k*R, host 3 writes 1 ms later
				h := startFake(t, tc.reads, map[int]peer{2: {first: time.Millisecond}, 3: {first: time.Millisecond, last: last}})
				if tc.kick > 0 {
					time.Sleep(tc.kick)
					h.loop.Kick()
				}
				time.Sleep(last + d + 2*r - tc.kick)
				synctest.Wait()
				h.stop(t)

				h.mu.Lock()
				declared := h.declared
				h.mu.Unlock()
				if len(declared) != 1 {
					t.Fatalf("host 3 declared dead %d times, want once", len(declared))
				}
				seen := h.slots.firstReadAfter(last)
				if got := declared[0] - seen; got < d {
					t.Errorf("declared dead %v after the read that first showed host 3's last write, before D = %v", got, d)
				}
				lag := declared[0] - last - d
				t.Logf("last write at %v, first read of it at %v, verdict at %v: %v after D", last, seen, declared[0], lag)
				if lag < tc.minLag || lag > tc.maxLag {
					t.Errorf("verdict %v after D from host 3's last write, want %v..%v", lag, tc.minLag, tc.maxLag)
				}
			})
		})
	}
}

// TestObservationPassesNeverWrite: between renewals the loop only reads.
// Host 1's sequence moves with renewals alone, and its last heartbeat write
// is the last renewal's, while its last read is the last pass's.
func TestObservationPassesNeverWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := quorumTimings(testTimings()).Renew
		h := startFake(t, 0, map[int]peer{2: {first: time.Millisecond}, 3: {first: time.Millisecond}})
		time.Sleep(10*r + r/2 + r/10) // renewals at 0..10R, passes every R/4 up to 10R + R/2
		synctest.Wait()
		in := h.loop.Input()
		h.stop(t)
		renews, reads := h.slots.counts()
		seq := h.slots.rec.Sequence
		if renews != 11 || reads != 11+32 {
			t.Errorf("%d renewals and %d reads, want 11 and %d", renews, reads, 11+32)
		}
		if seq != 1+11 {
			t.Errorf("own sequence %d after 11 renewals from 1", seq)
		}
		if in.LastWrite != 10*r {
			t.Errorf("last heartbeat write %v, want the last renewal's %v", in.LastWrite, 10*r)
		}
		if in.LastRead != 10*r+r/2 {
			t.Errorf("last read %v, want the last pass's %v", in.LastRead, 10*r+r/2)
		}
	})
}

// TestFrozenHostFencesInObservationPass: a host frozen for longer than F
// after a renewal wakes for an observation pass. It fences itself first,
// before that pass reads anything, and then writes "fenced" at once rather
// than at the next tick.
func TestFrozenHostFencesInObservationPass(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		timings := quorumTimings(testTimings())
		r := timings.Renew
		h := startFake(t, 0, map[int]peer{2: {first: time.Millisecond}, 3: {first: time.Millisecond}})
		time.Sleep(10*r + time.Millisecond) // just after the renewal at 10R
		synctest.Wait()
		renews, reads := h.slots.counts()
		h.jump.Store(int64(timings.SelfFence + r)) // the loop's clock says F + R passed
		time.Sleep(r/4 + time.Millisecond)         // past the pass at 10R + R/4
		synctest.Wait()
		h.stop(t)

		h.vms.mu.Lock()
		defer h.vms.mu.Unlock()
		if len(h.vms.at) != 1 {
			t.Fatalf("self-fenced %d times, want once", len(h.vms.at))
		}
		if at := h.vms.at[0]; at != 10*r+r/4 {
			t.Errorf("self-fenced at %v, want at the pass at %v", at, 10*r+r/4)
		}
		if got := h.vms.seen[0]; got != [2]int{renews, reads} {
			t.Errorf("at the self-fence: %d renewals and %d reads, want %d and %d (nothing since the freeze)", got[0], got[1], renews, reads)
		}
		h.slots.mu.Lock()
		defer h.slots.mu.Unlock()
		if n := len(h.slots.renews); n != renews+1 || h.slots.renews[n-1] != 10*r+r/4 || h.slots.written[n-1] != storage.SlotFenced {
			t.Errorf("renewals after the freeze at %v writing %v; want one, at %v, writing %v",
				h.slots.renews[renews:], h.slots.written[renews:], 10*r+r/4, storage.SlotFenced)
		}
	})
}

// TestPassRunsCycleForPublishedVerdict: a verdict another host published
// reaches the VM manager from the pass that first reads it, through the
// cycle that pass runs at once. Passes alone never call OnDecision: the VM
// manager's LUN scans stay at one per cycle.
func TestPassRunsCycleForPublishedVerdict(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := quorumTimings(testTimings()).Renew
		published := 10*r + time.Millisecond
		h := startFake(t, 0, map[int]peer{2: {first: time.Millisecond, verdictAt: published, verdict: storage.Verdict{HostID: 3, Gen: 1}},
			3: {first: time.Millisecond}})
		time.Sleep(12 * r)
		synctest.Wait()
		h.stop(t)
		renews, _ := h.slots.counts()
		h.mu.Lock()
		defer h.mu.Unlock()
		if want := 10*r + r/4; h.deadSeen != want {
			t.Errorf("the VM manager learned of the verdict at %v, want at the first pass after it, %v", h.deadSeen, want)
		}
		if len(h.decisions) != renews {
			t.Errorf("%d decisions for the VM manager, %d cycles: passes must not add any", len(h.decisions), renews)
		}
	})
}

// TestPassRunsCycleForStateChange: a pass that sees a host change state
// (here host 3 stalls: suspect once its heartbeat is R + io_timeout old)
// runs a cycle at once, so the VM manager and the API, which act on the
// cycles' decisions, do not lag the loop's own view by up to R.
func TestPassRunsCycleForStateChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		timings := quorumTimings(testTimings())
		r := timings.Renew
		last := 30*r + time.Millisecond
		h := startFake(t, 0, map[int]peer{2: {first: time.Millisecond}, 3: {first: time.Millisecond, last: last}})
		time.Sleep(last + timings.Renew + timings.IOTimeout + 3*r)
		synctest.Wait()
		h.stop(t)
		renews, _ := h.slots.counts()
		h.mu.Lock()
		defer h.mu.Unlock()
		// Suspect once stale > R + io_timeout, counted from the read that
		// first showed the last write; a pass sees that within R/4.
		due := h.slots.firstReadAfter(last) + timings.Renew + timings.IOTimeout
		if h.suspSeen == 0 || h.suspSeen > due+r/4+time.Millisecond {
			t.Errorf("the VM manager saw host 3 suspect at %v; want by the first pass after %v", h.suspSeen, due)
		}
		if len(h.decisions) != renews {
			t.Errorf("%d decisions for the VM manager, %d cycles", len(h.decisions), renews)
		}
	})
}
