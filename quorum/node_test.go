package quorum

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// threeHosts returns host 1's node after cycles of a healthy 3-host
// cluster up to now, every slot advancing each second.
func threeHosts(t *testing.T, until Mono) *Node {
	t.Helper()
	n := NewNode(NodeConfig{Self: 1, Gen: 1, Timings: DefaultTimings()}, 0)
	for now, seq := Mono(0), uint64(1); now <= until; now, seq = now+time.Second, seq+1 {
		var read []RawSlot
		for id := 1; id <= 3; id++ {
			read = append(read, RawSlot{ID: id, Gen: 1, Seq: seq, State: SlotAlive})
		}
		n.Read(now, read)
		n.Wrote(now, n.SlotWrite())
		n.Serf(now, SetOf(1, 2, 3))
		d := n.Decide(now)
		for _, a := range d.Actions {
			n.Start(a)
		}
		n.Executed(d)
	}
	return n
}

func TestNodeStartsEachActionOnce(t *testing.T) {
	n := threeHosts(t, 20*time.Second)
	d, ok := n.Last()
	if !ok || !d.Quorate || d.Coordinator != 1 {
		t.Fatalf("healthy cluster: quorate=%v coordinator=%d, want quorate with coordinator 1", d.Quorate, d.Coordinator)
	}
	pill := Action{Kind: ActSendPill, Host: 3, Gen: 1}
	if !n.Start(pill) {
		t.Fatal("first pill not started")
	}
	n.PillSent(pill, 7)
	if n.Start(pill) {
		t.Error("a pill already sent for that generation started again")
	}
	dead := Action{Kind: ActDeclareDead, Host: 2, Gen: 1}
	if !n.Start(dead) || n.Start(dead) {
		t.Error("a verdict must be declared exactly once")
	}
	if w := n.SlotWrite(); !w.Announce {
		t.Error("a new verdict must be announced by the write that carries it")
	} else if n.Wrote(30*time.Second, w); n.SlotWrite().Announce {
		t.Error("announce still pending after the write that carried it")
	}
	fence := Action{Kind: ActPowerFence, Host: 2, Gen: 1}
	if !n.Start(fence) || n.Start(fence) {
		t.Error("a power fence under way must not start twice")
	}
	n.PowerFenced(31*time.Second, fence, false, errors.New("timeout"))
	if !n.Start(fence) {
		t.Error("a failed power fence may be tried again")
	}
	self := Action{Kind: ActSelfFence}
	if !n.Start(self) || n.Start(self) || !n.Fenced() || !n.SlotWrite().Fenced {
		t.Error("self-fence must start once and mark the slot fenced")
	}
	var kinds []string
	for _, e := range n.Events() {
		kinds = append(kinds, e.Kind)
	}
	want := []string{"pill-sent", "declared-dead", "power-fence", "power-fence-failed", "power-fence"}
	if len(kinds) != len(want) {
		t.Fatalf("events %v, want %v", kinds, want)
	}
	for i := range want {
		if kinds[i] != want[i] {
			t.Fatalf("events %v, want %v", kinds, want)
		}
	}
	if len(n.Events()) != 0 {
		t.Error("Events must drain the queue")
	}
}

func TestNodeSeesPillAcknowledged(t *testing.T) {
	n := threeHosts(t, 5*time.Second)
	pill := Action{Kind: ActSendPill, Host: 3, Gen: 1}
	n.Start(pill)
	n.PillSent(pill, 42)
	read := []RawSlot{{ID: 1, Gen: 1, Seq: 100, State: SlotAlive}, {ID: 2, Gen: 1, Seq: 100, State: SlotAlive},
		{ID: 3, Gen: 1, Seq: 100, State: SlotAlive, Ack: Ack{Kind: MsgTest, Nonce: 42, Done: true}}}
	n.Read(6*time.Second, read)
	if n.PillAcked(3) != 0 {
		t.Fatal("an acknowledgement of another kind of message counted as the pill's")
	}
	read[2].Ack.Kind = MsgFence
	n.Read(7*time.Second, read)
	if n.PillAcked(3) != 1 {
		t.Fatalf("pill acknowledged for generation %d, want 1", n.PillAcked(3))
	}
	// Serf sees host 3 failed, then back: the next isolation gets its own pill.
	n.Serf(8*time.Second, SetOf(1, 2))
	n.Serf(9*time.Second, SetOf(1, 2, 3))
	if n.PillAcked(3) != 0 || !n.Start(pill) {
		t.Error("a pill answers one isolation only")
	}
	if in := n.Input(9 * time.Second); in.SerfAliveSince[3] != 9*time.Second {
		t.Errorf("host 3 back since %v, want 9s", in.SerfAliveSince[3])
	}
}

// TestDamagedSlotIsNotReleased: a slot that read damaged or zeroed keeps
// what it held (its owner rewrites it within R), so the host neither
// vanishes from the decision (its VMs would count as ownerless) nor looks
// freshly renewed; a slot never read before that reads damaged is left out.
func TestDamagedSlotIsNotReleased(t *testing.T) {
	n := threeHosts(t, 20*time.Second)
	now := 21 * time.Second
	n.Read(now, []RawSlot{{ID: 1, Gen: 1, Seq: 22, State: SlotAlive}, {ID: 2, Gen: 1, Seq: 22, State: SlotAlive},
		{ID: 3, Damaged: true}, {ID: 4, Damaged: true}})
	d := n.Decide(now)
	h, ok := d.Host(3)
	if !ok || h.State != StateAlive || h.Gen != 1 {
		t.Fatalf("host 3 with a zeroed slot: %+v (found %v), want alive at generation 1", h, ok)
	}
	if _, ok := d.Host(4); ok || len(d.Hosts) != 3 {
		t.Fatalf("hosts %+v: a slot never used appeared", d.Hosts)
	}
	// Still damaged D later: its heartbeat stayed unchanged, as a dead host's does.
	later := now + DefaultTimings().Dead + time.Second
	n.Read(later, []RawSlot{{ID: 1, Gen: 1, Seq: 40, State: SlotAlive}, {ID: 2, Gen: 1, Seq: 40, State: SlotAlive}, {ID: 3, Damaged: true}})
	if h, _ := n.Decide(later).Host(3); h.State == StateAlive {
		t.Errorf("host 3 damaged for D: %v, want its heartbeat stale", h.State)
	}
}

// TestRecordsCounterReachesTheDecision: a slot's VM-records counter is
// carried to the decision's host as read, and kept through a damaged read.
func TestRecordsCounterReachesTheDecision(t *testing.T) {
	n := threeHosts(t, 5*time.Second)
	read := []RawSlot{{ID: 1, Gen: 1, Seq: 100, State: SlotAlive}, {ID: 2, Gen: 1, Seq: 100, State: SlotAlive, Records: 7},
		{ID: 3, Gen: 1, Seq: 100, State: SlotAlive}}
	n.Read(6*time.Second, read)
	if h, _ := n.Decide(6 * time.Second).Host(2); h.Records != 7 {
		t.Fatalf("host 2's records counter = %d, want 7 as its slot says", h.Records)
	}
	read[1] = RawSlot{ID: 2, Damaged: true}
	n.Read(7*time.Second, read)
	if h, _ := n.Decide(7 * time.Second).Host(2); h.Records != 7 {
		t.Errorf("host 2's records counter after a damaged read = %d, want 7 kept", h.Records)
	}
}

// TestConfirmOffRefusals: confirm-off is refused for this host itself, a
// host with no slot, a host whose heartbeat changed within D, and while
// this host has not read the LUN for F; otherwise the host is dead at once.
func TestConfirmOffRefusals(t *testing.T) {
	n := threeHosts(t, 20*time.Second)
	for _, tc := range []struct {
		now  Mono
		host int
		says string
	}{
		{21 * time.Second, 1, "this host"},
		{21 * time.Second, 7, "no host 7"},
		{21 * time.Second, 2, "within D"},
		{25 * time.Second, 2, "has not read the LUN"},
	} {
		if _, err := n.ConfirmOff(tc.now, tc.host, "alice"); !errors.Is(err, ErrConfirmRefused) || !contains(err.Error(), tc.says) {
			t.Errorf("confirm-off of host %d at %v: %v, want a refusal saying %q", tc.host, tc.now, err, tc.says)
		}
	}
	// Host 3 stops writing; after D it may be confirmed off.
	for now, seq := 21*time.Second, uint64(22); now <= 33*time.Second; now, seq = now+time.Second, seq+1 {
		n.Read(now, []RawSlot{{ID: 1, Gen: 1, Seq: seq, State: SlotAlive}, {ID: 2, Gen: 1, Seq: seq, State: SlotAlive}, {ID: 3, Gen: 1, Seq: 21, State: SlotAlive}})
		n.Wrote(now, n.SlotWrite())
	}
	v, err := n.ConfirmOff(33*time.Second, 3, "alice")
	if err != nil || v != (Verdict{ID: 3, Gen: 1}) {
		t.Fatalf("confirm-off of host 3: %v, %v", v, err)
	}
	n.Serf(33*time.Second, SetOf(1, 2))
	d := n.Decide(33 * time.Second)
	if h, _ := d.Host(3); h.State != StateDead || !contains(h.Reason, "alice") {
		t.Errorf("host 3 after confirm-off: %v (%s)", h.State, h.Reason)
	}
	if !slices.ContainsFunc(d.Actions, func(a Action) bool { return a.Kind == ActDeclareDead && a.Host == 3 }) {
		t.Errorf("the coordinator does not declare host 3 dead: %v", d.Actions)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
