package storage

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"
)

// Decoders must never panic on any block content, and whatever they accept
// must encode back to a block that decodes to the same record.

// block pads or cuts data to one BlockSize block, as every read returns.
func block(data []byte) []byte {
	b := make([]byte, BlockSize)
	copy(b, data)
	return b
}

func FuzzDecodeSlot(f *testing.F) {
	rec := SlotRecord{HostID: 3, State: SlotAlive, Generation: 2, Incarnation: 99, Sequence: 1234,
		Wall: time.Unix(0, 1700000000123456789), HostName: "kvm3", Ack: MailboxAck{Nonce: 7, Type: MsgFence, Result: AckDone}}
	rec.SerfView.Add(1)
	rec.SerfView.Add(255)
	f.Add(rec.encode()[:slotRecLen])
	rec.Disarm = SlotDisarm{Gen: 3, By: 1, For: time.Hour, Reason: "SAN work", Disarmed: true}
	f.Add(rec.encode()[:slotRecLen+disarmRecLen])
	rec.Reach, rec.Records = ReachLost, 41
	f.Add(rec.encode()[:slotRecLen])
	f.Add([]byte{})
	f.Add([]byte("WGSL\x01\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeSlot(block(data))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if reflect.DeepEqual(r, SlotRecord{}) {
			return // an empty slot
		}
		r2, err := decodeSlot(r.encode())
		if err != nil || !reflect.DeepEqual(r2, r) {
			t.Fatalf("re-encoded %+v decodes to %+v, %v", r, r2, err)
		}
	})
}

func FuzzSlotRoundTrip(f *testing.F) {
	f.Add(1, uint8(2), uint64(1), uint64(2), uint64(3), int64(4), "h", uint64(5), uint64(6), uint8(1), uint8(1))
	f.Add(255, uint8(5), ^uint64(0), ^uint64(0), ^uint64(0), int64(-1), "a-very-long-host-name-that-is-exactly-sixty-three-bytes-long-xx", uint64(0), ^uint64(0), uint8(3), uint8(2))
	f.Fuzz(func(t *testing.T, id int, state uint8, gen, inc, seq uint64, wall int64, name string, view0, nonce uint64, typ, res uint8) {
		if len(name) > 63 || bytes.IndexByte([]byte(name), 0) >= 0 {
			return // names are validated by AcquireSlot
		}
		r := SlotRecord{HostID: id & 0xffff, State: SlotState(state), Generation: gen, Incarnation: inc, Sequence: seq,
			Wall: time.Unix(0, wall), HostName: name, SerfView: HostSet{view0, nonce, gen, inc},
			Ack: MailboxAck{Nonce: nonce, Type: MessageType(typ), Result: AckResult(res)}}
		got, err := decodeSlot(r.encode())
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, r) && !reflect.DeepEqual(r, SlotRecord{HostID: 0}) {
			t.Fatalf("encoded %+v, decoded %+v", r, got)
		}
	})
}

func FuzzDecodeHeader(f *testing.F) {
	h := Header{Version: FormatVersion, ClusterUUID: NewUUID(), ClusterName: "prod", SectorSize: 512,
		Geometry: DefaultGeometry(), Timings: DefaultTimings(), Created: time.Unix(0, 1700000000000000000)}
	f.Add(h.encode()[:headerRecLen])
	h.Geometry, h.Timings = Geometry{MaxHosts: 255, MaxVMs: 65536, EventBlocks: 4096, ConfigBlks: 256}, FastTimings()
	f.Add(h.encode()[:headerRecLen])
	f.Add([]byte("WINGMLUN"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := decodeHeader("/dev/fuzz", block(data))
		if err != nil {
			var be *BlockError
			if !errors.As(err, &be) || be.Block != 0 || be.Path != "/dev/fuzz" {
				t.Fatalf("error %v does not name the block", err)
			}
			return
		}
		if got.Geometry.Validate() != nil || got.Timings.Validate() != nil {
			t.Fatalf("accepted an invalid header %+v", got)
		}
		again, err := decodeHeader("/dev/fuzz", got.encode())
		if err != nil || !sameHeader(got, again) || again.SectorSize != got.SectorSize {
			t.Fatalf("re-encoded %+v decodes to %+v, %v", got, again, err)
		}
	})
}

func FuzzDecodeDblock(f *testing.F) {
	d := dblock{VM: 3, Host: 2, Flags: dbCommitted, Lver: 4, Mbal: 21, Bal: 21, Value: Owner{Host: 2, Gen: 1, Nonce: 9},
		Prev: Owner{Host: 1, Gen: 1, Nonce: 8}, Mig: Migration{Phase: MigrationStarted, Target: 1, TargetGen: 1}, Wall: time.Unix(0, 5)}
	f.Add(d.encode()[:dblockRecLen])
	f.Fuzz(func(t *testing.T, data []byte) {
		d, set, err := decodeDblock(block(data))
		if err != nil || !set {
			return
		}
		d2, set2, err := decodeDblock(d.encode())
		if err != nil || !set2 || d2 != d {
			t.Fatalf("re-encoded %+v decodes to %+v, %v", d, d2, err)
		}
	})
}

func FuzzDecodeMessage(f *testing.F) {
	m := Message{Type: MsgFence, From: 1, FromGen: 2, To: 3, ToGen: 4, Nonce: 5, Wall: time.Unix(0, 6), Reason: "why"}
	f.Add(m.encode()[:mailRecLen])
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeMessage(block(data))
		if err != nil || m == (Message{}) {
			return
		}
		m2, err := decodeMessage(m.encode())
		if err != nil || m2 != m {
			t.Fatalf("re-encoded %+v decodes to %+v, %v", m, m2, err)
		}
	})
}

func FuzzDecodeEvent(f *testing.F) {
	e := Event{Host: 1, Seq: 2, Time: time.Unix(0, 3), Severity: SevError, Kind: "fenced", Subject: 4, Message: "m"}
	b := make([]byte, eventLen)
	e.encodeInto(b)
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		e, ok := decodeEvent(block(data))
		if !ok {
			return
		}
		b := make([]byte, eventLen)
		e.encodeInto(b)
		if e2, ok := decodeEvent(b); !ok || e2 != e {
			t.Fatalf("re-encoded %+v decodes to %+v", e, e2)
		}
	})
}

func FuzzDecodeConfig(f *testing.F) {
	g := Geometry{MaxHosts: 2, MaxVMs: 2, EventBlocks: 1, ConfigBlks: 2}
	c := VMConfig{UUID: NewUUID(), Name: "vm", Policy: []byte("p"), XML: []byte("<domain/>"), Seq: 3, Epoch: 2, Writer: 1, Wall: time.Unix(0, 4)}
	b, err := c.encode(1, g)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b[:300])
	f.Fuzz(func(t *testing.T, data []byte) {
		buf := make([]byte, g.ConfigBlks*BlockSize)
		copy(buf, data)
		n, err := cfgLen(buf, g)
		if err != nil || n == 0 {
			return
		}
		c, err := decodeConfig(buf, n, 1)
		if err != nil {
			return
		}
		b, err := c.encode(1, g)
		if err != nil {
			return // e.g. a name field without NUL that decodes longer than encode accepts
		}
		c2, err := decodeConfig(b, n, 1)
		if err != nil || c2.UUID != c.UUID || c2.Name != c.Name || !bytes.Equal(c2.XML, c.XML) || !bytes.Equal(c2.Policy, c.Policy) ||
			c2.Seq != c.Seq || c2.Epoch != c.Epoch || c2.Writer != c.Writer || c2.Deleted != c.Deleted || !c2.Wall.Equal(c.Wall) {
			t.Fatalf("re-encoded %+v decodes to %+v, %v", c, c2, err)
		}
	})
}

func FuzzDecodeSettings(f *testing.F) {
	s := ClusterSettings{Writer: 2, Wall: time.Unix(0, 1700000000123456789), Targets: []NotifyTarget{
		{Name: "ops", Kind: "mail", Address: "smtp.example.com:587", To: []string{"a@example.com", ""}, SecretFile: "/etc/wingman/smtp.pass",
			MinSeverity: SevWarning, Kinds: []string{"incident"}, Hosts: []string{"kvm1"}, Timeout: 5 * time.Second},
		{Name: "hook", Kind: "exec", Address: "/usr/local/bin/page", unknown: []settingsField{{tag: 200, data: []byte("x")}}}},
		Values:  []ClusterValue{{Key: "failover.guest_agent_wait", Value: "30s", Host: 2, Wall: time.Unix(0, 1700000000123456780)}},
		unknown: []settingsSection{{tag: 9, data: []byte("newer=1")}}}
	b, err := encodeSettings(&s)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	q := quarantineSettings()
	if b, err = encodeSettings(&q); err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte{})
	f.Add([]byte("WGCS\x01\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := decodeSettings(data)
		if len(data) == 0 {
			return // never written: nothing to re-encode
		}
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		b, err := encodeSettings(&s)
		if err != nil {
			return // decodable but over a limit that writes enforce
		}
		s2, err := decodeSettings(b)
		if err != nil || !reflect.DeepEqual(s2, s) {
			t.Fatalf("re-encoded %+v decodes to %+v, %v", s, s2, err)
		}
	})
}

func FuzzDecodeIncidents(f *testing.F) {
	led := IncidentLedger{Entries: []IncidentEntry{{ID: "inc-1", Stage: IncidentOpened, By: 1, Recorded: time.Unix(0, 5)},
		{ID: "inc-1", Stage: IncidentResolved, By: 3, Recorded: time.Unix(0, 6)}}}
	b, err := encodeIncidents(&led)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("WGIL\x01\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		led, err := decodeIncidents(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		b, err := encodeIncidents(&led)
		if err != nil {
			t.Fatalf("decoded ledger %+v does not encode: %v", led, err)
		}
		led2, err := decodeIncidents(b)
		if err != nil || !reflect.DeepEqual(led2, led) {
			t.Fatalf("re-encoded %+v decodes to %+v, %v", led, led2, err)
		}
	})
}

func FuzzDecodeBallot(f *testing.F) {
	hdr := &Header{ClusterUUID: UUID{1, 2, 3}, Created: time.Unix(0, 42)}
	r := ballotRec{Host: 2, Seq: 3, Flags: regCommitted, Inst: 4, Mbal: 5, Bal: 5, Value: []byte("new"), Prev: []byte("old"), Wall: time.Unix(0, 7)}
	f.Add(r.encode(regSettings, hdr)[:256])
	f.Add([]byte("WGRG"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b := make([]byte, regCopyBlocks*BlockSize)
		copy(b, data)
		r, ok, err := decodeBallot(b, regSettings, 2, hdr)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if !ok {
			return
		}
		r2, ok, err := decodeBallot(r.encode(regSettings, hdr), regSettings, 2, hdr)
		if err != nil || !ok || !reflect.DeepEqual(r2, r) {
			t.Fatalf("re-encoded %+v decodes to %+v, %v", r, r2, err)
		}
	})
}
