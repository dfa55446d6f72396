package storage_test

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/storage/storagetest"
)

// Block numbers of the cluster-records area (storage/doc.go), recomputed
// from the documented layout: the area starts at the first 1 MiB boundary
// after format v1's regions; per register, per host, copies A and B of 4
// blocks each.
func areaStart(g storage.Geometry) int64 { return (g.TotalBlocks() + 255) / 256 * 256 }
func ballotBlock(g storage.Geometry, reg, host, copyNo int) int64 {
	return areaStart(g) + int64(reg*g.MaxHosts+host-1)*8 + int64(copyNo*4)
}

func mailTarget(name string) storage.NotifyTarget {
	return storage.NotifyTarget{Name: name, Kind: "mail", Address: "smtp.example.com:587", From: "wingman@example.com",
		To: []string{"ops@example.com", "oncall@example.com"}, User: "wingman", SecretFile: "/etc/wingman/smtp.pass",
		MinSeverity: storage.SevWarning, Kinds: []string{"incident"}, Hosts: []string{"kvm1"}, Timeout: 10 * time.Second}
}

func TestSettingsNeverWrittenReadEmpty(t *testing.T) {
	l := openLUN(t, lunFile(t, storage.FormatOptions{}))
	s, err := storage.NewClusterRecords(l).Settings(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if s.Generation != 0 || len(s.Targets) != 0 {
		t.Fatalf("fresh LUN has settings %+v", s)
	}
}

func TestSettingsWriteReadFromAnotherHost(t *testing.T) {
	path := lunFile(t, storage.FormatOptions{})
	a, b := storage.NewClusterRecords(openLUN(t, path)), storage.NewClusterRecords(openLUN(t, path))
	ctx := testCtx(t)
	w, err := a.WriteSettings(ctx, 1, storage.ClusterSettings{Targets: []storage.NotifyTarget{mailTarget("ops")}})
	if err != nil {
		t.Fatal(err)
	}
	if w.Generation != 1 {
		t.Fatalf("first write got generation %d, want 1", w.Generation)
	}
	got, err := b.Settings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Generation != 1 || got.Writer != 1 || !reflect.DeepEqual(got.Targets, w.Targets) {
		t.Fatalf("host 2 read %+v, want %+v", got, w)
	}
	// Format v1 is untouched: the LUN opens and its header checks.
	l := openLUN(t, path)
	if err := l.Integrity().CheckHeader(ctx); err != nil {
		t.Fatal(err)
	}
	if _, errs := l.ReadVMs(ctx); len(errs) > 0 {
		t.Fatal(errs)
	}
}

// Two hosts read generation 1 and both write: exactly one wins, the other
// gets ErrConflict, and nothing it wrote shows.
func TestSettingsCompareAndSwapTwoHandles(t *testing.T) {
	path := lunFile(t, storage.FormatOptions{})
	a, b := storage.NewClusterRecords(openLUN(t, path)), storage.NewClusterRecords(openLUN(t, path))
	ctx := testCtx(t)
	if _, err := a.WriteSettings(ctx, 1, storage.ClusterSettings{Targets: []storage.NotifyTarget{mailTarget("base")}}); err != nil {
		t.Fatal(err)
	}
	sa, _ := a.Settings(ctx)
	sb, _ := b.Settings(ctx)
	sa.Targets = append(sa.Targets, mailTarget("from-a"))
	sb.Targets = append(sb.Targets, mailTarget("from-b"))
	if _, err := a.WriteSettings(ctx, 1, sa); err != nil {
		t.Fatal(err)
	}
	_, err := b.WriteSettings(ctx, 2, sb)
	var ce *storage.ConflictError
	if !errors.Is(err, storage.ErrConflict) || !errors.As(err, &ce) || ce.Expected != 1 || ce.Current != 2 {
		t.Fatalf("stale write got %v, want a conflict from generation 1 to 2", err)
	}
	got, _ := b.Settings(ctx)
	if names := targetNames(got); !slices.Equal(names, []string{"base", "from-a"}) {
		t.Fatalf("after the conflict the targets are %v", names)
	}
}

// Hosts adding targets at the same time through UpdateSettings lose none.
func TestSettingsRaceLosesNoUpdate(t *testing.T) {
	path := lunFile(t, storage.FormatOptions{Timings: raceTimings()})
	const hosts, each = 3, 4
	ctx := testCtx(t)
	var wg sync.WaitGroup
	errs := make(chan error, hosts*each)
	for h := 1; h <= hosts; h++ {
		c := storage.NewClusterRecords(openLUN(t, path))
		wg.Go(func() {
			for i := range each {
				_, err := c.UpdateSettings(ctx, h, func(s *storage.ClusterSettings) error {
					s.Targets = append(s.Targets, mailTarget(fmt.Sprintf("h%d-%d", h, i)))
					return nil
				})
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := storage.NewClusterRecords(openLUN(t, path)).Settings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	names := targetNames(got)
	slices.Sort(names)
	if len(names) != hosts*each || got.Generation != hosts*each {
		t.Fatalf("after %d updates: generation %d, targets %v", hosts*each, got.Generation, names)
	}
}

func targetNames(s storage.ClusterSettings) []string {
	var n []string
	for _, t := range s.Targets {
		n = append(n, t.Name)
	}
	return n
}

// A write of host 3 cut short damages one copy of its ballot. If it was the
// older copy, nothing changes. If it was its commit mark, the readers see
// the previous generation until the next writer completes host 3's
// generation with host 3's value. Both copies damaged is a clear error.
func TestSettingsDamagedBallot(t *testing.T) {
	path := lunFile(t, storage.FormatOptions{})
	l := openLUN(t, path)
	c := storage.NewClusterRecords(l)
	ctx := testCtx(t)
	want, err := c.WriteSettings(ctx, 3, storage.ClusterSettings{Targets: []storage.NotifyTarget{mailTarget("ops")}})
	if err != nil {
		t.Fatal(err)
	}
	// Host 3 wrote copies A (ballot), B (accepted value), A (commit mark).
	g := l.Header().Geometry
	read := func() storage.ClusterSettings {
		t.Helper()
		got, err := storage.NewClusterRecords(openLUN(t, path)).Settings(ctx)
		if err != nil {
			t.Fatalf("one damaged copy: %v", err)
		}
		return got
	}
	flipBit(t, path, ballotBlock(g, 0, 3, 1), 200)
	if got := read(); got.Generation != 1 || !reflect.DeepEqual(got.Targets, want.Targets) {
		t.Fatalf("older copy damaged: read %+v, want %+v", got, want)
	}
	flipBit(t, path, ballotBlock(g, 0, 3, 1), 200) // undo
	flipBit(t, path, ballotBlock(g, 0, 3, 0), 200)
	if got := read(); got.Generation != 0 {
		t.Fatalf("commit mark damaged: read generation %d, want 0 until a writer completes it", got.Generation)
	}
	other := storage.NewClusterRecords(openLUN(t, path))
	if _, err := other.WriteSettings(ctx, 2, storage.ClusterSettings{Targets: []storage.NotifyTarget{mailTarget("late")}}); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("a write from generation 0 over host 3's accepted value: got %v, want ErrConflict", err)
	}
	if got := read(); got.Generation != 1 || !reflect.DeepEqual(got.Targets, want.Targets) {
		t.Fatalf("after completion: read %+v, want host 3's %+v", got, want)
	}
	flipBit(t, path, ballotBlock(g, 0, 2, 0), 200)
	flipBit(t, path, ballotBlock(g, 0, 2, 1), 200)
	_, err = storage.NewClusterRecords(openLUN(t, path)).Settings(ctx)
	wantBlockErr(t, err, storage.ErrCorrupt, path, ballotBlock(g, 0, 2, 0))
}

func TestSettingsRefusesWhatDoesNotFit(t *testing.T) {
	l := openLUN(t, lunFile(t, storage.FormatOptions{}))
	c := storage.NewClusterRecords(l)
	var s storage.ClusterSettings
	for i := range 100 {
		tg := mailTarget(fmt.Sprintf("t%d", i))
		tg.Address = string(make([]byte, 500))
		s.Targets = append(s.Targets, tg)
	}
	if _, err := c.WriteSettings(testCtx(t), 1, s); !errors.Is(err, storage.ErrTooLarge) {
		t.Fatalf("oversized settings: got %v, want ErrTooLarge", err)
	}
	if _, err := c.WriteSettings(testCtx(t), 99, storage.ClusterSettings{}); !errors.Is(err, storage.ErrInvalid) {
		t.Fatalf("host 99 of 8: got %v, want ErrInvalid", err)
	}
}

func TestIncidentLedgerCompareAndSwap(t *testing.T) {
	path := lunFile(t, storage.FormatOptions{})
	a, b := storage.NewClusterRecords(openLUN(t, path)), storage.NewClusterRecords(openLUN(t, path))
	ctx := testCtx(t)
	led, err := a.Incidents(ctx)
	if err != nil || led.Generation != 0 || len(led.Entries) != 0 {
		t.Fatalf("fresh ledger %+v, %v", led, err)
	}
	e := storage.IncidentEntry{ID: "inc-0123456789abcdef", Stage: storage.IncidentOpened, By: 1, Recorded: time.Unix(1700000000, 0)}
	stale := led
	led.Entries = append(led.Entries, e)
	if led, err = a.WriteIncidents(ctx, 1, led); err != nil {
		t.Fatal(err)
	}
	stale.Entries = append(stale.Entries, storage.IncidentEntry{ID: "inc-other", Stage: storage.IncidentOpened, By: 2})
	if _, err := b.WriteIncidents(ctx, 2, stale); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("stale ledger write: got %v, want ErrConflict", err)
	}
	got, err := b.Incidents(ctx)
	if err != nil || got.Generation != 1 || !reflect.DeepEqual(got.Entries, []storage.IncidentEntry{e}) {
		t.Fatalf("ledger %+v, %v", got, err)
	}
	// The ledger keeps the newest MaxIncidents entries.
	for i := range storage.MaxIncidents + 5 {
		got.Entries = append(got.Entries, storage.IncidentEntry{ID: fmt.Sprintf("inc-%d", i), Stage: storage.IncidentOpened, By: 2})
	}
	if got, err = b.WriteIncidents(ctx, 2, got); err != nil {
		t.Fatal(err)
	}
	again, _ := a.Incidents(ctx)
	if len(again.Entries) != storage.MaxIncidents || again.Entries[len(again.Entries)-1].ID != fmt.Sprintf("inc-%d", storage.MaxIncidents+4) {
		t.Fatalf("ledger kept %d entries, last %+v", len(again.Entries), again.Entries[len(again.Entries)-1])
	}
}

// A device that cannot hold the cluster-records area (here: no Grow, as a
// block device cut to the v1 size) says so; it never reads as "never
// written", which could hide settings another host wrote.
func TestSettingsWithoutRoomSaySo(t *testing.T) {
	path := lunFile(t, storage.FormatOptions{})
	c := storagetest.NewController()
	fixed := storage.NewClusterRecords(faultLUN(t, path, c, "kvm1"))
	ctx := testCtx(t)
	_, err := fixed.Settings(ctx)
	if !errors.Is(err, storage.ErrTooSmall) || !strings.Contains(err.Error(), "grow the LUN") {
		t.Fatalf("reading settings on a v1-sized device: got %v, want ErrTooSmall saying to grow the LUN", err)
	}
	if _, err := fixed.WriteSettings(ctx, 1, storage.ClusterSettings{}); !errors.Is(err, storage.ErrTooSmall) {
		t.Fatalf("writing settings on a v1-sized device: got %v, want ErrTooSmall", err)
	}
	// A file LUN grows on first use; its v1 content is untouched.
	l := openLUN(t, path)
	if _, err := storage.NewClusterRecords(l).WriteSettings(ctx, 1, storage.ClusterSettings{Targets: []storage.NotifyTarget{mailTarget("ops")}}); err != nil {
		t.Fatal(err)
	}
	if err := openLUN(t, path).Integrity().CheckHeader(ctx); err != nil {
		t.Fatal(err)
	}
}

// A write of host 1 that times out and lands after host 2 has written a
// newer generation, and a write of host 1 torn half way, change nothing
// that was chosen: each host writes only its own ballot, and the copy
// sequence tells a late copy from a current one.
func TestSettingsLateAndTornWrites(t *testing.T) {
	path := lunFile(t, storage.FormatOptions{})
	b := storage.NewClusterRecords(openLUN(t, path))
	ctx := testCtx(t)
	base, err := b.WriteSettings(ctx, 2, storage.ClusterSettings{Targets: []storage.NotifyTarget{mailTarget("base")}})
	if err != nil { // the file has grown to hold the area before host 1 opens it
		t.Fatal(err)
	}
	c := storagetest.NewController()
	lA := faultLUN(t, path, c, "kvm1")
	a := storage.NewClusterRecords(lA)
	g := lA.Header().Geometry
	own := storagetest.Fault{Op: storagetest.Writes, From: ballotBlock(g, 0, 1, 0), To: ballotBlock(g, 0, 1, 1) + 4}

	late := own
	late.Hang, late.Count = true, 1
	c.Inject("kvm1", late)
	stale := base
	stale.Targets = append(stale.Targets, mailTarget("from-1"))
	if _, err := a.WriteSettings(ctx, 1, stale); !errors.Is(err, storage.ErrIOTimeout) {
		t.Fatalf("host 1's hung write: got %v, want ErrIOTimeout", err)
	}
	newer := base
	newer.Targets = append(newer.Targets, mailTarget("from-2"))
	if _, err := b.WriteSettings(ctx, 2, newer); err != nil {
		t.Fatal(err)
	}
	c.Clear("kvm1") // host 1's write lands now, late
	// Wait for it: host 1's first ballot copy appears.
	for {
		f, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if at := ballotBlock(g, 0, 1, 0) * storage.BlockSize; string(f[at:at+4]) == "WGRG" {
			break
		}
		if err := sleep(ctx, time.Millisecond); err != nil {
			t.Fatal("the released write never landed")
		}
	}
	check := func(gen uint64, names ...string) {
		t.Helper()
		for _, r := range []*storage.ClusterRecords{a, b} {
			s, err := r.Settings(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if s.Generation != gen || !slices.Equal(targetNames(s), names) {
				t.Fatalf("read generation %d %v, want %d %v", s.Generation, targetNames(s), gen, names)
			}
		}
	}
	check(2, "base", "from-2")

	torn := own
	torn.TornAfter, torn.Count = 600, 1
	c.Inject("kvm1", torn)
	cur, _ := a.Settings(ctx)
	cur.Targets = append(cur.Targets, mailTarget("torn"))
	if _, err := a.WriteSettings(ctx, 1, cur); err == nil {
		t.Fatal("a torn write reported success")
	}
	c.Clear("kvm1")
	check(2, "base", "from-2")
	if _, err := a.UpdateSettings(ctx, 1, func(s *storage.ClusterSettings) error {
		s.Targets = append(s.Targets, mailTarget("after"))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	check(3, "base", "from-2", "after")
}

// The cluster-wide keys go through the LUN with who set them and when, and
// a change of the targets on another host keeps them.
func TestSettingsValuesRoundTrip(t *testing.T) {
	path := lunFile(t, storage.FormatOptions{})
	a, b := storage.NewClusterRecords(openLUN(t, path)), storage.NewClusterRecords(openLUN(t, path))
	ctx := testCtx(t)
	when := time.Unix(1700000000, 0)
	vals := []storage.ClusterValue{{Key: "failover.guest_agent_wait", Value: "1m", Host: 1, Wall: when}}
	w, err := a.UpdateSettings(ctx, 1, func(s *storage.ClusterSettings) error { s.Values = vals; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.UpdateSettings(ctx, 2, func(s *storage.ClusterSettings) error {
		s.Targets = append(s.Targets, mailTarget("ops"))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got, err := a.Settings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Generation != w.Generation+1 || got.Writer != 2 || len(got.Targets) != 1 || len(got.Values) != 1 ||
		got.Values[0].Key != vals[0].Key || got.Values[0].Value != "1m" || got.Values[0].Host != 1 || !got.Values[0].Wall.Equal(when) {
		t.Fatalf("read %+v, want generation %d by host 2 with the value %+v and one target", got, w.Generation+1, vals[0])
	}
	long := storage.ClusterValue{Key: "k", Value: strings.Repeat("x", 2000)}
	if _, err := a.WriteSettings(ctx, 1, storage.ClusterSettings{Generation: got.Generation, Values: []storage.ClusterValue{long}}); !errors.Is(err, storage.ErrTooLarge) {
		t.Fatalf("a 2000-byte value: got %v, want ErrTooLarge", err)
	}
}
