package heartbeat

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/storage"
)

// instantFence confirms every power-off at once, like a fence agent whose
// device answers immediately.
type instantFence struct {
	mu  sync.Mutex
	ids quorum.Set
}

func (f *instantFence) PowerOff(context.Context, int) (bool, error) { return true, nil }
func (f *instantFence) Fenceable() quorum.Set                       { f.mu.Lock(); defer f.mu.Unlock(); return f.ids }

// BenchmarkDeadVerdict measures, on a real LUN file with three heartbeat
// loops, the time from one host's loop stopping (a power loss) to the
// coordinator's dead verdict: with the default timings (D = 12 s), the fast
// profile (D = 7.5 s), and with an instantly confirming power fence (S = 3 s
// plus serf's detection, here instant). Each iteration takes about D.
func BenchmarkDeadVerdict(b *testing.B) {
	for _, tc := range []struct {
		name  string
		t     storage.Timings
		fence bool
	}{
		{"default", storage.DefaultTimings(), false},
		{"fast", storage.FastTimings(), false},
		{"fast+power-fence", storage.FastTimings(), true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var total time.Duration
			for range b.N {
				total += deadVerdictOnce(b, tc.t, tc.fence)
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/verdict")
		})
	}
}

func deadVerdictOnce(b *testing.B, t storage.Timings, withFence bool) time.Duration {
	b.StopTimer()
	defer b.StartTimer()
	dir := b.TempDir()
	path := filepath.Join(dir, "lun.img")
	os.WriteFile(path, nil, 0o600)
	dev, err := storage.OpenFile(path)
	if err != nil {
		b.Skipf("no O_DIRECT here: %v", err)
	}
	ctx := context.Background()
	if _, err := storage.Format(ctx, dev, storage.FormatOptions{ClusterName: "bench", Timings: t,
		Geometry: storage.Geometry{MaxHosts: 4, MaxVMs: 1, EventBlocks: 1, ConfigBlks: 2}}); err != nil {
		b.Fatal(err)
	}
	dev.Close()
	n := &network{group: map[int]int{}, up: map[int]bool{}, loops: map[int]*Loop{}}
	declared := make(chan time.Time, 8)
	var cancels []context.CancelFunc
	var dones []chan struct{}
	fencer := &instantFence{ids: quorum.SetOf(3)}
	for id := 1; id <= 3; id++ {
		lun, err := storage.OpenPath(ctx, path, storage.OpenOptions{})
		if err != nil {
			b.Fatal(err)
		}
		defer lun.Close()
		slot, err := lun.AcquireSlot(ctx, storage.AcquireOptions{HostName: fmt.Sprintf("kvm%d", id), HostID: id})
		if err != nil {
			b.Fatal(err)
		}
		slot.SetState(storage.SlotAlive)
		cfg := Config{Timings: Timings(t, time.Second), Slot: slot, LUN: lun, Serf: member{n: n, self: id}, VMs: &vms{},
			OnEvent: func(e Event) {
				if e.Kind == "declared-dead" && e.Subject == 3 {
					declared <- time.Now()
				}
			}}
		if withFence {
			cfg.Power = fencer
		}
		loop, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		n.mu.Lock()
		n.up[id], n.loops[id] = true, loop
		n.mu.Unlock()
		lctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { loop.Run(lctx); close(done) }()
		cancels, dones = append(cancels, cancel), append(dones, done)
	}
	defer func() {
		for i, c := range cancels {
			c()
			<-dones[i]
		}
	}()
	// Wait until host 1 has read the LUN freshly for D (as in a running cluster).
	for {
		in := n.loops[1].input()
		if in.ReadFreshSince != quorum.Never && in.Now-in.ReadFreshSince >= t.Dead {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.StartTimer()
	stopped := time.Now()
	cancels[2]()
	<-dones[2]
	n.mu.Lock()
	n.up[3] = false
	n.mu.Unlock()
	at := <-declared
	b.StopTimer()
	return at.Sub(stopped)
}
