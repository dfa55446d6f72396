package storage

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"
)

// FormatVersion is the on-disk format this package reads and writes.
const FormatVersion = 1

var headerMagic = [8]byte{'W', 'I', 'N', 'G', 'M', 'L', 'U', 'N'}

// Limits of format v1.
const (
	MaxHosts         = 255 // host IDs 1..255; the serf view is a 256-bit map
	MaxVMs           = 65536
	DefaultHosts     = 16
	DefaultVMs       = 256
	DefaultEventBlks = 64 // per host: 64 blocks x 16 events = 1024 events
	DefaultCfgBlocks = 16 // per config copy: 64 KiB, XML up to MaxXML
	headerRecLen     = 256
	leaseCeilingOff  = 164 // the header's network-lease ceiling (ms), in bytes v1 first wrote as zeros
	// A LUN set's fields, in bytes v1 first wrote as zeros: a set of 1
	// leaves them zero, so its header is byte for byte v1's.
	setSizeOff   = 168 // u8: LUNs in the set; 0 (v1): 1
	setMemberOff = 169 // u8: this LUN's index in the set, 1..size; 0: 1
	setIDOff     = 176 // 16 bytes: random, the same in every member; zero for a set of 1
)

// UUID is a 16-byte identifier (cluster, VM).
type UUID [16]byte

// NewUUID returns a random (version 4) UUID.
func NewUUID() UUID {
	var u UUID
	if _, err := rand.Read(u[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

// ParseUUID parses the canonical 36-character form.
func ParseUUID(s string) (UUID, error) {
	var u UUID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, fmt.Errorf("%w: %q is not a UUID (want 8-4-4-4-12 hex digits)", ErrInvalid, s)
	}
	h := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]
	if _, err := hex.Decode(u[:], []byte(h)); err != nil {
		return u, fmt.Errorf("%w: %q is not a UUID: %v", ErrInvalid, s, err)
	}
	return u, nil
}

func (u UUID) String() string {
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// IsZero reports whether u is all zeros.
func (u UUID) IsZero() bool { return u == UUID{} }

// Geometry is the size of each LUN region.
type Geometry struct {
	MaxHosts    int // host slots (and mailboxes, event rings)
	MaxVMs      int // VM records
	EventBlocks int // event-ring blocks per host
	ConfigBlks  int // blocks per VM config copy
}

// DefaultGeometry is 16 hosts, 256 VMs, 1024 events per host, 64 KiB configs.
func DefaultGeometry() Geometry {
	return Geometry{MaxHosts: DefaultHosts, MaxVMs: DefaultVMs, EventBlocks: DefaultEventBlks, ConfigBlks: DefaultCfgBlocks}
}

// Validate checks the geometry's limits.
func (g Geometry) Validate() error {
	switch {
	case g.MaxHosts < 1 || g.MaxHosts > MaxHosts:
		return fmt.Errorf("%w: hosts %d: use 1..%d", ErrBadGeometry, g.MaxHosts, MaxHosts)
	case g.MaxVMs < 1 || g.MaxVMs > MaxVMs:
		return fmt.Errorf("%w: vms %d: use 1..%d", ErrBadGeometry, g.MaxVMs, MaxVMs)
	case g.EventBlocks < 1 || g.EventBlocks > 4096:
		return fmt.Errorf("%w: event blocks per host %d: use 1..4096", ErrBadGeometry, g.EventBlocks)
	case g.ConfigBlks < 2 || g.ConfigBlks > 256:
		return fmt.Errorf("%w: config blocks %d: use 2..256", ErrBadGeometry, g.ConfigBlks)
	}
	return nil
}

// Block numbers of each region.
func (g Geometry) slotBlock(host int) int64    { return int64(host) } // hosts are 1-based; block 0 is the header
func (g Geometry) mailboxBlock(host int) int64 { return int64(g.MaxHosts + host) }
func (g Geometry) eventBase(host int) int64 {
	return int64(2*g.MaxHosts+1) + int64(host-1)*int64(g.EventBlocks)
}
func (g Geometry) vmRecordBlocks() int64 { return int64(2*g.ConfigBlks + g.MaxHosts) }
func (g Geometry) vmBase(idx int) int64 {
	return int64(2*g.MaxHosts+1) + int64(g.MaxHosts)*int64(g.EventBlocks) + int64(idx)*g.vmRecordBlocks()
}
func (g Geometry) vmConfigBlock(idx, copyNo int) int64 {
	return g.vmBase(idx) + int64(copyNo*g.ConfigBlks)
}
func (g Geometry) vmLeaseBlock(idx, host int) int64 {
	return g.vmBase(idx) + int64(2*g.ConfigBlks) + int64(host-1)
}

// TotalBlocks is the number of blocks the LUN needs.
func (g Geometry) TotalBlocks() int64 { return g.vmBase(g.MaxVMs) }

// Size is the number of bytes the LUN needs.
func (g Geometry) Size() int64 { return g.TotalBlocks() * BlockSize }

// Header is block 0 of the LUN.
type Header struct {
	Version     int
	ClusterUUID UUID
	ClusterName string
	SectorSize  int // logical sector size seen at format time
	Geometry    Geometry
	Timings     Timings
	Created     time.Time
	// SetSize is how many heartbeat LUNs form the set (3, or 0 for a lone
	// LUN: see LUNs), SetMember this LUN's index in it (1..SetSize; 0 for a
	// lone LUN), SetID what ties the members of a set together (zero for a
	// lone LUN). See FormatSet.
	SetSize   int
	SetMember int
	SetID     UUID
}

// LUNs is how many heartbeat LUNs form the set this LUN belongs to: 1 or 3.
func (h Header) LUNs() int { return max(h.SetSize, 1) }

// Member is this LUN's index in its set, 1..LUNs().
func (h Header) Member() int { return max(h.SetMember, 1) }

func durMS(d time.Duration) uint32 { return uint32(d / time.Millisecond) }
func msDur(v uint32) time.Duration { return time.Duration(v) * time.Millisecond }

// encode returns the header block.
func (h *Header) encode() []byte {
	b := make([]byte, BlockSize)
	r := b[:headerRecLen]
	copy(r[0:8], headerMagic[:])
	le.PutUint16(r[8:], uint16(h.Version))
	le.PutUint16(r[10:], headerRecLen)
	le.PutUint32(r[12:], BlockSize)
	le.PutUint32(r[16:], uint32(h.SectorSize))
	le.PutUint16(r[20:], uint16(h.Geometry.MaxHosts))
	le.PutUint32(r[24:], uint32(h.Geometry.MaxVMs))
	le.PutUint32(r[28:], uint32(h.Geometry.EventBlocks))
	le.PutUint32(r[32:], uint32(h.Geometry.ConfigBlks))
	copy(r[40:56], h.ClusterUUID[:])
	putString(r[56:120], h.ClusterName)
	le.PutUint64(r[120:], uint64(h.Created.UnixNano()))
	t := h.Timings
	for i, d := range []time.Duration{t.Renew, t.IOTimeout, t.SelfFence, t.Watchdog, t.Dead, t.PowerFence, t.PathFailover} {
		le.PutUint32(r[128+4*i:], durMS(d))
	}
	le.PutUint64(r[156:], uint64(h.Geometry.TotalBlocks()))
	// Added in v1's zero bytes: a release before it ignores it, and a
	// header it wrote reads as the default ceiling (Timings.Ceiling).
	le.PutUint32(r[leaseCeilingOff:], durMS(t.LeaseCeiling))
	if h.SetSize > 1 {
		r[setSizeOff], r[setMemberOff] = byte(h.SetSize), byte(h.SetMember)
		copy(r[setIDOff:setIDOff+16], h.SetID[:])
	}
	sealRecord(r)
	return b
}

// decodeHeader parses block 0. It never guesses: anything unexpected is an error.
func decodeHeader(path string, b []byte) (*Header, error) {
	r := b[:headerRecLen]
	berr := func(err error, hint string) error {
		return &BlockError{Path: path, Block: 0, What: "header", Err: err, Hint: hint}
	}
	if !bytes.Equal(r[0:8], headerMagic[:]) {
		return nil, berr(ErrNotFormatted, "format it with `wingman lun format --cluster NAME "+path+"`, or check the path")
	}
	if v := le.Uint16(r[8:]); v != FormatVersion {
		return nil, berr(fmt.Errorf("%w: version %d, this build reads %d", ErrVersion, v, FormatVersion), "upgrade wingman on this host")
	}
	if n := le.Uint16(r[10:]); n != headerRecLen {
		return nil, berr(fmt.Errorf("%w: header length %d", ErrCorrupt, n), "restore the LUN from backup or reformat it")
	}
	if !recordOK(r) {
		return nil, berr(fmt.Errorf("%w: header checksum mismatch", ErrCorrupt), "the header was damaged; restore the LUN from backup or reformat it (this loses the VM records)")
	}
	if bs := le.Uint32(r[12:]); bs != BlockSize {
		return nil, berr(fmt.Errorf("%w: block size %d", ErrVersion, bs), "this build uses 4096-byte blocks")
	}
	h := &Header{Version: FormatVersion, SectorSize: int(le.Uint32(r[16:]))}
	h.Geometry = Geometry{MaxHosts: int(le.Uint16(r[20:])), MaxVMs: int(le.Uint32(r[24:])),
		EventBlocks: int(le.Uint32(r[28:])), ConfigBlks: int(le.Uint32(r[32:]))}
	copy(h.ClusterUUID[:], r[40:56])
	h.ClusterName = getString(r[56:120])
	h.Created = time.Unix(0, int64(le.Uint64(r[120:])))
	var ds [7]time.Duration
	for i := range ds {
		ds[i] = msDur(le.Uint32(r[128+4*i:]))
	}
	h.Timings = Timings{Renew: ds[0], IOTimeout: ds[1], SelfFence: ds[2], Watchdog: ds[3], Dead: ds[4], PowerFence: ds[5], PathFailover: ds[6],
		LeaseCeiling: msDur(le.Uint32(r[leaseCeilingOff:]))}
	h.SetSize, h.SetMember = int(r[setSizeOff]), int(r[setMemberOff])
	copy(h.SetID[:], r[setIDOff:setIDOff+16])
	if lone := h.SetSize == 0 && h.SetMember == 0 && h.SetID.IsZero(); !lone && (h.SetSize != 3 || h.SetMember < 1 || h.SetMember > 3 || h.SetID.IsZero()) {
		return nil, berr(fmt.Errorf("%w: LUN set of %d, member %d, set id %s", ErrCorrupt, h.SetSize, h.SetMember, h.SetID), "the header is inconsistent; reformat the LUN set")
	}
	if err := h.Geometry.Validate(); err != nil {
		return nil, berr(err, "the header is inconsistent; reformat the LUN")
	}
	if tb := int64(le.Uint64(r[156:])); tb != h.Geometry.TotalBlocks() {
		return nil, berr(fmt.Errorf("%w: header says %d blocks, geometry needs %d", ErrCorrupt, tb, h.Geometry.TotalBlocks()), "reformat the LUN")
	}
	if err := h.Timings.Validate(); err != nil {
		return nil, berr(err, "reformat with safe timings (`wingman lun format --profile default`)")
	}
	return h, nil
}

// sameHeader reports whether two headers describe the same LUN format.
func sameHeader(a, b *Header) bool {
	return a.ClusterUUID == b.ClusterUUID && a.ClusterName == b.ClusterName && a.Geometry == b.Geometry &&
		a.Timings == b.Timings && a.Version == b.Version && a.Created.Equal(b.Created) &&
		a.SetSize == b.SetSize && a.SetMember == b.SetMember && a.SetID == b.SetID
}
