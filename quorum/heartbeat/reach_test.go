package heartbeat

import (
	"context"
	"testing"
	"time"

	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/storage"
)

type fakeAddresses struct {
	ago time.Duration
	ok  bool
}

func (f *fakeAddresses) Configured() bool               { return true }
func (f *fakeAddresses) Reached() (time.Duration, bool) { return f.ago, f.ok }

// TestSlotPublishesIsolationReach: each cycle writes into the slot whether
// this host reached one of its isolation addresses within F, and the core
// reads the flag back from the slots.
func TestSlotPublishesIsolationReach(t *testing.T) {
	if storage.ReachOK != storage.AddressReach(quorum.ReachOK) || storage.ReachLost != storage.AddressReach(quorum.ReachLost) {
		t.Fatal("storage's and quorum's reach values differ")
	}
	lun, _, slot := oneHost(t)
	ctx := context.Background()
	timings := quorumTimings(lun.Header().Timings)
	addrs := &fakeAddresses{}
	now := time.Hour
	net := &network{group: map[int]int{}, up: map[int]bool{1: true}, loops: map[int]*Loop{}}
	loop, err := New(Config{Timings: timings, Slot: slot, LUN: lun, Serf: member{n: net, self: 1}, VMs: &vms{},
		Addresses: addrs, Now: func() time.Duration { return now }})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ago  time.Duration
		ok   bool
		want storage.AddressReach
	}{
		{0, false, storage.ReachLost},
		{timings.Renew, true, storage.ReachOK},
		{timings.SelfFence, true, storage.ReachLost},
		{0, true, storage.ReachOK},
	} {
		addrs.ago, addrs.ok = c.ago, c.ok
		// The first cycle decides and sets the flag, the next one writes it.
		for range 2 {
			now += timings.Renew
			if err := loop.Cycle(ctx); err != nil {
				t.Fatal(err)
			}
		}
		v, err := lun.ReadSlot(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if v.Record.Reach != c.want {
			t.Errorf("reached %v ago (%v): the slot says %v, want %v", c.ago, c.ok, v.Record.Reach, c.want)
		}
		if in := loop.Input(); in.Slots[0].Reach != quorum.Reach(c.want) {
			t.Errorf("reached %v ago (%v): the core read %v from the slot, want %v", c.ago, c.ok, in.Slots[0].Reach, c.want)
		}
	}
}
