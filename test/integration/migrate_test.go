package integration

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"libvirt.org/go/libvirt"

	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/test/cluster"
)

// migrate live-migrates name from src to dst as hypervisor.MigrateOptions describes it:
// peer-to-peer, persistent on the destination, source definition undefined, and the downtime
// from libvirt's statistics of the completed job.
//
// It goes through libvirt directly, not through hypervisor.Conn.Migrate, so that the cluster's
// migration path (and the benchmark) is checked independently of the adapter under test.
func migrate(ctx context.Context, src, dst *cluster.Host, name string, opts hypervisor.MigrateOptions) (hypervisor.MigrationResult, error) {
	op := fmt.Sprintf("migrate %q from %s to %s", name, src.Name(), dst.Name())
	lc, err := libvirt.NewConnect(src.URI())
	if err != nil {
		return hypervisor.MigrationResult{}, fmt.Errorf("%s: %w", op, err)
	}
	defer lc.Close()
	dom, err := lc.LookupDomainByName(name)
	if err != nil {
		return hypervisor.MigrationResult{}, fmt.Errorf("%s: %w", op, err)
	}
	defer dom.Free()
	flags := libvirt.MIGRATE_LIVE | libvirt.MIGRATE_PEER2PEER | libvirt.MIGRATE_PERSIST_DEST | libvirt.MIGRATE_UNDEFINE_SOURCE
	if opts.Unsafe {
		flags |= libvirt.MIGRATE_UNSAFE
	}
	if opts.AutoConverge {
		flags |= libvirt.MIGRATE_AUTO_CONVERGE
	}
	params := &libvirt.DomainMigrateParameters{}
	if opts.MigrationURI != "" {
		params.URISet, params.URI = true, opts.MigrationURI
	}
	if opts.BandwidthMiBps > 0 {
		params.BandwidthSet, params.Bandwidth = true, opts.BandwidthMiBps
	}
	if opts.MaxDowntime > 0 {
		if err := dom.MigrateSetMaxDowntime(uint64(opts.MaxDowntime/time.Millisecond), 0); err != nil {
			return hypervisor.MigrationResult{}, fmt.Errorf("%s: set max downtime: %w", op, err)
		}
	}

	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- dom.MigrateToURI3(opts.DestURI, params, flags) }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			wall := time.Since(start)
			if err != nil {
				return hypervisor.MigrationResult{Wall: wall}, fmt.Errorf("%s: %w", op, err)
			}
			return completedStats(dst, name, wall)
		case <-ctx.Done():
			_ = dom.AbortJob()
			ctx = context.Background() // abort once, then wait for the migration to end
		case <-tick.C:
			if opts.Progress == nil {
				continue
			}
			info, err := dom.GetJobStats(0)
			if err != nil || info.Type == libvirt.DOMAIN_JOB_NONE {
				continue
			}
			opts.Progress(hypervisor.MigrationProgress{
				Elapsed:       time.Duration(info.TimeElapsed) * time.Millisecond,
				DataProcessed: info.DataProcessed,
				DataRemaining: info.DataRemaining,
				DataTotal:     info.DataTotal,
				MemIteration:  info.MemIteration,
			})
		}
	}
}

// completedStats reads the statistics of the completed migration job on the destination
// (libvirt hands them over with the guest), for its downtime.
func completedStats(dst *cluster.Host, name string, wall time.Duration) (hypervisor.MigrationResult, error) {
	res := hypervisor.MigrationResult{Wall: wall}
	lc, err := libvirt.NewConnect(dst.URI())
	if err != nil {
		return res, fmt.Errorf("completed migration statistics of %q on %s: %w", name, dst.Name(), err)
	}
	defer lc.Close()
	dom, err := lc.LookupDomainByName(name)
	if err != nil {
		return res, fmt.Errorf("completed migration statistics of %q on %s: %w", name, dst.Name(), err)
	}
	defer dom.Free()
	info, err := dom.GetJobStats(libvirt.DOMAIN_JOB_STATS_COMPLETED)
	if err != nil {
		return res, fmt.Errorf("completed migration statistics of %q on %s: %w", name, dst.Name(), err)
	}
	res.JobTime = time.Duration(info.TimeElapsed) * time.Millisecond
	res.Downtime, res.DowntimeKnown = time.Duration(info.Downtime)*time.Millisecond, info.DowntimeSet
	res.DataTransferred = info.DataProcessed
	return res, nil
}

// abortMigration aborts the migration job of name on src, as an operator's abort would from
// another connection.
func abortMigration(src *cluster.Host, name string) error {
	lc, err := libvirt.NewConnect(src.URI())
	if err != nil {
		return err
	}
	defer lc.Close()
	dom, err := lc.LookupDomainByName(name)
	if err != nil {
		return err
	}
	defer dom.Free()
	return dom.AbortJob()
}

// migrateOptions are the options of every migration in the test cluster: to dst's libvirtd as
// the source host sees it, unsafe because the shared directory is plain ext4.
func migrateOptions(dst *cluster.Host) hypervisor.MigrateOptions {
	return hypervisor.MigrateOptions{DestURI: dst.MigrationURI(), Unsafe: true}
}

// assertRunsOn checks that name runs on host (through on) and on no other host (through
// others), and that the QEMU processes agree.
func assertRunsOn(t testing.TB, ctx context.Context, name string, host *cluster.Host, on *hypervisor.Conn, others map[*cluster.Host]*hypervisor.Conn) {
	t.Helper()
	d, err := on.Lookup(ctx, name)
	if err != nil || d.State != hypervisor.StateRunning {
		t.Errorf("%q on %s: %+v, %v; want running", name, host.Name(), d, err)
	}
	if _, ok, err := guestProcess(host, name); err != nil || !ok {
		t.Errorf("%q: no QEMU process on %s (err %v)", name, host.Name(), err)
	}
	for h, conn := range others {
		d, err := conn.Lookup(ctx, name)
		switch {
		case errors.Is(err, hypervisor.ErrNotFound):
		case err != nil:
			t.Errorf("%q on %s: %v", name, h.Name(), err)
		case d.Active():
			t.Errorf("%q is also active on %s: %+v", name, h.Name(), d)
		}
		waitFor(t, ctx, fmt.Sprintf("no QEMU of %q on %s", name, h.Name()), func() (bool, error) {
			_, ok, err := guestProcess(h, name)
			return !ok, err
		})
	}
}

// TestLiveMigration moves a running guest to the other host and back, and checks each time that
// it runs on the destination only, persistently, with its definition gone from the source, and
// that libvirt reported the downtime.
func TestLiveMigration(t *testing.T) {
	c := sharedCluster(t)
	ctx := testContext(t)
	h1, h2 := c.Hosts()[0], c.Hosts()[1]
	conn1, conn2 := dial(t, h1), dial(t, h2)
	name := guestName(t, "vm")
	newGuest(t, ctx, c, conn1, name)
	startGuest(t, ctx, conn1, name)
	events2 := subscribe(t, ctx, conn2)

	for _, hop := range []struct {
		src, dst           *cluster.Host
		srcConn, dstConn   *hypervisor.Conn
		dstEvents          <-chan hypervisor.Event
		wantStartedOnEvent bool
	}{
		{h1, h2, conn1, conn2, events2, true},
		{h2, h1, conn2, conn1, nil, false},
	} {
		var samples []hypervisor.MigrationProgress
		opts := migrateOptions(hop.dst)
		opts.Progress = func(p hypervisor.MigrationProgress) { samples = append(samples, p) }
		res, err := migrate(ctx, hop.src, hop.dst, name, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s -> %s: wall %v, job %v, downtime %v (known %v), %d bytes, %d progress samples",
			hop.src.Name(), hop.dst.Name(), res.Wall, res.JobTime, res.Downtime, res.DowntimeKnown, res.DataTransferred, len(samples))
		if !res.DowntimeKnown || res.Downtime <= 0 || res.Downtime > res.JobTime || res.JobTime > res.Wall+time.Second {
			t.Errorf("migration statistics %+v: want a positive downtime below the job time", res)
		}
		if res.DataTransferred == 0 {
			t.Errorf("migration statistics %+v: no data transferred", res)
		}
		assertRunsOn(t, ctx, name, hop.dst, hop.dstConn, map[*cluster.Host]*hypervisor.Conn{hop.src: hop.srcConn})
		d, err := hop.dstConn.Lookup(ctx, name)
		if err != nil || !d.Persistent || d.Reason != "migrated" {
			t.Errorf("%q on the destination %s: %+v, %v; want persistent, running/migrated", name, hop.dst.Name(), d, err)
		}
		if _, err := hop.srcConn.Lookup(ctx, name); !errors.Is(err, hypervisor.ErrNotFound) {
			t.Errorf("%q on the source %s after the migration: %v; want its definition gone (ErrNotFound)", name, hop.src.Name(), err)
		}
		if hop.dstEvents != nil {
			waitEvent(t, ctx, hop.dstEvents, "the migrated guest's start event on "+hop.dst.Name(), func(ev hypervisor.Event) bool {
				return ev.Domain == name && ev.Kind == hypervisor.EventStarted && ev.Detail == "migrated"
			})
		}
	}
}

// TestMigrationAbort starts a migration throttled to 1 MiB/s with a 1 ms downtime limit (so that
// it cannot finish on its own in time), aborts it once progress shows data moving, and checks that
// the guest still runs on the source only, with its definition there.
func TestMigrationAbort(t *testing.T) {
	c := sharedCluster(t)
	ctx := testContext(t)
	h1, h2 := c.Hosts()[0], c.Hosts()[1]
	conn1, conn2 := dial(t, h1), dial(t, h2)
	name := guestName(t, "vm")
	newGuest(t, ctx, c, conn1, name)
	startGuest(t, ctx, conn1, name)

	// Throttled, this migration takes about 1.5 s; the abort follows the first progress sample
	// showing data sent (after about 0.3 s) within 20 ms. Should a very slow machine let it finish
	// first anyway, the guest is moved back and the abort tried again.
	var err error
	for attempt := 1; ; attempt++ {
		var completed bool
		completed, err = abortOnProgress(t, ctx, h1, h2, name)
		if !completed {
			break
		}
		if attempt == 3 {
			t.Fatalf("the throttled migration completed before the abort %d times", attempt)
		}
		t.Logf("attempt %d: the migration completed before the abort; moving the guest back to retry", attempt)
		if _, err := migrate(ctx, h2, h1, name, migrateOptions(h1)); err != nil {
			t.Fatal(err)
		}
	}
	var lerr libvirt.Error
	if !errors.As(err, &lerr) || lerr.Code != libvirt.ERR_OPERATION_ABORTED {
		t.Fatalf("aborted migration returned %v; want libvirt's operation aborted", err)
	}
	t.Logf("aborted: %v", err)
	d := waitState(t, ctx, conn1, name, hypervisor.StateRunning)
	if !d.Persistent {
		t.Errorf("%q on the source after the abort: %+v, want its definition kept", name, d)
	}
	assertRunsOn(t, ctx, name, h1, conn1, map[*cluster.Host]*hypervisor.Conn{h2: conn2})
	if _, err := conn2.Lookup(ctx, name); !errors.Is(err, hypervisor.ErrNotFound) {
		t.Errorf("%q on the destination after the abort: %v, want ErrNotFound", name, err)
	}
}

// abortOnProgress starts a migration of name from src to dst throttled to 1 MiB/s with a 1 ms
// downtime limit, and aborts it from another connection as soon as progress shows data sent. It
// returns the migration's error, or completed if the migration won the race.
func abortOnProgress(t *testing.T, ctx context.Context, src, dst *cluster.Host, name string) (completed bool, err error) {
	started := make(chan hypervisor.MigrationProgress, 1)
	opts := migrateOptions(dst)
	opts.BandwidthMiBps = 1
	opts.MaxDowntime = time.Millisecond
	opts.Progress = func(p hypervisor.MigrationProgress) {
		if p.DataProcessed > 0 {
			select {
			case started <- p:
			default:
			}
		}
	}
	done := make(chan error, 1)
	go func() {
		_, err := migrate(ctx, src, dst, name, opts)
		done <- err
	}()
	select {
	case p := <-started:
		t.Logf("aborting at %+v", p)
		aerr := abortMigration(src, name)
		err = <-done
		if err == nil {
			return true, nil
		}
		if aerr != nil {
			t.Errorf("abort: %v", aerr)
		}
		return false, err
	case err = <-done:
		if err == nil {
			return true, nil
		}
		t.Fatalf("the throttled migration failed before progress showed it started: %v", err)
	case <-ctx.Done():
		t.Fatalf("no migration progress: %v", ctx.Err())
	}
	return false, nil
}

// BenchmarkLiveMigration migrates an idle 64 MiB guest back and forth between two hosts, ten
// migrations per iteration, and reports the minimum, median and maximum of the wall time and of
// the downtime libvirt measured, in milliseconds.
func BenchmarkLiveMigration(b *testing.B) {
	const perIteration = 10
	c := sharedCluster(b)
	ctx := testContext(b)
	hosts := c.Hosts()
	conn := dial(b, hosts[0])
	name := guestName(b, "vm")
	newGuest(b, ctx, c, conn, name)
	startGuest(b, ctx, conn, name)

	var walls, downs []time.Duration
	at := 0
	b.ResetTimer()
	for range b.N {
		for range perIteration {
			src, dst := hosts[at], hosts[1-at]
			res, err := migrate(ctx, src, dst, name, migrateOptions(dst))
			if err != nil {
				b.Fatal(err)
			}
			if !res.DowntimeKnown {
				b.Fatalf("%s -> %s: no downtime in the completed job's statistics", src.Name(), dst.Name())
			}
			walls, downs = append(walls, res.Wall), append(downs, res.Downtime)
			at = 1 - at
		}
	}
	b.StopTimer()
	report := func(unit string, ds []time.Duration) {
		slices.Sort(ds)
		ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
		b.ReportMetric(ms(ds[0]), unit+"-min-ms")
		b.ReportMetric(ms(median(ds)), unit+"-median-ms")
		b.ReportMetric(ms(ds[len(ds)-1]), unit+"-max-ms")
	}
	report("wall", walls)
	report("downtime", downs)
	b.ReportMetric(float64(len(walls)), "migrations")
}

// median of sorted durations.
func median(ds []time.Duration) time.Duration {
	n := len(ds)
	if n%2 == 1 {
		return ds[n/2]
	}
	return (ds[n/2-1] + ds[n/2]) / 2
}
