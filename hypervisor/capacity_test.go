package hypervisor

import "testing"

func TestCapacity(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		host string
		want Capacity
	}{
		// web1 (512 MiB current of 1 GiB, 2 vCPUs) runs and batch1 (256 MiB,
		// 1 vCPU) is paused: both hold memory. db1 is off.
		{"kvm1", Capacity{CPUs: 8, MemoryBytes: 16 << 30, RunningGuests: 2, GuestMemoryBytes: 768 << 20, GuestVCPUs: 3}},
		// temp1 runs, sleep1 is suspended to RAM and crash1's process is
		// kept for inspection: all three hold memory.
		{"kvm2", Capacity{CPUs: 4, MemoryBytes: 8 << 30, RunningGuests: 3, GuestMemoryBytes: 224 << 20, GuestVCPUs: 4}},
		{"empty", Capacity{CPUs: 2, MemoryBytes: 4 << 30}},
	} {
		t.Run(tc.host, func(t *testing.T) {
			c := dialHost(t, tc.host)
			got, err := c.Capacity(testCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			// A host file without NUMA cells cannot report free memory.
			if got != tc.want {
				t.Errorf("Capacity = %+v\n      want %+v", got, tc.want)
			}
		})
	}
}

func TestCapacityFollowsGuests(t *testing.T) {
	t.Parallel()
	c := dialHost(t, "kvm1")
	ctx := testCtx(t)
	before, err := c.Capacity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx, "db1"); err != nil {
		t.Fatal(err)
	}
	after, err := c.Capacity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.RunningGuests != before.RunningGuests+1 || after.GuestMemoryBytes != before.GuestMemoryBytes+2<<30 ||
		after.GuestVCPUs != before.GuestVCPUs+1 {
		t.Errorf("starting db1 (2 GiB, 1 vCPU) changed capacity from %+v to %+v", before, after)
	}
}
