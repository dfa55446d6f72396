package storage

import "testing"

func TestSlotRecordCarriesGrantsAndVerdicts(t *testing.T) {
	var granted HostSet
	granted.Add(3)
	granted.Add(200)
	in := SlotRecord{HostID: 7, State: SlotAlive, Generation: 4, Incarnation: 9, Sequence: 11, HostName: "kvm7",
		Granted: granted, GossipKey: 0xfedcba9876543210}
	for i := range MaxVerdicts + 5 {
		in.Verdicts = append(in.Verdicts, Verdict{HostID: i + 1, Gen: uint64(1000 + i)})
	}
	out, err := decodeSlot(in.encode())
	if err != nil {
		t.Fatal(err)
	}
	if out.Granted != granted {
		t.Errorf("granted = %v, want %v", out.Granted.IDs(), granted.IDs())
	}
	if len(out.Verdicts) != MaxVerdicts || out.Verdicts[0] != (Verdict{1, 1000}) || out.Verdicts[MaxVerdicts-1] != (Verdict{MaxVerdicts, uint64(1000 + MaxVerdicts - 1)}) {
		t.Errorf("verdicts = %v (want the first %d)", out.Verdicts, MaxVerdicts)
	}
	if out.GossipKey != in.GossipKey {
		t.Errorf("gossip key fingerprint = %x beside a full verdict list, want %x", out.GossipKey, in.GossipKey)
	}
	if MaxVerdicts < 30 {
		t.Errorf("only %d verdicts fit in a slot", MaxVerdicts)
	}
}
