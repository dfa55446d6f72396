package gossip

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/hashicorp/go-msgpack/v2/codec"

	"github.com/wingmanha/wingman/vm/plan"
)

// MaxTagBytes is serf's limit on a member's encoded tags (memberlist's node
// metadata limit).
const MaxTagBytes = 512

// ErrTagsTooLarge is returned when tags do not fit MaxTagBytes.
var ErrTagsTooLarge = errors.New("tags too large")

// ErrBadTags is wrapped by errors decoding a peer's tags.
var ErrBadTags = errors.New("malformed tags")

// tagSchema is the value of the schema tag; a member without it is not a
// Wingman host (or one too new to understand).
const tagSchema = "1"

// Tag keys are short: every byte counts against MaxTagBytes.
const (
	tagKeySchema      = "wm"
	tagKeyHostID      = "id"
	tagKeyMemory      = "mem" // "total/free" in MiB
	tagKeyCPUs        = "cpu"
	tagKeyMaintenance = "mnt" // "1" or "0"
	tagKeyAPI         = "api"
	tagKeyCluster     = "lun"
	tagKeyVersion     = "ver"
	tagKeyLimits      = "lim" // "cpu-overcommit/memory-overcommit/reserved MiB/starts"
	tagKeyLockManager = "lkm" // libvirt's lock manager: "lockd", "sanlock", "none"
)

// Tags are the facts a host advertises to its peers through serf. They are
// hints for placement and display; the LUN stays authoritative for who is
// alive and who owns what.
type Tags struct {
	// HostID is the host's slot number on the heartbeat LUN, 1..255.
	HostID int
	// MemoryTotalMiB and MemoryFreeMiB are the memory the host offers to
	// guests and how much of it is free, in MiB.
	MemoryTotalMiB uint64
	MemoryFreeMiB  uint64
	// CPUs is the number of logical CPUs the host offers to guests.
	CPUs int
	// Maintenance is set while the host is being emptied or is empty for
	// maintenance: place nothing on it.
	Maintenance bool
	// APIAddr is where the host's wingmand API listens, host:port.
	APIAddr string
	// ClusterUUID is the heartbeat LUN's cluster UUID the host uses; peers
	// with another one are configured for another cluster.
	ClusterUUID string
	// Version is the wingmand version.
	Version string
	// CPUOvercommit, MemoryOvercommit, ReservedMiB and MaxStarts are how far
	// the host lets itself be filled ([placement] in its wingman.toml): vCPUs
	// per CPU, memory overcommit, memory kept for the host, failover starts
	// at once. A zero CPUOvercommit advertises none, and peers apply their
	// defaults.
	CPUOvercommit    float64
	MemoryOvercommit float64
	ReservedMiB      uint64
	MaxStarts        int
	// LockManager is the lock manager the host's libvirt runs QEMU guests
	// with (hypervisor.LockManagerInUse: "lockd", "sanlock", "none"); ""
	// when it could not be told.
	LockManager string
}

// Encode returns the tags as serf's string map. It fails when HostID is out
// of range or the encoding exceeds MaxTagBytes (wrapping ErrTagsTooLarge).
func (t Tags) Encode() (map[string]string, error) {
	if t.HostID < 1 || t.HostID > MaxHostID {
		return nil, fmt.Errorf("tags: host id %d is not in 1..%d", t.HostID, MaxHostID)
	}
	if t.CPUs < 0 {
		return nil, fmt.Errorf("tags: cpus %d is negative", t.CPUs)
	}
	m := map[string]string{
		tagKeySchema:      tagSchema,
		tagKeyHostID:      strconv.Itoa(t.HostID),
		tagKeyMemory:      strconv.FormatUint(t.MemoryTotalMiB, 10) + "/" + strconv.FormatUint(t.MemoryFreeMiB, 10),
		tagKeyCPUs:        strconv.Itoa(t.CPUs),
		tagKeyMaintenance: "0",
	}
	if t.Maintenance {
		m[tagKeyMaintenance] = "1"
	}
	if t.CPUOvercommit != 0 {
		if !t.limitsEncodable() {
			return nil, fmt.Errorf("tags: limits %v/%v/%d: use positive ratios and starts", t.CPUOvercommit, t.MemoryOvercommit, t.MaxStarts)
		}
		m[tagKeyLimits] = strconv.FormatFloat(t.CPUOvercommit, 'g', 6, 64) + "/" +
			strconv.FormatFloat(t.MemoryOvercommit, 'g', 6, 64) + "/" + strconv.FormatUint(t.ReservedMiB, 10) + "/" + strconv.Itoa(t.MaxStarts)
	}
	// Empty strings are left out: they cost bytes and say nothing.
	for k, v := range map[string]string{tagKeyAPI: t.APIAddr, tagKeyCluster: t.ClusterUUID, tagKeyVersion: t.Version, tagKeyLockManager: t.LockManager} {
		if v != "" {
			m[k] = v
		}
	}
	n, err := encodedTagSize(m)
	if err != nil {
		return nil, err
	}
	if n > MaxTagBytes {
		return nil, fmt.Errorf("tags encode to %d bytes, serf allows %d; shorten the API address, cluster UUID or version: %w",
			n, MaxTagBytes, ErrTagsTooLarge)
	}
	return m, nil
}

// DecodeTags parses a member's serf tags. A missing or malformed field is an
// error wrapping ErrBadTags, naming the field; it never panics, whatever a
// peer sent. Unknown keys are ignored, for newer versions.
func DecodeTags(m map[string]string) (Tags, error) {
	var t Tags
	bad := func(key, format string, args ...any) (Tags, error) {
		return Tags{}, fmt.Errorf("tag %q: %s: %w", key, fmt.Sprintf(format, args...), ErrBadTags)
	}
	switch s, ok := m[tagKeySchema]; {
	case !ok:
		return bad(tagKeySchema, "missing: not a wingman host")
	case s != tagSchema:
		return bad(tagKeySchema, "schema %q, this version understands %q", s, tagSchema)
	}
	id, err := strconv.Atoi(m[tagKeyHostID])
	if err != nil || id < 1 || id > MaxHostID {
		return bad(tagKeyHostID, "%q is not a host id in 1..%d", m[tagKeyHostID], MaxHostID)
	}
	t.HostID = id
	if s, ok := m[tagKeyMemory]; ok {
		total, free, found := strings.Cut(s, "/")
		var err1, err2 error
		t.MemoryTotalMiB, err1 = strconv.ParseUint(total, 10, 64)
		t.MemoryFreeMiB, err2 = strconv.ParseUint(free, 10, 64)
		if !found || err1 != nil || err2 != nil {
			return bad(tagKeyMemory, "%q is not total/free MiB", s)
		}
	}
	if s, ok := m[tagKeyCPUs]; ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return bad(tagKeyCPUs, "%q is not a CPU count", s)
		}
		t.CPUs = n
	}
	switch s := m[tagKeyMaintenance]; s {
	case "", "0":
	case "1":
		t.Maintenance = true
	default:
		return bad(tagKeyMaintenance, "%q is neither 0 nor 1", s)
	}
	if s, ok := m[tagKeyLimits]; ok {
		f := strings.Split(s, "/")
		var err1, err2, err3, err4 error = errors.New("missing"), nil, nil, nil
		if len(f) == 4 {
			t.CPUOvercommit, err1 = strconv.ParseFloat(f[0], 64)
			t.MemoryOvercommit, err2 = strconv.ParseFloat(f[1], 64)
			t.ReservedMiB, err3 = strconv.ParseUint(f[2], 10, 64)
			t.MaxStarts, err4 = strconv.Atoi(f[3])
		}
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil || !t.limitsEncodable() {
			return bad(tagKeyLimits, "%q is not cpu-overcommit/memory-overcommit/reserved MiB/starts", s)
		}
	}
	t.APIAddr = m[tagKeyAPI]
	t.ClusterUUID = m[tagKeyCluster]
	t.Version = m[tagKeyVersion]
	t.LockManager = m[tagKeyLockManager]
	return t, nil
}

// limitsEncodable reports whether the placement limits are finite, positive
// numbers; their ranges are the planner's to judge.
func (t Tags) limitsEncodable() bool {
	return t.CPUOvercommit > 0 && t.MemoryOvercommit > 0 && !math.IsInf(t.CPUOvercommit, 0) &&
		!math.IsInf(t.MemoryOvercommit, 0) && t.MaxStarts >= 1
}

// encodedTagSize is the size serf gives the tags on the wire: one magic byte
// and the msgpack map, encoded as serf does.
func encodedTagSize(m map[string]string) (int, error) {
	var buf bytes.Buffer
	buf.WriteByte(0xff)
	if err := codec.NewEncoder(&buf, &codec.MsgpackHandle{}).Encode(m); err != nil {
		return 0, fmt.Errorf("encode tags: %w", err)
	}
	return buf.Len(), nil
}

// PlacementLimits are the limits the tags advertise: nil when they
// advertise none (peers plan the host with their defaults), an error when
// they are out of range.
func (t Tags) PlacementLimits() (*plan.Limits, error) {
	if t.CPUOvercommit == 0 {
		return nil, nil
	}
	// A huge ReservedMiB wraps when shifted: check it before.
	if t.ReservedMiB > 1<<30 {
		return nil, fmt.Errorf("reserved memory %d MiB: more than any host has", t.ReservedMiB)
	}
	l := plan.Limits{CPUOvercommit: t.CPUOvercommit, MemoryOvercommit: t.MemoryOvercommit, ReservedMemory: t.ReservedMiB << 20, MaxStarts: t.MaxStarts}
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return &l, nil
}
