package storage

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Owner names one holder of a VM lease: a host, the generation of its slot
// when it acquired the lease, and a nonce unique to that acquisition.
type Owner struct {
	Host  int
	Gen   uint64
	Nonce uint64
}

// IsZero reports whether there is no owner.
func (o Owner) IsZero() bool { return o.Host == 0 }

// MigrationPhase is the owner's record of a live migration in progress.
// Its meaning is the VM manager's; storage only keeps it with the lease.
type MigrationPhase uint8

const (
	MigrationNone      MigrationPhase = iota
	MigrationStarted                  // source intends to move the VM to Target
	MigrationCompleted                // the guest runs on Target; Target may claim the lease
	MigrationAborted                  // the move was cancelled; the guest stays on the source
)

var migNames = [...]string{"none", "started", "completed", "aborted"}

func (p MigrationPhase) String() string {
	if int(p) < len(migNames) {
		return migNames[p]
	}
	return fmt.Sprintf("phase(%d)", p)
}

// Migration is the owner-written migration state of a VM.
type Migration struct {
	Phase     MigrationPhase
	Target    int
	TargetGen uint64
}

// LeaseState is a VM lease as read from the LUN.
type LeaseState struct {
	Epoch      uint64 // lease epoch (Disk Paxos instance); 0 = never acquired
	Owner      Owner  // zero: nobody
	Settled    bool   // the acquisition of Epoch completed (a commit mark is on disk)
	Released   bool   // the owner gave the lease up; anyone may acquire Epoch+1
	InProgress bool   // an acquisition of Epoch+1 has started and not yet chosen an owner
	Migration  Migration
	// GuestUp: the owner saw the VM's guest agent answer at this epoch
	// (SetGuestUp). Later start tiers of a failover wait for it.
	GuestUp bool
}

// Held reports whether somebody owns the lease.
func (s LeaseState) Held() bool { return !s.Owner.IsZero() && !s.Released }

// dblock flags.
const (
	dbCommitted    = 1 << 0 // the writer saw Value chosen for Lver
	dbReleased     = 1 << 1 // the owner released the lease at Lver
	dbPrevReleased = 1 << 2 // Prev had released the lease at Lver-1
	dbGuestUp      = 1 << 3 // the owner saw the guest agent of its VM answer at Lver
)

// dblock is one host's Disk Paxos block for one VM record (single writer).
type dblock struct {
	VM    int
	Host  int
	Flags uint16
	Lver  uint64 // instance (lease epoch)
	Mbal  uint64 // highest ballot this host started
	Bal   uint64 // ballot of the value this host accepted
	Value Owner  // accepted value
	Prev  Owner  // owner at Lver-1, as the writer saw it
	Mig   Migration
	Wall  time.Time
}

const dblockRecLen = 256

var dblockMagic = []byte("WGVL")

func (d *dblock) encode() []byte {
	b := make([]byte, BlockSize)
	e := b[:dblockRecLen]
	copy(e[0:4], dblockMagic)
	le.PutUint16(e[4:], FormatVersion)
	le.PutUint16(e[6:], dblockRecLen)
	le.PutUint32(e[8:], uint32(d.VM))
	le.PutUint16(e[12:], uint16(d.Host))
	le.PutUint16(e[14:], d.Flags)
	le.PutUint64(e[16:], d.Lver)
	le.PutUint64(e[24:], d.Mbal)
	le.PutUint64(e[32:], d.Bal)
	putOwner(e[40:], d.Value)
	putOwner(e[64:], d.Prev)
	e[88] = byte(d.Mig.Phase)
	le.PutUint16(e[90:], uint16(d.Mig.Target))
	le.PutUint64(e[96:], d.Mig.TargetGen)
	le.PutUint64(e[104:], uint64(d.Wall.UnixNano()))
	sealRecord(e)
	return b
}

func putOwner(b []byte, o Owner) {
	le.PutUint16(b[0:], uint16(o.Host))
	le.PutUint64(b[8:], o.Gen)
	le.PutUint64(b[16:], o.Nonce)
}

func getOwner(b []byte) Owner {
	return Owner{Host: int(le.Uint16(b[0:])), Gen: le.Uint64(b[8:]), Nonce: le.Uint64(b[16:])}
}

func decodeDblock(b []byte) (dblock, bool, error) {
	e := b[:dblockRecLen]
	if allZero(e) {
		return dblock{}, false, nil
	}
	if !bytes.Equal(e[0:4], dblockMagic) {
		return dblock{}, false, fmt.Errorf("%w: not a VM lease record", ErrCorrupt)
	}
	if v := le.Uint16(e[4:]); v != FormatVersion {
		return dblock{}, false, fmt.Errorf("%w: VM lease record version %d", ErrVersion, v)
	}
	if !recordOK(e) {
		return dblock{}, false, fmt.Errorf("%w: VM lease checksum mismatch (torn write or damaged block)", ErrCorrupt)
	}
	return dblock{VM: int(le.Uint32(e[8:])), Host: int(le.Uint16(e[12:])), Flags: le.Uint16(e[14:]),
		Lver: le.Uint64(e[16:]), Mbal: le.Uint64(e[24:]), Bal: le.Uint64(e[32:]),
		Value: getOwner(e[40:]), Prev: getOwner(e[64:]),
		Mig:  Migration{Phase: MigrationPhase(e[88]), Target: int(le.Uint16(e[90:])), TargetGen: le.Uint64(e[96:])},
		Wall: time.Unix(0, int64(le.Uint64(e[104:])))}, true, nil
}

// leaseBlocks is every host's dblock for one VM record; index host-1.
type leaseBlocks []struct {
	d   dblock
	set bool
}

// checkVM says whether idx is a VM record of g, for the LUN at path.
func (g Geometry) checkVM(path string, idx int) error {
	if idx < 0 || idx >= g.MaxVMs {
		return fmt.Errorf("lun %s: %w: VM record %d outside 0..%d", path, ErrInvalid, idx, g.MaxVMs-1)
	}
	return nil
}

// readLease reads every host's lease block of VM record idx in one I/O.
// A damaged block, or a lease lower than this host read before, fails it
// (see damage.go); if the block at fault is this host's own, it is
// written back from this handle's copy first, and the error says so.
func (l *LUN) readLease(ctx context.Context, idx int) (leaseBlocks, error) {
	least := l.dmg.mark(markKey{markLease, idx})
	lb, bad, err := l.readLeaseBlocks(ctx, idx)
	if err != nil {
		return nil, err
	}
	if bad == nil {
		bad = checkLease(l, idx, lb, least, "this host read")
	}
	if bad != nil && healOwnBlock(ctx, l, idx, lb) {
		bad = fmt.Errorf("%w; this host's own block was written back from its copy", bad)
	}
	l.dmg.note(fmt.Sprintf("VM record %d lease", idx), bad)
	if bad != nil {
		return nil, bad
	}
	return lb, nil
}

// readLeaseBlocks reads and decodes the lease blocks of record idx: err is
// an I/O failure, bad the first damaged block (the others are decoded). Of
// a set it reads every member's blocks (a majority must answer) and takes
// each host's newest block among them (a host's block only moves forward:
// by instance, then ballot started, then ballot accepted); a block damaged
// on one member is bad only when fewer than a majority hold it intact.
func (l *LUN) readLeaseBlocks(ctx context.Context, idx int) (lb leaseBlocks, bad, err error) {
	g := l.hdr.Geometry
	first := g.vmLeaseBlock(idx, 1)
	bufs, err := l.readEach(ctx, false, first*BlockSize, g.MaxHosts*BlockSize)
	if err != nil {
		return nil, nil, fmt.Errorf("read lease of VM record %d: %w", idx, err)
	}
	lb = make(leaseBlocks, g.MaxHosts)
	for i := range lb {
		var firstErr error
		intact := 0
		for mi, b := range bufs {
			if b == nil {
				continue
			}
			d, set, err := decodeDblock(b[i*BlockSize:])
			if err == nil && set && (d.VM != idx || d.Host != i+1) {
				err = fmt.Errorf("%w: record claims VM %d host %d", ErrCorrupt, d.VM, d.Host)
			}
			l.noteCopy(mi, fmt.Sprintf("lease block of host %d for VM record %d", i+1, idx), err != nil)
			if err != nil {
				firstErr = cmp.Or(firstErr, err)
				continue
			}
			intact++
			if set && (!lb[i].set || newerDblock(d, lb[i].d)) {
				lb[i].d, lb[i].set = d, true
			}
		}
		if intact < l.majority() && bad == nil {
			// A damaged ballot block could hide a higher ballot; acting on a
			// guess could make two owners, so refuse and say so.
			bad = l.blockErr(first+int64(i), fmt.Sprintf("lease block of host %d for VM record %d", i+1, idx), firstErr,
				fmt.Sprintf("the VM cannot change owner until host %d rewrites it (restart wingmand there) or the record is removed and protected again", i+1))
		}
	}
	return lb, bad, nil
}

// newerDblock reports whether a is later than b in its host's sequence of
// writes: by instance, then ballot started, then ballot accepted, then
// flags (commit, guest-up and release marks only get set within an
// instance), then the time it was written (a migration phase changes
// nothing else).
func newerDblock(a, b dblock) bool {
	return cmp.Or(cmp.Compare(a.Lver, b.Lver), cmp.Compare(a.Mbal, b.Mbal), cmp.Compare(a.Bal, b.Bal),
		cmp.Compare(a.Flags, b.Flags), a.Wall.Compare(b.Wall)) > 0
}

// state summarises the lease blocks: the owner is the value with the highest
// ballot in the highest instance that has accepted a value.
func (lb leaseBlocks) state() LeaseState {
	var top uint64
	for _, b := range lb {
		if b.set && b.d.Lver > top {
			top = b.d.Lver
		}
	}
	if top == 0 {
		return LeaseState{}
	}
	var best, bestMbal *dblock
	for i := range lb {
		d := &lb[i].d
		if !lb[i].set || d.Lver != top {
			continue
		}
		if d.Bal > 0 && (best == nil || d.Bal > best.Bal) {
			best = d
		}
		if bestMbal == nil || d.Mbal > bestMbal.Mbal {
			bestMbal = d
		}
	}
	if best == nil {
		// Instance top is in its first phase: nothing chosen yet, the
		// previous owner still holds epoch top-1.
		s := LeaseState{Epoch: top - 1, Owner: bestMbal.Prev, Settled: true, InProgress: true,
			Released: bestMbal.Flags&dbPrevReleased != 0}
		if s.Epoch == 0 {
			s = LeaseState{InProgress: true}
		}
		return s
	}
	s := LeaseState{Epoch: top, Owner: best.Value}
	for _, b := range lb {
		if b.set && b.d.Lver == top && b.d.Flags&dbCommitted != 0 && b.d.Value == best.Value {
			s.Settled = true
		}
	}
	if o := best.Value.Host; o >= 1 && o <= len(lb) {
		if ob := lb[o-1]; ob.set && ob.d.Lver == top && ob.d.Value == best.Value {
			s.Released = ob.d.Flags&dbReleased != 0
			s.GuestUp = ob.d.Flags&dbGuestUp != 0
			s.Migration = ob.d.Mig
		}
	}
	return s
}

// ReadLease returns the lease state of VM record idx.
func (l *LUN) ReadLease(ctx context.Context, idx int) (LeaseState, error) {
	if err := l.hdr.Geometry.checkVM(l.Path(), idx); err != nil {
		return LeaseState{}, err
	}
	lb, err := l.readLease(ctx, idx)
	if err != nil {
		return LeaseState{}, err
	}
	return lb.state(), nil
}

// ballot returns the smallest ballot above floor that belongs to host:
// ballots are k*(MaxHosts+1)+host, so no two hosts ever use the same one.
func ballot(maxHosts int, floor uint64, host int) uint64 {
	n := uint64(maxHosts + 1)
	k := floor/n + 1
	return k*n + uint64(host)
}

func (l *LUN) writeDblock(ctx context.Context, idx int, d dblock) error {
	d.Wall = time.Now()
	block := l.hdr.Geometry.vmLeaseBlock(idx, d.Host)
	if _, err := l.write(ctx, block*BlockSize, d.encode()); err != nil {
		return fmt.Errorf("write lease block of host %d for VM record %d: %w", d.Host, idx, err)
	}
	l.dmg.wrote(idx, d)
	l.dmg.raise(markKey{markLease, idx}, d.Lver)
	return nil
}

// LeaseHeldError says who holds a lease the caller could not take.
type LeaseHeldError struct {
	VM    int
	State LeaseState
}

func (e *LeaseHeldError) Error() string {
	return fmt.Sprintf("VM record %d: %v: owner host %d generation %d at epoch %d", e.VM, ErrLeaseHeld, e.State.Owner.Host, e.State.Owner.Gen, e.State.Epoch)
}

func (e *LeaseHeldError) Unwrap() error { return ErrLeaseHeld }

// AcquireLease makes me the owner of VM record idx at epoch expect+1, using
// Disk Paxos on instance expect+1. Of any number of hosts that race with the
// same expect, exactly one wins; the others get a *LeaseHeldError. If a
// crashed acquirer had already got its value accepted, that value wins and
// the caller learns the owner from the error.
//
// The caller must know that whoever owns epoch expect is fenced, dead, or is
// the caller itself: the lease decides between racing new owners, it does not
// stop an old one.
func (l *LUN) AcquireLease(ctx context.Context, idx int, expect uint64, me Owner) (LeaseState, error) {
	return acquireLease(ctx, l, idx, expect, me, l.readLease, 0)
}

// acquireLease is AcquireLease reading the lease with read; a lease that
// reads below floor counts as held at epoch floor by an unknown owner (see
// Integrity.ReclaimLease).
func acquireLease(ctx context.Context, l *LUN, idx int, expect uint64, me Owner, read func(context.Context, int) (leaseBlocks, error), floor uint64) (LeaseState, error) {
	if err := l.hdr.Geometry.checkVM(l.Path(), idx); err != nil {
		return LeaseState{}, err
	}
	if err := l.hdr.Geometry.checkHost(l.Path(), me.Host); err != nil {
		return LeaseState{}, err
	}
	if me.Nonce == 0 {
		return LeaseState{}, fmt.Errorf("acquire lease of VM record %d: %w: owner nonce must be set", idx, ErrInvalid)
	}
	inst := expect + 1
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			// Duelling proposers: back off a random while so one of them finishes.
			wait := time.Duration(rand.Int64N(int64(l.hdr.Timings.IOTimeout/2) + 1))
			if err := sleepCtx(ctx, wait); err != nil {
				return LeaseState{}, fmt.Errorf("acquire lease of VM record %d: %w after %d contended attempts", idx, ctx.Err(), attempt)
			}
		}
		lb, err := read(ctx, idx)
		if err != nil {
			return LeaseState{}, err
		}
		st := lb.state()
		top := st.Epoch
		if st.InProgress {
			top = st.Epoch + 1
		}
		if top < floor {
			st, top = LeaseState{Epoch: floor, Settled: true}, floor
		}
		switch {
		case top > inst:
			return st, &LeaseHeldError{VM: idx, State: st}
		case top < expect:
			return st, fmt.Errorf("acquire lease of VM record %d: %w: expected epoch %d but the LUN is at %d", idx, ErrInvalid, expect, top)
		case top == inst && st.Settled && !st.InProgress:
			if st.Owner == me {
				return st, nil
			}
			return st, &LeaseHeldError{VM: idx, State: st}
		}
		prev := st // the state at epoch expect, which our instance succeeds
		own := lb[me.Host-1].d
		if !lb[me.Host-1].set || own.Lver != inst {
			own = dblock{VM: idx, Host: me.Host, Lver: inst}
		}
		if prev.Epoch == expect {
			own.Prev = prev.Owner
			if prev.Released {
				own.Flags |= dbPrevReleased
			}
		}
		var maxMbal uint64
		for _, b := range lb {
			if b.set && b.d.Lver == inst && b.d.Mbal > maxMbal {
				maxMbal = b.d.Mbal
			}
		}
		own.Mbal = ballot(l.hdr.Geometry.MaxHosts, maxMbal, me.Host)

		// Phase 1: announce our ballot, then look for a higher one or an accepted value.
		if err := l.writeDblock(ctx, idx, own); err != nil {
			return LeaseState{}, err
		}
		lb, err = read(ctx, idx)
		if err != nil {
			return LeaseState{}, err
		}
		value, ok := lb.phaseOK(inst, own)
		if !ok {
			if st, done, err := settledFor(idx, inst, me, lb.state()); done {
				return st, err
			}
			continue
		}
		if value.IsZero() {
			value = me
		}
		// Phase 2: accept the value, then check nobody started a higher ballot meanwhile.
		own.Bal, own.Value = own.Mbal, value
		if err := l.writeDblock(ctx, idx, own); err != nil {
			return LeaseState{}, err
		}
		lb, err = read(ctx, idx)
		if err != nil {
			return LeaseState{}, err
		}
		if _, ok := lb.phaseOK(inst, own); !ok {
			if st, done, err := settledFor(idx, inst, me, lb.state()); done {
				return st, err
			}
			continue
		}
		// Chosen. Mark it so readers know the instance is settled.
		own.Flags |= dbCommitted
		if err := l.writeDblock(ctx, idx, own); err != nil {
			return LeaseState{}, err
		}
		st = LeaseState{Epoch: inst, Owner: value, Settled: true}
		if value != me {
			return st, &LeaseHeldError{VM: idx, State: st}
		}
		return st, nil
	}
}

// settledFor decides, after an aborted phase, whether instance inst is over:
// a competitor may have completed it, possibly with our own value (Disk Paxos
// makes a later proposer adopt the highest accepted value), in which case we
// are the owner and must say so, or nobody would run the VM.
func settledFor(idx int, inst uint64, me Owner, st LeaseState) (LeaseState, bool, error) {
	switch {
	case st.Epoch == inst && st.Settled && !st.InProgress && st.Owner == me:
		return st, true, nil
	case st.Epoch > inst || (st.Epoch == inst && st.Settled):
		return st, true, &LeaseHeldError{VM: idx, State: st}
	}
	return st, false, nil
}

// phaseOK checks, after writing own, that no host started a higher ballot in
// instance inst or moved past it. It also returns the value with the highest
// accepted ballot in inst (zero if none), which a proposer must adopt.
func (lb leaseBlocks) phaseOK(inst uint64, own dblock) (Owner, bool) {
	var value Owner
	var bestBal uint64
	for _, b := range lb {
		if !b.set {
			continue
		}
		if b.d.Lver > inst {
			return Owner{}, false
		}
		if b.d.Lver != inst || b.d.Host == own.Host {
			continue
		}
		if b.d.Mbal > own.Mbal {
			return Owner{}, false
		}
		if b.d.Bal > bestBal {
			bestBal, value = b.d.Bal, b.d.Value
		}
	}
	if own.Bal > bestBal {
		value = own.Value
	}
	return value, true
}

// ownLease re-reads the lease and fails unless lease is still current and held.
func (l *LUN) ownLease(ctx context.Context, idx int, lease LeaseState) (leaseBlocks, error) {
	lb, err := l.readLease(ctx, idx)
	if err != nil {
		return nil, err
	}
	st := lb.state()
	if st.InProgress || st.Epoch != lease.Epoch || st.Owner != lease.Owner || st.Released {
		return nil, &LeaseHeldError{VM: idx, State: st}
	}
	return lb, nil
}

// ownerBlock is the owner's own lease block, made to carry the chosen value
// (it may not, if another host completed the instance for it).
func ownerBlock(maxHosts, idx int, lb leaseBlocks, lease LeaseState) dblock {
	me := lease.Owner
	own := lb[me.Host-1].d
	if !lb[me.Host-1].set || own.Lver != lease.Epoch || own.Value != me {
		// The instance is settled on me; a block that says so cannot change the outcome.
		own = dblock{VM: idx, Host: me.Host, Lver: lease.Epoch, Prev: own.Prev}
		var maxBal uint64
		for _, b := range lb {
			if b.set && b.d.Lver == lease.Epoch && b.d.Mbal > maxBal {
				maxBal = b.d.Mbal
			}
		}
		own.Mbal = ballot(maxHosts, maxBal, me.Host)
		own.Bal, own.Value = own.Mbal, me
	}
	own.Flags |= dbCommitted
	return own
}

// SetMigration records the owner's migration state with the lease.
func (l *LUN) SetMigration(ctx context.Context, idx int, lease LeaseState, m Migration) (LeaseState, error) {
	if err := l.updateOwnBlock(ctx, idx, lease, func(own *dblock) { own.Mig = m }); err != nil {
		return lease, err
	}
	lease.Migration = m
	return lease, nil
}

// SetGuestUp records with the lease that the owner saw the VM's guest agent
// answer at lease.Epoch. It fails with a *LeaseHeldError when the caller no
// longer holds that epoch; a new epoch starts without the mark.
func (l *LUN) SetGuestUp(ctx context.Context, idx int, lease LeaseState) (LeaseState, error) {
	if err := l.updateOwnBlock(ctx, idx, lease, func(own *dblock) { own.Flags |= dbGuestUp }); err != nil {
		return lease, err
	}
	lease.GuestUp = true
	return lease, nil
}

// updateOwnBlock rewrites the owner's own lease block of record idx with
// change applied, after checking that lease is still the current one.
func (l *LUN) updateOwnBlock(ctx context.Context, idx int, lease LeaseState, change func(*dblock)) error {
	if err := l.hdr.Geometry.checkVM(l.Path(), idx); err != nil {
		return err
	}
	lb, err := l.ownLease(ctx, idx, lease)
	if err != nil {
		return err
	}
	own := ownerBlock(l.hdr.Geometry.MaxHosts, idx, lb, lease)
	change(&own)
	return l.writeDblock(ctx, idx, own)
}

// ReleaseLease gives the lease up: anyone may then acquire epoch lease.Epoch+1.
func (l *LUN) ReleaseLease(ctx context.Context, idx int, lease LeaseState) error {
	if err := l.hdr.Geometry.checkVM(l.Path(), idx); err != nil {
		return err
	}
	lb, err := l.ownLease(ctx, idx, lease)
	if err != nil {
		var held *LeaseHeldError
		if errors.As(err, &held) && held.State.Released && held.State.Owner == lease.Owner {
			return nil // already released
		}
		return err
	}
	own := ownerBlock(l.hdr.Geometry.MaxHosts, idx, lb, lease)
	own.Flags |= dbReleased
	own.Mig = Migration{}
	return l.writeDblock(ctx, idx, own)
}
