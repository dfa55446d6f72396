package hypervisor

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"libvirt.org/go/libvirt"
)

// Migrate live-migrates the running domain nameOrUUID (its name, or its UUID
// when no domain has that name) from this host to the libvirtd at
// opts.DestURI, and returns when the guest runs there or the migration has
// failed.
//
// The migration is live and peer-to-peer (this host's libvirtd talks to the
// destination's; this process needs no connection to it), the definition is
// made persistent on the destination and removed here on success. While it
// runs, opts.Progress is called with samples of libvirt's job statistics.
// The result's Downtime comes from the statistics of the completed job that
// the source's libvirtd sends as a job-completed event before it undefines
// the domain.
//
// When ctx ends during the migration, Migrate asks libvirt to abort it and
// waits, at most Config.MigrationAbortTimeout, for the outcome: normally an
// error wrapping ErrMigrationAborted with the guest still running here. A
// cancellation that comes after the switch-over cannot undo the migration:
// then Migrate reports success, because the guest runs on the destination.
//
// Every failure wraps ErrMigrationFailed together with its class where one
// is known (ErrMigrationAborted, ErrDestinationUnreachable, ErrNotRunning,
// ErrNotFound, ErrConnection, ...); the guest keeps running here unless the
// error is ErrTimeout (outcome unknown: list the domains on both hosts).
func (c *Conn) Migrate(ctx context.Context, nameOrUUID string, opts MigrateOptions) (MigrationResult, error) {
	op := fmt.Sprintf("migrate domain %q from %s to %s", nameOrUUID, c.host, opts.DestURI)
	if err := opts.validate(); err != nil {
		return MigrationResult{}, &opError{op: op, class: ErrMigrationFailed, cause: err}
	}
	if err := ctx.Err(); err != nil {
		return MigrationResult{}, &opError{op: op, also: ErrMigrationFailed, cause: err}
	}
	lc, gen, err := c.acquire(op)
	if err != nil {
		return MigrationResult{}, withMigrationFailed(err)
	}
	defer lc.Close()
	d, err := lookupDomain(lc, nameOrUUID)
	if err != nil {
		return MigrationResult{}, withMigrationFailed(c.fail(lc, gen, op, err))
	}
	defer d.Free()
	name, err := d.GetName()
	if err != nil {
		return MigrationResult{}, withMigrationFailed(c.fail(lc, gen, op, err))
	}
	op = fmt.Sprintf("migrate domain %q from %s to %s", name, c.host, opts.DestURI)
	uuid, err := d.GetUUIDString()
	if err != nil {
		return MigrationResult{}, withMigrationFailed(c.fail(lc, gen, op, err))
	}
	if active, err := d.IsActive(); err != nil {
		return MigrationResult{}, withMigrationFailed(c.fail(lc, gen, op, err))
	} else if !active {
		return MigrationResult{}, &opError{op: op, class: ErrNotRunning, also: ErrMigrationFailed}
	}

	// Register for the job-completed event before the job can complete.
	completed := make(chan libvirt.DomainJobInfo, 1)
	c.jobsMu.Lock()
	if _, busy := c.jobs[uuid]; busy {
		c.jobsMu.Unlock()
		return MigrationResult{}, &opError{op: op, class: ErrMigrationFailed,
			cause: errors.New("another migration of this domain is running through this connection")}
	}
	c.jobs[uuid] = completed
	c.jobsMu.Unlock()
	defer func() {
		c.jobsMu.Lock()
		delete(c.jobs, uuid)
		c.jobsMu.Unlock()
	}()

	// libvirt has no migration parameter for the downtime limit: it is a
	// setting of the running QEMU. Put the old one back if the guest stays.
	restoreDowntime := func() {}
	if opts.MaxDowntime > 0 {
		prev, prevErr := d.MigrateGetMaxDowntime(0)
		if err := d.MigrateSetMaxDowntime(uint64(opts.MaxDowntime/time.Millisecond), 0); err != nil {
			return MigrationResult{}, withMigrationFailed(c.fail(lc, gen, op+": set max downtime", notRunning(op, d, err)))
		}
		if prevErr == nil {
			restoreDowntime = func() { _ = d.MigrateSetMaxDowntime(prev, 0) }
		}
	}

	// The migration call blocks until the end; it and the sampler run on
	// goroutines of their own, each with its own reference to the domain,
	// so that Migrate can return even if libvirt never answers them.
	if err := d.Ref(); err != nil {
		return MigrationResult{}, withMigrationFailed(c.fail(lc, gen, op, err))
	}
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		defer d.Free()
		done <- d.MigrateToURI3(opts.DestURI, migrateParams(opts), migrateFlags(opts))
	}()
	if opts.Progress != nil {
		if s := startSampling(d, c.cfg.MigrationProgressInterval, opts.Progress); s != nil {
			defer s.stop()
		}
	}

	var (
		migErr       error
		cancelled    bool
		abortTimeout <-chan time.Time
		stopAborting = make(chan struct{})
	)
	defer close(stopAborting)
	ctxDone := ctx.Done()
wait:
	for {
		select {
		case migErr = <-done:
			break wait
		case <-ctxDone:
			ctxDone, cancelled = nil, true
			abortJob(d, stopAborting)
			t := time.NewTimer(c.cfg.MigrationAbortTimeout)
			defer t.Stop()
			abortTimeout = t.C
		case <-abortTimeout:
			return MigrationResult{Wall: time.Since(start)}, &opError{op: op, class: ErrTimeout,
				cause: fmt.Errorf("migration still running %v after the abort request (%w); it may yet complete: list the domains on both hosts",
					c.cfg.MigrationAbortTimeout, context.Cause(ctx))}
		}
	}
	res := MigrationResult{Wall: time.Since(start)}
	if migErr != nil {
		restoreDowntime()
		if cancelled && libvirtCode(migErr) == libvirt.ERR_OPERATION_ABORTED {
			return res, &opError{op: op, class: ErrMigrationAborted, also: ErrMigrationFailed,
				cause: fmt.Errorf("cancelled by the caller: %w", context.Cause(ctx))}
		}
		return res, c.migrationFailed(lc, gen, op, d, migErr)
	}

	statsWait := time.NewTimer(c.cfg.JobStatsWait)
	defer statsWait.Stop()
	select {
	case info := <-completed:
		res.applyCompletedStats(&info)
	case <-statsWait.C:
	}
	return res, nil
}

// AbortMigration aborts the outgoing migration of domain nameOrUUID on this
// host, for example one that Migrate runs for another caller. It returns
// once libvirt accepted the request; that Migrate then returns an error
// wrapping ErrMigrationAborted, and the guest keeps running here. A domain
// without a migration job gives ErrNoMigration (the migration may have ended
// already); libvirt refuses to abort a migration that is past switch-over.
func (c *Conn) AbortMigration(ctx context.Context, nameOrUUID string) error {
	op := fmt.Sprintf("abort migration of domain %q on %s", nameOrUUID, c.host)
	if err := ctx.Err(); err != nil {
		return &opError{op: op, cause: err}
	}
	lc, gen, err := c.acquire(op)
	if err != nil {
		return err
	}
	defer lc.Close()
	d, err := lookupDomain(lc, nameOrUUID)
	if err != nil {
		return c.fail(lc, gen, op, err)
	}
	defer d.Free()
	if name, err := d.GetName(); err == nil {
		op = fmt.Sprintf("abort migration of domain %q on %s", name, c.host)
	}
	if active, err := d.IsActive(); err == nil && !active {
		return &opError{op: op, class: ErrNotRunning}
	}
	info, err := d.GetJobStats(0)
	if err != nil {
		return c.fail(lc, gen, op, notRunning(op, d, err))
	}
	if info.Type == libvirt.DOMAIN_JOB_NONE {
		return &opError{op: op, class: ErrNoMigration}
	}
	if info.OperationSet && info.Operation != libvirt.DOMAIN_JOB_OPERATION_MIGRATION_OUT &&
		info.Operation != libvirt.DOMAIN_JOB_OPERATION_MIGRATION_IN {
		return &opError{op: op, class: ErrNoMigration,
			cause: fmt.Errorf("the domain's job is not a migration (libvirt job operation %d); not aborting it", int(info.Operation))}
	}
	if err := d.AbortJob(); err != nil {
		if libvirtCode(err) == libvirt.ERR_OPERATION_INVALID {
			// "no job is active": it ended between the two calls.
			if info, serr := d.GetJobStats(0); serr == nil && info.Type == libvirt.DOMAIN_JOB_NONE {
				return &opError{op: op, class: ErrNoMigration, cause: err}
			}
		}
		return c.fail(lc, gen, op, notRunning(op, d, err))
	}
	return nil
}

// validate rejects options that cannot work, saying what to change.
func (o MigrateOptions) validate() error {
	var errs []error
	if o.DestURI == "" {
		errs = append(errs, errors.New("DestURI is empty: set the destination libvirtd's URI as the source host sees it, e.g. qemu+tcp://10.77.0.2/system"))
	} else if u, err := url.Parse(o.DestURI); err != nil || u.Scheme == "" {
		errs = append(errs, fmt.Errorf("DestURI %q is not a libvirt URI such as qemu+tcp://10.77.0.2/system", o.DestURI))
	}
	if o.MigrationURI != "" {
		if u, err := url.Parse(o.MigrationURI); err != nil || u.Scheme == "" {
			errs = append(errs, fmt.Errorf("MigrationURI %q is not a URI such as tcp://10.77.0.2", o.MigrationURI))
		}
	}
	switch {
	case o.MaxDowntime < 0:
		errs = append(errs, fmt.Errorf("MaxDowntime %v must not be negative", o.MaxDowntime))
	case o.MaxDowntime > 0 && o.MaxDowntime < time.Millisecond:
		errs = append(errs, fmt.Errorf("MaxDowntime %v is below 1ms: libvirt counts whole milliseconds", o.MaxDowntime))
	}
	return errors.Join(errs...)
}

// migrateFlags are the libvirt flags for opts: always live, peer-to-peer,
// persistent on the destination and undefined on the source.
func migrateFlags(o MigrateOptions) libvirt.DomainMigrateFlags {
	f := libvirt.MIGRATE_LIVE | libvirt.MIGRATE_PEER2PEER | libvirt.MIGRATE_PERSIST_DEST | libvirt.MIGRATE_UNDEFINE_SOURCE
	if o.AutoConverge {
		f |= libvirt.MIGRATE_AUTO_CONVERGE
	}
	if o.Unsafe {
		f |= libvirt.MIGRATE_UNSAFE
	}
	return f
}

// migrateParams are the typed parameters for opts.
func migrateParams(o MigrateOptions) *libvirt.DomainMigrateParameters {
	p := &libvirt.DomainMigrateParameters{}
	if o.MigrationURI != "" {
		p.URISet, p.URI = true, o.MigrationURI
	}
	if o.BandwidthMiBps > 0 {
		p.BandwidthSet, p.Bandwidth = true, o.BandwidthMiBps
	}
	return p
}

// progressFrom turns libvirt's statistics of a running job into a sample.
func progressFrom(info *libvirt.DomainJobInfo) MigrationProgress {
	p := MigrationProgress{
		Elapsed:       time.Duration(info.TimeElapsed) * time.Millisecond,
		DataProcessed: info.DataProcessed,
		DataRemaining: info.DataRemaining,
		DataTotal:     info.DataTotal,
		MemIteration:  info.MemIteration,
	}
	if p.DataTotal > 0 {
		p.Percent = min(100, 100*float64(p.DataProcessed)/float64(p.DataTotal))
	}
	if info.DowntimeSet {
		p.ExpectedDowntime, p.ExpectedDowntimeKnown = time.Duration(info.Downtime)*time.Millisecond, true
	}
	return p
}

// applyCompletedStats fills the result from libvirt's statistics of the
// completed job.
func (r *MigrationResult) applyCompletedStats(info *libvirt.DomainJobInfo) {
	if info.TimeElapsedSet {
		r.JobTime = time.Duration(info.TimeElapsed) * time.Millisecond
	}
	if info.DowntimeSet {
		r.Downtime, r.DowntimeKnown = time.Duration(info.Downtime)*time.Millisecond, true
	}
	if info.DataProcessedSet {
		r.DataTransferred = info.DataProcessed
	}
}

// migrationFailed classifies the error of a failed migration call.
func (c *Conn) migrationFailed(lc *libvirt.Connect, gen uint64, op string, d *libvirt.Domain, err error) error {
	switch {
	case destinationUnreachable(err):
		return &opError{op: op, class: ErrDestinationUnreachable, also: ErrMigrationFailed, cause: err}
	case libvirtCode(err) == libvirt.ERR_ARGUMENT_UNSUPPORTED:
		// "p2p migration is not supported by the source host" (test:///).
		return &opError{op: op, class: ErrUnsupported, also: ErrMigrationFailed, cause: err}
	}
	return withMigrationFailed(c.fail(lc, gen, op, notRunning(op, d, err)))
}

// unreachableMarkers are the messages with which libvirt's peer-to-peer
// migration reports that the destination libvirtd could not be reached or
// was lost; libvirt gives them generic codes (operation failed, system
// error), so only the text tells. The source's own connection is local (a
// unix socket) or, when remote, fails with other messages.
var unreachableMarkers = []string{
	"failed to connect to remote libvirt uri",
	"unable to connect to server at", // libvirt 9.0: refused, no route, timed out
	"cannot resolve address",
	"lost connection to destination host",
}

func destinationUnreachable(err error) bool {
	var lv libvirt.Error
	if !errors.As(err, &lv) {
		return false
	}
	msg := strings.ToLower(lv.Message)
	for _, m := range unreachableMarkers {
		if strings.Contains(msg, m) {
			return true
		}
	}
	return false
}

// withMigrationFailed adds ErrMigrationFailed to an operation's error.
func withMigrationFailed(err error) error {
	var oe *opError
	if errors.As(err, &oe) && oe.class != ErrMigrationFailed && oe.also == nil {
		oe.also = ErrMigrationFailed
	}
	return err
}

// lookupDomain finds a domain by name, or by UUID when no domain has that
// name and it is one.
func lookupDomain(lc *libvirt.Connect, nameOrUUID string) (*libvirt.Domain, error) {
	d, err := lc.LookupDomainByName(nameOrUUID)
	if err == nil || libvirtCode(err) != libvirt.ERR_NO_DOMAIN {
		return d, err
	}
	if u := canonicalUUID(nameOrUUID); len(u) == 36 && strings.Count(u, "-") == 4 {
		if d, uerr := lc.LookupDomainByUUIDString(u); uerr == nil {
			return d, nil
		}
	}
	return nil, err
}

// abortJob asks libvirt to abort d's migration, on a goroutine of its own
// with its own reference to d, so that a libvirtd that does not answer
// cannot hold up Migrate. An abort that arrives before libvirt has started
// the job fails with "no job"; it is repeated until the migration ends
// (stop is closed) or libvirt accepts it.
func abortJob(d *libvirt.Domain, stop <-chan struct{}) {
	if err := d.Ref(); err != nil {
		return
	}
	go func() {
		defer d.Free()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			err := d.AbortJob()
			if err == nil || libvirtCode(err) != libvirt.ERR_OPERATION_INVALID {
				return
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
}

// sampler polls a migration job's statistics and hands them to a callback.
// It never calls the callback after stop has returned.
type sampler struct {
	mu      sync.Mutex
	stopped bool
	quit    chan struct{}
}

// startSampling starts polling d every interval; nil if d cannot be
// referenced for the sampling goroutine.
func startSampling(d *libvirt.Domain, every time.Duration, fn func(MigrationProgress)) *sampler {
	if err := d.Ref(); err != nil {
		return nil
	}
	s := &sampler{quit: make(chan struct{})}
	go func() {
		defer d.Free()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-s.quit:
				return
			case <-t.C:
			}
			info, err := d.GetJobStats(0)
			if err != nil || info.Type == libvirt.DOMAIN_JOB_NONE ||
				(info.OperationSet && info.Operation != libvirt.DOMAIN_JOB_OPERATION_MIGRATION_OUT) {
				continue // not started yet, or over
			}
			p := progressFrom(info)
			s.mu.Lock()
			if !s.stopped {
				fn(p)
			}
			s.mu.Unlock()
		}
	}()
	return s
}

// stop ends the sampling; it waits only for a callback in progress.
func (s *sampler) stop() {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	close(s.quit)
}
