package storage

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// The header is read with every read of the heartbeat slots: block 0 lies
// just before slot 1, so the slots' one I/O starts one block earlier and
// costs no extra read. A header that no longer matches the one read at Open
// (zeroed by an operator's mistake, overwritten by a format, damaged) is
// noted; HeaderChanged reports it until a read finds it back, or
// RestoreHeader writes it back from this handle's copy.

// headerWatch is a member's header as it must read (as read at Open) and
// what the latest slot read found in its block 0.
type headerWatch struct {
	raw []byte // block 0 as read at Open

	mu  sync.Mutex
	err error // nil: block 0 held raw at the latest read
}

func (w *headerWatch) get() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *headerWatch) set(err error) {
	w.mu.Lock()
	w.err = err
	w.mu.Unlock()
}

// noteHeader records what member m's block 0 held at a read.
func noteHeader(m *member, b []byte) { m.hw.set(headerDiff(m, b)) }

// Integrity is what a LUN handle knows of the LUN's integrity: whether the
// header is still the one it read at Open (checked with every read of the
// slots), and which records read damaged (see damage.go).
type Integrity struct{ l *LUN }

// Integrity returns the handle's view of the LUN's integrity.
func (l *LUN) Integrity() Integrity { return Integrity{l} }

// HeaderChanged returns why block 0, at the latest read of the heartbeat
// slots, no longer held the header this handle read at Open (an error of
// class ErrHeaderChanged), or nil. It does no I/O. Of a set of 3, only a
// majority of changed headers counts; one is that member's warning
// (Members).
func (i Integrity) HeaderChanged() error {
	return i.l.changedHeaders(func(m *member) error { return m.hw.get() })
}

// changedHeaders returns the first member's error of check when a
// majority of members has one, saying how many for a set.
func (l *lunSet) changedHeaders(check func(*member) error) error {
	var first error
	n := 0
	for _, m := range l.members {
		if err := check(m); err != nil {
			first = cmp.Or(first, err)
			n++
		}
	}
	switch {
	case n < l.majority():
		return nil
	case len(l.members) > 1:
		return fmt.Errorf("%d of %d heartbeat LUNs changed their header: %w", n, len(l.members), first)
	}
	return first
}

// CheckHeader re-reads the header and fails with ErrHeaderChanged if it no
// longer matches what Open read: a host must stop trusting a LUN that was
// reformatted or swapped under it (of a set: a majority of its members).
func (i Integrity) CheckHeader(ctx context.Context) error {
	bufs, err := i.l.readEach(ctx, true, 0, BlockSize)
	if err != nil {
		return err
	}
	at := 0
	return i.l.changedHeaders(func(m *member) error {
		b := bufs[at]
		at++
		if b == nil {
			return nil
		}
		return headerDiff(m, b)
	})
}

// headerDiff says how block 0 (b) of member m differs from its header.
func headerDiff(m *member, b []byte) error {
	if m.hw.raw != nil && bytes.Equal(b[:headerRecLen], m.hw.raw[:headerRecLen]) {
		return nil
	}
	path := m.dev.Path()
	h, err := decodeHeader(path, b)
	if err != nil {
		var be *BlockError
		if errors.As(err, &be) {
			err = be.Err // the class, without the hint for a LUN never formatted
		}
		return &BlockError{Path: path, Block: 0, What: "header", Err: fmt.Errorf("%w: block 0 now holds %s (%w)", ErrHeaderChanged, describeBlock0(b, path), err),
			Hint: "this host keeps its VMs and its heartbeat but declares nobody dead and starts nothing; run `wingman lun restore-header` to write back the header this host read at start"}
	}
	if !sameHeader(h, &m.want) {
		return &BlockError{Path: path, Block: 0, What: "header", Err: ErrHeaderChanged,
			Hint: fmt.Sprintf("was cluster %q %s created %s, now %q %s created %s; stop wingmand and check the LUN",
				m.want.ClusterName, m.want.ClusterUUID, m.want.Created.UTC().Format(time.RFC3339), h.ClusterName, h.ClusterUUID, h.Created.UTC().Format(time.RFC3339))}
	}
	return nil
}

// describeBlock0 says what block 0 holds, for messages.
func describeBlock0(b []byte, path string) string {
	r := b[:headerRecLen]
	switch {
	case allZero(b[:BlockSize]):
		return "zeros"
	case !bytes.Equal(r[0:8], headerMagic[:]):
		if what := Recognise(b); what != "" {
			return what
		}
		return "data that is not a wingman header"
	}
	h, err := decodeHeader(path, b)
	if err != nil {
		return "a damaged wingman header"
	}
	return fmt.Sprintf("the header of cluster %q %s created %s", h.ClusterName, h.ClusterUUID, h.Created.UTC().Format(time.RFC3339))
}

// HeaderRestore is what RestoreHeader found in block 0 and did.
type HeaderRestore struct {
	Found string // what block 0 held: "zeros", "a damaged wingman header", another cluster's header...
	Wrote bool   // the header was written back (false: block 0 held it already)
}

// RestoreHeader writes back the header this handle read at Open to block
// 0. It writes nothing when block 0 already holds it, and refuses
// (ErrConflict) when block 0 holds another valid header (another
// cluster's, or this cluster's with other timings or geometry) unless
// force: that may be a LUN formatted on purpose. Of a set, it does so on
// every member: Found then names what each held, and an error of one
// member does not stop the others.
func (i Integrity) RestoreHeader(ctx context.Context, force bool) (HeaderRestore, error) {
	if len(i.l.members) == 1 {
		return restoreHeader(ctx, i.l.members[0], force)
	}
	var res HeaderRestore
	var found []string
	var errs []error
	for _, m := range i.l.members {
		r, err := restoreHeader(ctx, m, force)
		found = append(found, fmt.Sprintf("%s: %s", m.dev.Path(), r.Found))
		res.Wrote = res.Wrote || r.Wrote
		errs = append(errs, err)
	}
	res.Found = strings.Join(found, "; ")
	return res, errors.Join(errs...)
}

// restoreHeader is RestoreHeader on member m.
func restoreHeader(ctx context.Context, m *member, force bool) (HeaderRestore, error) {
	path := m.dev.Path()
	b, err := m.io.read(ctx, 0, BlockSize)
	if err != nil {
		return HeaderRestore{}, fmt.Errorf("restore header of %s: %w", path, err)
	}
	res := HeaderRestore{Found: describeBlock0(b, path)}
	if bytes.Equal(b[:headerRecLen], m.hw.raw[:headerRecLen]) {
		noteHeader(m, b)
		res.Found = "this cluster's header, intact"
		return res, nil
	}
	if h, derr := decodeHeader(path, b); derr == nil && !force {
		return res, &BlockError{Path: path, Block: 0, What: "header",
			Err: fmt.Errorf("%w: it holds a valid header: cluster %q %s created %s, not this host's cluster %q %s created %s", ErrConflict,
				h.ClusterName, h.ClusterUUID, h.Created.UTC().Format(time.RFC3339), m.want.ClusterName, m.want.ClusterUUID, m.want.Created.UTC().Format(time.RFC3339)),
			Hint: "someone may have formatted this LUN for another cluster: check the LUN path on every host; pass --force to overwrite it with this cluster's header"}
	}
	if err := m.io.write(ctx, 0, m.hw.raw); err != nil {
		return res, fmt.Errorf("restore header of %s: %w", path, err)
	}
	res.Wrote = true
	after, err := m.io.read(ctx, 0, BlockSize)
	if err != nil {
		return res, fmt.Errorf("restore header of %s: read back: %w", path, err)
	}
	noteHeader(m, after)
	if err := m.hw.get(); err != nil {
		return res, fmt.Errorf("restore header of %s: the header read back differs: %w", path, err)
	}
	return res, nil
}
