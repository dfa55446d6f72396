package quorum

import (
	"errors"
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
