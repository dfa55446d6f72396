package storage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/wingmanha/wingman/storage"
)

// domainXML returns libvirt domain XML of at least n bytes.
func domainXML(name string, n int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "<domain type='kvm'>\n  <name>%s</name>\n  <memory unit='MiB'>1024</memory>\n  <devices>\n", name)
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "    <disk type='block' device='disk'><driver name='qemu' type='raw' cache='none'/><source dev='/dev/mapper/vg-%s-%d'/><target dev='vd%d' bus='virtio'/></disk>\n", name, i, i)
	}
	b.WriteString("  </devices>\n</domain>\n")
	return b.Bytes()
}

func TestVMRecordLifecycle(t *testing.T) {
	ctx := testCtx(t)
	path := lunFile(t, storage.FormatOptions{Timings: testTimings()})
	h1, h2 := openLUN(t, path), openLUN(t, path)
	me := storage.Owner{Host: 1, Gen: 3, Nonce: 11}
	other := storage.Owner{Host: 2, Gen: 5, Nonce: 22}

	xml := domainXML("web1", 40<<10)
	if len(xml) < 32<<10 {
		t.Fatal("xml too small")
	}
	cfg := storage.VMConfig{UUID: storage.NewUUID(), Name: "web1", Policy: []byte(`{"priority":10}`), XML: xml}
	idx, lease, err := h1.ProtectVM(ctx, me, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if lease.Epoch != 1 || lease.Owner != me || !lease.Settled || !lease.Held() {
		t.Fatalf("lease after protect: %+v", lease)
	}

	// Another host finds it by UUID with everything intact.
	r, err := h2.FindVM(ctx, cfg.UUID)
	if err != nil {
		t.Fatal(err)
	}
	c := r.Config
	if r.Index != idx || c.UUID != cfg.UUID || c.Name != "web1" || !bytes.Equal(c.XML, xml) || string(c.Policy) != string(cfg.Policy) ||
		c.Seq != 1 || c.Epoch != 1 || c.Writer != 1 || c.Deleted || !r.Protected() || r.Free() || r.Warning != nil {
		t.Fatalf("found record %d: %+v (xml %d bytes)", r.Index, c, len(c.XML))
	}
	if r.Lease.Owner != me || r.Lease.Epoch != 1 || !r.Lease.Settled {
		t.Errorf("lease as read: %+v", r.Lease)
	}
	if _, err := h2.FindVM(ctx, storage.NewUUID()); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("unknown uuid: %v", err)
	}
	if _, _, err := h2.ProtectVM(ctx, other, cfg); !errors.Is(err, storage.ErrAlreadyProtected) || strings.Contains(err.Error(), "record") {
		t.Errorf("protecting it twice: %v, want ErrAlreadyProtected without record numbers", err)
	}
	big := cfg
	big.UUID, big.XML = storage.NewUUID(), make([]byte, smallGeometry().MaxXML(0)+1)
	if _, _, err := h2.ProtectVM(ctx, other, big); !errors.Is(err, storage.ErrTooLarge) {
		t.Errorf("oversized XML: %v", err)
	}

	// A second host cannot take the held lease at the same epoch.
	_, err = h2.AcquireLease(ctx, idx, 0, other)
	var held *storage.LeaseHeldError
	if !errors.As(err, &held) || !errors.Is(err, storage.ErrLeaseHeld) || held.State.Owner != me {
		t.Fatalf("second host at epoch 0: %v", err)
	}
	// Nor write its config.
	if _, err := h2.WriteVMConfig(ctx, idx, storage.LeaseState{Epoch: 1, Owner: other, Settled: true}, cfg); !errors.Is(err, storage.ErrLeaseHeld) {
		t.Errorf("config write without the lease: %v", err)
	}

	// The owner records a migration; everyone sees it.
	mig := storage.Migration{Phase: storage.MigrationStarted, Target: 2, TargetGen: 5}
	lease, err = h1.SetMigration(ctx, idx, lease, mig)
	if err != nil {
		t.Fatal(err)
	}
	st, err := h2.ReadLease(ctx, idx)
	if err != nil || st.Migration != mig || st.Owner != me || st.Epoch != 1 {
		t.Fatalf("lease with migration: %+v %v", st, err)
	}
	if _, err := h2.SetMigration(ctx, idx, storage.LeaseState{Epoch: 1, Owner: other}, mig); !errors.Is(err, storage.ErrLeaseHeld) {
		t.Errorf("migration set by a non-owner: %v", err)
	}

	// Updates alternate copies and keep increasing Seq.
	for i := 2; i <= 4; i++ {
		cfg.Name = "web1-v" + strconv.Itoa(i)
		got, err := h1.WriteVMConfig(ctx, idx, lease, cfg)
		if err != nil || got.Seq != uint64(i) {
			t.Fatalf("update %d: seq %d %v", i, got.Seq, err)
		}
		r, err := h2.ReadVM(ctx, idx)
		if err != nil || r.Config.Name != cfg.Name || !bytes.Equal(r.Config.XML, xml) {
			t.Fatalf("after update %d: %+v %v", i, r.Config, err)
		}
	}

	// Released, the lease can be taken at the next epoch.
	if err := h1.ReleaseLease(ctx, idx, lease); err != nil {
		t.Fatal(err)
	}
	if err := h1.ReleaseLease(ctx, idx, lease); err != nil {
		t.Errorf("second release: %v", err)
	}
	st, err = h2.ReadLease(ctx, idx)
	if err != nil || !st.Released || st.Held() || st.Migration != (storage.Migration{}) {
		t.Fatalf("released lease: %+v %v", st, err)
	}
	lease2, err := h2.AcquireLease(ctx, idx, st.Epoch, other)
	if err != nil {
		t.Fatal(err)
	}
	if lease2.Epoch != 2 || lease2.Owner != other {
		t.Fatalf("new lease %+v", lease2)
	}
	// The old owner's lease is now stale.
	if _, err := h1.WriteVMConfig(ctx, idx, lease, cfg); !errors.Is(err, storage.ErrLeaseHeld) {
		t.Errorf("stale owner writes config: %v", err)
	}
	if _, err := h1.AcquireLease(ctx, idx, 0, me); !errors.Is(err, storage.ErrLeaseHeld) {
		t.Errorf("stale epoch: %v", err)
	}

	// Delete leaves a tombstone and frees the record.
	if err := h2.DeleteVM(ctx, idx, lease2); err != nil {
		t.Fatal(err)
	}
	if _, err := h1.FindVM(ctx, cfg.UUID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("deleted VM found: %v", err)
	}
	r, err = h1.ReadVM(ctx, idx)
	if err != nil || !r.Config.Deleted || r.Protected() || !r.Free() || r.Lease.Epoch != 2 || !r.Lease.Released {
		t.Fatalf("deleted record: %+v lease %+v %v", r.Config, r.Lease, err)
	}
	if err := h1.DeleteVM(ctx, 3, lease2); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("delete of an empty record: %v", err)
	}
	// The freed record is reused at the next epoch.
	cfg2 := storage.VMConfig{UUID: storage.NewUUID(), Name: "db", XML: []byte("<domain/>")}
	idx2, lease3, err := h1.ProtectVM(ctx, me, cfg2)
	if err != nil || idx2 != idx || lease3.Epoch != 3 {
		t.Fatalf("reuse: record %d lease %+v %v", idx2, lease3, err)
	}
}

func TestProtectVMFillsRecords(t *testing.T) {
	ctx := testCtx(t)
	l := openLUN(t, lunFile(t, storage.FormatOptions{Timings: testTimings()}))
	me := storage.Owner{Host: 1, Gen: 1, Nonce: 1}
	seen := map[int]bool{}
	for i := range smallGeometry().MaxVMs {
		idx, _, err := l.ProtectVM(ctx, me, storage.VMConfig{UUID: storage.NewUUID(), Name: fmt.Sprint("vm", i), XML: []byte("<domain/>")})
		if err != nil || seen[idx] {
			t.Fatalf("vm %d: record %d %v", i, idx, err)
		}
		seen[idx] = true
	}
	_, _, err := l.ProtectVM(ctx, me, storage.VMConfig{UUID: storage.NewUUID(), Name: "one-too-many"})
	if !errors.Is(err, storage.ErrNoFreeVMRecord) {
		t.Fatalf("full LUN: %v", err)
	}
	if _, _, err := l.ProtectVM(ctx, me, storage.VMConfig{Name: "no-uuid"}); !errors.Is(err, storage.ErrInvalid) {
		t.Errorf("no uuid: %v", err)
	}
}

// An unreadable record may hold the VM already: ProtectVM must not give it
// a second record (and so a second owner).
func TestProtectVMRefusesWhenARecordIsUnreadable(t *testing.T) {
	ctx := testCtx(t)
	path := lunFile(t, storage.FormatOptions{Timings: testTimings()})
	l := openLUN(t, path)
	cfg := storage.VMConfig{UUID: storage.NewUUID(), Name: "web", XML: []byte("<domain/>")}
	idx, _, err := l.ProtectVM(ctx, storage.Owner{Host: 1, Gen: 1, Nonce: 1}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	flipBit(t, path, vmConfigBlock(smallGeometry(), idx, 0), 100)
	_, _, err = l.ProtectVM(ctx, storage.Owner{Host: 2, Gen: 1, Nonce: 2}, cfg)
	if !errors.Is(err, storage.ErrCorrupt) || !strings.Contains(err.Error(), "already protected") {
		t.Fatalf("protect with a damaged record: %v", err)
	}
}

// Hosts that protect the same VM at the same time never both keep a record.
func TestProtectVMRace(t *testing.T) {
	const rounds, racers = 10, 3
	ctx := testCtx(t)
	path := lunFile(t, storage.FormatOptions{Timings: testTimings(), Geometry: storage.Geometry{MaxHosts: 4, MaxVMs: 8, EventBlocks: 1, ConfigBlks: 2}})
	luns := make([]*storage.LUN, racers)
	for i := range luns {
		luns[i] = openLUN(t, path)
	}
	for round := range rounds {
		cfg := storage.VMConfig{UUID: storage.NewUUID(), Name: fmt.Sprint("vm", round), XML: []byte("<domain/>")}
		var wg sync.WaitGroup
		var mu sync.Mutex
		var kept []int
		var leases []storage.LeaseState
		for i, l := range luns {
			wg.Go(func() {
				idx, lease, err := l.ProtectVM(ctx, storage.Owner{Host: i + 1, Gen: 1, Nonce: uint64(round*10 + i + 1)}, cfg)
				if err == nil {
					mu.Lock()
					kept, leases = append(kept, idx), append(leases, lease)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(kept) > 1 {
			t.Fatalf("round %d: VM protected in records %v", round, kept)
		}
		var n int
		recs, errs := luns[0].ReadVMs(ctx)
		for _, r := range recs {
			if r.Protected() && r.Config.UUID == cfg.UUID {
				n++
			}
		}
		if len(errs) > 0 || n != len(kept) {
			t.Fatalf("round %d: %d records hold the VM, %d callers kept one (%v)", round, n, len(kept), errs)
		}
		for i, idx := range kept { // free the record for the next round
			if err := luns[0].DeleteVM(ctx, idx, leases[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestAcquireLeaseRejectsBadInput(t *testing.T) {
	ctx := testCtx(t)
	l := openLUN(t, lunFile(t, storage.FormatOptions{Timings: testTimings()}))
	for _, tc := range []struct {
		idx int
		me  storage.Owner
	}{
		{-1, storage.Owner{Host: 1, Nonce: 1}},
		{4, storage.Owner{Host: 1, Nonce: 1}},
		{0, storage.Owner{Host: 0, Nonce: 1}},
		{0, storage.Owner{Host: 9, Nonce: 1}},
		{0, storage.Owner{Host: 1}},
	} {
		if _, err := l.AcquireLease(ctx, tc.idx, 0, tc.me); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("%+v: %v", tc, err)
		}
	}
	// Expecting an epoch the LUN never reached is a caller bug.
	if _, err := l.AcquireLease(ctx, 0, 5, storage.Owner{Host: 1, Nonce: 1}); !errors.Is(err, storage.ErrInvalid) {
		t.Errorf("future epoch: %v", err)
	}
}

// raceLease makes every LUN (one per host) acquire VM record 0 at expect.
func raceLease(ctx context.Context, luns []*storage.LUN, expect uint64, round int) (winners []storage.LeaseState, held []*storage.LeaseHeldError, other []error) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	start := make(chan struct{})
	for i, l := range luns {
		wg.Go(func() {
			<-start
			me := storage.Owner{Host: i + 1, Gen: uint64(round + 1), Nonce: uint64(round)<<8 | uint64(i+1)}
			st, err := l.AcquireLease(ctx, 0, expect, me)
			mu.Lock()
			defer mu.Unlock()
			var h *storage.LeaseHeldError
			switch {
			case err == nil:
				winners = append(winners, st)
			case errors.As(err, &h):
				held = append(held, h)
			default:
				other = append(other, err)
			}
		})
	}
	close(start)
	wg.Wait()
	return winners, held, other
}

// TestLeaseRace: hosts racing for the same VM lease at the same expected
// epoch; exactly one owner per epoch, 100 epochs in a row. Every other round
// the winner releases first, the others take over a lease assumed dead.
func TestLeaseRace(t *testing.T) {
	const rounds, racers = 100, 4
	path := lunFile(t, storage.FormatOptions{Timings: testTimings()})
	luns := make([]*storage.LUN, racers)
	for i := range luns {
		luns[i] = openLUN(t, path)
	}
	leaseRounds(t, luns, openLUN(t, path), rounds)
}

// leaseRounds races luns for VM record 0's lease rounds times, each from
// the epoch the last won, and fails unless every round has exactly one
// winner that the losers and observer agree on. Every other round the
// winner releases first; in the others the rest take over a lease assumed dead.
func leaseRounds(t *testing.T, luns []*storage.LUN, observer *storage.LUN, rounds int) {
	t.Helper()
	ctx := testCtx(t)
	var expect uint64
	for round := range rounds {
		winners, held, other := raceLease(ctx, luns, expect, round)
		if len(other) > 0 {
			t.Fatalf("round %d: %v", round, other)
		}
		if len(winners) != 1 {
			t.Fatalf("round %d (epoch %d): %d winners %+v; held errors %v", round, expect+1, len(winners), winners, held)
		}
		w := winners[0]
		if w.Epoch != expect+1 || !w.Settled {
			t.Fatalf("round %d: winner %+v", round, w)
		}
		for _, h := range held {
			if h.State.Epoch != w.Epoch || h.State.Owner != w.Owner {
				t.Fatalf("round %d: a loser was told the owner is %+v at %d, the winner has %+v at %d", round, h.State.Owner, h.State.Epoch, w.Owner, w.Epoch)
			}
		}
		st, err := observer.ReadLease(ctx, 0)
		if err != nil || st.Epoch != w.Epoch || st.Owner != w.Owner || !st.Settled || st.InProgress {
			t.Fatalf("round %d: LUN says %+v (%v), winner %+v", round, st, err, w)
		}
		if round%2 == 1 {
			if err := luns[w.Owner.Host-1].ReleaseLease(ctx, 0, w); err != nil {
				t.Fatal(err)
			}
		}
		expect = w.Epoch
	}
}

// TestLeaseRaceProcesses: the same race between OS processes, 5 epochs.
func TestLeaseRaceProcesses(t *testing.T) {
	const rounds, racers = 5, 3
	path := lunFile(t, storage.FormatOptions{Timings: testTimings()})
	for round := range rounds {
		expect := uint64(round)
		outs := runRacers(t, racers, func(i int) []string {
			return []string{"lease", path, "0", strconv.FormatUint(expect, 10), strconv.Itoa(i + 1)}
		})
		var winner string
		for i, out := range outs {
			f := strings.Fields(out)
			if len(f) != 3 || f[1] != strconv.FormatUint(expect+1, 10) || (f[0] != "won" && f[0] != "held") {
				t.Fatalf("round %d racer %d: %q", round, i, out)
			}
			if f[0] == "won" {
				if winner != "" {
					t.Fatalf("round %d: two winners: %q", round, outs)
				}
				winner = f[2]
			}
		}
		if winner == "" {
			t.Fatalf("round %d: no winner: %q", round, outs)
		}
		for _, out := range outs {
			if !strings.HasSuffix(out, " "+winner) {
				t.Fatalf("round %d: racers disagree on the owner: %q", round, outs)
			}
		}
	}
}

// hookDevice calls hook just before the n-th read of block (once).
type hookDevice struct {
	storage.Device
	block int64
	n     int
	hook  func()
	reads int
}

func (d *hookDevice) ReadAt(p []byte, off int64) (int, error) {
	if off == d.block*storage.BlockSize {
		if d.reads++; d.reads == d.n && d.hook != nil {
			d.hook()
		}
	}
	return d.Device.ReadAt(p, off)
}

// countingLUN is a LUN on a fresh file behind a countingDevice; the test's
// cleanup closes it.
func countingLUN(t *testing.T) (*storage.LUN, *countingDevice) {
	fd, err := storage.OpenFile(lunFile(t, storage.FormatOptions{Timings: testTimings()}))
	if err != nil {
		t.Fatal(err)
	}
	dev := &countingDevice{Device: fd}
	l, err := storage.Open(testCtx(t), dev, storage.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, dev
}

func (d *countingDevice) setFail(fail bool) {
	d.mu.Lock()
	d.fail = fail
	d.mu.Unlock()
}

// A proposer whose accepted value was adopted and committed by a competitor
// (host 2 runs its whole acquisition between host 1's phase-2 write and
// re-read) owns the lease and must be told so: otherwise nobody owns it
// knowingly and the VM is not restarted.
func TestLeaseAdoptedValueWins(t *testing.T) {
	ctx := testCtx(t)
	path := lunFile(t, storage.FormatOptions{Timings: testTimings()})
	g := smallGeometry()
	h2 := openLUN(t, path)
	one := storage.Owner{Host: 1, Gen: 1, Nonce: 101}
	two := storage.Owner{Host: 2, Gen: 1, Nonce: 202}

	fd, err := storage.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var h2st storage.LeaseState
	var h2err error
	dev := &hookDevice{Device: fd, block: vmConfigBlock(g, 0, 0) + int64(2*g.ConfigBlks), n: 3,
		hook: func() { h2st, h2err = h2.AcquireLease(ctx, 0, 0, two) }}
	h1, err := storage.Open(ctx, dev, storage.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer h1.Close()

	st, err := h1.AcquireLease(ctx, 0, 0, one)
	var held *storage.LeaseHeldError
	if !errors.As(h2err, &held) || held.State.Owner != one {
		t.Fatalf("host 2 (hook ran: %v): %+v %v", dev.reads >= 3, h2st, h2err)
	}
	if err != nil || st.Owner != one || st.Epoch != 1 {
		t.Fatalf("host 1, whose value was chosen: %+v %v", st, err)
	}
}

// countingDevice counts reads.
type countingDevice struct {
	storage.Device
	mu    sync.Mutex
	reads int
	fail  bool // reads fail with EIO
}

func (d *countingDevice) ReadAt(p []byte, off int64) (int, error) {
	d.mu.Lock()
	d.reads++
	fail := d.fail
	d.mu.Unlock()
	if fail {
		return 0, syscall.EIO
	}
	return d.Device.ReadAt(p, off)
}

// A scan reads no lease of a record that never held a VM: 2 reads per blank
// record instead of 3. Every VM manager step and API call scans the LUN, and
// at the default 256 records that is 256 fewer I/Os each time.
func TestReadVMsSkipsLeasesOfBlankRecords(t *testing.T) {
	ctx := testCtx(t)
	l, dev := countingLUN(t)
	if _, _, err := l.ProtectVM(ctx, storage.Owner{Host: 1, Gen: 1, Nonce: 1}, storage.VMConfig{UUID: storage.NewUUID(), Name: "vm0", XML: []byte("<domain/>")}); err != nil {
		t.Fatal(err)
	}
	dev.reads = 0
	recs, errs := l.ReadVMs(ctx)
	g := smallGeometry()
	if len(errs) > 0 || len(recs) != g.MaxVMs {
		t.Fatalf("ReadVMs: %d records, errors %v", len(recs), errs)
	}
	if want := 3 + 2*(g.MaxVMs-1); dev.reads != want {
		t.Errorf("scan of 1 VM and %d blank records: %d reads, want %d", g.MaxVMs-1, dev.reads, want)
	}
	for _, r := range recs[1:] {
		if r.Free() {
			t.Errorf("record %d: free although its lease was not read", r.Index)
		}
	}
}

// A host that died between taking a record's lease and writing its config
// leaves a blank record with a held lease: a scan skips that lease, and
// ProtectVM must still not use the record while the lease is held.
func TestProtectVMSkipsABlankRecordWithAHeldLease(t *testing.T) {
	ctx := testCtx(t)
	path := lunFile(t, storage.FormatOptions{Timings: testTimings()})
	h1, h2 := openLUN(t, path), openLUN(t, path)
	if _, err := h2.AcquireLease(ctx, 0, 0, storage.Owner{Host: 2, Gen: 1, Nonce: 2}); err != nil {
		t.Fatal(err)
	}
	idx, _, err := h1.ProtectVM(ctx, storage.Owner{Host: 1, Gen: 1, Nonce: 1}, storage.VMConfig{UUID: storage.NewUUID(), Name: "vm1", XML: []byte("<domain/>")})
	if err != nil {
		t.Fatal(err)
	}
	if idx == 0 {
		t.Fatal("ProtectVM took record 0, whose lease host 2 holds")
	}
}

// The guest-up mark belongs to one epoch of one owner: only the owner sets
// it, a migration keeps it, and the next epoch starts without it.
func TestGuestUpMark(t *testing.T) {
	ctx := testCtx(t)
	path := lunFile(t, storage.FormatOptions{Timings: testTimings()})
	h1, h2 := openLUN(t, path), openLUN(t, path)
	me := storage.Owner{Host: 1, Gen: 3, Nonce: 11}
	other := storage.Owner{Host: 2, Gen: 5, Nonce: 22}
	idx, lease, err := h1.ProtectVM(ctx, me, storage.VMConfig{UUID: storage.NewUUID(), Name: "db", XML: []byte("<domain/>")})
	if err != nil {
		t.Fatal(err)
	}
	if lease.GuestUp {
		t.Fatal("a new lease says guest up")
	}
	if _, err := h2.SetGuestUp(ctx, idx, storage.LeaseState{Epoch: 1, Owner: other}); !errors.Is(err, storage.ErrLeaseHeld) {
		t.Errorf("guest up set by a non-owner: %v", err)
	}
	if lease, err = h1.SetGuestUp(ctx, idx, lease); err != nil || !lease.GuestUp {
		t.Fatalf("set guest up: %+v %v", lease, err)
	}
	mig := storage.Migration{Phase: storage.MigrationStarted, Target: 2, TargetGen: 5}
	if lease, err = h1.SetMigration(ctx, idx, lease, mig); err != nil {
		t.Fatal(err)
	}
	st, err := h2.ReadLease(ctx, idx)
	if err != nil || !st.GuestUp || st.Migration != mig || st.Owner != me {
		t.Fatalf("lease read by another host: %+v %v", st, err)
	}
	if err := h1.ReleaseLease(ctx, idx, lease); err != nil {
		t.Fatal(err)
	}
	next, err := h2.AcquireLease(ctx, idx, 1, other)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := h1.ReadLease(ctx, idx); err != nil || st.GuestUp || next.GuestUp || st.Epoch != 2 {
		t.Fatalf("the next epoch carries the old mark: %+v %+v %v", st, next, err)
	}
	if _, err := h1.SetGuestUp(ctx, idx, lease); !errors.Is(err, storage.ErrLeaseHeld) {
		t.Errorf("guest up set at a stale epoch: %v", err)
	}
}
