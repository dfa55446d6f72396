package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// A record that was ever written must never read as free or empty when it
// is damaged (DESIGN.md, the heartbeat LUN): a zeroed owner lease block
// would otherwise read as a free lease, and another host would start a VM
// that still runs. A zeroed block looks exactly like one never written, so
// the check is made against what is known to have been written:
//
//   - Counters on the LUN only ever grow: a VM lease's instance (the
//     highest lease epoch any block names), a VM record's config sequence,
//     a register's generation. The LUN handle remembers the highest it read
//     of each (marks); a read below the mark found a record that was
//     written and is now lost.
//   - A config is written by the lease holder at its epoch, so a lease that
//     reads older than the config's epoch lost its owner's block; and the
//     two config copies alternate, so a blank copy beside one with sequence
//     2 or more was written and lost. These hold for a host that just
//     started too.
//   - The blocks this handle wrote itself (its own lease ballots) are
//     remembered, and written back when a read finds them gone: only this
//     host ever writes them, and rewriting what it wrote is how they heal.
//
// Such a read fails with a *BlockError of class ErrCorrupt; callers treat
// the record as taken by an unknown owner (the VM manager decides nothing
// on a partial view) until it reads clean again.

// markKind names a counter that only grows.
type markKind uint8

const (
	markLease    markKind = iota // highest Lver of any ballot of a VM record's lease
	markConfig                   // highest config sequence of a VM record
	markRegister                 // highest generation of a register
)

type markKey struct {
	kind markKind
	idx  int
}

// damage is what a LUN handle knows of records it read: the marks, its own
// lease blocks, and which records read damaged the last time (for status).
type damage struct {
	mu      sync.Mutex
	marks   map[markKey]uint64
	own     map[int]dblock    // VM record -> the last lease block this handle wrote
	damaged map[string]string // record -> what is wrong, while it is
}

// mark is the highest value of k read so far. A caller takes it before
// its read and compares after: a read that started after another one
// completed sees at least what that one saw, but two reads in flight at
// once may complete in either order.
func (d *damage) mark(k markKey) uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.marks[k]
}

// raise records that k was read at v.
func (d *damage) raise(k markKey, v uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.marks == nil {
		d.marks = map[markKey]uint64{}
	}
	d.marks[k] = max(d.marks[k], v)
}

// wrote remembers the lease block this handle wrote for record idx.
func (d *damage) wrote(idx int, b dblock) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.own == nil {
		d.own = map[int]dblock{}
	}
	d.own[idx] = b
}

// ownBlock is the lease block this handle last wrote for record idx.
func (d *damage) ownBlock(idx int) (dblock, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	b, ok := d.own[idx]
	return b, ok
}

// note records whether record what read damaged (err non-nil) or clean.
func (d *damage) note(what string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err == nil {
		delete(d.damaged, what)
		return
	}
	if d.damaged == nil {
		d.damaged = map[string]string{}
	}
	d.damaged[what] = err.Error()
}

// Damaged lists the records this handle last read damaged (a lease, config
// or register that was written and now reads lower, blank or with a bad
// checksum), one line each with what to do, sorted; empty when none. The
// daemon shows them as status warnings.
func (i Integrity) Damaged() []string {
	d := &i.l.dmg
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.damaged))
	for _, s := range d.damaged {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// leaseRepairHint says what re-establishes a VM record's lease.
func leaseRepairHint(idx int) string {
	return fmt.Sprintf("the VM of record %d keeps running where it runs and is started nowhere else meanwhile; its owner's wingmand writes its own block back "+
		"on its next step if it still runs; otherwise run `wingman lun reclaim-lease %d` on the host that runs the VM (after checking the storage: dmesg, multipath -ll)", idx, idx)
}

// top is the highest instance any ballot of lb names.
func (lb leaseBlocks) top() uint64 {
	var top uint64
	for _, b := range lb {
		if b.set && b.d.Lver > top {
			top = b.d.Lver
		}
	}
	return top
}

// checkLease fails when the lease of record idx, as read, is below what
// was written: its highest instance below least, what was known before
// the read (the handle's mark, or the epoch the record's config was
// written at, which only the holder of that epoch writes).
func checkLease(l *LUN, idx int, lb leaseBlocks, least uint64, why string) error {
	top := lb.top()
	if top >= least {
		l.dmg.raise(markKey{markLease, idx}, top)
		return nil
	}
	return l.blockErr(l.hdr.Geometry.vmLeaseBlock(idx, 1), fmt.Sprintf("lease of VM record %d", idx),
		fmt.Errorf("%w: its ballots reach epoch %d but %s epoch %d: a lease block was zeroed or lost", ErrCorrupt, top, why, least),
		leaseRepairHint(idx))
}

// checkConfigs fails when the two config copies of record idx, as read
// (nil: blank), show that a written copy was lost: a blank copy beside one
// with sequence 2 or more (copies alternate, so the other was written), or
// a newest sequence below least, the handle's mark taken before the read.
func checkConfigs(l *LUN, idx int, cfgs [2]*VMConfig, least uint64) error {
	var newest uint64
	for c := range 2 {
		if cfgs[c] != nil {
			newest = max(newest, cfgs[c].Seq)
		}
	}
	g := l.hdr.Geometry
	for c := range 2 {
		if cfgs[c] == nil && cfgs[1-c] != nil && cfgs[1-c].Seq >= 2 {
			return l.blockErr(g.vmConfigBlock(idx, c), fmt.Sprintf("VM record %d config %c", idx, 'A'+c),
				fmt.Errorf("%w: blank, but copy %c has sequence %d, so this copy was written: it was zeroed or lost", ErrCorrupt, 'A'+(1-c), cfgs[1-c].Seq),
				"the VM is left alone where it runs; the owner's next config write heals it (`wingman set-policy` with its current policy, on the owner)")
		}
	}
	if newest < least {
		return l.blockErr(g.vmConfigBlock(idx, 0), fmt.Sprintf("VM record %d config", idx),
			fmt.Errorf("%w: its newest copy has sequence %d but sequence %d was read before: a config copy was zeroed or lost", ErrCorrupt, newest, least),
			"the VM is left alone where it runs; check the storage (dmesg, multipath -ll); the owner's next config write heals it")
	}
	l.dmg.raise(markKey{markConfig, idx}, newest)
	return nil
}

// healOwnBlock writes back the lease block this handle last wrote for
// record idx if the read (lb) shows it lower than that or gone, and
// reports whether it did. Only this host writes that block, so putting
// back what it wrote cannot hide anyone else's ballot.
func healOwnBlock(ctx context.Context, l *LUN, idx int, lb leaseBlocks) bool {
	own, ok := l.dmg.ownBlock(idx)
	if !ok || own.Host < 1 || own.Host > len(lb) {
		return false
	}
	if cur := lb[own.Host-1]; lb != nil && cur.set && cur.d.Lver >= own.Lver {
		return false
	}
	return l.writeDblock(ctx, idx, own) == nil
}

// ReclaimLease re-establishes the lease of VM record idx when it reads
// damaged (see leaseRepairHint), for me, the host that runs its VM: the
// caller must have checked that the VM's guest runs here (running, given
// the UUID the record's config names, says so), for nobody else may then
// hold it. It takes, by Disk Paxos as AcquireLease does, an epoch above
// every epoch the record shows or this handle read, reading damaged ballot
// blocks as empty: while the record reads damaged no host acquires it, so
// nothing a damaged block hid is still being decided. A record that reads
// clean is refused (ErrInvalid): its lease changes hands the usual way.
func (i Integrity) ReclaimLease(ctx context.Context, idx int, me Owner, running func(UUID) (bool, error)) (LeaseState, error) {
	l := i.l
	if err := l.hdr.Geometry.checkVM(l.Path(), idx); err != nil {
		return LeaseState{}, err
	}
	what := fmt.Sprintf("reclaim the lease of VM record %d", idx)
	if _, err := l.ReadVM(ctx, idx); err == nil || !errors.Is(err, ErrCorrupt) {
		if err != nil {
			return LeaseState{}, fmt.Errorf("%s: %w", what, err)
		}
		return LeaseState{}, fmt.Errorf("%s: %w: the record reads clean; nothing to reclaim", what, ErrInvalid)
	}
	var cfg *VMConfig
	for c := range 2 {
		if got, err := l.readConfigCopy(ctx, idx, c); err == nil && got != nil && (cfg == nil || got.Seq > cfg.Seq) {
			cfg = got
		}
	}
	if cfg == nil || cfg.Deleted {
		return LeaseState{}, fmt.Errorf("%s: %w: no readable config names a protected VM; check the storage, then remove the record's blocks by reformatting or restoring the LUN", what, ErrInvalid)
	}
	if ok, err := running(cfg.UUID); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("%w: VM %s (%s) does not run on this host: reclaim it on the host that runs it", ErrInvalid, cfg.Name, cfg.UUID)
		}
		return LeaseState{}, fmt.Errorf("%s: %w", what, err)
	}
	tolerant := func(ctx context.Context, idx int) (leaseBlocks, error) {
		lb, _, err := l.readLeaseBlocks(ctx, idx)
		return lb, err
	}
	lb, err := tolerant(ctx, idx)
	if err != nil {
		return LeaseState{}, err
	}
	floor := max(lb.top(), cfg.Epoch, l.dmg.mark(markKey{markLease, idx}))
	st, err := acquireLease(ctx, l, idx, floor, me, tolerant, floor)
	if err != nil {
		return st, fmt.Errorf("%s: %w", what, err)
	}
	l.dmg.note(fmt.Sprintf("VM record %d lease", idx), nil)
	return st, nil
}
