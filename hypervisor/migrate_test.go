package hypervisor

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"libvirt.org/go/libvirt"
)

// The test:/// driver cannot migrate: these tests cover what Migrate decides
// before it asks libvirt (options, flags, parameters, lookups, error
// classes). The migration itself is tested against real libvirtd in
// test/integration.

func TestMigrateOptionsValidate(t *testing.T) {
	ok := MigrateOptions{DestURI: "qemu+tcp://10.77.0.2/system"}
	for _, tc := range []struct {
		name string
		mod  func(*MigrateOptions)
		want []string // substrings of the error; none means valid
	}{
		{"minimal", func(*MigrateOptions) {}, nil},
		{"everything", func(o *MigrateOptions) {
			o.MigrationURI, o.BandwidthMiBps, o.MaxDowntime, o.AutoConverge, o.Unsafe = "tcp://10.77.0.2", 100, 50*time.Millisecond, true, true
		}, nil},
		{"no destination", func(o *MigrateOptions) { o.DestURI = "" }, []string{"DestURI is empty"}},
		{"destination not a URI", func(o *MigrateOptions) { o.DestURI = "kvm2" }, []string{`DestURI "kvm2" is not a libvirt URI`}},
		{"migration URI not a URI", func(o *MigrateOptions) { o.MigrationURI = "10.77.0.2" }, []string{`MigrationURI "10.77.0.2"`}},
		{"negative downtime", func(o *MigrateOptions) { o.MaxDowntime = -time.Millisecond }, []string{"MaxDowntime -1ms must not be negative"}},
		{"sub-millisecond downtime", func(o *MigrateOptions) { o.MaxDowntime = 500 * time.Microsecond }, []string{"below 1ms"}},
		{"two errors", func(o *MigrateOptions) { o.DestURI, o.MaxDowntime = "", -1 }, []string{"DestURI is empty", "MaxDowntime"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := ok
			tc.mod(&o)
			err := o.validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("validate() = nil, want an error with %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("validate() = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestMigrateFlags(t *testing.T) {
	always := libvirt.MIGRATE_LIVE | libvirt.MIGRATE_PEER2PEER | libvirt.MIGRATE_PERSIST_DEST | libvirt.MIGRATE_UNDEFINE_SOURCE
	for _, tc := range []struct {
		name string
		opts MigrateOptions
		want libvirt.DomainMigrateFlags
	}{
		{"defaults", MigrateOptions{}, always},
		{"unsafe only when asked", MigrateOptions{Unsafe: true}, always | libvirt.MIGRATE_UNSAFE},
		{"auto-converge", MigrateOptions{AutoConverge: true}, always | libvirt.MIGRATE_AUTO_CONVERGE},
		{"both", MigrateOptions{AutoConverge: true, Unsafe: true}, always | libvirt.MIGRATE_AUTO_CONVERGE | libvirt.MIGRATE_UNSAFE},
		// Bandwidth and downtime are parameters, not flags.
		{"bandwidth", MigrateOptions{BandwidthMiBps: 1, MaxDowntime: time.Second}, always},
	} {
		if got := migrateFlags(tc.opts); got != tc.want {
			t.Errorf("%s: flags %#x, want %#x", tc.name, got, tc.want)
		}
	}
}

func TestMigrateParams(t *testing.T) {
	p := migrateParams(MigrateOptions{DestURI: "qemu+tcp://h2/system"})
	if p.URISet || p.BandwidthSet {
		t.Errorf("params for defaults = %+v, want none set (libvirt chooses)", p)
	}
	p = migrateParams(MigrateOptions{DestURI: "qemu+tcp://h2/system", MigrationURI: "tcp://10.77.0.2", BandwidthMiBps: 7})
	if !p.URISet || p.URI != "tcp://10.77.0.2" || !p.BandwidthSet || p.Bandwidth != 7 {
		t.Errorf("params = %+v, want URI tcp://10.77.0.2 and bandwidth 7 MiB/s", p)
	}
}

func TestProgressFrom(t *testing.T) {
	p := progressFrom(&libvirt.DomainJobInfo{
		Type: libvirt.DOMAIN_JOB_UNBOUNDED, TimeElapsedSet: true, TimeElapsed: 1500,
		DataTotalSet: true, DataTotal: 400, DataProcessedSet: true, DataProcessed: 100, DataRemainingSet: true, DataRemaining: 300,
		MemIterationSet: true, MemIteration: 2, DowntimeSet: true, Downtime: 12,
	})
	want := MigrationProgress{Elapsed: 1500 * time.Millisecond, DataProcessed: 100, DataRemaining: 300, DataTotal: 400,
		Percent: 25, MemIteration: 2, ExpectedDowntime: 12 * time.Millisecond, ExpectedDowntimeKnown: true}
	if p != want {
		t.Errorf("progressFrom = %+v, want %+v", p, want)
	}
	// Nothing known yet: no division by zero, no downtime.
	if p := progressFrom(&libvirt.DomainJobInfo{Type: libvirt.DOMAIN_JOB_UNBOUNDED}); p != (MigrationProgress{}) {
		t.Errorf("progressFrom(empty) = %+v, want zero", p)
	}
	// More sent than the (growing) total claims: capped.
	if p := progressFrom(&libvirt.DomainJobInfo{DataTotal: 10, DataProcessed: 11}); p.Percent != 100 {
		t.Errorf("Percent = %v, want 100", p.Percent)
	}
}

func TestApplyCompletedStats(t *testing.T) {
	var r MigrationResult
	r.applyCompletedStats(&libvirt.DomainJobInfo{TimeElapsedSet: true, TimeElapsed: 300, DowntimeSet: true, Downtime: 15,
		DataProcessedSet: true, DataProcessed: 1 << 20})
	if r.JobTime != 300*time.Millisecond || !r.DowntimeKnown || r.Downtime != 15*time.Millisecond || r.DataTransferred != 1<<20 {
		t.Errorf("result = %+v", r)
	}
	r = MigrationResult{}
	r.applyCompletedStats(&libvirt.DomainJobInfo{})
	if r.DowntimeKnown {
		t.Errorf("downtime known without statistics: %+v", r)
	}
}

func TestDestinationUnreachable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{lvErr(libvirt.ERR_OPERATION_FAILED, "Failed to connect to remote libvirt URI qemu+tcp://10.77.0.9/system: unable to connect to server at '10.77.0.9:16509': No route to host"), true},
		{lvErr(libvirt.ERR_SYSTEM_ERROR, "unable to connect to server at '10.77.0.2:1': Connection refused"), true}, // seen with libvirt 9.0
		{lvErr(libvirt.ERR_OPERATION_FAILED, "Lost connection to destination host"), true},
		{lvErr(libvirt.ERR_OPERATION_ABORTED, "operation aborted: migration out job: canceled by client"), false},
		{lvErr(libvirt.ERR_OPERATION_INVALID, "Requested operation is not valid: domain is not running"), false},
		{errors.New("failed to connect to remote libvirt uri (not from libvirt)"), false},
	} {
		if got := destinationUnreachable(tc.err); got != tc.want {
			t.Errorf("destinationUnreachable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// Against test:///: everything Migrate checks before libvirt migrates, and
// the driver's own refusal classified.
func TestMigrateBeforeLibvirt(t *testing.T) {
	c := dialHost(t, "kvm1")
	ctx := testCtx(t)
	dest := MigrateOptions{DestURI: "qemu+tcp://10.77.0.2/system", Unsafe: true}
	for _, tc := range []struct {
		name   string
		domain string
		opts   MigrateOptions
		is     []error
		text   string
	}{
		{"invalid options", "web1", MigrateOptions{}, []error{ErrMigrationFailed}, "DestURI is empty"},
		{"no such domain", "nope", dest, []error{ErrNotFound, ErrMigrationFailed}, `migrate domain "nope" from kvm1 to qemu+tcp://10.77.0.2/system`},
		{"shut off", "db1", dest, []error{ErrNotRunning, ErrMigrationFailed}, `migrate domain "db1" from kvm1`},
		// Looked up by UUID, named by name.
		{"shut off by UUID", "3f6b1c0e-9a51-4c1e-8d2a-000000000002", dest, []error{ErrNotRunning}, `migrate domain "db1" from kvm1`},
		{"driver cannot migrate", "web1", dest, []error{ErrUnsupported, ErrMigrationFailed}, `migrate domain "web1" from kvm1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Migrate(ctx, tc.domain, tc.opts)
			for _, target := range tc.is {
				if !errors.Is(err, target) {
					t.Errorf("Migrate = %v, want errors.Is %v", err, target)
				}
			}
			if err == nil || !strings.Contains(err.Error(), tc.text) {
				t.Errorf("Migrate = %v, want it to contain %q", err, tc.text)
			}
		})
	}
	if d, err := c.Lookup(ctx, "web1"); err != nil || d.State != StateRunning {
		t.Errorf("web1 after the refused migration: %+v, %v; want still running", d, err)
	}
}

func TestMigrateCancelledBeforeStart(t *testing.T) {
	c := dialHost(t, "kvm1")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := c.Migrate(ctx, "web1", MigrateOptions{DestURI: "qemu+tcp://10.77.0.2/system"})
	if !errors.Is(err, ErrMigrationFailed) || !errors.Is(err, ctx.Err()) {
		t.Errorf("Migrate with a cancelled context = %v, want ErrMigrationFailed and the context's error", err)
	}
}

func TestAbortMigrationBeforeLibvirt(t *testing.T) {
	c := dialHost(t, "kvm1")
	ctx := testCtx(t)
	wantErrIs(t, c.AbortMigration(ctx, "nope"), ErrNotFound)
	wantErrIs(t, c.AbortMigration(ctx, "db1"), ErrNotRunning)
	// test:/// has no job statistics; a real libvirtd without a job says
	// ErrNoMigration (test/integration).
	if err := c.AbortMigration(ctx, "web1"); !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrNoMigration) {
		t.Errorf("AbortMigration(web1) = %v, want ErrUnsupported or ErrNoMigration", err)
	}
}
