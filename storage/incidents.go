package storage

import (
	"bytes"
	"context"
	"fmt"
	"time"
)

// IncidentStage is how far the notifications of one incident went.
type IncidentStage uint8

const (
	IncidentOpened   IncidentStage = iota + 1 // the settled incident was claimed for sending
	IncidentResolved                          // the "resolved" message was claimed for sending
)

func (s IncidentStage) String() string {
	switch s {
	case IncidentOpened:
		return "opened"
	case IncidentResolved:
		return "resolved"
	}
	return fmt.Sprintf("stage(%d)", s)
}

// IncidentEntry records that one host claimed one notification of one
// incident. The coordinator writes it before sending anything, so a daemon
// restart or a new coordinator finds it and does not send again.
type IncidentEntry struct {
	ID       string // stable incident id, at most 47 bytes
	Stage    IncidentStage
	By       int       // host that claimed it
	Recorded time.Time // claimer's clock, for display only
}

// IncidentLedger is the newest MaxIncidents claims, oldest first.
type IncidentLedger struct {
	Generation uint64 // compare-and-swap generation, as ClusterSettings'
	Entries    []IncidentEntry
}

// MaxIncidents is how many claims the ledger keeps; older ones drop out.
const MaxIncidents = 100

const (
	incidentLen    = 64
	incidentHdrLen = 16
	maxIncidentID  = 47
)

var incidentMagic = []byte("WGIL")

func encodeIncidents(led *IncidentLedger) ([]byte, error) {
	es := led.Entries
	if len(es) > MaxIncidents {
		es = es[len(es)-MaxIncidents:]
	}
	b := make([]byte, incidentHdrLen+len(es)*incidentLen)
	copy(b[0:4], incidentMagic)
	le.PutUint16(b[4:], 1)
	le.PutUint16(b[6:], uint16(len(es)))
	for i, e := range es {
		if e.ID == "" || len(e.ID) > maxIncidentID || bytes.IndexByte([]byte(e.ID), 0) >= 0 {
			return nil, fmt.Errorf("%w: incident id %q: want 1..%d bytes, no NUL", ErrInvalid, e.ID, maxIncidentID)
		}
		r := b[incidentHdrLen+i*incidentLen:]
		putString(r[0:48], e.ID)
		r[48] = byte(e.Stage)
		le.PutUint16(r[50:], uint16(e.By))
		le.PutUint64(r[56:], uint64(e.Recorded.UnixNano()))
	}
	le.PutUint32(b[8:], crc32c(b))
	return b, nil
}

func decodeIncidents(b []byte) (IncidentLedger, error) {
	var led IncidentLedger
	if len(b) == 0 {
		return led, nil
	}
	if len(b) < incidentHdrLen || !bytes.Equal(b[0:4], incidentMagic) {
		return led, fmt.Errorf("%w: not an incident ledger", ErrCorrupt)
	}
	if v := le.Uint16(b[4:]); v != 1 {
		return led, fmt.Errorf("%w: incident ledger version %d, this build reads 1", ErrVersion, v)
	}
	n := int(le.Uint16(b[6:]))
	if n > MaxIncidents || len(b) != incidentHdrLen+n*incidentLen {
		return led, fmt.Errorf("%w: incident ledger of %d bytes claims %d entries", ErrCorrupt, len(b), n)
	}
	tmp := bytes.Clone(b)
	le.PutUint32(tmp[8:], 0)
	if crc32c(tmp) != le.Uint32(b[8:]) {
		return led, fmt.Errorf("%w: incident ledger checksum mismatch", ErrCorrupt)
	}
	for i := range n {
		r := b[incidentHdrLen+i*incidentLen:]
		e := IncidentEntry{ID: getString(r[0:48]), Stage: IncidentStage(r[48]), By: int(le.Uint16(r[50:])),
			Recorded: time.Unix(0, int64(le.Uint64(r[56:])))}
		if e.ID == "" || r[47] != 0 {
			return led, fmt.Errorf("%w: incident ledger entry %d has no valid id", ErrCorrupt, i)
		}
		led.Entries = append(led.Entries, e)
	}
	return led, nil
}

// Incidents returns the incident ledger (Generation 0 and no entries if it
// was never written).
func (c *ClusterRecords) Incidents(ctx context.Context) (IncidentLedger, error) {
	st, err := c.incidents.Read(ctx)
	if err != nil {
		return IncidentLedger{}, err
	}
	led, err := decodeIncidents(st.Value)
	if err != nil {
		return IncidentLedger{}, c.recordErr(c.incidents, err)
	}
	led.Generation = st.Gen
	return led, nil
}

// WriteIncidents stores led as host me if the ledger is still at
// led.Generation (keeping only the newest MaxIncidents entries), and
// returns it with its new generation; otherwise it fails with a
// *ConflictError and changes nothing.
func (c *ClusterRecords) WriteIncidents(ctx context.Context, me int, led IncidentLedger) (IncidentLedger, error) {
	b, err := encodeIncidents(&led)
	if err != nil {
		return led, fmt.Errorf("write incident ledger: %w", err)
	}
	gen, err := c.incidents.CompareAndSwap(ctx, me, led.Generation, b)
	if err != nil {
		return led, err
	}
	if len(led.Entries) > MaxIncidents {
		led.Entries = led.Entries[len(led.Entries)-MaxIncidents:]
	}
	led.Generation = gen
	return led, nil
}
