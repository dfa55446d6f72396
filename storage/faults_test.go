package storage_test

import (
	"errors"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/storage/storagetest"
)

// LUN operations under injected storage faults.

func TestRenewUnderEIO(t *testing.T) {
	ctx := testCtx(t)
	path := lunFile(t, storage.FormatOptions{})
	c := storagetest.NewController()
	l := faultLUN(t, path, c, "h1")
	hb := acquire(t, l, 1, "kvm1")
	seq := hb.Record().Sequence

	for _, f := range []storagetest.Fault{
		{Op: storagetest.Reads, EIO: true, Count: 1},
		{Op: storagetest.Writes, EIO: true, Count: 1},
	} {
		c.Inject("h1", f)
		_, err := hb.Renew(ctx)
		if !errors.Is(err, syscall.EIO) {
			t.Fatalf("renew with %+v: %v", f, err)
		}
		var be *storage.BlockError
		if !errors.As(err, &be) || be.Path != path {
			t.Errorf("error does not name the LUN: %v", err)
		}
	}
	// The failed beats did not count, nor break the next one.
	views, err := hb.Renew(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := views[0].Record.Sequence; got <= seq {
		t.Errorf("sequence %d after failures, was %d", got, seq)
	}
	if s := c.Stats("h1"); s.Failed != 2 {
		t.Errorf("stats %+v", s)
	}
}

// A write that hangs past io_timeout fails the beat with ErrIOTimeout; the
// next write to that block is refused with ErrIOPending (it could otherwise be
// overwritten by the older one landing late); once the hung write completes,
// heartbeating carries on without mistaking our own late write for a takeover.
func TestRenewHungWrite(t *testing.T) {
	ctx := testCtx(t)
	path := lunFile(t, storage.FormatOptions{})
	c := storagetest.NewController()
	l := faultLUN(t, path, c, "h1")
	peer := openLUN(t, path)
	hb := acquire(t, l, 1, "kvm1")
	ioTimeout := l.Header().Timings.IOTimeout
	seq := hb.Record().Sequence

	c.Inject("h1", storagetest.Fault{Op: storagetest.Writes, From: 1, To: 2, Hang: true, Count: 1})
	start := time.Now()
	_, err := hb.Renew(ctx)
	took := time.Since(start)
	if !errors.Is(err, storage.ErrIOTimeout) {
		t.Fatalf("renew with a hung write: %v", err)
	}
	if took < ioTimeout {
		t.Errorf("gave up after %v, before io_timeout %v", took, ioTimeout)
	}
	t.Logf("hung write reported after %v (io_timeout %v)", took, ioTimeout)

	_, err = hb.Renew(ctx)
	if !errors.Is(err, storage.ErrIOPending) {
		t.Fatalf("renew while the earlier write hangs: %v", err)
	}
	// Reads still work while the write hangs: peers see the old sequence.
	if v, err := peer.ReadSlot(ctx, 1); err != nil || v.Record.Sequence != seq {
		t.Fatalf("peer reads %+v %v", v.Record, err)
	}

	c.Release() // the hung write lands now
	// Wait for it through the LUN itself: the write lands, then its slot frees.
	for {
		v, err := peer.ReadSlot(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if v.Record.Sequence == seq+1 {
			break
		}
		if err := sleep(ctx, time.Millisecond); err != nil {
			t.Fatal("the released write never landed")
		}
	}
	var views []storage.SlotView
	for {
		views, err = hb.Renew(ctx)
		if !errors.Is(err, storage.ErrIOPending) { // the bookkeeping may lag the landing by a moment
			break
		}
	}
	if err != nil {
		t.Fatalf("renew after the late write landed: %v", err)
	}
	if got := views[0].Record.Sequence; got != seq+2 {
		t.Errorf("sequence %d, want %d", got, seq+2)
	}
	if s := c.Stats("h1"); s.Hung != 1 {
		t.Errorf("stats %+v", s)
	}
}

// A hung read fails within io_timeout and holds nothing up once released.
func TestReadSlotsHungRead(t *testing.T) {
	ctx := testCtx(t)
	path := lunFile(t, storage.FormatOptions{})
	c := storagetest.NewController()
	l := faultLUN(t, path, c, "h1")
	c.Inject("h1", storagetest.Fault{Op: storagetest.Reads, Hang: true, Count: 1})
	if _, err := l.ReadSlots(ctx); !errors.Is(err, storage.ErrIOTimeout) {
		t.Fatalf("hung read: %v", err)
	}
	c.Release()
	if _, err := l.ReadSlots(ctx); err != nil {
		t.Fatal(err)
	}
}

// A lost write (the device says yes, nothing lands) is caught at the next
// beat: the host must not go on believing it holds a slot it cannot prove.
func TestRenewDroppedWrite(t *testing.T) {
	ctx := testCtx(t)
	path := lunFile(t, storage.FormatOptions{})
	c := storagetest.NewController()
	l := faultLUN(t, path, c, "h1")
	hb := acquire(t, l, 1, "kvm1")
	c.Inject("h1", storagetest.Fault{Op: storagetest.Writes, Drop: true, Count: 1})
	if _, err := hb.Renew(ctx); err != nil {
		t.Fatalf("dropped write is reported as success by the device: %v", err)
	}
	_, err := hb.Renew(ctx)
	wantBlockErr(t, err, storage.ErrSlotLost, path, slotBlock(1))
	if s := c.Stats("h1"); s.Dropped != 1 {
		t.Errorf("stats %+v", s)
	}
}

// Latency below io_timeout is only latency.
func TestRenewSlowButInTime(t *testing.T) {
	ctx := testCtx(t)
	path := lunFile(t, storage.FormatOptions{Timings: testTimings()})
	c := storagetest.NewController()
	l := faultLUN(t, path, c, "h1")
	hb := acquire(t, l, 1, "kvm1")
	const lat = 5 * time.Millisecond
	c.Inject("h1", storagetest.Fault{Op: storagetest.AllIO, Latency: lat, Count: 2})
	start := time.Now()
	if _, err := hb.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 2*lat {
		t.Errorf("renew took %v, the injected latency alone is %v", took, 2*lat)
	}
}

// One host's broken path leaves the others working, as with a SAN path failure.
func TestPerHostFaults(t *testing.T) {
	ctx := testCtx(t)
	path := lunFile(t, storage.FormatOptions{})
	c := storagetest.NewController()
	l1, l2 := faultLUN(t, path, c, "h1"), faultLUN(t, path, c, "h2")
	hb1, hb2 := acquire(t, l1, 1, "kvm1"), acquire(t, l2, 2, "kvm2")
	c.Inject("h1", storagetest.Fault{Op: storagetest.AllIO, EIO: true})
	before := hb1.Record().Sequence
	for range 3 {
		if _, err := hb1.Renew(ctx); !errors.Is(err, syscall.EIO) {
			t.Fatalf("host 1: %v", err)
		}
		views, err := hb2.Renew(ctx)
		if err != nil {
			t.Fatalf("host 2: %v", err)
		}
		if views[0].Record.Sequence != before {
			t.Fatalf("host 1 advanced while its path was down: %+v", views[0].Record)
		}
	}
	c.Clear("h1")
	if _, err := hb1.Renew(ctx); err != nil {
		t.Fatalf("host 1 after the path came back: %v", err)
	}
	if s1, s2 := c.Stats("h1"), c.Stats("h2"); s1.Failed != 3 || s2.Failed != 0 {
		t.Errorf("stats h1 %+v h2 %+v", s1, s2)
	}

	// A fault for every host ("") hits both; Clear("") lifts it.
	c.Inject("", storagetest.Fault{Op: storagetest.Writes, EIO: true})
	if _, err := hb1.Renew(ctx); !errors.Is(err, syscall.EIO) {
		t.Errorf("host 1 under a global fault: %v", err)
	}
	if _, err := hb2.Renew(ctx); !errors.Is(err, syscall.EIO) {
		t.Errorf("host 2 under a global fault: %v", err)
	}
	c.Clear("")
	if _, err := hb2.Renew(ctx); err != nil {
		t.Errorf("host 2 after clear: %v", err)
	}
}

// Too many I/Os stuck in the kernel: new ones fail at once instead of piling up.
func TestBoundedOutstandingIO(t *testing.T) {
	ctx := testCtx(t)
	path := lunFile(t, storage.FormatOptions{})
	c := storagetest.NewController()
	l := faultLUN(t, path, c, "h1")
	c.Inject("h1", storagetest.Fault{Op: storagetest.Reads, Hang: true})
	for i := range 8 {
		if _, err := l.ReadSlot(ctx, 1); !errors.Is(err, storage.ErrIOTimeout) {
			t.Fatalf("read %d: %v", i, err)
		}
	}
	reads := c.Stats("h1").Reads
	_, err := l.ReadSlot(ctx, 1)
	if !errors.Is(err, storage.ErrIOTimeout) {
		t.Fatalf("ninth read: %v", err)
	}
	if got := c.Stats("h1").Reads; got != reads {
		t.Errorf("the ninth read reached the device (%d reads, was %d) instead of failing at once", got, reads)
	}
	c.Clear("h1")
}

// Many I/Os in flight at once on a healthy (if slow) LUN all complete: only
// I/Os that outlived io_timeout count as stuck. A failover of 30 VMs takes
// their leases at once, and the heartbeat shares the LUN with them.
func TestManyIOsInFlightOnAHealthyLUN(t *testing.T) {
	ctx := testCtx(t)
	path := lunFile(t, storage.FormatOptions{})
	c := storagetest.NewController()
	l := faultLUN(t, path, c, "h1")
	// Every read waits a quarter of io_timeout (200 ms): all 24 are in
	// flight together, none times out.
	c.Inject("h1", storagetest.Fault{Op: storagetest.Reads, Latency: 50 * time.Millisecond})
	const n = 24
	before := c.Stats("h1").Reads
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := l.ReadSlot(ctx, 1)
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("read: %v", err)
		}
	}
	if got := c.Stats("h1").Reads - before; got != n {
		t.Errorf("%d reads reached the device, want %d", got, n)
	}
}

// IOStats counts the failed I/Os, and ObserveIO is told of every I/O with
// its duration and error: what the daemon's LUN metrics read.
func TestIOStatsAndObserverSeeFailures(t *testing.T) {
	ctx := testCtx(t)
	path := lunFile(t, storage.FormatOptions{})
	c := storagetest.NewController()
	fd, err := storage.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type seen struct {
		write bool
		took  time.Duration
		err   error
	}
	var mu sync.Mutex
	var got []seen
	l, err := storage.Open(ctx, c.Device("h1", fd), storage.OpenOptions{ObserveIO: func(write bool, took time.Duration, err error) {
		mu.Lock()
		got = append(got, seen{write, took, err})
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c.Inject("h1", storagetest.Fault{Op: storagetest.Reads, EIO: true, Count: 1})
	if _, err := l.ReadLease(ctx, 0); !errors.Is(err, syscall.EIO) {
		t.Fatalf("read under EIO: %v", err)
	}
	c.Inject("h1", storagetest.Fault{Op: storagetest.Reads, Latency: 20 * time.Millisecond, Count: 1})
	if _, err := l.ReadLease(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if st := l.IOStats(); st.Reads != 2 || st.ReadErrors != 1 || st.Writes != 0 || st.WriteErrors != 0 {
		t.Errorf("IOStats = %+v, want 2 reads, 1 failed", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0].write || !errors.Is(got[0].err, syscall.EIO) || got[1].err != nil || got[1].took < 20*time.Millisecond {
		t.Errorf("observed %+v, want a failed read, then one of at least 20ms", got)
	}
}
