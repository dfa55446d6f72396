package storage_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/storage/storagetest"
)

// setTimings are testTimings with an io_timeout of 500 ms: three LUNs
// triple the I/O of a 2-core machine that -race slows down too.
func setTimings() storage.Timings {
	t := testTimings()
	t.IOTimeout, t.SelfFence = 500*time.Millisecond, 510*time.Millisecond
	t.Dead = t.MinDead()
	return t
}

// setOpts are the format options of the LUN-set tests.
func setOpts() storage.FormatOptions {
	return storage.FormatOptions{ClusterName: "trio", Geometry: smallGeometry(), Timings: setTimings()}
}

// openFiles opens paths as FileDevices, closed at the end of the test
// unless a LUN took them.
func openFiles(t *testing.T, paths ...string) []storage.Device {
	t.Helper()
	devs := make([]storage.Device, len(paths))
	for i, p := range paths {
		d, err := storage.OpenFile(p)
		if err != nil {
			t.Fatal(err)
		}
		devs[i] = d
	}
	return devs
}

func closeAll(devs []storage.Device) {
	for _, d := range devs {
		d.Close()
	}
}

// emptyFiles creates n empty files for formatting.
func emptyFiles(t *testing.T, n int) []string {
	t.Helper()
	dir := t.TempDir()
	requireDirectIO(t, dir)
	paths := make([]string, n)
	for i := range paths {
		paths[i] = filepath.Join(dir, "lun"+string(rune('1'+i))+".img")
		if err := os.WriteFile(paths[i], nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return paths
}

// TestFormatSet: three members share cluster, timings, geometry and a
// set id, each with its own index; 2 or 4 LUNs, or one LUN twice, are
// refused with what to do.
func TestFormatSet(t *testing.T) {
	ctx := testCtx(t)
	paths := emptyFiles(t, 4)
	devs := openFiles(t, paths...)
	defer closeAll(devs)
	for _, bad := range [][]storage.Device{devs[:2], devs, {devs[0], devs[1], devs[0]}} {
		_, err := storage.FormatSet(ctx, bad, setOpts())
		if !errors.Is(err, storage.ErrInvalid) || !strings.Contains(err.Error(), "1 or 3") && !strings.Contains(err.Error(), "twice") {
			t.Errorf("format of %d devices: %v, want a refusal that says to use 1 or 3 different LUNs", len(bad), err)
		}
	}
	hdrs, err := storage.FormatSet(ctx, devs[:3], setOpts())
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range hdrs {
		if h.LUNs() != 3 || h.Member() != i+1 || h.SetID != hdrs[0].SetID || h.SetID.IsZero() || h.ClusterUUID != hdrs[0].ClusterUUID {
			t.Errorf("member %d header %+v", i+1, h)
		}
	}
	l, err := storage.OpenSet(ctx, []storage.Device{devs[2], devs[0], devs[1]}, storage.OpenOptions{ClusterName: "trio"})
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range l.Members() {
		if m.Index != i+1 || m.Path != paths[i] || !m.Healthy() {
			t.Errorf("member %d: %+v", i+1, m)
		}
	}
	if got := l.Header(); got.LUNs() != 3 || got.ClusterName != "trio" {
		t.Errorf("set header %+v", got)
	}
}

// TestOpenSetRefuses: every wrong set is refused with both LUNs named and
// what to do.
func TestOpenSetRefuses(t *testing.T) {
	ctx := testCtx(t)
	a := storagetest.LUNSetFiles(t, 3, setOpts())
	b := storagetest.LUNSetFiles(t, 3, setOpts()) // another cluster
	sameCluster := setOpts()
	ha, err := storage.OpenSet(ctx, openFiles(t, a...), storage.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sameCluster.ClusterUUID = ha.Header().ClusterUUID
	ha.Close()
	lone := lunFile(t, sameCluster)
	c := storagetest.LUNSetFiles(t, 3, sameCluster) // same cluster, another set
	dup := filepath.Join(t.TempDir(), "copy.img")
	raw, err := os.ReadFile(a[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dup, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		paths []string
		class error
		says  []string
	}{
		{"two LUNs", a[:2], storage.ErrInvalid, []string{"1 or 3"}},
		{"four LUNs", append(a[:3:3], lone), storage.ErrInvalid, []string{"1 or 3"}},
		{"one of three alone", a[:1], storage.ErrInvalid, []string{"set of 3", "name all 3"}},
		{"foreign cluster", []string{a[0], a[1], b[2]}, storage.ErrForeignCluster, []string{a[0], b[2], "cluster"}},
		{"another set", []string{a[0], a[1], c[2]}, storage.ErrInvalid, []string{a[0], c[2], "different LUN sets"}},
		{"lone LUN in a set", []string{a[0], a[1], lone}, storage.ErrInvalid, []string{lone, "sets of 3 and 1"}},
		{"member twice", []string{a[0], dup, a[2]}, storage.ErrInvalid, []string{a[0], dup, "both member 1"}},
	} {
		devs := openFiles(t, tc.paths...)
		l, err := storage.OpenSet(ctx, devs, storage.OpenOptions{})
		closeAll(devs)
		if err == nil {
			l.Close()
			t.Errorf("%s: opened", tc.name)
			continue
		}
		if !errors.Is(err, tc.class) {
			t.Errorf("%s: %v, want class %v", tc.name, err, tc.class)
		}
		for _, s := range tc.says {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: %q does not say %q", tc.name, err, s)
			}
		}
	}
}

// zeroBlock writes zeros over block b of the file at path, bypassing the LUN.
func zeroBlock(t *testing.T, path string, b int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, storage.BlockSize), b*storage.BlockSize); err != nil {
		t.Fatal(err)
	}
}

// TestOpenSetDegraded: a member whose header cannot be read is accepted
// while the other two agree, and its I/O ignored until RestoreHeader puts
// its header back; with two unreadable the set is refused.
func TestOpenSetDegraded(t *testing.T) {
	ctx := testCtx(t)
	paths := storagetest.LUNSetFiles(t, 3, setOpts())
	zeroBlock(t, paths[1], 0)
	devs := openFiles(t, paths...)
	l, err := storage.OpenSet(ctx, devs, storage.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	m := l.Members()
	if m[1].HeaderChanged == nil || m[1].Healthy() || !m[0].Healthy() || !m[2].Healthy() {
		t.Fatalf("members %+v: want member 2 flagged", m)
	}
	if err := l.Integrity().HeaderChanged(); err != nil {
		t.Errorf("one of three headers changed stops the set: %v", err)
	}
	hb := acquire(t, l, 1, "kvm1")
	if _, err := hb.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Integrity().RestoreHeader(ctx, false); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, hb, paths[0], paths[1])
	if m := l.Members(); m[1].HeaderChanged != nil {
		t.Errorf("member 2 still flagged after restore: %v", m[1].HeaderChanged)
	}

	zeroBlock(t, paths[0], 0)
	zeroBlock(t, paths[1], 0)
	devs = openFiles(t, paths...)
	defer closeAll(devs)
	if l2, err := storage.OpenSet(ctx, devs, storage.OpenOptions{}); err == nil || !strings.Contains(err.Error(), "only 1 of 3") {
		if err == nil {
			l2.Close()
		}
		t.Errorf("two unreadable headers: %v, want a refusal", err)
	}
}

// TestSetHeaderChangedOnMajorityOnly: a header zeroed under a running
// handle on one member of three is that member's warning; on two it is the
// set's HeaderChanged.
func TestSetHeaderChangedOnMajorityOnly(t *testing.T) {
	ctx := testCtx(t)
	paths := storagetest.LUNSetFiles(t, 3, setOpts())
	l := storagetest.OpenFaultSet(t, storagetest.NewController(), "kvm1", paths)
	hb := acquire(t, l, 1, "kvm1")
	zeroBlock(t, paths[2], 0)
	if _, err := hb.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Integrity().HeaderChanged(); err != nil {
		t.Errorf("one changed header: %v", err)
	}
	if m := l.Members(); !errors.Is(m[2].HeaderChanged, storage.ErrHeaderChanged) {
		t.Errorf("member 3: %+v", m[2])
	}
	zeroBlock(t, paths[0], 0)
	if _, err := hb.Renew(ctx); err != nil {
		t.Fatalf("a host keeps heartbeating while the header is wrong: %v", err)
	}
	if err := l.Integrity().HeaderChanged(); !errors.Is(err, storage.ErrHeaderChanged) || !strings.Contains(err.Error(), "2 of 3") {
		t.Errorf("two changed headers: %v", err)
	}
	if res, err := l.Integrity().RestoreHeader(ctx, false); err != nil || !res.Wrote {
		t.Fatalf("restore: %+v %v", res, err)
	}
	if _, err := hb.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Integrity().HeaderChanged(); err != nil {
		t.Errorf("after restore: %v", err)
	}
}

// setWorkload does one of every kind of record I/O on l as host 1 and
// returns what it read, for comparing a degraded set with a healthy one.
func setWorkload(t *testing.T, l *storage.LUN, hb *storage.Heartbeat, round int) string {
	t.Helper()
	ctx := testCtx(t)
	var out strings.Builder
	views, err := hb.Renew(ctx)
	if err != nil {
		t.Fatalf("renew: %v", err)
	}
	out.WriteString(views[0].Record.State.String())
	if _, err := l.SendMessage(ctx, storage.Message{Type: storage.MsgTest, From: 1, To: 2, Reason: "r"}); err != nil {
		t.Fatalf("send: %v", err)
	}
	msg, err := l.ReadMailbox(ctx, 2)
	if err != nil || msg.Type != storage.MsgTest {
		t.Fatalf("mailbox: %+v %v", msg, err)
	}
	me := storage.Owner{Host: 1, Gen: hb.Generation(), Nonce: uint64(round + 1)}
	idx, lease, err := l.ProtectVM(ctx, me, storage.VMConfig{UUID: storage.NewUUID(), Name: "vm", XML: []byte("<domain/>")})
	if err != nil {
		t.Fatalf("protect: %v", err)
	}
	rec, err := l.ReadVM(ctx, idx)
	if err != nil || rec.Lease.Owner != me || !rec.Protected() {
		t.Fatalf("read VM: %+v %v", rec, err)
	}
	if err := l.DeleteVM(ctx, idx, lease); err != nil {
		t.Fatalf("delete: %v", err)
	}
	el, err := l.EventLog(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := el.Append(ctx, storage.Event{Kind: "test"}); err != nil {
		t.Fatalf("append: %v", err)
	}
	evs, err := l.ReadEvents(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	recs := storage.NewClusterRecords(l)
	s, err := recs.Settings(ctx)
	if err != nil {
		t.Fatalf("settings: %v", err)
	}
	if _, err := recs.WriteSettings(ctx, 1, s); err != nil {
		t.Fatalf("write settings: %v", err)
	}
	out.WriteString(" events ")
	out.WriteString(string(rune('0' + len(evs))))
	return out.String()
}

// TestSetOneMemberFailing: one member failing (I/O errors, hung, slower
// than io_timeout) or zeroed changes no result of any record's reads and
// writes; the member that missed writes is caught up once it is back.
// Two members failing is a lost LUN.
func TestSetOneMemberFailing(t *testing.T) {
	faults := map[string]storagetest.Fault{
		"eio":     {Op: storagetest.AllIO, EIO: true},
		"hang":    {Op: storagetest.AllIO, Hang: true},
		"latency": {Op: storagetest.AllIO, Latency: 2 * setTimings().IOTimeout},
	}
	for name, f := range faults {
		for member := 1; member <= 3; member++ {
			t.Run(name+"/member"+string(rune('0'+member)), func(t *testing.T) {
				paths := storagetest.LUNSetFiles(t, 3, setOpts())
				c := storagetest.NewController()
				l := storagetest.OpenFaultSet(t, c, "kvm1", paths)
				hb := acquire(t, l, 1, "kvm1")
				want := setWorkload(t, l, hb, 0)
				c.Inject(storagetest.MemberName("kvm1", member), f)
				for round := 1; round <= 2; round++ {
					if got := setWorkload(t, l, hb, round); got != strings.Replace(want, "events 1", "events "+string(rune('1'+round)), 1) {
						t.Errorf("round %d with member %d failing: %q, healthy %q", round, member, got, want)
					}
				}
				if m := l.Members()[member-1]; m.Healthy() {
					t.Errorf("member %d is failing but reads healthy: %+v", member, m)
				}
				c.Clear(storagetest.MemberName("kvm1", member))
				// A delayed write may still be in flight for a while after the release.
				caughtUp(t, hb, paths[member%3], paths[member-1])
			})
		}
	}
	t.Run("two members", func(t *testing.T) {
		paths := storagetest.LUNSetFiles(t, 3, setOpts())
		c := storagetest.NewController()
		l := storagetest.OpenFaultSet(t, c, "kvm1", paths)
		hb := acquire(t, l, 1, "kvm1")
		c.Inject(storagetest.MemberName("kvm1", 1), storagetest.Fault{Op: storagetest.AllIO, EIO: true})
		c.Inject(storagetest.MemberName("kvm1", 3), storagetest.Fault{Op: storagetest.AllIO, EIO: true})
		if _, err := hb.Renew(testCtx(t)); err == nil || !strings.Contains(err.Error(), "2 of 3 heartbeat LUNs failed") {
			t.Errorf("renew with two members failing: %v", err)
		}
		if _, err := l.ReadLease(testCtx(t), 0); err == nil {
			t.Error("lease read with two members failing succeeded")
		}
	})
}

// slotBytes reads host's slot block from the file at path, bypassing the LUN.
func slotBytes(t *testing.T, path string, host int) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return raw[slotBlock(host)*storage.BlockSize : (slotBlock(host)+1)*storage.BlockSize]
}

// caughtUp renews hb, paced by R, until its slot on the member at lagging
// equals the one at ahead (the third write of a renewal lands after it
// returned), and fails the test if that takes 100 renewals.
func caughtUp(t *testing.T, hb *storage.Heartbeat, ahead, lagging string) {
	t.Helper()
	ctx := testCtx(t)
	for range 100 {
		if _, err := hb.Renew(ctx); err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(slotBytes(t, ahead, hb.HostID()), slotBytes(t, lagging, hb.HostID())) {
			return
		}
		if err := sleep(ctx, setTimings().Renew); err != nil {
			t.Fatal(err)
		}
	}
	t.Errorf("%s's slot %d still differs from %s's after 100 renewals: not caught up", lagging, hb.HostID(), ahead)
}

// TestSetZeroedMember: a member whose records are all zeroed (its header
// kept) changes no result and reports no damage: the other two hold every
// record.
func TestSetZeroedMember(t *testing.T) {
	ctx := testCtx(t)
	paths := storagetest.LUNSetFiles(t, 3, setOpts())
	l := storagetest.OpenFaultSet(t, storagetest.NewController(), "kvm1", paths)
	hb := acquire(t, l, 1, "kvm1")
	want := setWorkload(t, l, hb, 0)
	me := storage.Owner{Host: 1, Gen: hb.Generation(), Nonce: 99}
	idx, _, err := l.ProtectVM(ctx, me, storage.VMConfig{UUID: storage.NewUUID(), Name: "kept", XML: []byte("<domain/>")})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(paths[1])
	if err != nil {
		t.Fatal(err)
	}
	clear(raw[storage.BlockSize:])
	if err := os.WriteFile(paths[1], raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := setWorkload(t, l, hb, 1); got != strings.Replace(want, "events 1", "events 2", 1) {
		t.Errorf("with member 2 zeroed: %q, healthy %q", got, want)
	}
	rec, err := l.ReadVM(ctx, idx)
	if err != nil || rec.Lease.Owner != me || rec.Config.Name != "kept" {
		t.Errorf("VM record with member 2 zeroed: %+v %v", rec, err)
	}
	if d := l.Integrity().Damaged(); len(d) > 0 {
		t.Errorf("damage reported for one zeroed member: %v", d)
	}
	// Zeroed on two members: the record must read as it was or damaged, never free.
	raw, err = os.ReadFile(paths[2])
	if err != nil {
		t.Fatal(err)
	}
	clear(raw[storage.BlockSize:])
	if err := os.WriteFile(paths[2], raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if rec, err := l.ReadVM(ctx, idx); !errors.Is(err, storage.ErrCorrupt) && (err != nil || rec.Lease.Owner != me) {
		t.Errorf("VM record zeroed on two of three members: %+v %v, want its owner (from member 1) or ErrCorrupt, never free", rec, err)
	}
}

// writerAndObserver opens one three-LUN set as kvm1, which holds slot 1,
// and as kvm2, each through its own fault devices.
func writerAndObserver(t *testing.T) (*storagetest.Controller, *storage.Heartbeat, *storage.LUN) {
	t.Helper()
	paths := storagetest.LUNSetFiles(t, 3, setOpts())
	c := storagetest.NewController()
	l := storagetest.OpenFaultSet(t, c, "kvm1", paths)
	observer := storagetest.OpenFaultSet(t, c, "kvm2", paths)
	return c, acquire(t, l, 1, "kvm1"), observer
}

// TestSetSlotFreshOnMajorityOnly: a host whose renewals reach one member
// only does not look fresh: the merged record's Beat stays at its last write
// a majority took, and MemberSeq shows each member's sequence.
func TestSetSlotFreshOnMajorityOnly(t *testing.T) {
	ctx := testCtx(t)
	c, hb, observer := writerAndObserver(t)
	views, err := hb.Renew(ctx)
	if err != nil {
		t.Fatal(err)
	}
	base := views[0].Record.Sequence
	c.Inject(storagetest.MemberName("kvm1", 2), storagetest.Fault{Op: storagetest.Writes, EIO: true})
	c.Inject(storagetest.MemberName("kvm1", 3), storagetest.Fault{Op: storagetest.Writes, EIO: true})
	for range 3 {
		if _, err := hb.Renew(ctx); err == nil {
			t.Fatal("renewal reaching one member of three succeeded")
		}
	}
	v, err := observer.ReadSlot(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Member 1 is ahead, or was not read in time (0); members 2 and 3 hold
	// base (or base-1, when the write that counted on members 1 and 3 had
	// not yet landed on 2); either way the heartbeat that counts (Beat)
	// stands at the last write two members took.
	if v.Record.Beat() > base || (v.MemberSeq[0] != 0 && v.MemberSeq[0] <= base) || v.MemberSeq[1] > base || v.MemberSeq[2] > base {
		t.Errorf("slot reads beat %d, sequence %d (members %v), want a beat of at most %d with member 1 ahead", v.Record.Beat(), v.Record.Sequence, v.MemberSeq, base)
	}
	all, err := observer.ReadSlots(ctx)
	if err != nil || all[0].Record.Beat() > base {
		t.Errorf("ReadSlots: %+v %v", all[0], err)
	}
}

// TestSetSlotCrossedPaths: the writer cannot reach member 3, the observer
// cannot reach member 1; both reach a majority, and the observer sees every
// renewal of the writer count (a merge of the newest record that two
// members read hold would see it stand still).
func TestSetSlotCrossedPaths(t *testing.T) {
	ctx := testCtx(t)
	c, hb, observer := writerAndObserver(t)
	c.Inject(storagetest.MemberName("kvm1", 3), storagetest.Fault{EIO: true})
	c.Inject(storagetest.MemberName("kvm2", 1), storagetest.Fault{EIO: true})
	var last uint64
	for i := range 4 {
		if _, err := hb.Renew(ctx); err != nil {
			t.Fatalf("renewal %d with two members of three: %v", i, err)
		}
		v, err := observer.ReadSlot(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if b := v.Record.Beat(); i > 0 && b <= last {
			t.Fatalf("renewal %d: the observer reads beat %d after %d (members %v): the writer looks silent", i, b, last, v.MemberSeq)
		}
		last = v.Record.Beat()
	}
}

// TestSetLeaseRace: hosts racing for one VM lease across three LUNs, each
// racer with a different member slower than io_timeout (its writes count
// on the other two); exactly one owner per epoch.
func TestSetLeaseRace(t *testing.T) {
	const rounds, racers = 30, 3
	paths := storagetest.LUNSetFiles(t, 3, setOpts())
	c := storagetest.NewController()
	luns := make([]*storage.LUN, racers)
	for i := range luns {
		host := "racer" + string(rune('1'+i))
		luns[i] = storagetest.OpenFaultSet(t, c, host, paths)
		c.Inject(storagetest.MemberName(host, i+1), storagetest.Fault{Op: storagetest.AllIO, Latency: 2 * setTimings().IOTimeout})
	}
	leaseRounds(t, luns, storagetest.OpenFaultSet(t, c, "observer", paths), rounds)
}

// TestSetMailboxPillOnAnyMember: a fence written to one member only (its
// sender's write to the others failed) is obeyed by a target that reads
// that member, although the other member it reads shows none: a pill only
// makes its target stop.
func TestSetMailboxPillOnAnyMember(t *testing.T) {
	ctx := testCtx(t)
	paths := storagetest.LUNSetFiles(t, 3, setOpts())
	c := storagetest.NewController()
	sender := storagetest.OpenFaultSet(t, c, "kvm1", paths)
	target := storagetest.OpenFaultSet(t, c, "kvm2", paths)
	c.Inject(storagetest.MemberName("kvm1", 1), storagetest.Fault{Op: storagetest.Writes, EIO: true})
	c.Inject(storagetest.MemberName("kvm1", 2), storagetest.Fault{Op: storagetest.Writes, EIO: true})
	c.Inject(storagetest.MemberName("kvm2", 1), storagetest.Fault{Op: storagetest.Reads, EIO: true})
	if _, err := sender.SendMessage(ctx, storage.Message{Type: storage.MsgFence, From: 1, To: 2, ToGen: 1}); err == nil {
		t.Fatal("a fence reaching one member of three counts as sent")
	}
	m, err := target.ReadMailbox(ctx, 2)
	if err != nil || m.Type != storage.MsgFence {
		t.Errorf("target reads %+v %v, want the fence", m, err)
	}
}

// TestSetSlotRace: racers for one slot across three LUNs, one of them
// slowed on member 1 (within io_timeout), so that their writes land on the
// members in different orders; never two winners, and the winner's record
// is what the set reads. (A round where each member ends with another
// racer's record has no winner: they retry, as after any lost race.)
func TestSetSlotRace(t *testing.T) {
	const rounds, racers = 10, 3
	opts := setOpts()
	opts.Geometry = storage.Geometry{MaxHosts: rounds + 1, MaxVMs: 1, EventBlocks: 1, ConfigBlks: 2}
	paths := storagetest.LUNSetFiles(t, 3, opts)
	c := storagetest.NewController()
	luns := make([]*storage.LUN, racers)
	for i := range luns {
		host := "racer" + string(rune('1'+i))
		luns[i] = storagetest.OpenFaultSet(t, c, host, paths)
	}
	c.Inject(storagetest.MemberName("racer1", 1), storagetest.Fault{Op: storagetest.AllIO, Latency: setTimings().IOTimeout / 10})
	observer := storagetest.OpenFaultSet(t, c, "observer", paths)
	won := 0
	for round := range rounds {
		winners, other := raceSlot(t, paths[0], luns, round+1, round)
		if len(winners) > 1 {
			t.Fatalf("round %d: %d winners: %+v and %+v", round, len(winners), winners[0].Record(), winners[1].Record())
		}
		if len(winners) == 0 {
			t.Logf("round %d: no winner (storage too slow): %v", round, other)
			continue
		}
		won++
		v, err := observer.ReadSlot(testCtx(t), round+1)
		if err != nil || v.Record.Incarnation != winners[0].Record().Incarnation {
			t.Fatalf("round %d: the set reads %+v (%v), winner %+v", round, v.Record, err, winners[0].Record())
		}
	}
	if won < rounds/2 {
		t.Errorf("only %d of %d rounds had a winner", won, rounds)
	}
}

// TestSetDamagedCopy: a lease block damaged on one member of three is that
// member's warning (Members), not the set's damage; the owner's next write
// of its block rewrites it.
func TestSetDamagedCopy(t *testing.T) {
	ctx := testCtx(t)
	paths := storagetest.LUNSetFiles(t, 3, setOpts())
	l := storagetest.OpenFaultSet(t, storagetest.NewController(), "kvm1", paths)
	hb := acquire(t, l, 1, "kvm1")
	me := storage.Owner{Host: 1, Gen: hb.Generation(), Nonce: 7}
	idx, lease, err := l.ProtectVM(ctx, me, storage.VMConfig{UUID: storage.NewUUID(), Name: "vm", XML: []byte("<domain/>")})
	if err != nil {
		t.Fatal(err)
	}
	g := smallGeometry()
	flipBit(t, paths[1], vmConfigBlock(g, idx, 0)+int64(2*g.ConfigBlks), 20)
	rec, err := l.ReadVM(ctx, idx)
	if err != nil || rec.Lease.Owner != me {
		t.Fatalf("read with one damaged copy: %+v %v", rec, err)
	}
	if m := l.Members(); m[1].Damaged != 1 || m[0].Damaged != 0 || len(l.Integrity().Damaged()) != 0 {
		t.Errorf("members %+v, set damage %v: want member 2's copy counted, no set damage", m, l.Integrity().Damaged())
	}
	if _, err := l.SetGuestUp(ctx, idx, lease); err != nil {
		t.Fatal(err)
	}
	if _, err := l.ReadVM(ctx, idx); err != nil {
		t.Fatal(err)
	}
	if m := l.Members(); m[1].Damaged != 0 {
		t.Errorf("member 2 still counts %d damaged copies after the owner's write", m[1].Damaged)
	}
}

// TestOpenSetWithAHungMember: a member that does not answer at open
// delays it by io_timeout, not the 30 s of a format, and the set opens
// degraded; once the member answers, the next read of the slots takes it
// back.
func TestOpenSetWithAHungMember(t *testing.T) {
	ctx := testCtx(t)
	paths := storagetest.LUNSetFiles(t, 3, setOpts())
	c := storagetest.NewController()
	c.Inject(storagetest.MemberName("kvm1", 2), storagetest.Fault{Op: storagetest.AllIO, Hang: true})
	start := time.Now()
	l := storagetest.OpenFaultSet(t, c, "kvm1", paths)
	if took := time.Since(start); took > 10*setTimings().IOTimeout {
		t.Errorf("open with a hung member took %v", took)
	}
	if m := l.Members()[1]; !errors.Is(m.HeaderChanged, storage.ErrIOTimeout) {
		t.Fatalf("member 2: %+v, want its header unread (io_timeout)", m)
	}
	c.Clear(storagetest.MemberName("kvm1", 2))
	for range 100 { // the released read of the open lands first; then a slot read sees the header
		if _, err := l.ReadSlots(ctx); err != nil {
			t.Fatal(err)
		}
		if l.Members()[1].HeaderChanged == nil {
			return
		}
		if err := sleep(ctx, setTimings().Renew); err != nil {
			t.Fatal(err)
		}
	}
	t.Errorf("member 2 still out after it answers again: %+v", l.Members()[1])
}
