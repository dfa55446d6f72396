package storage

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestSlotRecordCarriesGrantsAndVerdicts(t *testing.T) {
	var granted HostSet
	granted.Add(3)
	granted.Add(200)
	in := SlotRecord{HostID: 7, State: SlotAlive, Generation: 4, Incarnation: 9, Sequence: 11, HostName: "kvm7",
		Granted: granted, GossipKey: 0xfedcba9876543210, Reach: ReachOK, Records: 0xffffffff}
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
	if out.Reach != in.Reach || out.Records != in.Records {
		t.Errorf("reach, records counter = %v, %x beside the grants, want %v, %x", out.Reach, out.Records, in.Reach, in.Records)
	}
	if MaxVerdicts < 30 {
		t.Errorf("only %d verdicts fit in a slot", MaxVerdicts)
	}
}

// The disarm record lives in the block's second sector: the first sector,
// all that a first-format reader decodes, is the same with it or without
// it, and a first-format writer's block (zero there) reads as no disarm.
func TestSlotDisarmIsInvisibleToTheFirstFormat(t *testing.T) {
	base := SlotRecord{HostID: 2, State: SlotAlive, Generation: 3, Incarnation: 5, Sequence: 8, HostName: "kvm2"}
	with := base
	with.Disarm = SlotDisarm{Gen: 4, By: 1, For: time.Hour, Reason: "SAN firmware upgrade", Disarmed: true}
	old, cur := base.encode(), with.encode()
	if !bytes.Equal(old[:slotRecLen], cur[:slotRecLen]) {
		t.Fatal("the disarm changed the first sector")
	}
	if !allZero(old[slotRecLen:]) {
		t.Fatal("a record without a disarm writes past the first sector")
	}
	got, err := decodeSlot(cur)
	if err != nil || got.Disarm != with.Disarm {
		t.Fatalf("decoded disarm %+v, %v; want %+v", got.Disarm, err, with.Disarm)
	}
	if got, err := decodeSlot(old); err != nil || got.Disarm != (SlotDisarm{}) {
		t.Fatalf("first-format block: disarm %+v, %v; want none", got.Disarm, err)
	}
	// A damaged disarm record is an error, never "no disarm".
	cur[disarmOff+9] ^= 1
	if _, err := decodeSlot(cur); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("damaged disarm record: %v, want ErrCorrupt", err)
	}
}
