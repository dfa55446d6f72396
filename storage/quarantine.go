package storage

import (
	"bytes"
	"fmt"
	"time"
)

// HostFlaps is what the quarantine remembers of one host's flaps (see
// quorum's QuarantineStep): the newest verdict generation counted, the
// newest applied poison pills counted (their nonces, at most
// MaxFlapTimes), and the times of the flaps within the window.
type HostFlaps struct {
	Host       int
	DeadGen    uint64
	PillNonces []uint64
	At         []time.Time // the recording coordinator's clock

	unknown []settingsField
}

// HostQuarantine is one host in quarantine: it takes no new VM until
// Until, or until an operator clears it.
type HostQuarantine struct {
	Host         int
	Since, Until time.Time // the writer's clock
	By           string    // "wingman", or the operator who put it in
	Why          string

	unknown []settingsField
}

// Settings sections of the quarantine (a build before them keeps them as
// unknown sections, written back unchanged).
const (
	secFlaps       = 3
	secQuarantined = 4
	// MaxFlapTimes is how many flap times one host's entry keeps.
	MaxFlapTimes = 16
)

// Field tags of the quarantine's entries, as for targets.
const (
	qfHost uint8 = iota + 1
	qfDeadGen
	qfPill
	qfAt
	qfSince
	qfUntil
	qfBy
	qfWhy
)

func u16(v int) string    { return string(le.AppendUint16(nil, uint16(v))) }
func u64(v uint64) string { return string(le.AppendUint64(nil, v)) }
func wall(t time.Time) string {
	return u64(uint64(t.UnixNano()))
}

func (f *HostFlaps) check() error {
	if f.Host < 1 || f.Host > 0xffff || len(f.At) > MaxFlapTimes || len(f.PillNonces) > MaxFlapTimes {
		return fmt.Errorf("%w: flaps of host %d: a host id of 1 to 65535 and at most %d times and pills (%d, %d)", ErrInvalid, f.Host, MaxFlapTimes, len(f.At), len(f.PillNonces))
	}
	return nil
}

func (f *HostFlaps) encode() []byte {
	w := &fieldWriter{}
	w.raw(qfHost, u16(f.Host))
	w.raw(qfDeadGen, u64(f.DeadGen))
	for _, n := range f.PillNonces {
		w.raw(qfPill, u64(n))
	}
	for _, t := range f.At {
		w.raw(qfAt, wall(t))
	}
	for _, u := range f.unknown {
		w.raw(u.tag, string(u.data))
	}
	return w.b
}

func (q *HostQuarantine) check() error {
	if q.Host < 1 || q.Host > 0xffff || len(q.By) > maxSettingsStr || len(q.Why) > maxSettingsStr {
		return fmt.Errorf("%w: quarantine of host %d: a host id of 1 to 65535, texts of at most %d bytes", ErrInvalid, q.Host, maxSettingsStr)
	}
	return nil
}

func (q *HostQuarantine) encode() []byte {
	w := &fieldWriter{}
	w.raw(qfHost, u16(q.Host))
	w.raw(qfSince, wall(q.Since))
	w.raw(qfUntil, wall(q.Until))
	w.str(qfBy, q.By)
	w.str(qfWhy, q.Why)
	for _, u := range q.unknown {
		w.raw(u.tag, string(u.data))
	}
	return w.b
}

// fixed decodes a field of n bytes, or says the record is corrupt.
func fixed(what string, v []byte, n int) (uint64, error) {
	if len(v) != n {
		return 0, fmt.Errorf("%w: %s field of %d bytes, want %d", ErrCorrupt, what, len(v), n)
	}
	if n == 2 {
		return uint64(le.Uint16(v)), nil
	}
	return le.Uint64(v), nil
}

func decodeFlaps(b []byte) (HostFlaps, error) {
	var f HostFlaps
	err := eachField(b, "host flaps", func(tag uint8, v []byte) error {
		var x uint64
		var err error
		switch tag {
		case qfHost:
			x, err = fixed("flaps host", v, 2)
			f.Host = int(x)
		case qfDeadGen:
			f.DeadGen, err = fixed("flaps generation", v, 8)
		case qfPill:
			x, err = fixed("flaps pill", v, 8)
			f.PillNonces = append(f.PillNonces, x)
		case qfAt:
			x, err = fixed("flaps time", v, 8)
			f.At = append(f.At, time.Unix(0, int64(x)))
		default:
			f.unknown = append(f.unknown, settingsField{tag: tag, data: bytes.Clone(v)})
		}
		return err
	})
	if err == nil && f.Host == 0 {
		err = fmt.Errorf("%w: host flaps without a host", ErrCorrupt)
	}
	return f, err
}

func decodeQuarantine(b []byte) (HostQuarantine, error) {
	var q HostQuarantine
	err := eachField(b, "quarantine", func(tag uint8, v []byte) error {
		var x uint64
		var err error
		switch tag {
		case qfHost:
			x, err = fixed("quarantine host", v, 2)
			q.Host = int(x)
		case qfSince:
			x, err = fixed("quarantine since", v, 8)
			q.Since = time.Unix(0, int64(x))
		case qfUntil:
			x, err = fixed("quarantine until", v, 8)
			q.Until = time.Unix(0, int64(x))
		case qfBy:
			q.By = string(v)
		case qfWhy:
			q.Why = string(v)
		default:
			q.unknown = append(q.unknown, settingsField{tag: tag, data: bytes.Clone(v)})
		}
		return err
	})
	if err == nil && q.Host == 0 {
		err = fmt.Errorf("%w: quarantine without a host", ErrCorrupt)
	}
	return q, err
}

// readsQuarantine is false only in tests that play a build from before
// the quarantine.
var readsQuarantine = true

// quarantineSections returns the quarantine's sections of s (none while
// nothing was ever recorded: the record stays as older builds wrote it).
func quarantineSections(s *ClusterSettings) ([]settingsSection, error) {
	var out []settingsSection
	if len(s.Flaps) > 0 {
		var data []byte
		for i := range s.Flaps {
			if err := s.Flaps[i].check(); err != nil {
				return nil, err
			}
			data = appendEntry(data, s.Flaps[i].encode())
		}
		out = append(out, settingsSection{tag: secFlaps, data: data})
	}
	if len(s.Quarantined) > 0 {
		var data []byte
		for i := range s.Quarantined {
			if err := s.Quarantined[i].check(); err != nil {
				return nil, err
			}
			data = appendEntry(data, s.Quarantined[i].encode())
		}
		out = append(out, settingsSection{tag: secQuarantined, data: data})
	}
	return out, nil
}

// decodeQuarantineSection decodes section tag into s; false: not one of the quarantine's.
func decodeQuarantineSection(s *ClusterSettings, tag uint16, data []byte) (bool, error) {
	if !readsQuarantine {
		return false, nil
	}
	switch tag {
	case secFlaps:
		return true, eachEntry(data, "host flaps", func(e []byte) error {
			f, err := decodeFlaps(e)
			s.Flaps = append(s.Flaps, f)
			return err
		})
	case secQuarantined:
		return true, eachEntry(data, "quarantine", func(e []byte) error {
			q, err := decodeQuarantine(e)
			s.Quarantined = append(s.Quarantined, q)
			return err
		})
	}
	return false, nil
}
