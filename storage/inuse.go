package storage

import "context"

// VMReader reads VM records (*LUN).
type VMReader interface {
	ReadVM(ctx context.Context, idx int) (VMRecord, error)
	ReadVMs(ctx context.Context) ([]VMRecord, []error)
}

// InUse reads the VM records a cluster uses without scanning the whole
// LUN each time. A full scan reads two blocks of every record (512 I/Os
// with the default 256 records) while a cluster at rest uses a handful;
// between full scans InUse reads only the records that held a config at
// the last one, so it sees every change to those (leases, policies,
// removals) but not a VM stored meanwhile in a record that was blank. The
// caller decides when a full scan is due and says why that is safe.
// The zero InUse knows nothing: its first Read is a full scan.
type InUse struct {
	used  []int
	valid bool
}

// Read reads every record when full is set or the last full scan failed,
// else the records in use at the last full scan. On any error the next
// Read is a full scan.
func (u *InUse) Read(ctx context.Context, lun VMReader, full bool) ([]VMRecord, []error) {
	if !full && u.valid {
		recs := make([]VMRecord, 0, len(u.used))
		for _, idx := range u.used {
			r, err := lun.ReadVM(ctx, idx)
			if err != nil {
				u.valid = false
				return recs, []error{err}
			}
			recs = append(recs, r)
		}
		return recs, nil
	}
	recs, errs := lun.ReadVMs(ctx)
	u.valid = len(errs) == 0
	if !u.valid {
		return recs, errs
	}
	u.used = u.used[:0]
	for _, r := range recs {
		if r.Config != nil {
			u.used = append(u.used, r.Index)
		}
	}
	return recs, nil
}

// Scanned reports whether the last Read was a successful full scan or
// the records in use since one.
func (u *InUse) Scanned() bool { return u.valid }
