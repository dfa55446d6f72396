package storage

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"time"
)

// A register is a small cluster-wide value (the settings record, the
// incident ledger) that any host may replace with a compare-and-swap on its
// generation. It lives in the cluster-records area, after the last block of
// format v1's regions, which a v1 daemon never reads or writes.
//
// Each host has its own ballot record in each register (two copies, written
// alternately, so an interrupted write leaves the previous one intact), and
// a write is single-disk Disk Paxos as for VM leases: generation g+1 is
// instance g+1, the value is the new content, and of any number of hosts
// that race from generation g exactly one content is chosen. Each ballot
// record also carries the content chosen at generation g (its "prev"), so
// the current value survives however many hosts move on to g+1 and fail.
// A write that lands late only ever touches its own host's record, and the
// copy sequence tells which of its two copies is newer.

// Register ids, in the order of their areas.
const (
	regSettings  = 0
	regIncidents = 1
	numRegisters = 2
)

var regNames = [numRegisters]string{"cluster settings", "incident ledger"}

const (
	regCopyBlocks = 4                                         // one ballot copy: 16 KiB
	regHostBlocks = 2 * regCopyBlocks                         // copies A and B
	regHdrLen     = 128 + regHist*16                          // fixed part of a ballot copy, with the history
	regHist       = 16                                        // chosen generations remembered by each ballot
	regAlign      = 256                                       // the area starts on a 1 MiB boundary
	regMaxValue   = (regCopyBlocks*BlockSize - regHdrLen) / 2 // value and prev each
	regCommitted  = 1 << 0
)

// MaxRegisterValue is the largest encoded settings record or ledger.
const MaxRegisterValue = regMaxValue

var regMagic = []byte("WGRG")

// areaBase is the first block of the cluster-records area.
func (g Geometry) areaBase() int64 { return (g.TotalBlocks() + regAlign - 1) / regAlign * regAlign }

// AreaBlocks is how many blocks the cluster-records area needs after
// AreaStart.
func (g Geometry) AreaBlocks() int64 { return numRegisters * int64(g.MaxHosts) * regHostBlocks }

// SizeWithRecords is the device size a LUN needs to hold the cluster
// settings and incident ledger as well as format v1's regions.
func (g Geometry) SizeWithRecords() int64 { return (g.areaBase() + g.AreaBlocks()) * BlockSize }

func (g Geometry) regBlock(reg, host, copyNo int) int64 {
	return g.areaBase() + int64(reg*g.MaxHosts+host-1)*regHostBlocks + int64(copyNo*regCopyBlocks)
}

// ballotRec is one host's ballot record in one register.
type ballotRec struct {
	Host  int
	Seq   uint64 // copy sequence: the higher of the two copies is current
	Flags uint16
	Inst  uint64 // generation being decided
	Mbal  uint64
	Bal   uint64
	Value []byte // accepted value at Bal
	Prev  []byte // value chosen at Inst-1, as this host read it
	Wall  time.Time
	// Hist names the values chosen at the generations before Inst, newest
	// first: a writer that backed off while others moved on learns from it
	// whether its own value was chosen.
	Hist []histEntry
}

type histEntry struct {
	Gen  uint64
	Hash uint64 // FNV-1a of the value
}

func valueHash(v []byte) uint64 {
	h := fnv.New64a()
	h.Write(v)
	return h.Sum64()
}

// prepend returns e followed by the newest regHist-1 entries of h.
func prepend(e histEntry, h []histEntry) []histEntry {
	return append([]histEntry{e}, h[:min(len(h), regHist-1)]...)
}

func (r *ballotRec) encode(reg int, hdr *Header) []byte {
	b := make([]byte, regCopyBlocks*BlockSize)
	copy(b[0:4], regMagic)
	le.PutUint16(b[4:], FormatVersion)
	le.PutUint16(b[6:], uint16(reg))
	le.PutUint16(b[8:], uint16(r.Host))
	le.PutUint16(b[10:], r.Flags)
	total := regHdrLen + len(r.Value) + len(r.Prev)
	le.PutUint32(b[12:], uint32(total))
	le.PutUint64(b[16:], r.Seq)
	copy(b[24:40], hdr.ClusterUUID[:])
	le.PutUint64(b[40:], uint64(hdr.Created.UnixNano()))
	le.PutUint64(b[48:], r.Inst)
	le.PutUint64(b[56:], r.Mbal)
	le.PutUint64(b[64:], r.Bal)
	le.PutUint32(b[72:], uint32(len(r.Value)))
	le.PutUint32(b[76:], uint32(len(r.Prev)))
	le.PutUint64(b[80:], uint64(r.Wall.UnixNano()))
	b[88] = byte(len(r.Hist))
	for i, h := range r.Hist[:min(len(r.Hist), regHist)] {
		le.PutUint64(b[128+16*i:], h.Gen)
		le.PutUint64(b[136+16*i:], h.Hash)
	}
	copy(b[regHdrLen:], r.Value)
	copy(b[regHdrLen+len(r.Value):], r.Prev)
	le.PutUint32(b[92:], crc32c(b[:total]))
	return b
}

// decodeBallot parses one ballot copy. ok is false for a copy that was never
// written by this cluster (all zero, or left by an earlier format of the
// device: another cluster UUID or creation time). A copy with this
// cluster's magic and a bad checksum is an error, never empty.
func decodeBallot(b []byte, reg, host int, hdr *Header) (r ballotRec, ok bool, err error) {
	if !bytes.Equal(b[0:4], regMagic) {
		return ballotRec{}, false, nil
	}
	var uuid UUID
	copy(uuid[:], b[24:40])
	if uuid != hdr.ClusterUUID || int64(le.Uint64(b[40:])) != hdr.Created.UnixNano() {
		return ballotRec{}, false, nil
	}
	if v := le.Uint16(b[4:]); v != FormatVersion {
		return ballotRec{}, false, fmt.Errorf("%w: %s ballot version %d", ErrVersion, regNames[reg], v)
	}
	total := int(le.Uint32(b[12:]))
	vl, pl := int(le.Uint32(b[72:])), int(le.Uint32(b[76:]))
	if total < regHdrLen || total > len(b) || vl > regMaxValue || pl > regMaxValue || regHdrLen+vl+pl != total {
		return ballotRec{}, false, fmt.Errorf("%w: %s ballot length %d (value %d, prev %d)", ErrCorrupt, regNames[reg], total, vl, pl)
	}
	tmp := bytes.Clone(b[:total])
	le.PutUint32(tmp[92:], 0)
	if crc32c(tmp) != le.Uint32(b[92:]) {
		return ballotRec{}, false, fmt.Errorf("%w: %s ballot checksum mismatch (torn write or damaged block)", ErrCorrupt, regNames[reg])
	}
	if int(le.Uint16(b[6:])) != reg || int(le.Uint16(b[8:])) != host {
		return ballotRec{}, false, fmt.Errorf("%w: ballot claims register %d host %d", ErrCorrupt, le.Uint16(b[6:]), le.Uint16(b[8:]))
	}
	r = ballotRec{Host: host, Flags: le.Uint16(b[10:]), Seq: le.Uint64(b[16:]), Inst: le.Uint64(b[48:]),
		Mbal: le.Uint64(b[56:]), Bal: le.Uint64(b[64:]), Wall: time.Unix(0, int64(le.Uint64(b[80:]))),
		Value: bytes.Clone(b[regHdrLen : regHdrLen+vl]), Prev: bytes.Clone(b[regHdrLen+vl : total])}
	n := int(b[88])
	if n > regHist {
		return ballotRec{}, false, fmt.Errorf("%w: %s ballot claims %d history entries, at most %d", ErrCorrupt, regNames[reg], n, regHist)
	}
	for i := range n {
		r.Hist = append(r.Hist, histEntry{Gen: le.Uint64(b[128+16*i:]), Hash: le.Uint64(b[136+16*i:])})
	}
	return r, true, nil
}

// ballots is every host's current ballot record of one register; index host-1.
type ballots []struct {
	r      ballotRec
	set    bool
	copyNo int // which copy r came from
}

// register is one cluster-wide value on one opened LUN.
type register struct {
	l   *LUN
	reg int
}

// ensureRoom makes sure every member's device holds the area; a regular
// file grows (another host may already have grown it past this handle's
// size).
func (rg register) ensureRoom() error {
	for _, m := range rg.l.members {
		if err := rg.ensureRoomOn(m.dev); err != nil {
			return err
		}
	}
	return nil
}

func (rg register) ensureRoomOn(dev Device) error {
	need := rg.l.hdr.Geometry.SizeWithRecords()
	if dev.Size() >= need {
		return nil
	}
	if g, ok := dev.(interface{ Grow(int64) error }); ok {
		if err := g.Grow(need); err != nil {
			return err
		}
		if dev.Size() >= need {
			return nil
		}
	}
	return &BlockError{Path: dev.Path(), Block: rg.l.hdr.Geometry.areaBase(), What: regNames[rg.reg], Err: ErrTooSmall,
		Hint: fmt.Sprintf("the cluster-records area after format v1's regions needs the device to be %d bytes (%.1f MiB), it has %d; grow the LUN (format v1 data stays where it is)",
			need, float64(need)/(1<<20), dev.Size())}
}

// read reads every host's ballot record in one I/O (per member). Of a
// set it takes each host's newest ballot (by its own sequence) among the
// members; a host whose copies are all damaged on more than a minority
// fails it.
func (rg register) read(ctx context.Context) (ballots, error) {
	g, hdr := rg.l.hdr.Geometry, &rg.l.hdr
	first := g.regBlock(rg.reg, 1, 0)
	least := rg.l.dmg.mark(markKey{markRegister, rg.reg})
	bufs, err := rg.l.readEach(ctx, false, first*BlockSize, g.MaxHosts*regHostBlocks*BlockSize)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", regNames[rg.reg], err)
	}
	bs := make(ballots, g.MaxHosts)
	for h := 1; h <= g.MaxHosts; h++ {
		intact := 0
		var bad error
		for mi, b := range bufs {
			if b == nil {
				continue
			}
			var errs [2]error
			for c := range 2 {
				off := ((h-1)*regHostBlocks + c*regCopyBlocks) * BlockSize
				r, ok, err := decodeBallot(b[off:off+regCopyBlocks*BlockSize], rg.reg, h, hdr)
				errs[c] = err
				if ok && (!bs[h-1].set || r.Seq > bs[h-1].r.Seq) {
					bs[h-1].r, bs[h-1].set, bs[h-1].copyNo = r, true, c
				}
			}
			both := errs[0] != nil && errs[1] != nil
			rg.l.noteCopy(mi, fmt.Sprintf("%s ballot of host %d", regNames[rg.reg], h), both)
			if both {
				bad = cmp.Or(bad, errors.Join(errs[0], errs[1]))
			} else {
				intact++
			}
		}
		if intact < rg.l.majority() {
			// Only one copy is ever being written; both damaged is the storage.
			return nil, rg.l.blockErr(g.regBlock(rg.reg, h, 0), fmt.Sprintf("%s ballot of host %d", regNames[rg.reg], h), bad,
				"both copies are damaged, which one interrupted write cannot do; check the storage path (dmesg), then restore the LUN or re-enter the settings after clearing these blocks")
		}
	}
	var top uint64
	for _, b := range bs {
		if b.set {
			top = max(top, b.r.Inst)
		}
	}
	if top < least {
		err := rg.l.blockErr(first, regNames[rg.reg], fmt.Errorf("%w: its ballots reach generation %d but generation %d was read before: ballots were zeroed or lost", ErrCorrupt, top, least),
			"nothing is written over it; check the storage path (dmesg), then restore the LUN or re-enter the settings")
		rg.l.dmg.note(regNames[rg.reg], err)
		return nil, err
	}
	rg.l.dmg.raise(markKey{markRegister, rg.reg}, top)
	rg.l.dmg.note(regNames[rg.reg], nil)
	return bs, nil
}

// regState is what a register holds: the newest chosen value.
type regState struct {
	Gen   uint64 // 0: never written
	Value []byte
	// Open is set when generation Gen+1 is being decided (a writer is at
	// work, or crashed mid-way: the next writer finishes it).
	Open bool
	Hist []histEntry // generations up to Gen, newest first
}

func (bs ballots) state() regState {
	var top uint64
	for _, b := range bs {
		if b.set && b.r.Inst > top {
			top = b.r.Inst
		}
	}
	if top == 0 {
		return regState{}
	}
	var prev []byte
	var hist []histEntry
	for _, b := range bs {
		if !b.set || b.r.Inst != top {
			continue
		}
		if b.r.Flags&regCommitted != 0 {
			return regState{Gen: top, Value: b.r.Value, Hist: prepend(histEntry{top, valueHash(b.r.Value)}, b.r.Hist)}
		}
		prev, hist = b.r.Prev, b.r.Hist
	}
	// Writers start generation top only once top-1 is chosen, and each
	// carries that value as prev; top itself is not chosen yet.
	return regState{Gen: top - 1, Value: prev, Open: true, Hist: hist}
}

// chosenAt says whether the value chosen at generation inst has hash h
// (yes, no), or whether the ballots no longer remember (known false).
func (bs ballots) chosenAt(inst, h uint64) (same, known bool) {
	for _, b := range bs {
		if !b.set {
			continue
		}
		if b.r.Inst == inst && b.r.Flags&regCommitted != 0 {
			return valueHash(b.r.Value) == h, true
		}
		for _, e := range b.r.Hist {
			if e.Gen == inst {
				return e.Hash == h, true
			}
		}
	}
	return false, false
}

// phaseOK checks, after writing own, that no host started a higher ballot
// in instance inst or moved past it; it returns the value with the highest
// accepted ballot (nil if none), which a proposer must adopt.
func (bs ballots) phaseOK(inst uint64, own ballotRec) ([]byte, bool) {
	var value []byte
	var best uint64
	for _, b := range bs {
		if !b.set || b.r.Host == own.Host {
			continue
		}
		if b.r.Inst > inst {
			return nil, false
		}
		if b.r.Inst != inst {
			continue
		}
		if b.r.Mbal > own.Mbal {
			return nil, false
		}
		if b.r.Bal > best {
			best, value = b.r.Bal, b.r.Value
		}
	}
	if own.Bal > best {
		value = own.Value
	}
	return value, true
}

func (rg register) writeOwn(ctx context.Context, bs ballots, r *ballotRec) error {
	cur := bs[r.Host-1]
	target := 0
	if cur.set {
		target = 1 - cur.copyNo
		r.Seq = cur.r.Seq + 1
	} else {
		r.Seq = 1
	}
	r.Wall = time.Now()
	block := rg.l.hdr.Geometry.regBlock(rg.reg, r.Host, target)
	if _, err := rg.l.write(ctx, block*BlockSize, r.encode(rg.reg, &rg.l.hdr)); err != nil {
		return fmt.Errorf("write %s ballot of host %d: %w", regNames[rg.reg], r.Host, err)
	}
	bs[r.Host-1].r, bs[r.Host-1].set, bs[r.Host-1].copyNo = *r, true, target
	return nil
}

// Read returns the register's current value and generation. A device
// without room for the area fails with ErrTooSmall rather than reading as
// never written: a regular file may have been grown by another host since
// this handle measured it, and a reader must not mistake that for empty.
func (rg register) Read(ctx context.Context) (regState, error) {
	if err := rg.ensureRoom(); err != nil {
		return regState{}, err
	}
	bs, err := rg.read(ctx)
	if err != nil {
		return regState{}, err
	}
	return bs.state(), nil
}

// ConflictError says a compare-and-swap lost: the register moved past the
// generation the caller read.
type ConflictError struct {
	What     string
	Expected uint64 // the generation the caller's change was based on
	Current  uint64 // the generation now on the LUN
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s: %v: the change was based on generation %d but generation %d is on the LUN; read it again and redo the change",
		e.What, ErrConflict, e.Expected, e.Current)
}

func (e *ConflictError) Unwrap() error { return ErrConflict }

// CompareAndSwap makes value generation expect+1 if the register is still at
// generation expect. Of hosts racing from the same generation exactly one
// wins; the others get a *ConflictError. A generation left open by a writer
// that crashed is completed first (with the value it had got accepted, if
// any), which also ends in a conflict for this caller.
func (rg register) CompareAndSwap(ctx context.Context, me int, expect uint64, value []byte) (uint64, error) {
	if err := rg.l.hdr.Geometry.checkHost(rg.l.Path(), me); err != nil {
		return 0, err
	}
	if len(value) > regMaxValue {
		return 0, fmt.Errorf("write %s: %w: %d bytes encoded, at most %d fit; remove some entries", regNames[rg.reg], ErrTooLarge, len(value), regMaxValue)
	}
	if err := rg.ensureRoom(); err != nil {
		return 0, err
	}
	inst := expect + 1
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			// Duelling proposers: back off a random while so one of them finishes.
			wait := time.Duration(rand.Int64N(int64(rg.l.hdr.Timings.IOTimeout/2) + 1))
			if err := sleepCtx(ctx, wait); err != nil {
				return 0, fmt.Errorf("write %s: %w after %d contended attempts", regNames[rg.reg], ctx.Err(), attempt)
			}
		}
		bs, err := rg.read(ctx)
		if err != nil {
			return 0, err
		}
		st := bs.state()
		if st.Gen >= inst {
			same, known := bs.chosenAt(inst, valueHash(value))
			switch {
			case same && attempt > 0:
				// Another host completed our generation with our value
				// after we backed off: the write happened, do not repeat it.
				return inst, nil
			case !known && attempt > 0:
				return 0, fmt.Errorf("write %s: %w: cannot tell whether generation %d holds this change (more than %d generations were written meanwhile); read it again before redoing the change",
					regNames[rg.reg], ErrContended, inst, regHist)
			}
		}
		if st.Gen != expect {
			return 0, &ConflictError{What: "write " + regNames[rg.reg], Expected: expect, Current: st.Gen}
		}
		own := bs[me-1].r
		if !bs[me-1].set || own.Inst != inst {
			own = ballotRec{Host: me, Inst: inst}
		}
		own.Host, own.Flags, own.Prev, own.Hist = me, 0, st.Value, st.Hist
		var maxMbal uint64
		for _, b := range bs {
			if b.set && b.r.Inst == inst && b.r.Mbal > maxMbal {
				maxMbal = b.r.Mbal
			}
		}
		own.Mbal = ballot(rg.l.hdr.Geometry.MaxHosts, maxMbal, me)
		// Phase 1: announce the ballot, then look for a higher one or an accepted value.
		if err := rg.writeOwn(ctx, bs, &own); err != nil {
			return 0, err
		}
		if bs, err = rg.read(ctx); err != nil {
			return 0, err
		}
		chosen, ok := bs.phaseOK(inst, own)
		if !ok {
			continue
		}
		mine := chosen == nil
		if mine {
			chosen = value
		}
		// Phase 2: accept, then check nobody started a higher ballot meanwhile.
		own.Bal, own.Value = own.Mbal, chosen
		if err := rg.writeOwn(ctx, bs, &own); err != nil {
			return 0, err
		}
		if bs, err = rg.read(ctx); err != nil {
			return 0, err
		}
		if _, ok := bs.phaseOK(inst, own); !ok {
			continue
		}
		own.Flags |= regCommitted
		if err := rg.writeOwn(ctx, bs, &own); err != nil {
			return 0, err
		}
		if !mine && !bytes.Equal(chosen, value) {
			// We completed another writer's generation; ours was not applied.
			return 0, &ConflictError{What: "write " + regNames[rg.reg], Expected: expect, Current: inst}
		}
		return inst, nil
	}
}
