package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// ClusterSettings is the cluster-wide settings record: what must be alike
// on every host (DESIGN.md, sources of truth). Host-specific keys, and the
// secrets that targets refer to, stay in each host's wingman.toml and files.
//
// The record is a list of tagged sections: the notification targets (1),
// the cluster-wide keys (2, since the values were added; a build before
// them keeps the section as unknown), the quarantine's flaps (3) and
// quarantined hosts (4). A section this build does not know
// (added by a newer wingman) is kept verbatim and written back unchanged,
// so an older host editing the notification targets never drops a newer
// host's settings.
type ClusterSettings struct {
	// Generation is the compare-and-swap generation: 0 for a LUN whose
	// settings were never written. WriteSettings succeeds only if the
	// record is still at this generation, and returns the new one.
	Generation uint64
	Writer     int       // host that wrote this generation
	Wall       time.Time // writer's clock, for display only

	Targets []NotifyTarget
	// Values are the cluster-wide keys set for the whole cluster
	// (`wingman config set`); a key without an entry has its default.
	Values []ClusterValue
	// Flaps and Quarantined are the quarantine of flapping hosts (sections
	// 3 and 4): what the coordinator counted, and who is in quarantine.
	Flaps       []HostFlaps
	Quarantined []HostQuarantine

	unknown []settingsSection
}

// ClusterValue is one cluster-wide key as stored: its name and value as
// text, and who set it when. What the keys are, and which values are
// valid, belongs to vm/settings; storage checks only that it fits.
type ClusterValue struct {
	Key, Value string
	Host       int       // the host whose wingmand wrote it
	Wall       time.Time // that host's clock, for display only

	unknown []settingsField
}

// NotifyTarget is one notification target, as stored. Its meaning (which
// kinds exist, what Address means for each) belongs to the notification
// package; storage checks only that it fits.
type NotifyTarget struct {
	Name        string   // unique within the cluster
	Kind        string   // "mail", "webhook", "exec"
	Address     string   // mail: SMTP server host:port; webhook: URL; exec: program path
	From        string   // mail sender
	To          []string // mail recipients
	User        string   // SMTP user, if the server wants authentication
	SecretFile  string   // path, on every host, of the SMTP password or webhook key; never the secret
	MinSeverity Severity // send only incidents and warnings at least this severe
	Kinds       []string // event kinds to send; empty: all
	Hosts       []string // hosts whose incidents to send; empty: all
	Timeout     time.Duration

	unknown []settingsField
}

type settingsSection struct {
	tag  uint16
	data []byte
}

type settingsField struct {
	tag  uint8
	data []byte
}

const (
	settingsHdrLen  = 40
	secTargets      = 1
	secValues       = 2
	maxSettingsStr  = 1024
	maxSettingsList = 64
)

var settingsMagic = []byte("WGCS")

// Target field tags. New fields take new tags; a tag is never reused.
const (
	tfName uint8 = iota + 1
	tfKind
	tfAddress
	tfFrom
	tfTo
	tfUser
	tfSecretFile
	tfMinSeverity
	tfKinds
	tfHosts
	tfTimeout
)

// Value field tags, as for targets.
const (
	vfKey uint8 = iota + 1
	vfValue
	vfHost
	vfWall
)

type fieldWriter struct{ b []byte }

func (w *fieldWriter) raw(tag uint8, s string) {
	w.b = append(w.b, tag)
	w.b = le.AppendUint16(w.b, uint16(len(s)))
	w.b = append(w.b, s...)
}

// str writes a field unless it is empty (absent reads as empty).
func (w *fieldWriter) str(tag uint8, s string) {
	if s != "" {
		w.raw(tag, s)
	}
}

// list writes each element as its own field; an empty element keeps its place.
func (w *fieldWriter) list(tag uint8, l []string) {
	for _, s := range l {
		w.raw(tag, s)
	}
}

func (t *NotifyTarget) check() error {
	strs := append([]string{t.Name, t.Kind, t.Address, t.From, t.User, t.SecretFile}, t.To...)
	strs = append(append(strs, t.Kinds...), t.Hosts...)
	for _, s := range strs {
		if len(s) > maxSettingsStr {
			return fmt.Errorf("%w: target %q: a value of %d bytes, at most %d", ErrTooLarge, t.Name, len(s), maxSettingsStr)
		}
	}
	if len(t.To) > maxSettingsList || len(t.Kinds) > maxSettingsList || len(t.Hosts) > maxSettingsList {
		return fmt.Errorf("%w: target %q: lists hold at most %d entries", ErrTooLarge, t.Name, maxSettingsList)
	}
	if t.Timeout < 0 {
		return fmt.Errorf("%w: target %q: negative timeout %v", ErrInvalid, t.Name, t.Timeout)
	}
	return nil
}

func (t *NotifyTarget) encode() []byte {
	w := &fieldWriter{}
	w.str(tfName, t.Name)
	w.str(tfKind, t.Kind)
	w.str(tfAddress, t.Address)
	w.str(tfFrom, t.From)
	w.list(tfTo, t.To)
	w.str(tfUser, t.User)
	w.str(tfSecretFile, t.SecretFile)
	if t.MinSeverity != 0 {
		w.str(tfMinSeverity, string([]byte{byte(t.MinSeverity)}))
	}
	w.list(tfKinds, t.Kinds)
	w.list(tfHosts, t.Hosts)
	if t.Timeout != 0 {
		w.str(tfTimeout, string(le.AppendUint64(nil, uint64(t.Timeout))))
	}
	for _, f := range t.unknown {
		w.raw(f.tag, string(f.data))
	}
	return w.b
}

// eachField calls fn with every field of one entry (a target, a value):
// a tag, a 16-bit length and the bytes.
func eachField(b []byte, what string, fn func(tag uint8, v []byte) error) error {
	for len(b) > 0 {
		if len(b) < 3 {
			return fmt.Errorf("%w: truncated %s field", ErrCorrupt, what)
		}
		tag, n := b[0], int(le.Uint16(b[1:]))
		if len(b) < 3+n {
			return fmt.Errorf("%w: %s field %d of %d bytes runs past its %s", ErrCorrupt, what, tag, n, what)
		}
		if tag == 0 {
			return fmt.Errorf("%w: %s field tag 0", ErrCorrupt, what)
		}
		if err := fn(tag, b[3:3+n]); err != nil {
			return err
		}
		b = b[3+n:]
	}
	return nil
}

// eachEntry calls fn with every entry of a section: a 32-bit length and
// the entry's fields.
func eachEntry(data []byte, what string, fn func([]byte) error) error {
	for len(data) > 0 {
		if len(data) < 4 || int(le.Uint32(data)) > len(data)-4 {
			return fmt.Errorf("%w: truncated %s", ErrCorrupt, what)
		}
		n := int(le.Uint32(data))
		if err := fn(data[4 : 4+n]); err != nil {
			return err
		}
		data = data[4+n:]
	}
	return nil
}

// appendEntry appends an entry of a section.
func appendEntry(sec, e []byte) []byte {
	return append(le.AppendUint32(sec, uint32(len(e))), e...)
}

func decodeTarget(b []byte) (NotifyTarget, error) {
	var t NotifyTarget
	err := eachField(b, "target", func(tag uint8, v []byte) error {
		switch tag {
		case tfName:
			t.Name = string(v)
		case tfKind:
			t.Kind = string(v)
		case tfAddress:
			t.Address = string(v)
		case tfFrom:
			t.From = string(v)
		case tfTo:
			t.To = append(t.To, string(v))
		case tfUser:
			t.User = string(v)
		case tfSecretFile:
			t.SecretFile = string(v)
		case tfMinSeverity:
			if len(v) != 1 {
				return fmt.Errorf("%w: severity field of %d bytes", ErrCorrupt, len(v))
			}
			t.MinSeverity = Severity(v[0])
		case tfKinds:
			t.Kinds = append(t.Kinds, string(v))
		case tfHosts:
			t.Hosts = append(t.Hosts, string(v))
		case tfTimeout:
			if len(v) != 8 {
				return fmt.Errorf("%w: timeout field of %d bytes", ErrCorrupt, len(v))
			}
			t.Timeout = time.Duration(le.Uint64(v))
		default:
			t.unknown = append(t.unknown, settingsField{tag: tag, data: bytes.Clone(v)})
		}
		return nil
	})
	return t, err
}

func (v *ClusterValue) check() error {
	if v.Key == "" || len(v.Key) > maxSettingsStr || len(v.Value) > maxSettingsStr {
		return fmt.Errorf("%w: cluster setting %.40q: a key of 1 to %d bytes and a value of at most %d", ErrTooLarge, v.Key, maxSettingsStr, maxSettingsStr)
	}
	if v.Host < 0 || v.Host > 0xffff {
		return fmt.Errorf("%w: cluster setting %q: host %d", ErrInvalid, v.Key, v.Host)
	}
	return nil
}

func (v *ClusterValue) encode() []byte {
	w := &fieldWriter{}
	w.raw(vfKey, v.Key)
	w.raw(vfValue, v.Value)
	w.raw(vfHost, string(le.AppendUint16(nil, uint16(v.Host))))
	w.raw(vfWall, string(le.AppendUint64(nil, uint64(v.Wall.UnixNano()))))
	for _, f := range v.unknown {
		w.raw(f.tag, string(f.data))
	}
	return w.b
}

func decodeValue(b []byte) (ClusterValue, error) {
	var cv ClusterValue
	err := eachField(b, "cluster setting", func(tag uint8, v []byte) error {
		switch tag {
		case vfKey:
			cv.Key = string(v)
		case vfValue:
			cv.Value = string(v)
		case vfHost:
			if len(v) != 2 {
				return fmt.Errorf("%w: cluster setting host field of %d bytes", ErrCorrupt, len(v))
			}
			cv.Host = int(le.Uint16(v))
		case vfWall:
			if len(v) != 8 {
				return fmt.Errorf("%w: cluster setting time field of %d bytes", ErrCorrupt, len(v))
			}
			cv.Wall = time.Unix(0, int64(le.Uint64(v)))
		default:
			cv.unknown = append(cv.unknown, settingsField{tag: tag, data: bytes.Clone(v)})
		}
		return nil
	})
	if err == nil && cv.Key == "" {
		err = fmt.Errorf("%w: cluster setting without a key", ErrCorrupt)
	}
	return cv, err
}

// encodeSettings returns the record: a header (magic, version, length,
// writer, wall, CRC32C over the whole record) and its sections, each a
// 16-bit tag, a 32-bit length and the bytes.
func encodeSettings(s *ClusterSettings) ([]byte, error) {
	b := make([]byte, settingsHdrLen, 1024)
	var tg, vals []byte
	for i := range s.Targets {
		if err := s.Targets[i].check(); err != nil {
			return nil, err
		}
		tg = appendEntry(tg, s.Targets[i].encode())
	}
	sections := []settingsSection{{tag: secTargets, data: tg}}
	if len(s.Values) > 0 { // a cluster that sets none keeps the record as older builds wrote it
		for i := range s.Values {
			if err := s.Values[i].check(); err != nil {
				return nil, err
			}
			vals = appendEntry(vals, s.Values[i].encode())
		}
		sections = append(sections, settingsSection{tag: secValues, data: vals})
	}
	qs, err := quarantineSections(s)
	if err != nil {
		return nil, err
	}
	sections = append(append(sections, qs...), s.unknown...)
	for _, sec := range sections {
		b = le.AppendUint16(b, sec.tag)
		b = le.AppendUint32(b, uint32(len(sec.data)))
		b = append(b, sec.data...)
	}
	if len(b) > MaxRegisterValue {
		return nil, fmt.Errorf("%w: cluster settings of %d bytes, at most %d fit; remove a target or shorten its lists", ErrTooLarge, len(b), MaxRegisterValue)
	}
	copy(b[0:4], settingsMagic)
	le.PutUint16(b[4:], 1) // record version
	le.PutUint32(b[8:], uint32(len(b)))
	le.PutUint16(b[12:], uint16(s.Writer))
	le.PutUint64(b[16:], uint64(s.Wall.UnixNano()))
	le.PutUint32(b[24:], crc32c(b))
	return b, nil
}

// readsValues is false only in tests that play a build from before the
// values section, which keeps it as a section it does not know.
var readsValues = true

// decodeSettings parses a settings record. An empty b is a LUN whose
// settings were never written.
func decodeSettings(b []byte) (ClusterSettings, error) {
	var s ClusterSettings
	if len(b) == 0 {
		return s, nil
	}
	if len(b) < settingsHdrLen || !bytes.Equal(b[0:4], settingsMagic) {
		return s, fmt.Errorf("%w: not a cluster settings record", ErrCorrupt)
	}
	if v := le.Uint16(b[4:]); v != 1 {
		return s, fmt.Errorf("%w: cluster settings record version %d, this build reads 1", ErrVersion, v)
	}
	if n := int(le.Uint32(b[8:])); n != len(b) {
		return s, fmt.Errorf("%w: cluster settings record says %d bytes, holds %d", ErrCorrupt, n, len(b))
	}
	tmp := bytes.Clone(b)
	le.PutUint32(tmp[24:], 0)
	if crc32c(tmp) != le.Uint32(b[24:]) {
		return s, fmt.Errorf("%w: cluster settings checksum mismatch", ErrCorrupt)
	}
	s.Writer, s.Wall = int(le.Uint16(b[12:])), time.Unix(0, int64(le.Uint64(b[16:])))
	rest := b[settingsHdrLen:]
	for len(rest) > 0 {
		if len(rest) < 6 {
			return s, fmt.Errorf("%w: truncated settings section", ErrCorrupt)
		}
		tag, n := le.Uint16(rest), int(le.Uint32(rest[2:]))
		if n > len(rest)-6 {
			return s, fmt.Errorf("%w: settings section %d of %d bytes runs past the record", ErrCorrupt, tag, n)
		}
		data := rest[6 : 6+n]
		rest = rest[6+n:]
		known, err := decodeQuarantineSection(&s, tag, data)
		switch {
		case known:
		case tag == secTargets:
			err = eachEntry(data, "notification target", func(e []byte) error {
				t, err := decodeTarget(e)
				s.Targets = append(s.Targets, t)
				return err
			})
		case tag == secValues && readsValues:
			err = eachEntry(data, "cluster setting", func(e []byte) error {
				v, err := decodeValue(e)
				s.Values = append(s.Values, v)
				return err
			})
		default:
			s.unknown = append(s.unknown, settingsSection{tag: tag, data: bytes.Clone(data)})
		}
		if err != nil {
			return s, err
		}
	}
	return s, nil
}

// ClusterRecords reads and writes the cluster-wide records that live after
// format v1's regions: the settings record and the incident ledger. A v1
// daemon neither reads nor writes that area, so a cluster can run old and
// new daemons side by side.
type ClusterRecords struct {
	settings, incidents register
}

// NewClusterRecords returns the cluster records of an opened LUN.
func NewClusterRecords(l *LUN) *ClusterRecords {
	return &ClusterRecords{settings: register{l: l, reg: regSettings}, incidents: register{l: l, reg: regIncidents}}
}

func (c *ClusterRecords) recordErr(rg register, err error) error {
	l := rg.l
	return l.blockErr(l.hdr.Geometry.regBlock(rg.reg, 1, 0), regNames[rg.reg], err,
		"the record's checksum passed on every ballot but its content does not decode: a bug or a newer wingman; upgrade this host, or re-enter the settings")
}

// Settings returns the current settings record (Generation 0 and no
// targets if it was never written).
func (c *ClusterRecords) Settings(ctx context.Context) (ClusterSettings, error) {
	st, err := c.settings.Read(ctx)
	if err != nil {
		return ClusterSettings{}, err
	}
	s, err := decodeSettings(st.Value)
	if err != nil {
		return ClusterSettings{}, c.recordErr(c.settings, err)
	}
	s.Generation = st.Gen
	return s, nil
}

// WriteSettings stores s as host me if the record is still at
// s.Generation, and returns it with its new generation. If another host
// changed the record since s was read, it fails with a *ConflictError
// (errors.Is ErrConflict) and changes nothing: read again, redo the change.
func (c *ClusterRecords) WriteSettings(ctx context.Context, me int, s ClusterSettings) (ClusterSettings, error) {
	s.Writer, s.Wall = me, time.Now()
	b, err := encodeSettings(&s)
	if err != nil {
		return s, fmt.Errorf("write cluster settings: %w", err)
	}
	gen, err := c.settings.CompareAndSwap(ctx, me, s.Generation, b)
	if err != nil {
		return s, err
	}
	s.Generation = gen
	return s, nil
}

// UpdateSettings reads the settings, applies change and writes them back,
// again from a fresh read when another host wrote in between.
func (c *ClusterRecords) UpdateSettings(ctx context.Context, me int, change func(*ClusterSettings) error) (ClusterSettings, error) {
	for {
		s, err := c.Settings(ctx)
		if err != nil {
			return s, err
		}
		s.Targets, s.Values = slices.Clone(s.Targets), slices.Clone(s.Values)
		s.Flaps, s.Quarantined = slices.Clone(s.Flaps), slices.Clone(s.Quarantined)
		if err := change(&s); err != nil {
			return s, err
		}
		w, err := c.WriteSettings(ctx, me, s)
		if errors.Is(err, ErrConflict) && ctx.Err() == nil {
			continue
		}
		return w, err
	}
}
