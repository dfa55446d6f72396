package integration

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/test/cluster"
)

// These tests drive live migration through the adapter's own hypervisor.Conn.Migrate and
// AbortMigration (migrate_test.go does the same through libvirt directly).

// progressLog collects the samples Migrate hands to MigrateOptions.Progress.
type progressLog struct {
	mu      sync.Mutex
	samples []hypervisor.MigrationProgress
	moving  chan hypervisor.MigrationProgress // gets the first sample showing data sent
}

func newProgressLog() *progressLog {
	return &progressLog{moving: make(chan hypervisor.MigrationProgress, 1)}
}

func (l *progressLog) record(p hypervisor.MigrationProgress) {
	l.mu.Lock()
	l.samples = append(l.samples, p)
	l.mu.Unlock()
	if p.DataProcessed > 0 {
		select {
		case l.moving <- p:
		default:
		}
	}
}

func (l *progressLog) all() []hypervisor.MigrationProgress {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]hypervisor.MigrationProgress(nil), l.samples...)
}

// TestAdapterMigrate moves a running 64 MiB guest from host 1 to host 2 by name and back by
// UUID through Conn.Migrate, and checks each time where it runs, its definitions, the progress
// samples and the statistics of the completed job.
func TestAdapterMigrate(t *testing.T) {
	c := sharedCluster(t)
	ctx := testContext(t)
	h1, h2 := c.Hosts()[0], c.Hosts()[1]
	conn1, conn2 := dial(t, h1), dial(t, h2)
	spec := newGuest(t, ctx, c, conn1, guestName(t, "vm"))
	startGuest(t, ctx, conn1, spec.Name)
	dom, err := conn1.Lookup(ctx, spec.Name)
	if err != nil {
		t.Fatal(err)
	}

	for _, hop := range []struct {
		src, dst         *cluster.Host
		srcConn, dstConn *hypervisor.Conn
		by               string // name or UUID
	}{
		{h1, h2, conn1, conn2, spec.Name},
		{h2, h1, conn2, conn1, dom.UUID},
	} {
		progress := newProgressLog()
		opts := migrateOptions(hop.dst)
		opts.Progress = progress.record
		res, err := hop.srcConn.Migrate(ctx, hop.by, opts)
		if err != nil {
			t.Fatal(err)
		}
		samples := progress.all()
		t.Logf("%s -> %s (by %q): wall %v, job %v, downtime %v (known %v), %d bytes, %d progress samples",
			hop.src.Name(), hop.dst.Name(), hop.by, res.Wall, res.JobTime, res.Downtime, res.DowntimeKnown, res.DataTransferred, len(samples))
		for i, p := range samples {
			t.Logf("  sample %d: %+v", i, p)
			if p.DataTotal > 0 && (p.Percent < 0 || p.Percent > 100) {
				t.Errorf("sample %d: percent %v out of 0..100", i, p.Percent)
			}
		}

		// The completed job's statistics are the proof that libvirt ran a live migration: a
		// positive downtime, below the job's time, which is below what the caller waited. Progress
		// samples come every 20 ms while the job runs; a job that short may end before the
		// first one, so zero samples is only wrong for a job that took several intervals.
		if !res.DowntimeKnown || res.Downtime <= 0 || res.Downtime > res.JobTime || res.Downtime > 2*time.Second {
			t.Errorf("result %+v: want a known downtime above 0, below the job time and 2s", res)
		}
		if res.JobTime <= 0 || res.JobTime > res.Wall+time.Second {
			t.Errorf("result %+v: want a job time above 0 and not above the wall time", res)
		}
		if res.DataTransferred == 0 {
			t.Errorf("result %+v: no data transferred", res)
		}
		if len(samples) == 0 && res.JobTime > 10*testConfig(hop.src).MigrationProgressInterval {
			t.Errorf("no progress sample during a %v job (sampling every %v)", res.JobTime, testConfig(hop.src).MigrationProgressInterval)
		}

		assertRunsOn(t, ctx, spec.Name, hop.dst, hop.dstConn, map[*cluster.Host]*hypervisor.Conn{hop.src: hop.srcConn})
		d, err := hop.dstConn.Lookup(ctx, spec.Name)
		if err != nil || !d.Persistent || d.Reason != "migrated" || d.UUID != dom.UUID {
			t.Errorf("%q on the destination %s: %+v, %v; want persistent, running/migrated, UUID %s", spec.Name, hop.dst.Name(), d, err, dom.UUID)
		}
		if _, err := hop.srcConn.Lookup(ctx, spec.Name); !errors.Is(err, hypervisor.ErrNotFound) {
			t.Errorf("%q on the source %s after the migration: %v; want its definition gone (ErrNotFound)", spec.Name, hop.src.Name(), err)
		}
	}
}

// throttledOptions make a migration to dst that cannot finish on its own while the test looks:
// 1 MiB/s and a 1 ms downtime limit, which the remaining dirty memory never fits into.
func throttledOptions(dst *cluster.Host, progress *progressLog) hypervisor.MigrateOptions {
	opts := migrateOptions(dst)
	opts.BandwidthMiBps = 1
	opts.MaxDowntime = time.Millisecond
	opts.Progress = progress.record
	return opts
}

// startMigration runs conn.Migrate on a goroutine and waits until progress shows data moving.
func startMigration(t *testing.T, ctx context.Context, conn *hypervisor.Conn, name string, opts hypervisor.MigrateOptions, progress *progressLog) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := conn.Migrate(ctx, name, opts)
		done <- err
	}()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	select {
	case p := <-progress.moving:
		t.Logf("migrating: %+v", p)
	case err := <-done:
		t.Fatalf("the throttled migration ended before progress showed data moving: %v", err)
	case <-timer.C:
		t.Fatalf("no progress showing data moving within %v", waitTimeout)
	}
	return done
}

// assertStayedOnSource checks that name still runs on src only, with its definition there and
// none on dst.
func assertStayedOnSource(t *testing.T, ctx context.Context, name string, src, dst *cluster.Host, srcConn, dstConn *hypervisor.Conn) {
	t.Helper()
	d := waitState(t, ctx, srcConn, name, hypervisor.StateRunning)
	if !d.Persistent {
		t.Errorf("%q on the source %s: %+v; want its definition kept", name, src.Name(), d)
	}
	assertRunsOn(t, ctx, name, src, srcConn, map[*cluster.Host]*hypervisor.Conn{dst: dstConn})
	waitFor(t, ctx, fmt.Sprintf("no domain %q on %s", name, dst.Name()), func() (bool, error) {
		_, err := dstConn.Lookup(ctx, name)
		return errors.Is(err, hypervisor.ErrNotFound), err
	})
}

// TestAdapterMigrateCancel cancels Migrate's context while a throttled migration runs: Migrate
// aborts it and reports ErrMigrationAborted with the context's error, and the guest stays on the
// source. Once the guest has settled, a second migration of it succeeds.
func TestAdapterMigrateCancel(t *testing.T) {
	c := sharedCluster(t)
	ctx := testContext(t)
	h1, h2 := c.Hosts()[0], c.Hosts()[1]
	conn1, conn2 := dial(t, h1), dial(t, h2)
	name := guestName(t, "vm")
	newGuest(t, ctx, c, conn1, name)
	startGuest(t, ctx, conn1, name)

	progress := newProgressLog()
	mctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := startMigration(t, mctx, conn1, name, throttledOptions(h2, progress), progress)
	cancelled := time.Now()
	cancel()
	var err error
	select {
	case err = <-done:
	case <-time.After(waitTimeout):
		t.Fatalf("Migrate did not return within %v of the cancellation", waitTimeout)
	}
	t.Logf("Migrate returned %v after the cancellation, %d progress samples: %v", time.Since(cancelled), len(progress.all()), err)
	for _, want := range []error{hypervisor.ErrMigrationAborted, hypervisor.ErrMigrationFailed, context.Canceled} {
		if !errors.Is(err, want) {
			t.Errorf("Migrate after the cancellation = %v; want errors.Is %v", err, want)
		}
	}
	assertStayedOnSource(t, ctx, name, h1, h2, conn1, conn2)

	// Nothing left to abort.
	if err := conn1.AbortMigration(ctx, name); !errors.Is(err, hypervisor.ErrNoMigration) {
		t.Errorf("AbortMigration with no migration running = %v; want ErrNoMigration", err)
	}
	// The aborted migration left nothing behind that stops the next one (the downtime limit was
	// put back, or the unthrottled migration would not converge).
	res, err := conn1.Migrate(ctx, name, migrateOptions(h2))
	if err != nil {
		t.Fatalf("migration after the aborted one: %v", err)
	}
	t.Logf("migration after the aborted one: %+v", res)
	assertRunsOn(t, ctx, name, h2, conn2, map[*cluster.Host]*hypervisor.Conn{h1: conn1})
}

// TestAdapterAbortMigration aborts a throttled migration from a second connection with
// AbortMigration, as an operator would: Migrate reports ErrMigrationAborted (not a
// cancellation) and the guest stays on the source.
func TestAdapterAbortMigration(t *testing.T) {
	c := sharedCluster(t)
	ctx := testContext(t)
	h1, h2 := c.Hosts()[0], c.Hosts()[1]
	conn1, conn2 := dial(t, h1), dial(t, h2)
	operator := dial(t, h1)
	name := guestName(t, "vm")
	newGuest(t, ctx, c, conn1, name)
	startGuest(t, ctx, conn1, name)

	// The abort goes in as soon as libvirt has the job, not after a progress sample: the test
	// guest's memory is nearly all zero pages, so even at 1 MiB/s the copy may be over by the
	// first sample under load, and an abort that late finds a migration already switching over.
	done := make(chan error, 1)
	go func() {
		_, err := conn1.Migrate(ctx, name, throttledOptions(h2, newProgressLog()))
		done <- err
	}()
	var err error
	for aborted := false; !aborted; {
		switch aerr := operator.AbortMigration(ctx, name); {
		case aerr == nil:
			aborted = true
		case errors.Is(aerr, hypervisor.ErrNoMigration):
			select { // not started yet: ask again
			case err = <-done:
				t.Fatalf("the migration ended before it could be aborted: %v", err)
			case <-time.After(10 * time.Millisecond):
			}
		default:
			t.Fatalf("AbortMigration: %v", aerr)
		}
	}
	err = <-done
	t.Logf("Migrate after AbortMigration: %v", err)
	if !errors.Is(err, hypervisor.ErrMigrationAborted) || !errors.Is(err, hypervisor.ErrMigrationFailed) {
		t.Errorf("Migrate = %v; want ErrMigrationAborted and ErrMigrationFailed", err)
	}
	if errors.Is(err, context.Canceled) {
		t.Errorf("Migrate = %v; nobody cancelled its context", err)
	}
	assertStayedOnSource(t, ctx, name, h1, h2, conn1, conn2)
}

// TestAdapterMigrateUnreachable migrates to a destination URI where no libvirtd listens: the
// error says so (ErrDestinationUnreachable) and the guest keeps running on the source.
func TestAdapterMigrateUnreachable(t *testing.T) {
	c := sharedCluster(t)
	ctx := testContext(t)
	h1, h2 := c.Hosts()[0], c.Hosts()[1]
	conn1, conn2 := dial(t, h1), dial(t, h2)
	name := guestName(t, "vm")
	newGuest(t, ctx, c, conn1, name)
	startGuest(t, ctx, conn1, name)

	opts := migrateOptions(h2)
	opts.DestURI = fmt.Sprintf("qemu+tcp://%s:1/system", h2.Addr()) // nothing listens on port 1
	_, err := conn1.Migrate(ctx, name, opts)
	t.Logf("Migrate to %s: %v", opts.DestURI, err)
	if !errors.Is(err, hypervisor.ErrDestinationUnreachable) || !errors.Is(err, hypervisor.ErrMigrationFailed) {
		t.Errorf("Migrate = %v; want ErrDestinationUnreachable and ErrMigrationFailed", err)
	}
	assertStayedOnSource(t, ctx, name, h1, h2, conn1, conn2)
}
