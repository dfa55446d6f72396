package storage

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"
)

// MaxPolicy is the largest policy blob a VM record holds. The policy's
// encoding belongs to the VM manager; storage keeps it opaque.
const MaxPolicy = 4096

const cfgHeaderLen = 256

var cfgMagic = []byte("WGVC")

// VMConfig is what a protected VM's record stores besides its lease.
type VMConfig struct {
	UUID   UUID
	Name   string
	Policy []byte // opaque to storage, at most MaxPolicy bytes
	XML    []byte // libvirt domain XML, at most MaxXML(policy) bytes
	// Filled in by storage:
	Seq     uint64 // version, increasing across both copies
	Epoch   uint64 // lease epoch of the writer
	Writer  int    // host that wrote it
	Wall    time.Time
	Deleted bool // tombstone left by DeleteVM
}

// MaxXML is the largest domain XML that fits with a policy of policyLen bytes.
func (g Geometry) MaxXML(policyLen int) int { return g.ConfigBlks*BlockSize - cfgHeaderLen - policyLen }

func (c *VMConfig) encode(idx int, g Geometry) ([]byte, error) {
	if len(c.Policy) > MaxPolicy {
		return nil, fmt.Errorf("%w: policy is %d bytes, limit %d", ErrTooLarge, len(c.Policy), MaxPolicy)
	}
	if len(c.XML) > g.MaxXML(len(c.Policy)) {
		return nil, fmt.Errorf("%w: domain XML is %d bytes, this LUN holds at most %d (reformat with larger config blocks)", ErrTooLarge, len(c.XML), g.MaxXML(len(c.Policy)))
	}
	if len(c.Name) > 63 {
		return nil, fmt.Errorf("%w: VM name %q longer than 63 bytes", ErrInvalid, c.Name)
	}
	total := cfgHeaderLen + len(c.Policy) + len(c.XML)
	b := make([]byte, (total+BlockSize-1)/BlockSize*BlockSize)
	copy(b[0:4], cfgMagic)
	le.PutUint16(b[4:], FormatVersion)
	le.PutUint32(b[8:], uint32(total))
	le.PutUint32(b[16:], uint32(idx))
	if c.Deleted {
		le.PutUint32(b[20:], 1)
	}
	le.PutUint64(b[24:], c.Seq)
	le.PutUint64(b[32:], c.Epoch)
	le.PutUint16(b[40:], uint16(c.Writer))
	copy(b[48:64], c.UUID[:])
	putString(b[64:128], c.Name)
	le.PutUint32(b[128:], uint32(len(c.Policy)))
	le.PutUint32(b[132:], uint32(len(c.XML)))
	le.PutUint64(b[136:], uint64(c.Wall.UnixNano()))
	copy(b[cfgHeaderLen:], c.Policy)
	copy(b[cfgHeaderLen+len(c.Policy):], c.XML)
	le.PutUint32(b[12:], crc32c(b[:total]))
	return b, nil
}

// cfgLen returns the record length a config copy's first block announces (0 if empty).
func cfgLen(first []byte, g Geometry) (int, error) {
	if allZero(first[:cfgHeaderLen]) {
		return 0, nil
	}
	if !bytes.Equal(first[0:4], cfgMagic) {
		return 0, fmt.Errorf("%w: not a VM config record", ErrCorrupt)
	}
	n := int(le.Uint32(first[8:]))
	if n < cfgHeaderLen || n > g.ConfigBlks*BlockSize {
		return 0, fmt.Errorf("%w: VM config length %d", ErrCorrupt, n)
	}
	return n, nil
}

func decodeConfig(b []byte, total int, idx int) (*VMConfig, error) {
	if v := le.Uint16(b[4:]); v != FormatVersion {
		return nil, fmt.Errorf("%w: VM config version %d", ErrVersion, v)
	}
	sum := le.Uint32(b[12:])
	tmp := bytes.Clone(b[:total])
	le.PutUint32(tmp[12:], 0)
	if crc32c(tmp) != sum {
		return nil, fmt.Errorf("%w: VM config checksum mismatch (torn write or damaged block)", ErrCorrupt)
	}
	if got := int(le.Uint32(b[16:])); got != idx {
		return nil, fmt.Errorf("%w: config claims record %d", ErrCorrupt, got)
	}
	pl, xl := int(le.Uint32(b[128:])), int(le.Uint32(b[132:]))
	if cfgHeaderLen+pl+xl != total {
		return nil, fmt.Errorf("%w: VM config sizes do not add up", ErrCorrupt)
	}
	c := &VMConfig{Deleted: le.Uint32(b[20:])&1 != 0, Seq: le.Uint64(b[24:]), Epoch: le.Uint64(b[32:]),
		Writer: int(le.Uint16(b[40:])), Name: getString(b[64:128]), Wall: time.Unix(0, int64(le.Uint64(b[136:])))}
	copy(c.UUID[:], b[48:64])
	c.Policy = bytes.Clone(b[cfgHeaderLen : cfgHeaderLen+pl])
	c.XML = bytes.Clone(b[cfgHeaderLen+pl : total])
	return c, nil
}

// VMRecord is one VM record slot as read from the LUN.
type VMRecord struct {
	Index  int
	Config *VMConfig // newest valid copy; nil if the record never held a VM
	Lease  LeaseState
	// Warning is set when one config copy is damaged but the other was good
	// (a torn write of an update): nothing was lost, the next write heals it.
	Warning error
	newest  int // which copy Config came from (0 or 1), -1 if none
	// leaseUnread is set by ReadVMs on a record that never held a config:
	// its lease was not read (Free reads it before using the record).
	leaseUnread bool
}

// Protected reports whether the record holds a live (not deleted) VM.
func (r VMRecord) Protected() bool { return r.Config != nil && !r.Config.Deleted }

// Free reports whether a new VM may be stored in this record. A record
// whose lease ReadVMs did not read is not known to be free.
func (r VMRecord) Free() bool {
	return !r.Protected() && !r.leaseUnread && !r.Lease.Held() && !r.Lease.InProgress
}

// readConfigCopy reads config copy copyNo of record idx: nil when blank.
// Of a set it takes the newest valid copy any member holds; a damaged one
// counts only when no member holds a valid one.
func (l *LUN) readConfigCopy(ctx context.Context, idx, copyNo int) (*VMConfig, error) {
	type held struct {
		cfg *VMConfig
		bad error
	}
	got, errs, err := onMembers(ctx, &l.lunSet, false, true, func(ctx context.Context, m *member) (held, error) {
		cfg, bad, err := readConfigOn(ctx, m, l.hdr.Geometry, idx, copyNo)
		return held{cfg, bad}, err
	})
	if err != nil {
		return nil, fmt.Errorf("read VM record %d config %c: %w", idx, 'A'+copyNo, err)
	}
	var newest *VMConfig
	var bad error
	for i, h := range got {
		if errs[i] == nil {
			l.noteCopy(i, fmt.Sprintf("VM record %d config %c", idx, 'A'+copyNo), h.bad != nil)
		}
		bad = cmp.Or(bad, h.bad)
		if h.cfg != nil && (newest == nil || h.cfg.Seq > newest.Seq) {
			newest = h.cfg
		}
	}
	if newest == nil {
		return nil, bad
	}
	return newest, nil
}

// readConfigOn reads a config copy from member m: err is an I/O failure,
// bad a damaged record, cfg nil when blank.
func readConfigOn(ctx context.Context, m *member, g Geometry, idx, copyNo int) (cfg *VMConfig, bad, err error) {
	block := g.vmConfigBlock(idx, copyNo)
	first, err := m.io.read(ctx, block*BlockSize, BlockSize)
	if err != nil {
		return nil, nil, err
	}
	n, bad := cfgLen(first, g)
	if bad != nil || n == 0 {
		return nil, bad, nil
	}
	b := first
	if n > BlockSize {
		if b, err = m.io.read(ctx, block*BlockSize, (n+BlockSize-1)/BlockSize*BlockSize); err != nil {
			return nil, nil, err
		}
	}
	cfg, bad = decodeConfig(b, n, idx)
	return cfg, bad, nil
}

// ReadVM reads VM record idx: its newest valid config copy and its lease.
func (l *LUN) ReadVM(ctx context.Context, idx int) (VMRecord, error) {
	return l.readVM(ctx, idx, true)
}

// readVM reads record idx; without blankLease it skips the lease of a
// record whose config copies are both blank (it never held a VM), which
// is most of a LUN's records and a third of a scan's I/Os.
func (l *LUN) readVM(ctx context.Context, idx int, blankLease bool) (VMRecord, error) {
	if err := l.hdr.Geometry.checkVM(l.Path(), idx); err != nil {
		return VMRecord{}, err
	}
	r := VMRecord{Index: idx, newest: -1}
	seen := l.dmg.mark(markKey{markConfig, idx})
	var cfgs [2]*VMConfig
	var errs [2]error
	for c := range 2 {
		cfgs[c], errs[c] = l.readConfigCopy(ctx, idx, c)
		var be *BlockError
		if errs[c] != nil && errors.As(errs[c], &be) && !errors.Is(errs[c], ErrCorrupt) && !errors.Is(errs[c], ErrVersion) {
			return VMRecord{}, errs[c] // an I/O failure, not a damaged record
		}
	}
	for c := range 2 {
		if cfgs[c] != nil && (r.Config == nil || cfgs[c].Seq > r.Config.Seq) {
			r.Config, r.newest = cfgs[c], c
		}
	}
	for c := range 2 {
		if errs[c] != nil {
			e := l.blockErr(l.hdr.Geometry.vmConfigBlock(idx, c), fmt.Sprintf("VM record %d config %c", idx, 'A'+c), errs[c],
				"the other copy is intact; the next update of this VM rewrites the damaged one")
			if r.Config == nil {
				e.(*BlockError).Hint = "both copies are damaged; remove the record and protect the VM again"
				return VMRecord{}, e
			}
			r.Warning = e
		}
	}
	if errs[0] == nil && errs[1] == nil {
		err := checkConfigs(l, idx, cfgs, seen)
		l.dmg.note(fmt.Sprintf("VM record %d config", idx), err)
		if err != nil {
			return VMRecord{}, err
		}
	}
	if !blankLease && r.Config == nil && errs[0] == nil && errs[1] == nil {
		r.leaseUnread = true
		return r, nil
	}
	lb, err := l.readLease(ctx, idx)
	if err == nil && r.Config != nil {
		err = checkLease(l, idx, lb, r.Config.Epoch, "its config was written at")
		l.dmg.note(fmt.Sprintf("VM record %d lease", idx), err)
	}
	if err != nil {
		return VMRecord{}, err
	}
	r.Lease = lb.state()
	return r, nil
}

// ReadVMs reads every VM record. Records that cannot be read are returned
// in errs. The lease of a record that never held a VM is not read (a
// lease without a config belongs to no VM); Free says such a record is not
// known to be free, and ProtectVM reads its lease before using it.
func (l *LUN) ReadVMs(ctx context.Context) (recs []VMRecord, errs []error) {
	for i := range l.hdr.Geometry.MaxVMs {
		r, err := l.readVM(ctx, i, false)
		if err != nil {
			if ctx.Err() != nil {
				return recs, append(errs, err)
			}
			errs = append(errs, err)
			continue
		}
		recs = append(recs, r)
	}
	return recs, errs
}

// FindVM returns the record of the protected VM with this UUID.
func (l *LUN) FindVM(ctx context.Context, id UUID) (VMRecord, error) {
	recs, errs := l.ReadVMs(ctx)
	for _, r := range recs {
		if r.Protected() && r.Config.UUID == id {
			return r, nil
		}
	}
	if len(errs) > 0 {
		return VMRecord{}, fmt.Errorf("VM %s: %w (and %d records could not be read: %v)", id, ErrNotFound, len(errs), errs[0])
	}
	return VMRecord{}, fmt.Errorf("VM %s: %w: it is not protected; protect it first", id, ErrNotFound)
}

// WriteVMConfig stores cfg in record idx. The caller must hold the lease.
// It writes the older copy, so a torn write never destroys the newer one.
func (l *LUN) WriteVMConfig(ctx context.Context, idx int, lease LeaseState, cfg VMConfig) (VMConfig, error) {
	if err := l.hdr.Geometry.checkVM(l.Path(), idx); err != nil {
		return cfg, err
	}
	if _, err := l.ownLease(ctx, idx, lease); err != nil {
		return cfg, fmt.Errorf("write config of VM record %d: %w", idx, err)
	}
	cur, err := l.ReadVM(ctx, idx)
	if err != nil {
		return cfg, err
	}
	target := 0
	cfg.Seq = 1
	if cur.Config != nil {
		target = 1 - cur.newest
		cfg.Seq = cur.Config.Seq + 1
	}
	cfg.Epoch, cfg.Writer, cfg.Wall = lease.Epoch, lease.Owner.Host, time.Now()
	b, err := cfg.encode(idx, l.hdr.Geometry)
	if err != nil {
		return cfg, fmt.Errorf("write config of VM %q: %w", cfg.Name, err)
	}
	if _, err := l.write(ctx, l.hdr.Geometry.vmConfigBlock(idx, target)*BlockSize, b); err != nil {
		return cfg, fmt.Errorf("write config of VM %q: %w", cfg.Name, err)
	}
	l.dmg.raise(markKey{markConfig, idx}, cfg.Seq)
	return cfg, nil
}

// ProtectVM stores a new protected VM in a free record, owned by me, and
// returns the record index and the lease. Concurrent callers never get the
// same record.
func (l *LUN) ProtectVM(ctx context.Context, me Owner, cfg VMConfig) (int, LeaseState, error) {
	if cfg.UUID.IsZero() {
		return -1, LeaseState{}, fmt.Errorf("protect VM %q: %w: UUID is required", cfg.Name, ErrInvalid)
	}
	if _, err := cfg.encode(0, l.hdr.Geometry); err != nil {
		return -1, LeaseState{}, fmt.Errorf("protect VM %q: %w", cfg.Name, err)
	}
	recs, errs := l.ReadVMs(ctx)
	for _, r := range recs {
		if r.Protected() && r.Config.UUID == cfg.UUID {
			return -1, LeaseState{}, fmt.Errorf("protect VM %q: %w", cfg.Name, ErrAlreadyProtected)
		}
	}
	if len(errs) > 0 {
		// An unreadable record may already hold this VM with an owner; a
		// second record would give the VM a second owner.
		return -1, LeaseState{}, fmt.Errorf("protect VM %q: cannot tell whether it is already protected: %d records unreadable, first: %w", cfg.Name, len(errs), errs[0])
	}
	for _, r := range recs {
		if r.leaseUnread {
			lease, err := l.ReadLease(ctx, r.Index)
			if err != nil {
				return -1, LeaseState{}, fmt.Errorf("protect VM %q: %w", cfg.Name, err)
			}
			r.Lease, r.leaseUnread = lease, false
		}
		if !r.Free() {
			continue
		}
		lease, err := l.AcquireLease(ctx, r.Index, r.Lease.Epoch, me)
		if errors.Is(err, ErrLeaseHeld) {
			continue // someone else took this record first
		}
		if err != nil {
			return -1, LeaseState{}, fmt.Errorf("protect VM %q: %w", cfg.Name, err)
		}
		if _, err := l.WriteVMConfig(ctx, r.Index, lease, cfg); err != nil {
			return -1, LeaseState{}, err
		}
		if err := l.checkSoleRecord(ctx, r.Index, lease, cfg); err != nil {
			return -1, LeaseState{}, err
		}
		return r.Index, lease, nil
	}
	return -1, LeaseState{}, fmt.Errorf("protect VM %q: %w: all %d records are in use; unprotect a VM or reformat with more --vms", cfg.Name, ErrNoFreeVMRecord, l.hdr.Geometry.MaxVMs)
}

// checkSoleRecord re-reads every record after ProtectVM wrote record idx and
// withdraws it if another record now holds the same VM (two hosts protected
// it at once) or if that cannot be known. Of two racers at least one sees
// the other's record, because each looks only after its own write landed;
// so at most one keeps its record, and the VM never gets two owners.
func (l *LUN) checkSoleRecord(ctx context.Context, idx int, lease LeaseState, cfg VMConfig) error {
	recs, errs := l.ReadVMs(ctx)
	var why error
	for _, r := range recs {
		if r.Index != idx && r.Protected() && r.Config.UUID == cfg.UUID {
			why = fmt.Errorf("%w: VM %s was protected at the same time in record %d; retry", ErrContended, cfg.UUID, r.Index)
			break
		}
	}
	if why == nil && len(errs) > 0 {
		why = fmt.Errorf("cannot check that VM %s is not protected twice: %d records unreadable, first: %w", cfg.UUID, len(errs), errs[0])
	}
	if why == nil {
		return nil
	}
	if err := l.DeleteVM(ctx, idx, lease); err != nil {
		return fmt.Errorf("protect VM %q: %w; withdrawing record %d failed too: %v", cfg.Name, why, idx, err)
	}
	return fmt.Errorf("protect VM %q: %w", cfg.Name, why)
}

// DeleteVM leaves a tombstone in record idx and releases the lease, which
// frees the record. The caller must hold the lease.
func (l *LUN) DeleteVM(ctx context.Context, idx int, lease LeaseState) error {
	cur, err := l.ReadVM(ctx, idx)
	if err != nil {
		return err
	}
	if cur.Config == nil {
		return fmt.Errorf("delete VM record %d: %w: the record is empty", idx, ErrNotFound)
	}
	tomb := VMConfig{UUID: cur.Config.UUID, Name: cur.Config.Name, Deleted: true}
	if _, err := l.WriteVMConfig(ctx, idx, lease, tomb); err != nil {
		return err
	}
	return l.ReleaseLease(ctx, idx, lease)
}
