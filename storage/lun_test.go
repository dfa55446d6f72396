package storage_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/storage/storagetest"
)

func TestFormatOpenRoundTrip(t *testing.T) {
	id := storage.NewUUID()
	created := time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)
	geo := storage.Geometry{MaxHosts: 5, MaxVMs: 3, EventBlocks: 3, ConfigBlks: 4}
	tm := storage.FastTimings()
	tm.PathFailover = 2 * time.Second
	path := lunFile(t, storage.FormatOptions{ClusterName: "prod-east", ClusterUUID: id, Geometry: geo, Timings: tm, Now: created})

	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != geo.Size() {
		t.Errorf("file grown to %d bytes, want %d", st.Size(), geo.Size())
	}
	l := openLUN(t, path)
	h := l.Header()
	want := storage.Header{Version: storage.FormatVersion, ClusterUUID: id, ClusterName: "prod-east",
		SectorSize: h.SectorSize, Geometry: geo, Timings: tm, Created: created}
	if !h.Created.Equal(created) {
		t.Errorf("created %v, want %v", h.Created, created)
	}
	h.Created, want.Created = time.Time{}, time.Time{}
	if h != want {
		t.Errorf("header\n got %+v\nwant %+v", h, want)
	}
	if h.SectorSize < 512 || storage.BlockSize%h.SectorSize != 0 {
		t.Errorf("sector size %d", h.SectorSize)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(raw[:8]); got != "WINGMLUN" {
		t.Errorf("magic %q", got)
	}
	if err := l.Integrity().CheckHeader(testCtx(t)); err != nil {
		t.Errorf("check unchanged header: %v", err)
	}
	if l.Path() != path {
		t.Errorf("path %q", l.Path())
	}
}

func TestOpenForeignCluster(t *testing.T) {
	id := storage.NewUUID()
	path := lunFile(t, storage.FormatOptions{ClusterName: "alpha", ClusterUUID: id})
	for _, tc := range []struct {
		name string
		opts storage.OpenOptions
		ok   bool
	}{
		{"matching uuid and name", storage.OpenOptions{ClusterUUID: id, ClusterName: "alpha"}, true},
		{"no expectation", storage.OpenOptions{}, true},
		{"other uuid", storage.OpenOptions{ClusterUUID: storage.NewUUID()}, false},
		{"other name", storage.OpenOptions{ClusterName: "beta"}, false},
		{"right uuid, other name", storage.OpenOptions{ClusterUUID: id, ClusterName: "beta"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := storage.OpenPath(testCtx(t), path, tc.opts)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				l.Close()
				return
			}
			wantBlockErr(t, err, storage.ErrForeignCluster, path, 0)
			if !strings.Contains(err.Error(), "alpha") {
				t.Errorf("message %q does not name the LUN's cluster", err)
			}
		})
	}
}

func TestCorruptRecordsAreErrors(t *testing.T) {
	ctx := testCtx(t)
	geo := smallGeometry()

	t.Run("header", func(t *testing.T) {
		path := lunFile(t, storage.FormatOptions{})
		flipBit(t, path, 0, 60) // inside the cluster name
		_, err := storage.OpenPath(ctx, path, storage.OpenOptions{})
		wantBlockErr(t, err, storage.ErrCorrupt, path, 0)
	})
	t.Run("header magic", func(t *testing.T) {
		path := lunFile(t, storage.FormatOptions{})
		flipBit(t, path, 0, 2)
		_, err := storage.OpenPath(ctx, path, storage.OpenOptions{})
		wantBlockErr(t, err, storage.ErrNotFormatted, path, 0)
	})
	t.Run("slot", func(t *testing.T) {
		path := lunFile(t, storage.FormatOptions{})
		l := openLUN(t, path)
		acquire(t, l, 3, "kvm3")
		flipBit(t, path, slotBlock(3), 40)
		v, err := l.ReadSlot(ctx, 3)
		if err != nil {
			t.Fatal(err)
		}
		wantBlockErr(t, v.Err, storage.ErrCorrupt, path, slotBlock(3))
		views, err := l.ReadSlots(ctx)
		if err != nil {
			t.Fatal(err)
		}
		wantBlockErr(t, views[2].Err, storage.ErrCorrupt, path, slotBlock(3))
		if views[2].Used() {
			t.Error("a damaged slot reports Used")
		}
		for i, v := range views {
			if i != 2 && v.Err != nil {
				t.Errorf("slot %d: %v", i+1, v.Err)
			}
		}
	})
	t.Run("vm config", func(t *testing.T) {
		path := lunFile(t, storage.FormatOptions{})
		l := openLUN(t, path)
		me := storage.Owner{Host: 1, Gen: 1, Nonce: 7}
		idx, _, err := l.ProtectVM(ctx, me, storage.VMConfig{UUID: storage.NewUUID(), Name: "web1", XML: []byte("<domain/>")})
		if err != nil {
			t.Fatal(err)
		}
		block := vmConfigBlock(geo, idx, 0)
		flipBit(t, path, block, 260) // in the XML
		_, err = l.ReadVM(ctx, idx)
		wantBlockErr(t, err, storage.ErrCorrupt, path, block)
	})
}

// A torn write is never accepted as data: the header of an interrupted
// format and a torn heartbeat are both reported as damaged.
func TestTornWrites(t *testing.T) {
	ctx := testCtx(t)
	t.Run("format header", func(t *testing.T) {
		dir := t.TempDir()
		requireDirectIO(t, dir)
		path := filepath.Join(dir, "lun.img")
		if err := os.WriteFile(path, make([]byte, smallGeometry().Size()), 0o600); err != nil {
			t.Fatal(err)
		}
		fd, err := storage.OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		c := storagetest.NewController()
		dev := c.Device("h1", fd)
		defer dev.Close()
		// The first write to block 0 invalidates it; the second, the header, tears.
		c.Inject("h1", storagetest.Fault{Op: storagetest.Writes, From: 0, To: 1, Count: 1})
		c.Inject("h1", storagetest.Fault{Op: storagetest.Writes, From: 0, To: 1, TornAfter: 100})
		_, err = storage.Format(ctx, dev, storage.FormatOptions{ClusterName: "c", Geometry: smallGeometry(), Timings: raceTimings()})
		if err == nil {
			t.Fatal("format with a torn header write succeeded")
		}
		if c.Stats("h1").Torn != 1 {
			t.Fatalf("stats %+v", c.Stats("h1"))
		}
		_, err = storage.OpenPath(ctx, path, storage.OpenOptions{})
		wantBlockErr(t, err, storage.ErrCorrupt, path, 0)
	})
	t.Run("heartbeat", func(t *testing.T) {
		path := lunFile(t, storage.FormatOptions{})
		c := storagetest.NewController()
		l := faultLUN(t, path, c, "h1")
		hb := acquire(t, l, 2, "kvm2")
		c.Inject("h1", storagetest.Fault{Op: storagetest.Writes, From: slotBlock(2), To: slotBlock(2) + 1, TornAfter: 40, Count: 1})
		if _, err := hb.Renew(ctx); err == nil {
			t.Fatal("renew with a torn write succeeded")
		}
		peer := openLUN(t, path)
		v, err := peer.ReadSlot(ctx, 2)
		if err != nil {
			t.Fatal(err)
		}
		wantBlockErr(t, v.Err, storage.ErrCorrupt, path, slotBlock(2))
		// The owner heals its own slot on the next beat.
		if _, err := hb.Renew(ctx); err != nil {
			t.Fatalf("renew after a torn write: %v", err)
		}
		v, err = peer.ReadSlot(ctx, 2)
		if err != nil || v.Err != nil || v.Record.Sequence != hb.Record().Sequence {
			t.Fatalf("slot after heal: %+v, %v", v, err)
		}
	})
	t.Run("vm config update", func(t *testing.T) {
		path := lunFile(t, storage.FormatOptions{})
		c := storagetest.NewController()
		l := faultLUN(t, path, c, "h1")
		me := storage.Owner{Host: 1, Gen: 1, Nonce: 9}
		cfg := storage.VMConfig{UUID: storage.NewUUID(), Name: "db", XML: []byte("<domain>v1</domain>")}
		idx, lease, err := l.ProtectVM(ctx, me, cfg)
		if err != nil {
			t.Fatal(err)
		}
		geo := l.Header().Geometry
		b := vmConfigBlock(geo, idx, 1) // the update goes to the older (empty) copy B
		c.Inject("h1", storagetest.Fault{Op: storagetest.Writes, From: b, To: b + 1, TornAfter: 64, Count: 1})
		cfg.XML = []byte("<domain>v2</domain>")
		if _, err := l.WriteVMConfig(ctx, idx, lease, cfg); err == nil {
			t.Fatal("torn config write succeeded")
		}
		r, err := l.ReadVM(ctx, idx)
		if err != nil {
			t.Fatal(err)
		}
		if string(r.Config.XML) != "<domain>v1</domain>" {
			t.Errorf("config after torn update: %q", r.Config.XML)
		}
		wantBlockErr(t, r.Warning, storage.ErrCorrupt, path, b)
		if _, err := l.WriteVMConfig(ctx, idx, lease, cfg); err != nil {
			t.Fatal(err)
		}
		r, err = l.ReadVM(ctx, idx)
		if err != nil || r.Warning != nil || string(r.Config.XML) != "<domain>v2</domain>" {
			t.Fatalf("after rewrite: %+v %v", r, err)
		}
	})
}

func TestCheckHeaderAfterReformat(t *testing.T) {
	ctx := testCtx(t)
	path := lunFile(t, storage.FormatOptions{ClusterName: "one"})
	l := openLUN(t, path)
	dev, err := storage.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	if _, err := storage.Format(ctx, dev, storage.FormatOptions{ClusterName: "one", Geometry: smallGeometry(), Timings: raceTimings(), Force: true}); err != nil {
		t.Fatal(err)
	}
	err = l.Integrity().CheckHeader(ctx)
	wantBlockErr(t, err, storage.ErrHeaderChanged, path, 0)

	// A header damaged under a running host is a changed header too.
	flipBit(t, path, 0, 60)
	if err := l.Integrity().CheckHeader(ctx); !errors.Is(err, storage.ErrHeaderChanged) || !errors.Is(err, storage.ErrCorrupt) {
		t.Fatalf("damaged header: %v", err)
	}
}

func TestFormatRefusesData(t *testing.T) {
	ctx := testCtx(t)
	format := func(path string, force bool) error {
		dev, err := storage.OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		defer dev.Close()
		_, err = storage.Format(ctx, dev, storage.FormatOptions{ClusterName: "c", Geometry: smallGeometry(), Timings: raceTimings(), Force: force})
		return err
	}
	t.Run("ext4", func(t *testing.T) {
		mkfs, err := exec.LookPath("mkfs.ext4")
		if err != nil {
			t.Skip("skipping: mkfs.ext4 not installed (apt-get install e2fsprogs)")
		}
		dir := t.TempDir()
		requireDirectIO(t, dir)
		path := filepath.Join(dir, "fs.img")
		if err := os.WriteFile(path, make([]byte, 4<<20), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(mkfs, "-q", "-F", path).CombinedOutput(); err != nil {
			t.Skipf("skipping: mkfs.ext4 failed: %v: %s", err, out)
		}
		err = format(path, false)
		wantBlockErr(t, err, storage.ErrHasData, path, 0)
		if !strings.Contains(err.Error(), "ext2/ext3/ext4") {
			t.Errorf("message %q does not say what is there", err)
		}
		if err := format(path, true); err != nil {
			t.Fatalf("forced format: %v", err)
		}
		openLUN(t, path)
	})
	t.Run("wingman lun", func(t *testing.T) {
		path := lunFile(t, storage.FormatOptions{})
		err := format(path, false)
		wantBlockErr(t, err, storage.ErrHasData, path, 0)
		if !strings.Contains(err.Error(), "wingman LUN") {
			t.Errorf("message %q does not say what is there", err)
		}
		if err := format(path, true); err != nil {
			t.Fatalf("forced format: %v", err)
		}
	})
	t.Run("unrecognised data", func(t *testing.T) {
		dir := t.TempDir()
		requireDirectIO(t, dir)
		path := filepath.Join(dir, "junk.img")
		b := make([]byte, 1<<20)
		b[5000] = 1
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		wantBlockErr(t, format(path, false), storage.ErrHasData, path, 0)
	})
}

// A device that cannot grow (a block device; here a file behind the fault
// device, which hides Grow) must be big enough.
func TestFormatTooSmall(t *testing.T) {
	dir := t.TempDir()
	requireDirectIO(t, dir)
	path := filepath.Join(dir, "small.img")
	if err := os.WriteFile(path, make([]byte, 64*storage.BlockSize), 0o600); err != nil {
		t.Fatal(err)
	}
	fd, err := storage.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dev := storagetest.NewController().Device("h", fd)
	defer dev.Close()
	_, err = storage.Format(testCtx(t), dev, storage.FormatOptions{ClusterName: "c"})
	wantBlockErr(t, err, storage.ErrTooSmall, path, 0)
	var be *storage.BlockError
	errors.As(err, &be)
	if !strings.Contains(be.Hint, "larger LUN") {
		t.Errorf("hint %q says nothing about what to do", be.Hint)
	}
}

func TestFormatOptionsValidated(t *testing.T) {
	dir := t.TempDir()
	requireDirectIO(t, dir)
	path := filepath.Join(dir, "lun.img")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	dev, err := storage.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	unsafe := storage.DefaultTimings()
	unsafe.Dead = time.Second
	for _, tc := range []struct {
		name string
		opts storage.FormatOptions
		want error
	}{
		{"no name", storage.FormatOptions{}, storage.ErrInvalid},
		{"long name", storage.FormatOptions{ClusterName: strings.Repeat("x", 64)}, storage.ErrInvalid},
		{"control characters", storage.FormatOptions{ClusterName: "c\x1b[2J"}, storage.ErrInvalid},
		{"bad geometry", storage.FormatOptions{ClusterName: "c", Geometry: storage.Geometry{MaxHosts: 256, MaxVMs: 1, EventBlocks: 1, ConfigBlks: 2}}, storage.ErrBadGeometry},
		{"unsafe timings", storage.FormatOptions{ClusterName: "c", Timings: unsafe}, storage.ErrUnsafeTimings},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := storage.Format(testCtx(t), dev, tc.opts); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if st, _ := os.Stat(path); st.Size() != 0 {
		t.Errorf("a refused format grew the file to %d bytes", st.Size())
	}
}

func TestOpenRejectsTruncatedLUN(t *testing.T) {
	path := lunFile(t, storage.FormatOptions{})
	if err := os.Truncate(path, 8*storage.BlockSize); err != nil {
		t.Fatal(err)
	}
	_, err := storage.OpenPath(testCtx(t), path, storage.OpenOptions{})
	if !errors.Is(err, storage.ErrTooSmall) || !strings.Contains(err.Error(), path) {
		t.Fatalf("got %v, want ErrTooSmall naming %s", err, path)
	}
}

// A LUN opened read-only reads like any other, and every write fails with
// ErrReadOnly before it reaches the device.
func TestOpenReadOnly(t *testing.T) {
	ctx := testCtx(t)
	path := lunFile(t, storage.FormatOptions{})
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	l, err := storage.OpenPath(ctx, path, storage.OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.ReadSlots(ctx); err != nil {
		t.Errorf("read slots: %v", err)
	}
	cfg := storage.VMConfig{UUID: storage.NewUUID(), Name: "web", XML: []byte("<domain/>")}
	if _, _, err := l.ProtectVM(ctx, storage.Owner{Host: 1, Gen: 1, Nonce: 1}, cfg); !errors.Is(err, storage.ErrReadOnly) {
		t.Errorf("protect through a read-only LUN: %v, want ErrReadOnly", err)
	}
	dev, err := storage.OpenFileReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	if _, err := dev.WriteAt(make([]byte, storage.BlockSize), 0); !errors.Is(err, storage.ErrReadOnly) {
		t.Errorf("write: %v, want ErrReadOnly", err)
	}
	if err := dev.Grow(dev.Size() + storage.BlockSize); !errors.Is(err, storage.ErrReadOnly) {
		t.Errorf("grow: %v, want ErrReadOnly", err)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Error("the read-only LUN changed")
	}
}

// withCeiling is the default timings with lease ceiling c.
func withCeiling(c time.Duration) storage.Timings {
	t := storage.DefaultTimings()
	t.LeaseCeiling = c
	return t
}

func TestTimingsValidate(t *testing.T) {
	ms := time.Millisecond
	mk := func(r, io, f, w, d time.Duration) storage.Timings {
		return storage.Timings{Renew: r, IOTimeout: io, SelfFence: f, Watchdog: w, Dead: d}
	}
	for _, tc := range []struct {
		name string
		t    storage.Timings
		ok   bool
		says string // part of the message
	}{
		{"default", storage.DefaultTimings(), true, ""},
		{"fast", storage.FastTimings(), true, ""},
		{"race", raceTimings(), true, ""},
		{"test", testTimings(), true, ""},
		{"D exactly F+W+io+R", mk(1000*ms, 2000*ms, 4000*ms, 5000*ms, 12000*ms), true, ""},
		{"D below F+W+io+R", mk(1000*ms, 2000*ms, 4000*ms, 5000*ms, 11999*ms), false, "raise D to at least 12s"},
		{"F below R+io", mk(1000*ms, 2000*ms, 2999*ms, 5000*ms, 20000*ms), false, "raise F"},
		{"F not above path failover", storage.Timings{Renew: time.Second, IOTimeout: 2 * time.Second, SelfFence: 4 * time.Second,
			Watchdog: 5 * time.Second, Dead: 12 * time.Second, PathFailover: 4 * time.Second}, false, "path failover"},
		{"zero", storage.Timings{}, false, "at least 10ms"},
		{"sub-millisecond", mk(1000*ms+1, 2000*ms, 4000*ms, 5000*ms, 13000*ms), false, "whole milliseconds"},
		{"over an hour", mk(1000*ms, 2000*ms, 4000*ms, 5000*ms, 2*time.Hour), false, "below 1h"},
		{"lease ceiling absent (an older header)", mk(1000*ms, 2000*ms, 4000*ms, 5000*ms, 12000*ms), true, ""},
		{"lease ceiling F + 10s", withCeiling(14 * time.Second), true, ""},
		{"lease ceiling below F + 10s", withCeiling(13999 * ms), false, "raise it to at least 14s"},
		{"lease ceiling below path failover + 10s", func() storage.Timings {
			t := withCeiling(14 * time.Second)
			t.SelfFence, t.Dead, t.PathFailover = 6*time.Second, 14*time.Second, 5*time.Second
			return t
		}(), false, "max(F, path_failover) + 10s = 16s"},
		{"lease ceiling over an hour", withCeiling(2 * time.Hour), false, "below 1h"},
		{"negative lease ceiling", withCeiling(-time.Second), false, "lease_ceiling"},
		{"negative power fence", storage.Timings{Renew: time.Second, IOTimeout: 2 * time.Second, SelfFence: 4 * time.Second,
			Watchdog: 5 * time.Second, Dead: 12 * time.Second, PowerFence: -1}, false, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.t.Validate()
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, storage.ErrUnsafeTimings) {
				t.Fatalf("got %v, want ErrUnsafeTimings", err)
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Errorf("message %q does not say %q", err, tc.says)
			}
		})
	}
	if d := storage.DefaultTimings(); d.Ceiling() != 60*time.Second || (storage.Timings{}).Ceiling() != 60*time.Second {
		t.Errorf("default lease ceiling %v, of a header without one %v", d.Ceiling(), storage.Timings{}.Ceiling())
	}
	if d := storage.DefaultTimings(); d.MinDead() != 12*time.Second || d.Dead != d.MinDead() {
		t.Errorf("default D %v, MinDead %v", d.Dead, d.MinDead())
	}
	if f := storage.FastTimings(); f.MinDead() != 7500*ms {
		t.Errorf("fast MinDead %v", f.MinDead())
	}
	if _, err := storage.TimingsProfile("turbo"); !errors.Is(err, storage.ErrInvalid) {
		t.Errorf("unknown profile: %v", err)
	}
}

func TestUUIDParse(t *testing.T) {
	u := storage.NewUUID()
	got, err := storage.ParseUUID(u.String())
	if err != nil || got != u {
		t.Fatalf("round trip %s: %v %v", u, got, err)
	}
	for _, bad := range []string{"", "not-a-uuid", strings.Repeat("g", 8) + "-0000-0000-0000-000000000000"} {
		if _, err := storage.ParseUUID(bad); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("ParseUUID(%q): %v", bad, err)
		}
	}
}
