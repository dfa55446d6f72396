package storage

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sync"
	"time"
)

// SlotState is what a host says of itself in its heartbeat slot.
type SlotState uint8

const (
	SlotFree        SlotState = iota // never used, or released by `host remove`
	SlotJoining                      // acquired, daemon starting
	SlotAlive                        // running and allowed to run VMs
	SlotMaintenance                  // alive, not a placement target
	SlotLeft                         // left cleanly; its VMs may move at once
	SlotFenced                       // destroyed its protected VMs (self-fence or poison pill)
)

var slotStateNames = [...]string{"free", "joining", "alive", "maintenance", "left", "fenced"}

func (s SlotState) String() string {
	if int(s) < len(slotStateNames) {
		return slotStateNames[s]
	}
	return fmt.Sprintf("state(%d)", s)
}

// HostSet is a set of host IDs 1..255.
type HostSet [4]uint64

func (s *HostSet) Add(id int)     { s[id/64] |= 1 << (id % 64) }
func (s HostSet) Has(id int) bool { return id > 0 && id < 256 && s[id/64]&(1<<(id%64)) != 0 }
func (s HostSet) Len() int {
	n := 0
	for _, w := range s {
		n += bits.OnesCount64(w)
	}
	return n
}

// IDs lists the members in increasing order.
func (s HostSet) IDs() []int {
	var ids []int
	for id := 1; id < 256; id++ {
		if s.Has(id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// AckResult is how a host answered a mailbox message.
type AckResult uint8

const (
	AckNone   AckResult = iota
	AckDone             // fence: protected VMs destroyed; test: message seen
	AckFailed           // the host could not do what was asked
)

// MailboxAck is the last mailbox message a host acknowledged, carried in its slot.
type MailboxAck struct {
	Nonce  uint64
	Type   MessageType
	Result AckResult
}

// Verdict records that host HostID was declared dead at generation Gen.
type Verdict struct {
	HostID int
	Gen    uint64
}

// MaxVerdicts is how many dead-host verdicts one slot can carry.
const MaxVerdicts = (gossipKeyOff - verdictsOff) / verdictLen

const (
	grantedOff  = 160 // HostSet of hosts granted a network lease (32 bytes)
	verdictsN   = 192 // count of verdicts (1 byte)
	verdictsOff = 200 // verdicts: u16 host, u64 generation
	verdictLen  = 10
	// reachOff is the isolation address flag, in the zeros the first v1
	// writers left between the acknowledgement and the grants.
	reachOff = 154
	// recordsOff is the VM-records change counter (u32), in the zeros
	// after the reach byte.
	recordsOff = 156
	// unackedOff is Unacked (u32), in the zeros between the state byte
	// and the generation.
	unackedOff = 12
	// gossipKeyOff is the gossip key fingerprint (u64), after the last
	// verdict, where the first v1 writers left zeros: their readers ignore it.
	gossipKeyOff = slotRecLen - 4 - 8
)

// SlotRecord is one host's heartbeat slot.
type SlotRecord struct {
	HostID      int
	State       SlotState
	Generation  uint64 // incremented by every acquisition of the slot
	Incarnation uint64 // random per acquisition: tells two racing acquirers apart
	Sequence    uint64 // incremented by every renewal
	Wall        time.Time
	HostName    string
	SerfView    HostSet // hosts this host's serf sees alive
	Ack         MailboxAck
	// Granted are the hosts this host currently grants a network lease;
	// observers must not declare them dead while they see it.
	Granted HostSet
	// Verdicts are the hosts this host knows were declared dead (at most
	// MaxVerdicts; the rest are left out, which only makes others wait).
	Verdicts []Verdict
	// GossipKey is the fingerprint of the host's primary gossip key (the
	// first 8 bytes of its SHA-256, never the key), so that every host can
	// tell from the LUN which host's key differs. 0: not published (a
	// wingmand older than the field).
	GossipKey uint64
	// Disarm is the newest disarm request this host has seen, with its
	// acknowledgement (in the block's second sector: see SlotDisarm).
	Disarm SlotDisarm
	// Reach is what the host says of its isolation addresses; 0 (unknown):
	// none configured, or a wingmand older than the field.
	Reach AddressReach
	// Records is bumped (wrapping) whenever this host changes a VM record
	// in a way other hosts' partial scans may miss (see vm.FullScanEvery);
	// only its changes matter. 0: a wingmand older than the field.
	Records uint32
	// Unacked is, of a set of three LUNs, how many of this host's
	// renewals ago its last write that a majority of LUNs acknowledged
	// was (1 when the previous one was): this record may have landed on
	// one LUN only. 0 for a set of 1 (every record landed) and from a
	// wingmand older than the field. See Beat.
	Unacked uint32
}

// Beat is the heartbeat sequence that proves the host alive: its last
// write that a majority of the LUNs acknowledged, as this record says.
// A host left with one LUN of three keeps advancing its Sequence there,
// but not its Beat, so it reads as silent, as a host without its only
// LUN does; while any two LUNs read include one that took each counted
// write, so two hosts whose paths failed to different LUNs still see
// each other alive.
func (r SlotRecord) Beat() uint64 { return r.Sequence - uint64(r.Unacked) }

// AddressReach is what a host publishes of its isolation addresses (the
// values of quorum.Reach).
type AddressReach uint8

const (
	ReachUnknown AddressReach = iota // no address configured
	ReachLost                        // none reached for F
	ReachOK                          // one reached less than F ago
)

// SlotDisarm is a cluster-wide disarm request as a host republishes it,
// with whether that host is disarmed by it. It lives in its own sealed
// record in the second 512-byte sector of the slot's block, which readers
// of the first format ignore (they read the first sector only) and their
// writers leave zero (no disarm ever seen). Each sector is written
// atomically, so a torn block write leaves a whole earlier record here.
type SlotDisarm struct {
	Gen      uint64        // cluster-wide disarm generation: the highest wins; 0: none
	By       int           // host id that accepted the command
	For      time.Duration // how long; 0: an arm
	Reason   string        // at most MaxDisarmReason bytes
	Disarmed bool          // the slot's owner is disarmed by this request
}

// MaxDisarmReason is how many bytes of a disarm's reason a slot carries.
const MaxDisarmReason = 120

const (
	disarmOff       = slotRecLen // the second sector of the slot block
	disarmRecLen    = 512
	disarmReasonOff = 32
)

var disarmMagic = []byte("WGSD")

func (d SlotDisarm) encode(e []byte) {
	clear(e)
	if d == (SlotDisarm{}) {
		return // as a first-format writer leaves it
	}
	copy(e[0:4], disarmMagic)
	le.PutUint16(e[4:], FormatVersion)
	le.PutUint16(e[6:], disarmRecLen)
	le.PutUint64(e[8:], d.Gen)
	le.PutUint16(e[16:], uint16(d.By))
	if d.Disarmed {
		e[18] = 1
	}
	le.PutUint64(e[24:], uint64(d.For))
	putString(e[disarmReasonOff:disarmReasonOff+MaxDisarmReason], d.Reason)
	sealRecord(e)
}

// decodeDisarm parses the disarm record of a slot block; all zero is none.
// A damaged one is an error, never "no disarm": an observer that missed a
// peer's "disarmed" could count its silence too soon.
func decodeDisarm(e []byte) (SlotDisarm, error) {
	if allZero(e) {
		return SlotDisarm{}, nil
	}
	switch {
	case !bytes.Equal(e[0:4], disarmMagic):
		return SlotDisarm{}, fmt.Errorf("%w: not a slot disarm record", ErrCorrupt)
	case le.Uint16(e[4:]) != FormatVersion:
		return SlotDisarm{}, fmt.Errorf("%w: slot disarm record version %d", ErrVersion, le.Uint16(e[4:]))
	case !recordOK(e):
		return SlotDisarm{}, fmt.Errorf("%w: slot disarm record checksum mismatch (torn write or damaged block)", ErrCorrupt)
	case e[18] > 1 || int64(le.Uint64(e[24:])) < 0:
		return SlotDisarm{}, fmt.Errorf("%w: slot disarm record holds impossible values", ErrCorrupt)
	}
	return SlotDisarm{Gen: le.Uint64(e[8:]), By: int(le.Uint16(e[16:])), Disarmed: e[18] == 1,
		For: time.Duration(le.Uint64(e[24:])), Reason: getString(e[disarmReasonOff : disarmReasonOff+MaxDisarmReason])}, nil
}

// slotRecLen is one sector of a 512-byte-sector device, so the record is
// written atomically there too; the rest of the 4096-byte block is zero.
const slotRecLen = 512

var slotMagic = []byte("WGSL")

func (r *SlotRecord) encode() []byte {
	b := make([]byte, BlockSize)
	e := b[:slotRecLen]
	copy(e[0:4], slotMagic)
	le.PutUint16(e[4:], FormatVersion)
	le.PutUint16(e[6:], slotRecLen)
	le.PutUint16(e[8:], uint16(r.HostID))
	e[10] = byte(r.State)
	le.PutUint64(e[16:], r.Generation)
	le.PutUint64(e[24:], r.Incarnation)
	le.PutUint64(e[32:], r.Sequence)
	le.PutUint64(e[40:], uint64(r.Wall.UnixNano()))
	putString(e[48:112], r.HostName)
	for i, w := range r.SerfView {
		le.PutUint64(e[112+8*i:], w)
	}
	le.PutUint64(e[144:], r.Ack.Nonce)
	e[152] = byte(r.Ack.Type)
	e[153] = byte(r.Ack.Result)
	for i, w := range r.Granted {
		le.PutUint64(e[grantedOff+8*i:], w)
	}
	n := min(len(r.Verdicts), MaxVerdicts)
	e[verdictsN] = byte(n)
	for i, v := range r.Verdicts[:n] {
		o := verdictsOff + i*verdictLen
		le.PutUint16(e[o:], uint16(v.HostID))
		le.PutUint64(e[o+2:], v.Gen)
	}
	le.PutUint64(e[gossipKeyOff:], r.GossipKey)
	e[reachOff] = byte(r.Reach)
	le.PutUint32(e[recordsOff:], r.Records)
	le.PutUint32(e[unackedOff:], r.Unacked)
	sealRecord(e)
	r.Disarm.encode(b[disarmOff : disarmOff+disarmRecLen])
	return b
}

// decodeSlot parses a slot block. An all-zero block is a free slot.
func decodeSlot(b []byte) (SlotRecord, error) {
	e := b[:slotRecLen]
	if allZero(e) {
		return SlotRecord{}, nil
	}
	if !bytes.Equal(e[0:4], slotMagic) {
		return SlotRecord{}, fmt.Errorf("%w: not a heartbeat slot record", ErrCorrupt)
	}
	if v := le.Uint16(e[4:]); v != FormatVersion {
		return SlotRecord{}, fmt.Errorf("%w: slot record version %d", ErrVersion, v)
	}
	if !recordOK(e) {
		return SlotRecord{}, fmt.Errorf("%w: slot checksum mismatch (torn write or damaged block)", ErrCorrupt)
	}
	r := SlotRecord{
		HostID: int(le.Uint16(e[8:])), State: SlotState(e[10]),
		Generation: le.Uint64(e[16:]), Incarnation: le.Uint64(e[24:]), Sequence: le.Uint64(e[32:]),
		Wall: time.Unix(0, int64(le.Uint64(e[40:]))), HostName: getString(e[48:112]),
		Ack:       MailboxAck{Nonce: le.Uint64(e[144:]), Type: MessageType(e[152]), Result: AckResult(e[153])},
		GossipKey: le.Uint64(e[gossipKeyOff:]), Reach: AddressReach(e[reachOff]), Records: le.Uint32(e[recordsOff:]),
		Unacked: le.Uint32(e[unackedOff:]),
	}
	if uint64(r.Unacked) > r.Sequence {
		return SlotRecord{}, fmt.Errorf("%w: slot record claims %d unacknowledged renewals of %d", ErrCorrupt, r.Unacked, r.Sequence)
	}
	if r.Reach > ReachOK {
		return SlotRecord{}, fmt.Errorf("%w: slot record claims isolation address reach %d", ErrCorrupt, r.Reach)
	}
	for i := range r.SerfView {
		r.SerfView[i] = le.Uint64(e[112+8*i:])
	}
	for i := range r.Granted {
		r.Granted[i] = le.Uint64(e[grantedOff+8*i:])
	}
	n := int(e[verdictsN])
	if n > MaxVerdicts {
		return SlotRecord{}, fmt.Errorf("%w: slot record claims %d verdicts, at most %d fit", ErrCorrupt, n, MaxVerdicts)
	}
	for i := range n {
		o := verdictsOff + i*verdictLen
		r.Verdicts = append(r.Verdicts, Verdict{HostID: int(le.Uint16(e[o:])), Gen: le.Uint64(e[o+2:])})
	}
	var err error
	if r.Disarm, err = decodeDisarm(b[disarmOff : disarmOff+disarmRecLen]); err != nil {
		return SlotRecord{}, err
	}
	return r, nil
}

// SlotView is one slot as read from the LUN.
type SlotView struct {
	HostID int
	Record SlotRecord // zero when Empty or Err != nil
	Empty  bool       // never written
	Err    error      // the record is damaged (ErrCorrupt) or unreadable
	// MemberSeq is, for a set of 3 LUNs, the sequence each member held
	// (index member-1): 0 where it was empty, damaged or not read. The
	// view is the newest record any member read holds (a write that a
	// majority took is on one of any majority read); a host that writes
	// one member only does not look fresh because its Beat stands still.
	// Nil for a set of 1.
	MemberSeq []uint64
	raw       []byte
}

// Used reports whether a host holds or held this slot.
func (v SlotView) Used() bool { return !v.Empty && v.Err == nil && v.Record.State != SlotFree }

// seq is the view's sequence for merging: 0 unless it holds a record.
func (v *SlotView) seq() uint64 {
	if v == nil || v.Err != nil || v.Empty {
		return 0
	}
	return v.Record.Sequence
}

func slotView(l *LUN, host int, b []byte) SlotView {
	v := SlotView{HostID: host, raw: b[:slotRecLen:slotRecLen]}
	rec, err := decodeSlot(b)
	switch {
	case err != nil:
		v.Err = l.blockErr(l.hdr.Geometry.slotBlock(host), fmt.Sprintf("heartbeat slot %d", host), err,
			"the host that owns this slot rewrites it on its next heartbeat; if it persists, check the storage")
	case rec.HostID == 0 && rec.Generation == 0:
		v.Empty = true
	case rec.HostID != host:
		v.Err = l.blockErr(l.hdr.Geometry.slotBlock(host), fmt.Sprintf("heartbeat slot %d", host),
			fmt.Errorf("%w: record claims host id %d", ErrCorrupt, rec.HostID), "check the storage")
	default:
		v.Record = rec
	}
	return v
}

// emptyRank orders views of no record: a damaged one (0) before an empty one.
func emptyRank(v *SlotView) int {
	if v.Err != nil {
		return 0
	}
	return 1
}

// mergeSlot merges one slot as each member held it (nil: not read):
// the record with the highest sequence any member read holds; among
// records of that sequence (racing acquirers), the one most members hold.
// Not the newest that a majority holds: two hosts whose paths failed to
// different LUNs read different pairs, and each would see the other's
// heartbeat stand still while both write a majority (the simulator's
// `path-lost 1 3`, `path-lost 2 1`). A write counts for liveness by its
// Beat. A set of 1 gives its one view unchanged.
func (l *lunSet) mergeSlot(per []*SlotView) SlotView {
	if len(per) == 1 {
		return *per[0]
	}
	seqs := make([]uint64, len(per))
	var read []*SlotView
	for i, v := range per {
		seqs[i] = v.seq()
		if v != nil {
			read = append(read, v)
		}
	}
	sorted := slices.Clone(read)
	// Highest first; of none, a damaged copy before an empty one.
	slices.SortStableFunc(sorted, func(a, b *SlotView) int {
		return cmp.Or(cmp.Compare(b.seq(), a.seq()), cmp.Compare(emptyRank(a), emptyRank(b)))
	})
	pick := sorted[0]
	if pick.seq() > 0 {
		held := func(v *SlotView) int {
			n := 0
			for _, o := range read {
				if bytes.Equal(o.raw, v.raw) {
					n++
				}
			}
			return n
		}
		for _, v := range sorted {
			if v.seq() == pick.seq() && held(v) > held(pick) {
				pick = v
			}
		}
	}
	out := *pick
	out.MemberSeq = seqs
	return out
}

// topSlot is the newest record any member read holds (a set of 1: its
// view).
func topSlot(per []*SlotView) SlotView {
	var top *SlotView
	for _, v := range per {
		if v != nil && (top == nil || v.seq() > top.seq()) {
			top = v
		}
	}
	return *top
}

// slotsOf splits the members' reads of blocks [from, from+n) into each
// slot's per-member views, leaving out members whose I/O is ignored; it
// fails when fewer than a majority are left.
func slotsOf(l *LUN, bufs [][]byte, from int64, n int) ([][]*SlotView, error) {
	changed := l.headersChanged()
	out := make([][]*SlotView, n)
	left := 0
	for i, m := range l.members {
		if bufs[i] == nil || !l.usable(m, changed) {
			for h := range out {
				out[h] = append(out[h], nil)
			}
			continue
		}
		left++
		for h := range out {
			v := slotView(l, int(from)+h, bufs[i][h*BlockSize:(h+1)*BlockSize])
			l.noteCopy(i, fmt.Sprintf("heartbeat slot %d", int(from)+h), v.Err != nil)
			out[h] = append(out[h], &v)
		}
	}
	if left < l.majority() {
		return nil, fmt.Errorf("%d of %d heartbeat LUNs answered with their header intact, a majority of %d must: %w", left, len(l.members), l.majority(), errIgnored)
	}
	return out, nil
}

// ReadSlots reads every heartbeat slot, and the header before them, in one
// I/O. A damaged slot is reported in its SlotView; it does not fail the
// others. A changed header is noted for Integrity().HeaderChanged; it fails nothing.
func (l *LUN) ReadSlots(ctx context.Context) ([]SlotView, error) {
	g := l.hdr.Geometry
	// From block 0: the header comes with the slots' I/O (see Integrity.HeaderChanged).
	// Each member's header is noted as its read ends, one that answers
	// after the majority included.
	bufs, _, err := onMembers(ctx, &l.lunSet, true, true, func(ctx context.Context, m *member) ([]byte, error) {
		b, err := m.io.read(ctx, 0, (g.MaxHosts+1)*BlockSize)
		if err != nil {
			return nil, err
		}
		noteHeader(m, b[:BlockSize])
		return b[BlockSize:], nil
	})
	if err != nil {
		return nil, fmt.Errorf("read heartbeat slots: %w", err)
	}
	per, err := slotsOf(l, bufs, 1, g.MaxHosts)
	if err != nil {
		return nil, fmt.Errorf("read heartbeat slots: %w", err)
	}
	views := make([]SlotView, g.MaxHosts)
	for i := range views {
		views[i] = l.mergeSlot(per[i])
	}
	return views, nil
}

// ReadSlot reads one host's slot.
func (l *LUN) ReadSlot(ctx context.Context, host int) (SlotView, error) {
	per, err := readSlotEach(ctx, l, host)
	if err != nil {
		return SlotView{}, err
	}
	return l.mergeSlot(per), nil
}

// readSlotEach reads one host's slot from each member.
func readSlotEach(ctx context.Context, l *LUN, host int) ([]*SlotView, error) {
	if err := l.hdr.Geometry.checkHost(l.Path(), host); err != nil {
		return nil, err
	}
	bufs, err := l.readEach(ctx, false, l.hdr.Geometry.slotBlock(host)*BlockSize, BlockSize)
	if err == nil {
		var per [][]*SlotView
		if per, err = slotsOf(l, bufs, int64(host), 1); err == nil {
			return per[0], nil
		}
	}
	return nil, fmt.Errorf("read heartbeat slot %d: %w", host, err)
}

// AcquireOptions says which slot a host wants.
type AcquireOptions struct {
	// HostName identifies the host (its hostname); required.
	HostName string
	// HostID is the slot to take, 1..MaxHosts; 0 takes the slot that already
	// carries HostName, else the first free one.
	HostID int
	// Progress, if set, is told what the acquisition is waiting for.
	Progress func(msg string)
	// Resume, if not zero, is the incarnation this host's previous daemon
	// wrote. If the slot still carries it, the slot is taken back at once,
	// same generation and sequence, without the wait for D: the caller
	// vouches (by a host-local lock) that no other process of this host
	// writes it, and (by its own clock) that the previous daemon wrote it
	// less than F ago. Otherwise the usual acquisition runs.
	Resume uint64
}

func randomNonce() uint64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	if n := binary.LittleEndian.Uint64(b[:]); n != 0 {
		return n
	}
	return 1
}

// AcquireSlot takes a heartbeat slot with a delta lease: read the slot; if a
// previous owner may still be alive, wait until its record has not changed for
// D; write our record; wait longer than any competitor's read-to-write window;
// re-read. The slot is ours only if our record is still there. Exactly one of
// any number of racing acquirers wins.
func (l *LUN) AcquireSlot(ctx context.Context, opts AcquireOptions) (*Heartbeat, error) {
	if opts.HostName == "" || len(opts.HostName) > 63 {
		return nil, fmt.Errorf("acquire slot: %w: host name must be 1..63 bytes", ErrInvalid)
	}
	if opts.HostID != 0 {
		if err := l.hdr.Geometry.checkHost(l.Path(), opts.HostID); err != nil {
			return nil, err
		}
		return l.acquireSlot(ctx, opts.HostID, opts)
	}
	views, err := l.ReadSlots(ctx)
	if err != nil {
		return nil, err
	}
	for _, v := range views { // our own slot from an earlier run, if any
		if v.Err == nil && !v.Empty && v.Record.HostName == opts.HostName && v.Record.State != SlotFree {
			return l.acquireSlot(ctx, v.HostID, opts)
		}
	}
	for _, v := range views {
		if v.Err == nil && (v.Empty || v.Record.State == SlotFree) {
			hb, err := l.acquireSlot(ctx, v.HostID, opts)
			if errors.Is(err, ErrSlotHeld) {
				continue // another host won this one; try the next
			}
			return hb, err
		}
	}
	return nil, fmt.Errorf("lun %s: %w: all %d slots are in use; remove a departed host or reformat with more --hosts", l.Path(), ErrNoFreeSlot, l.hdr.Geometry.MaxHosts)
}

func (l *LUN) acquireSlot(ctx context.Context, host int, opts AcquireOptions) (*Heartbeat, error) {
	t := l.hdr.Timings
	what := fmt.Sprintf("heartbeat slot %d", host)
	block := l.hdr.Geometry.slotBlock(host)
	progress := func(format string, a ...any) {
		if opts.Progress != nil {
			opts.Progress(fmt.Sprintf(format, a...))
		}
	}
	per, err := readSlotEach(ctx, l, host)
	if err != nil {
		return nil, err
	}
	// v decides; top (the newest any member holds) is what must stay
	// quiet: a member that missed writes makes v change with the members
	// read, while top changes only when somebody writes.
	v, top := l.mergeSlot(per), topSlot(per)
	if opts.Resume != 0 && v.Err == nil && !v.Empty && v.Record.Incarnation == opts.Resume &&
		v.Record.HostName == opts.HostName && v.Record.State != SlotFree && v.Record.State != SlotLeft {
		progress("resuming heartbeat slot %d, generation %d", host, v.Record.Generation)
		return &Heartbeat{lun: l, host: host, rec: v.Record, acked: v.Record.Beat()}, nil
	}
	mustWait := false
	switch {
	case v.Err != nil:
		mustWait = true // unknown owner: wait until the block has been quiet for D
	case v.Empty || v.Record.State == SlotFree || v.Record.State == SlotLeft:
	case v.Record.HostName != opts.HostName:
		return nil, l.blockErr(block, what, fmt.Errorf("%w: it belongs to host %q (state %s)", ErrSlotHeld, v.Record.HostName, v.Record.State),
			"configure another host id, or leave the id unset to take a free slot")
	default:
		mustWait = true // our own earlier run, or a second daemon with our name
	}
	if mustWait {
		progress("waiting %v to make sure no other process heartbeats slot %d", t.Dead, host)
		start := time.Now()
		for time.Since(start) < t.Dead {
			if err := sleepCtx(ctx, t.Renew); err != nil {
				return nil, fmt.Errorf("acquire %s: %w", what, err)
			}
			per, err := readSlotEach(ctx, l, host)
			if err != nil {
				return nil, err
			}
			if now := topSlot(per); !bytes.Equal(now.raw, top.raw) {
				return nil, l.blockErr(block, what, fmt.Errorf("%w: it is being heartbeated by %q", ErrSlotHeld, now.Record.HostName),
					"another wingmand is running with this host's name or id; stop it first (is the name unique?)")
			}
		}
	}
	// The read that our write is based on, then the write, within a bounded window.
	begin := time.Now()
	per, err = readSlotEach(ctx, l, host)
	if err != nil {
		return nil, err
	}
	if cur := topSlot(per); !bytes.Equal(cur.raw, top.raw) {
		return nil, l.blockErr(block, what, fmt.Errorf("%w: it changed while we waited", ErrSlotHeld), "another host is acquiring it; retry")
	}
	rec := SlotRecord{HostID: host, State: SlotJoining, Generation: top.Record.Generation + 1, Incarnation: randomNonce(),
		Sequence: top.Record.Sequence + 1, Wall: time.Now(), HostName: opts.HostName}
	if _, err := l.write(ctx, block*BlockSize, rec.encode()); err != nil {
		return nil, fmt.Errorf("acquire %s: %w", what, err)
	}
	if time.Since(begin) > 2*t.IOTimeout {
		return nil, l.blockErr(block, what, fmt.Errorf("%w: read and write took %v", ErrIOTimeout, time.Since(begin)),
			"storage too slow to acquire safely; retry when it recovers")
	}
	if err := sleepCtx(ctx, t.acquireDelay()); err != nil {
		return nil, fmt.Errorf("acquire %s: %w", what, err)
	}
	per, err = readSlotEach(ctx, l, host)
	if err != nil {
		return nil, err
	}
	// Ours only if a majority of members holds it: two acquirers cannot both have that.
	after, ours := l.mergeSlot(per), 0
	for _, v := range per {
		if v != nil && v.Err == nil && v.Record.Incarnation == rec.Incarnation && v.Record.Sequence == rec.Sequence {
			ours++
		}
	}
	if ours < l.majority() {
		return nil, l.blockErr(block, what, fmt.Errorf("%w: lost the race to %q", ErrSlotHeld, after.Record.HostName), "another host acquired it at the same time")
	}
	return &Heartbeat{lun: l, host: host, rec: rec, acked: rec.Sequence}, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Heartbeat is a held host slot. Renew must be called every R.
type Heartbeat struct {
	lun  *LUN
	host int

	mu  sync.Mutex
	rec SlotRecord // what we last wrote
	// pending is the sequence of a write that failed or timed out: it may
	// still land (a slow SAN path), so finding it in our slot later is our
	// own write, not a takeover. 0 when none.
	pending uint64
	// acked is the sequence of our last write that a majority of the
	// LUNs acknowledged (SlotRecord.Unacked).
	acked uint64
}

// HostID is the slot number.
func (h *Heartbeat) HostID() int { return h.host }

// Record returns the record last written.
func (h *Heartbeat) Record() SlotRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rec
}

// Generation is this acquisition's generation: poison pills must name it.
func (h *Heartbeat) Generation() uint64 { return h.Record().Generation }

// SetState sets the state written by the next Renew.
func (h *Heartbeat) SetState(s SlotState) {
	h.mu.Lock()
	h.rec.State = s
	h.mu.Unlock()
}

// SetSerfView sets the serf view written by the next Renew.
func (h *Heartbeat) SetSerfView(v HostSet) {
	h.mu.Lock()
	h.rec.SerfView = v
	h.mu.Unlock()
}

// SetGranted sets the hosts this host grants a network lease, written with
// the next renewal.
func (h *Heartbeat) SetGranted(v HostSet) {
	h.mu.Lock()
	h.rec.Granted = v
	h.mu.Unlock()
}

// SetVerdicts sets the dead-host verdicts this host publishes, written with
// the next renewal. Beyond MaxVerdicts the rest are dropped.
func (h *Heartbeat) SetVerdicts(v []Verdict) {
	h.mu.Lock()
	h.rec.Verdicts = append([]Verdict(nil), v[:min(len(v), MaxVerdicts)]...)
	h.mu.Unlock()
}

// SetGossipKey sets the gossip key fingerprint written by the next Renew.
func (h *Heartbeat) SetGossipKey(fingerprint uint64) {
	h.mu.Lock()
	h.rec.GossipKey = fingerprint
	h.mu.Unlock()
}

// SetReach sets what the next renewal says of this host's isolation addresses.
func (h *Heartbeat) SetReach(r AddressReach) {
	h.mu.Lock()
	h.rec.Reach = r
	h.mu.Unlock()
}

// BumpRecords changes the VM-records counter written by the next renewal:
// this host changed a VM record (see SlotRecord.Records).
func (h *Heartbeat) BumpRecords() {
	h.mu.Lock()
	h.rec.Records++
	h.mu.Unlock()
}

// SetDisarm sets the disarm request and acknowledgement written by the
// next renewal. A reason beyond MaxDisarmReason bytes is cut.
func (h *Heartbeat) SetDisarm(d SlotDisarm) {
	if len(d.Reason) > MaxDisarmReason {
		d.Reason = d.Reason[:MaxDisarmReason]
	}
	h.mu.Lock()
	h.rec.Disarm = d
	h.mu.Unlock()
}

// Ack records, for the next Renew, that msg was handled with result.
func (h *Heartbeat) Ack(msg Message, result AckResult) {
	h.mu.Lock()
	h.rec.Ack = MailboxAck{Nonce: msg.Nonce, Type: msg.Type, Result: result}
	h.mu.Unlock()
}

// Renew does one heartbeat cycle: one read of every slot, a check that our
// slot still holds what we last wrote, and one write of our slot with the
// next sequence. It returns every slot as read, ours updated. If another
// writer took our slot it returns ErrSlotLost: the host must stop running
// protected VMs.
func (h *Heartbeat) Renew(ctx context.Context) ([]SlotView, error) { return h.scan(ctx, true) }

// Observe reads every slot in one I/O, as Renew does, but writes nothing:
// it is not a heartbeat. The heartbeat loop calls it between renewals to see
// others' writes sooner. Like Renew it checks our own slot and returns
// ErrSlotLost, with the views, if another writer took it.
func (h *Heartbeat) Observe(ctx context.Context) ([]SlotView, error) { return h.scan(ctx, false) }

// scan reads every slot and checks ours; if renew, it then writes ours with
// the next sequence.
func (h *Heartbeat) scan(ctx context.Context, renew bool) ([]SlotView, error) {
	views, err := h.lun.ReadSlots(ctx)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.checkOwn(views[h.host-1]); err != nil || !renew {
		return views, err
	}
	// A damaged own slot is not a competitor's valid takeover; rewriting
	// it is how it heals.
	next := h.rec
	next.Sequence = max(h.rec.Sequence, h.pending) + 1
	if h.lun.majority() > 1 {
		next.Unacked = uint32(min(next.Sequence-min(h.acked, next.Sequence), math.MaxUint32))
	}
	next.Wall = time.Now()
	ok, err := h.lun.write(ctx, h.lun.hdr.Geometry.slotBlock(h.host)*BlockSize, next.encode())
	if err != nil {
		if !errors.Is(err, ErrIOPending) || h.lun.majority() > 1 {
			h.pending = next.Sequence // it may still land (of a set: on a member whose write was not pending)
		}
		return views, fmt.Errorf("renew heartbeat slot %d: %w", h.host, err)
	}
	h.rec = next
	h.pending = 0
	h.acked = next.Sequence
	own := SlotView{HostID: h.host, Record: next}
	if seqs := views[h.host-1].MemberSeq; seqs != nil {
		own.MemberSeq = slices.Clone(seqs)
		for i, wrote := range ok {
			if wrote {
				own.MemberSeq[i] = next.Sequence
			}
		}
	}
	views[h.host-1] = own
	return views, nil
}

// checkOwn checks that our slot as read, own, still holds what we last
// wrote, or a write of ours that was thought failed. Caller holds mu.
func (h *Heartbeat) checkOwn(own SlotView) error {
	if own.Err != nil || own.Empty {
		// Damaged or zeroed, not taken (an acquirer writes a whole record,
		// never zeros): the next renewal rewrites it.
		return nil
	}
	ours := !own.Empty && own.Record.Incarnation == h.rec.Incarnation
	switch {
	case ours && own.Record.Sequence == h.rec.Sequence:
	case ours && own.Record.Sequence > h.rec.Sequence && own.Record.Sequence <= h.pending:
		// A write that failed or timed out landed after all: only we
		// write our incarnation, so it was ours.
		h.rec.Sequence = own.Record.Sequence
	case ours && own.Record.Sequence < h.rec.Sequence && h.lun.majority() > 1:
		// Of a set, the members read may include one that missed our
		// latest writes (they counted on the others): not a lost write.
	case ours:
		return h.lun.blockErr(h.lun.hdr.Geometry.slotBlock(h.host), fmt.Sprintf("heartbeat slot %d", h.host),
			fmt.Errorf("%w: it holds our sequence %d, we last wrote %d (a lost write, or another process with our incarnation)", ErrSlotLost, own.Record.Sequence, h.rec.Sequence),
			"this host must stop its protected VMs and restart wingmand; check the storage for lost writes")
	default:
		return h.lun.blockErr(h.lun.hdr.Geometry.slotBlock(h.host), fmt.Sprintf("heartbeat slot %d", h.host),
			fmt.Errorf("%w: now held by %q generation %d", ErrSlotLost, own.Record.HostName, own.Record.Generation),
			"this host must stop its protected VMs and restart wingmand")
	}
	return nil
}

// Release writes a final state (normally SlotLeft, which tells peers that
// this host's VMs may move at once) and gives up the slot.
func (h *Heartbeat) Release(ctx context.Context, final SlotState) error {
	h.SetState(final)
	_, err := h.Renew(ctx)
	return err
}
