package storage

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"testing"
	"time"
)

// TestGoldenLUNReencodes decodes every record of the previous release's
// golden LUN (golden_test.go) and encodes it again with this build: the
// bytes must come out the same. So every field of the previous format is
// still at its offset, and a field added since is written only where the
// previous release wrote zeros, when its value is zero. With
// TestNewSlotFieldsOnlyInZeroBytes this is what lets the previous
// release's decoders, which read fixed offsets and check the CRC over the
// whole record, read a record of this build.
func TestGoldenLUNReencodes(t *testing.T) {
	img := GoldenImage(t)
	block := func(n int64) []byte { return img[n*BlockSize : (n+1)*BlockSize] }
	hdr, err := decodeHeader("golden", block(0))
	if err != nil {
		t.Fatal(err)
	}
	same := func(what string, got, want []byte) {
		t.Helper()
		if !bytes.Equal(got, want) {
			i := 0
			for i < len(got) && i < len(want) && got[i] == want[i] {
				i++
			}
			t.Errorf("%s: re-encoded record differs from the golden bytes from offset %d", what, i)
		}
	}
	same("header", hdr.encode(), block(0))
	g := hdr.Geometry
	records := 0
	for host := 1; host <= g.MaxHosts; host++ {
		b := block(g.slotBlock(host))
		if r, err := decodeSlot(b); err != nil {
			t.Fatalf("slot %d: %v", host, err)
		} else if !allZero(b) {
			same("slot", r.encode(), b)
			records++
		}
		b = block(g.mailboxBlock(host))
		if m, err := decodeMessage(b); err != nil {
			t.Fatalf("mailbox %d: %v", host, err)
		} else if m.Type != MsgNone {
			same("mailbox", m.encode(), b)
			records++
		}
		for n := range int64(g.EventBlocks) {
			b := block(g.eventBase(host) + n)
			for off := 0; off < BlockSize; off += eventLen {
				if e, ok := decodeEvent(b[off:]); ok {
					re := make([]byte, eventLen)
					e.encodeInto(re)
					same("event", re, b[off:off+eventLen])
					records++
				}
			}
		}
	}
	for idx := range g.MaxVMs {
		for c := range 2 {
			b := img[g.vmConfigBlock(idx, c)*BlockSize:]
			n, err := cfgLen(b, g)
			if err != nil || n == 0 {
				continue
			}
			cfg, err := decodeConfig(b, n, idx)
			if err != nil {
				t.Fatalf("VM record %d copy %d: %v", idx, c, err)
			}
			re, err := cfg.encode(idx, g)
			if err != nil {
				t.Fatal(err)
			}
			same("VM config", re, b[:len(re)])
			records++
		}
		for host := 1; host <= g.MaxHosts; host++ {
			b := block(g.vmLeaseBlock(idx, host))
			if d, ok, err := decodeDblock(b); err != nil {
				t.Fatalf("VM lease %d/%d: %v", idx, host, err)
			} else if ok {
				same("VM lease", d.encode(), b)
				records++
			}
		}
	}
	for reg := range numRegisters {
		for host := 1; host <= g.MaxHosts; host++ {
			for c := range 2 {
				b := img[g.regBlock(reg, host, c)*BlockSize:][:regCopyBlocks*BlockSize]
				if r, ok, err := decodeBallot(b, reg, host, hdr); err != nil {
					t.Fatalf("%s ballot %d/%d: %v", regNames[reg], host, c, err)
				} else if ok {
					same(regNames[reg]+" ballot", r.encode(reg, hdr), b)
					records++
				}
			}
		}
	}
	if records < 14 { // 3 slots, 1 mailbox, 2 events, 2 configs, 2 leases, 4 ballot copies
		t.Errorf("only %d records re-encoded: is the golden image filled?", records)
	}
}

// GoldenImage is the golden LUN, uncompressed (exported for golden_test.go).
func GoldenImage(t *testing.T) []byte {
	t.Helper()
	f, err := os.Open("testdata/lun-v1.img.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestNewSlotFieldsOnlyInZeroBytes: the fields added to the slot record
// since the golden release lie in bytes that every golden slot holds as
// zeros, and setting them changes no other byte but the checksum. The
// previous release's decoder reads fixed offsets and checks the CRC over
// the whole record, so it reads a slot of this build as it was, ignoring
// the new fields. A field added later goes into newSlotFields too.
func TestNewSlotFieldsOnlyInZeroBytes(t *testing.T) {
	newSlotFields := []struct {
		name     string
		from, to int
		set      func(*SlotRecord)
	}{
		{"gossip key", gossipKeyOff, gossipKeyOff + 8, func(r *SlotRecord) { r.GossipKey = 0x0123456789abcdef }},
		{"isolation address reach", reachOff, reachOff + 1, func(r *SlotRecord) { r.Reach = ReachOK }},
		{"VM-records counter", recordsOff, recordsOff + 4, func(r *SlotRecord) { r.Records = 0xfedcba98 }},
		{"unacknowledged renewals", unackedOff, unackedOff + 4, func(r *SlotRecord) { r.Unacked = uint32(min(r.Sequence, 0x7fffffff)) }},
		{"disarm", disarmOff, disarmOff + disarmRecLen, func(r *SlotRecord) {
			r.Disarm = SlotDisarm{Gen: 3, By: 2, For: time.Hour, Reason: "SAN firmware", Disarmed: true}
		}},
	}
	img := GoldenImage(t)
	hdr, err := decodeHeader("golden", img[:BlockSize])
	if err != nil {
		t.Fatal(err)
	}
	for host := 1; host <= hdr.Geometry.MaxHosts; host++ {
		b := img[hdr.Geometry.slotBlock(host)*BlockSize:][:BlockSize]
		if allZero(b) {
			continue
		}
		old, err := decodeSlot(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range newSlotFields {
			if !allZero(b[f.from:f.to]) {
				t.Errorf("slot %d: the golden release wrote bytes %d..%d, where the %s field now is", host, f.from, f.to, f.name)
			}
			rec := old
			f.set(&rec)
			nb := rec.encode()
			for i := range slotRecLen - 4 {
				if nb[i] != b[i] && (i < f.from || i >= f.to) {
					t.Errorf("slot %d: setting the %s field changed byte %d, outside %d..%d", host, f.name, i, f.from, f.to)
					break
				}
			}
			if back, err := decodeSlot(nb); err != nil || back.GossipKey != rec.GossipKey || back.Disarm != rec.Disarm || back.Reach != rec.Reach || back.Records != rec.Records || back.Unacked != rec.Unacked {
				t.Errorf("slot %d with the %s field: %+v, %v", host, f.name, back, err)
			}
		}
	}
}

// TestNewHeaderFieldsOnlyInZeroBytes: the header fields added since the
// golden release (the network-lease ceiling) lie in bytes the golden
// header holds as zeros, and setting them changes no other byte but the
// checksum: the previous release reads such a header as before. The
// golden header, which has no ceiling, reads as the default one.
func TestNewHeaderFieldsOnlyInZeroBytes(t *testing.T) {
	img := GoldenImage(t)
	b := img[:BlockSize]
	hdr, err := decodeHeader("golden", b)
	if err != nil {
		t.Fatal(err)
	}
	if got := hdr.Timings.Ceiling(); got != DefaultLeaseCeiling {
		t.Errorf("the golden header's lease ceiling reads as %v, want the default %v", got, DefaultLeaseCeiling)
	}
	from, to := leaseCeilingOff, leaseCeilingOff+4
	if !allZero(b[from:to]) {
		t.Fatalf("the golden release wrote bytes %d..%d, where the lease ceiling now is", from, to)
	}
	h := *hdr
	h.Timings.LeaseCeiling = 25 * time.Second
	nb := h.encode()
	for i := range headerRecLen - 4 {
		if nb[i] != b[i] && (i < from || i >= to) {
			t.Errorf("setting the lease ceiling changed byte %d, outside %d..%d", i, from, to)
		}
	}
	back, err := decodeHeader("new", nb)
	if err != nil || back.Timings.LeaseCeiling != 25*time.Second {
		t.Errorf("header with a lease ceiling of 25s reads back as %+v, %v", back, err)
	}

	// The LUN set's fields: size, member index and set id.
	if hdr.LUNs() != 1 || hdr.Member() != 1 || !hdr.SetID.IsZero() {
		t.Errorf("the golden header reads as a set of %d, member %d, id %s; want a lone LUN", hdr.LUNs(), hdr.Member(), hdr.SetID)
	}
	set := [][2]int{{setSizeOff, setSizeOff + 1}, {setMemberOff, setMemberOff + 1}, {setIDOff, setIDOff + 16}}
	for _, r := range set {
		if !allZero(b[r[0]:r[1]]) {
			t.Fatalf("the golden release wrote bytes %d..%d, where a LUN set's fields now are", r[0], r[1])
		}
	}
	h = *hdr
	h.SetSize, h.SetMember, h.SetID = 3, 2, NewUUID()
	nb = h.encode()
	for i := range headerRecLen - 4 {
		inSet := false
		for _, r := range set {
			inSet = inSet || (i >= r[0] && i < r[1])
		}
		if nb[i] != b[i] && !inSet {
			t.Errorf("setting the LUN set's fields changed byte %d", i)
		}
	}
	back, err = decodeHeader("new", nb)
	if err != nil || back.LUNs() != 3 || back.Member() != 2 || back.SetID != h.SetID {
		t.Errorf("header of member 2 of a set of 3 reads back as %+v, %v", back, err)
	}
}
