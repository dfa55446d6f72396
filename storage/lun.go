package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
)

// formatIOTimeout bounds each I/O while formatting or reading the header,
// before the LUN's own io_timeout is known.
const formatIOTimeout = 30 * time.Second

// FormatOptions says how to lay out a new LUN.
type FormatOptions struct {
	ClusterName string    // required; shown in every message about this LUN
	ClusterUUID UUID      // zero: a new random UUID
	Geometry    Geometry  // zero: DefaultGeometry
	Timings     Timings   // zero: DefaultTimings
	Force       bool      // overwrite recognisable data (a filesystem, a partition table, another LUN)
	Now         time.Time // creation time recorded in the header; zero: time.Now()
}

// Format writes an empty LUN: every region zeroed, then the header, so that
// an interrupted format never leaves a valid-looking LUN behind. It refuses a
// device that holds recognisable data unless opts.Force is set. It formats a
// set of 1 (see FormatSet).
func Format(ctx context.Context, dev Device, opts FormatOptions) (*Header, error) {
	hdrs, err := FormatSet(ctx, []Device{dev}, opts)
	if err != nil {
		return nil, err
	}
	return hdrs[0], nil
}

// complete fills in opts' defaults and checks them, for the LUN at path.
func (opts FormatOptions) complete(path string) (FormatOptions, error) {
	if err := CheckClusterName(opts.ClusterName); err != nil {
		return opts, fmt.Errorf("format %s: %w", path, err)
	}
	if opts.Geometry == (Geometry{}) {
		opts.Geometry = DefaultGeometry()
	}
	if opts.Timings == (Timings{}) {
		opts.Timings = DefaultTimings()
	}
	if err := opts.Geometry.Validate(); err != nil {
		return opts, fmt.Errorf("format %s: %w", path, err)
	}
	if err := opts.Timings.Validate(); err != nil {
		return opts, fmt.Errorf("format %s: %w", path, err)
	}
	if opts.ClusterUUID.IsZero() {
		opts.ClusterUUID = NewUUID()
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	return opts, nil
}

// formatMember zeroes dev's regions, header first, for member of a set of
// size (1: a lone LUN) with id, and returns what writes its header; opts
// is complete. A set's headers are written only once every member is
// zeroed, so an interrupted format leaves no valid-looking set behind.
func formatMember(ctx context.Context, dev Device, opts FormatOptions, size, member int, id UUID) (func() (*Header, error), error) {
	path := dev.Path()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("format %s: %w", path, err) // nothing written
	}
	need := opts.Geometry.Size()
	if g, ok := dev.(interface{ Grow(int64) error }); ok && dev.Size() < need {
		// Probe the existing content before growing a regular file.
		if err := refuseData(ctx, dev, opts.Force); err != nil {
			return nil, err
		}
		if err := g.Grow(need); err != nil {
			return nil, err
		}
	}
	if dev.Size() < need {
		return nil, &BlockError{Path: path, Block: 0, What: "format", Err: ErrTooSmall,
			Hint: fmt.Sprintf("%d hosts and %d VMs need %d bytes (%.1f MiB) but the device has %d; use a larger LUN or fewer --vms/--hosts",
				opts.Geometry.MaxHosts, opts.Geometry.MaxVMs, need, float64(need)/(1<<20), dev.Size())}
	}
	if err := refuseData(ctx, dev, opts.Force); err != nil {
		return nil, err
	}
	bio := newBoundedIO(dev, formatIOTimeout)
	// Invalidate the old header first: a crash mid-format must not leave an old valid header over new regions.
	if err := bio.write(ctx, 0, make([]byte, BlockSize)); err != nil {
		return nil, fmt.Errorf("format %s: %w", path, err)
	}
	const chunk = 256 // blocks per write (1 MiB)
	zero := make([]byte, chunk*BlockSize)
	for b := int64(1); b < opts.Geometry.TotalBlocks(); b += chunk {
		n := min(int64(chunk), opts.Geometry.TotalBlocks()-b)
		if err := bio.write(ctx, b*BlockSize, zero[:n*BlockSize]); err != nil {
			return nil, fmt.Errorf("format %s: zero regions: %w", path, err)
		}
	}
	h := &Header{Version: FormatVersion, ClusterUUID: opts.ClusterUUID, ClusterName: opts.ClusterName,
		SectorSize: dev.SectorSize(), Geometry: opts.Geometry, Timings: opts.Timings, Created: opts.Now,
		SetID: id}
	if size > 1 {
		h.SetSize, h.SetMember = size, member
	}
	return func() (*Header, error) {
		if err := bio.write(ctx, 0, h.encode()); err != nil {
			return nil, fmt.Errorf("format %s: write header: %w", path, err)
		}
		return h, nil
	}, nil
}

// CheckClusterName checks a cluster name for a new LUN: 1 to 63 bytes, no
// control characters (the name is shown in every message about the LUN).
func CheckClusterName(name string) error {
	if name == "" || len(name) > 63 {
		return fmt.Errorf("cluster name %q has %d bytes; give 1 to 63: %w", name, len(name), ErrInvalid)
	}
	if strings.ContainsFunc(name, unicode.IsControl) {
		return fmt.Errorf("cluster name %q has control characters; use letters, digits and punctuation: %w", name, ErrInvalid)
	}
	return nil
}

// refuseData fails with ErrHasData when the start of the device holds
// anything recognisable and force is not set.
func refuseData(ctx context.Context, dev Device, force bool) error {
	if force {
		return nil
	}
	n := min(int64(probeBytes), dev.Size()/BlockSize*BlockSize)
	if n == 0 {
		return nil
	}
	b, err := newBoundedIO(dev, formatIOTimeout).read(ctx, 0, int(n))
	if err != nil {
		return fmt.Errorf("format %s: probe existing data: %w", dev.Path(), err)
	}
	if what := Recognise(b); what != "" {
		return &BlockError{Path: dev.Path(), Block: 0, What: "format", Err: fmt.Errorf("%w: %s", ErrHasData, what),
			Hint: "formatting would destroy it; check the path, or pass --force if you are sure"}
	}
	return nil
}

// OpenOptions says which cluster the caller expects.
type OpenOptions struct {
	ClusterUUID UUID   // if non-zero, the LUN must belong to this cluster
	ClusterName string // if non-empty, the LUN must carry this name
	// ObserveIO, if set, is told of every I/O the LUN (each member of a set) issues once it ends:
	// a write or a read, how long it took (until io_timeout when it timed
	// out) and its error. It must not block; metrics hang on it.
	ObserveIO func(write bool, took time.Duration, err error)
	// ReadOnly makes OpenPath open the device for reading only (see
	// OpenFileReadOnly): for tools that only read, such as lun dump.
	ReadOnly bool
}

// LUN is an opened, verified heartbeat LUN, or set of LUNs (see OpenSet).
type LUN struct {
	lunSet
	hdr Header // the first intact member's
	dmg damage
}

// Open reads and verifies the header and returns the LUN, a set of 1. It
// does not take ownership of dev until it succeeds; Close closes dev.
func Open(ctx context.Context, dev Device, opts OpenOptions) (*LUN, error) {
	return OpenSet(ctx, []Device{dev}, opts)
}

// openMember reads and verifies dev's header: the member, and its block 0.
func openMember(ctx context.Context, dev Device, opts OpenOptions) (*member, []byte, error) {
	b, err := newBoundedIO(dev, formatIOTimeout).read(ctx, 0, BlockSize)
	if err != nil {
		return nil, nil, fmt.Errorf("open lun: %w", err)
	}
	h, err := decodeHeader(dev.Path(), b)
	if err != nil {
		return nil, nil, err
	}
	if !opts.ClusterUUID.IsZero() && opts.ClusterUUID != h.ClusterUUID {
		return nil, nil, &BlockError{Path: dev.Path(), Block: 0, What: "header", Err: ErrForeignCluster,
			Hint: fmt.Sprintf("it belongs to cluster %q (%s), not %s; check the LUN path in the configuration", h.ClusterName, h.ClusterUUID, opts.ClusterUUID)}
	}
	if opts.ClusterName != "" && opts.ClusterName != h.ClusterName {
		return nil, nil, &BlockError{Path: dev.Path(), Block: 0, What: "header", Err: ErrForeignCluster,
			Hint: fmt.Sprintf("it belongs to cluster %q (%s), not %q; check the LUN path in the configuration", h.ClusterName, h.ClusterUUID, opts.ClusterName)}
	}
	if dev.Size() < h.Geometry.Size() {
		return nil, nil, &BlockError{Path: dev.Path(), Block: h.Geometry.TotalBlocks() - 1, What: "header", Err: ErrTooSmall,
			Hint: fmt.Sprintf("the header needs %d bytes but the device has %d; was it truncated, or is this the wrong device?", h.Geometry.Size(), dev.Size())}
	}
	bio := newBoundedIO(dev, h.Timings.IOTimeout)
	bio.observe = opts.ObserveIO
	m := &member{dev: dev, io: bio, want: *h}
	m.hw.raw = b[:BlockSize:BlockSize]
	return m, b, nil
}

// OpenPath opens the device at path and then the LUN on it.
func OpenPath(ctx context.Context, path string, opts OpenOptions) (*LUN, error) {
	open := OpenFile
	if opts.ReadOnly {
		open = OpenFileReadOnly
	}
	dev, err := open(path)
	if err != nil {
		return nil, err
	}
	l, err := Open(ctx, dev, opts)
	if err != nil {
		dev.Close()
		return nil, err
	}
	return l, nil
}

// IOStats counts the I/Os a LUN issued since it was opened, and those of
// them that failed (an error, a timeout or a canceled wait).
type IOStats struct {
	Reads, Writes           uint64
	ReadErrors, WriteErrors uint64
}

// IOStats returns how many reads and writes this LUN issued (each one
// I/O of one or more blocks): what a host costs the shared storage.
// For a set, it sums the members.
func (l *LUN) IOStats() IOStats {
	var s IOStats
	for _, m := range l.members {
		s.Reads += m.io.reads.Load()
		s.Writes += m.io.writes.Load()
		s.ReadErrors += m.io.readErrs.Load()
		s.WriteErrors += m.io.writeErrs.Load()
	}
	return s
}

// Header returns the header read at Open.
func (l *LUN) Header() Header { return l.hdr }

// Path names the device; for a set of 3, the members' paths joined by "+"
// (Members lists them).
func (l *LUN) Path() string {
	if len(l.members) == 1 {
		return l.members[0].dev.Path()
	}
	return l.paths()
}

// Close closes the devices.
func (l *LUN) Close() error {
	var errs []error
	for _, m := range l.members {
		errs = append(errs, m.dev.Close())
	}
	return errors.Join(errs...)
}

// checkHost says whether host is a host id of g, for the LUN at path.
func (g Geometry) checkHost(path string, host int) error {
	if host < 1 || host > g.MaxHosts {
		return fmt.Errorf("lun %s: %w: host id %d outside 1..%d", path, ErrInvalid, host, g.MaxHosts)
	}
	return nil
}

func (l *LUN) blockErr(block int64, what string, err error, hint string) error {
	return &BlockError{Path: l.Path(), Block: block, What: what, Err: err, Hint: hint}
}
