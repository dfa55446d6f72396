package hypervisor

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"libvirt.org/go/libvirt"
)

// ListDomains lists every domain libvirt knows on this host, running or
// defined, sorted by name. It is the source of truth the daemon rebuilds its
// picture from after a start or a resync.
func (c *Conn) ListDomains(ctx context.Context) ([]Domain, error) {
	op := fmt.Sprintf("list domains on %s", c.host)
	if err := ctx.Err(); err != nil {
		return nil, &opError{op: op, cause: err}
	}
	lc, gen, err := c.acquire(op)
	if err != nil {
		return nil, err
	}
	defer lc.Close()
	doms, err := lc.ListAllDomains(0)
	if err != nil {
		return nil, c.fail(lc, gen, op, err)
	}
	out := make([]Domain, 0, len(doms))
	var firstErr error
	for i := range doms {
		dom, err := describe(&doms[i])
		doms[i].Free()
		switch {
		case err == nil:
			out = append(out, dom)
		case libvirtCode(err) == libvirt.ERR_NO_DOMAIN:
			// Undefined between the listing and the query: it is gone.
		case firstErr == nil:
			firstErr = err
		}
	}
	if firstErr != nil {
		return nil, c.fail(lc, gen, op, firstErr)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Lookup returns one domain by name.
func (c *Conn) Lookup(ctx context.Context, name string) (Domain, error) {
	var dom Domain
	err := c.withDomain(ctx, fmt.Sprintf("look up domain %q on %s", name, c.host), name, func(d *libvirt.Domain) error {
		var err error
		dom, err = describe(d)
		return err
	})
	return dom, err
}

func describe(d *libvirt.Domain) (Domain, error) {
	name, err := d.GetName()
	if err != nil {
		return Domain{}, err
	}
	uuid, err := d.GetUUIDString()
	if err != nil {
		return Domain{}, err
	}
	state, reason, err := d.GetState()
	if err != nil {
		return Domain{}, err
	}
	info, err := d.GetInfo()
	if err != nil {
		return Domain{}, err
	}
	persistent, err := d.IsPersistent()
	if err != nil {
		return Domain{}, err
	}
	s := State(state)
	return Domain{
		Name:           name,
		UUID:           uuid,
		State:          s,
		Reason:         ReasonName(s, reason),
		ReasonCode:     reason,
		Persistent:     persistent,
		MemoryBytes:    info.Memory * 1024,
		MaxMemoryBytes: info.MaxMem * 1024,
		VCPUs:          int(info.NrVirtCpu),
	}, nil
}

// DomainXML returns the domain's persistent definition (inactive XML, with
// secure fields), suitable to define the same domain on another host.
func (c *Conn) DomainXML(ctx context.Context, name string) (string, error) {
	var doc string
	err := c.withDomain(ctx, fmt.Sprintf("get XML of domain %q on %s", name, c.host), name, func(d *libvirt.Domain) error {
		var err error
		doc, err = d.GetXMLDesc(libvirt.DOMAIN_XML_INACTIVE | libvirt.DOMAIN_XML_SECURE)
		return err
	})
	return doc, err
}

// Define stores a domain definition in libvirt (creating it, or updating an
// existing one with the same name and UUID) without starting it.
func (c *Conn) Define(ctx context.Context, domainXML string) (Domain, error) {
	spec, perr := ParseDomainXML(domainXML)
	op := fmt.Sprintf("define domain %q on %s", spec.Name, c.host)
	if perr != nil {
		return Domain{}, &opError{op: fmt.Sprintf("define domain on %s", c.host), class: ErrInvalidXML, cause: perr}
	}
	if err := ctx.Err(); err != nil {
		return Domain{}, &opError{op: op, cause: err}
	}
	lc, gen, err := c.acquire(op)
	if err != nil {
		return Domain{}, err
	}
	defer lc.Close()
	d, err := lc.DomainDefineXML(domainXML)
	if err != nil {
		switch libvirtCode(err) {
		case libvirt.ERR_OPERATION_FAILED, libvirt.ERR_INVALID_ARG, libvirt.ERR_CONFIG_UNSUPPORTED:
			// Name or UUID clash with another domain, a bad value, or
			// something this host cannot run (domain type, machine):
			// either way the XML is what must change.
			return Domain{}, &opError{op: op, class: ErrInvalidXML, cause: err}
		}
		return Domain{}, c.fail(lc, gen, op, err)
	}
	defer d.Free()
	dom, err := describe(d)
	if err != nil {
		return Domain{}, c.fail(lc, gen, op, err)
	}
	return dom, nil
}

// Undefine removes the domain's definition (with its managed-save image and
// snapshot/checkpoint metadata; NVRAM is kept). A running domain keeps
// running, as a transient domain, until it stops.
func (c *Conn) Undefine(ctx context.Context, name string) error {
	return c.withDomain(ctx, fmt.Sprintf("undefine domain %q on %s", name, c.host), name, func(d *libvirt.Domain) error {
		err := d.UndefineFlags(libvirt.DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
			libvirt.DOMAIN_UNDEFINE_CHECKPOINTS_METADATA | libvirt.DOMAIN_UNDEFINE_KEEP_NVRAM)
		if code := libvirtCode(err); code == libvirt.ERR_INVALID_ARG || code == libvirt.ERR_NO_SUPPORT {
			// Drivers without snapshots or NVRAM reject the flags.
			err = d.Undefine()
		}
		return err
	})
}

// Start boots a defined domain. A domain already running here fails with
// ErrAlreadyRunning: starting is never silently idempotent, because the
// caller's belief about where the VM runs was wrong.
//
// Starts run in parallel: beyond the first few at once, on spare connections
// (spares.go), because libvirtd serves only a few calls of one connection at
// a time.
func (c *Conn) Start(ctx context.Context, name string) error {
	op := fmt.Sprintf("start domain %q on %s", name, c.host)
	create := func(d *libvirt.Domain) error {
		err := d.Create()
		if err != nil && classify(err) == nil {
			// Drivers differ in the code they use (QEMU: operation invalid,
			// test:///: internal error), so ask the domain itself.
			if active, aerr := d.IsActive(); aerr == nil && active {
				return &opError{op: op, class: ErrAlreadyRunning, cause: err}
			}
		}
		return err
	}
	l, spare := c.starts.get()
	if l.s == nil {
		defer l.put(false)
		return c.withDomain(ctx, op, name, create)
	}
	broken := false
	defer func() { l.put(broken) }()
	if err := ctx.Err(); err != nil {
		return &opError{op: op, cause: err}
	}
	d, err := spare.LookupDomainByName(name)
	if err == nil {
		err = create(d)
		d.Free()
	}
	if err == nil {
		return nil
	}
	var oe *opError
	if errors.As(err, &oe) {
		return err
	}
	class := classify(err)
	if class == ErrConnection || (class == nil && mayBeConnectionLoss(err)) {
		if alive, aerr := spare.IsAlive(); aerr != nil || !alive {
			broken, class = true, ErrConnection
		}
	}
	return &opError{op: op, class: class, cause: err}
}

// Destroy powers the domain off at once (SIGTERM, then SIGKILL to QEMU). The
// definition stays. A domain that is not running fails with ErrNotRunning.
func (c *Conn) Destroy(ctx context.Context, name string) error {
	op := fmt.Sprintf("destroy domain %q on %s", name, c.host)
	return c.withDomain(ctx, op, name, func(d *libvirt.Domain) error {
		return notRunning(op, d, d.Destroy())
	})
}

// notRunning resolves an unclassified failure by looking at the domain: if
// it is not running, that is the reason. The code alone does not tell: QEMU
// says "operation invalid", test:/// "internal error", and "operation
// invalid" has other meanings too.
func notRunning(op string, d *libvirt.Domain, err error) error {
	if err != nil && classify(err) == nil {
		if active, aerr := d.IsActive(); aerr == nil && !active {
			return &opError{op: op, class: ErrNotRunning, cause: err}
		}
	}
	return err
}

// Shutdown asks the guest to power off (ACPI power button) and waits until
// it is off, at most opts.Timeout. Past the timeout it either destroys the
// domain (opts.DestroyOnTimeout; the result says Forced) or returns
// ErrTimeout and leaves the guest running.
func (c *Conn) Shutdown(ctx context.Context, name string, opts ShutdownOptions) (ShutdownResult, error) {
	op := fmt.Sprintf("shut down domain %q on %s", name, c.host)
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = c.cfg.ShutdownTimeout
	}
	start := time.Now()
	if dl, ok := ctx.Deadline(); ok && opts.DestroyOnTimeout {
		timeout = shutdownWait(timeout, dl.Sub(start))
	}
	err := c.withDomain(ctx, op, name, func(d *libvirt.Domain) error {
		err := d.ShutdownFlags(libvirt.DOMAIN_SHUTDOWN_ACPI_POWER_BTN)
		if code := libvirtCode(err); code == libvirt.ERR_INVALID_ARG || code == libvirt.ERR_NO_SUPPORT || code == libvirt.ERR_ARGUMENT_UNSUPPORTED {
			// Drivers without an ACPI button (test:///) take no flags.
			err = d.Shutdown()
		}
		return notRunning(op, d, err)
	})
	if err != nil {
		return ShutdownResult{}, err
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	werr := waitUntil(wctx, c.change.changes, c.cfg.PollInterval, func() (bool, error) {
		dom, err := c.Lookup(ctx, name)
		if errors.Is(err, ErrNotFound) {
			return true, nil // a transient domain vanishes when it stops
		}
		if err != nil {
			return false, err
		}
		return !dom.Active(), nil
	})
	switch {
	case werr == nil:
		return ShutdownResult{Took: time.Since(start)}, nil
	case errors.Is(werr, ErrTimeout) && ctx.Err() == nil:
		if !opts.DestroyOnTimeout {
			return ShutdownResult{}, &opError{op: op, class: ErrTimeout,
				cause: fmt.Errorf("guest still running %v after the ACPI shutdown request", timeout)}
		}
		if err := c.Destroy(ctx, name); err != nil && !errors.Is(err, ErrNotRunning) {
			return ShutdownResult{}, fmt.Errorf("%s: guest ignored the ACPI request for %v: %w", op, timeout, err)
		}
		return ShutdownResult{Forced: true, Took: time.Since(start)}, nil
	default:
		var oe *opError
		if errors.As(werr, &oe) {
			return ShutdownResult{}, werr
		}
		return ShutdownResult{}, &opError{op: op, cause: werr}
	}
}

// shutdownWait is how long a shutdown that destroys on timeout waits for
// the guest when its caller's deadline is left away: timeout, cut so that
// the destroy still fits before the deadline. Without the cut a guest that
// ignores the ACPI button outlives the caller (a freeze at host shutdown
// abandoned it running instead of destroying it). The destroy keeps a
// quarter of what is left, at most 15 s: libvirt's destroy sends SIGTERM,
// waits up to 10 s, then SIGKILL.
func shutdownWait(timeout, left time.Duration) time.Duration {
	reserve := min(15*time.Second, left/4)
	return max(min(timeout, left-reserve), 0)
}

// Resume continues a paused domain (after an I/O error was resolved, say).
func (c *Conn) Resume(ctx context.Context, name string) error {
	op := fmt.Sprintf("resume domain %q on %s", name, c.host)
	return c.withDomain(ctx, op, name, func(d *libvirt.Domain) error {
		err := d.Resume()
		if err != nil && classify(err) == nil {
			if active, aerr := d.IsActive(); aerr == nil && !active {
				return &opError{op: op, class: ErrNotRunning, cause: err}
			}
		}
		return err
	})
}
