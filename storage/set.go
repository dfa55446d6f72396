package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// A LUN set is one heartbeat LUN or three, used as one *LUN. With three,
// every record is written to each member and a write counts once a
// majority (two) acknowledged it; a read needs a majority of the members
// to answer and merges what they hold, each record by its own ordering
// (a slot's sequence, a lease ballot's instance and ballot, a config's or
// register ballot's sequence, an event's sequence). So the loss, damage or
// slowness of any one member changes no result, and losing two is what
// losing the only LUN of a set of 1 is. A set of 1 does byte for byte and
// I/O for I/O what a single LUN always did.

// setSizeHint says what to do about a LUN set of the wrong size.
const setSizeHint = "use 1 or 3 heartbeat LUNs: a majority of 2 is 2, so either one failing stops the cluster"

// member is one LUN of a set.
type member struct {
	dev  Device
	io   *boundedIO
	want Header // this member's header as it must read (its index included)
	hw   headerWatch

	mu        sync.Mutex // guards the fields below
	lastOK    time.Time
	lastErr   error
	lastErrAt time.Time
	damaged   map[string]bool // records whose copy on this member read damaged, while they do (sets of 3)
}

// noteCopy records whether this member's copy of record what read
// damaged, for Members; a set of 1 has Integrity.Damaged instead.
func (l *lunSet) noteCopy(i int, what string, bad bool) {
	if len(l.members) == 1 {
		return
	}
	m := l.members[i]
	m.mu.Lock()
	defer m.mu.Unlock()
	if !bad {
		delete(m.damaged, what)
		return
	}
	if m.damaged == nil {
		m.damaged = map[string]bool{}
	}
	m.damaged[what] = true
}

// noteIO records how an I/O of the member ended, for Members.
func (m *member) noteIO(err error) {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.lastErr, m.lastErrAt = err, now
		return
	}
	m.lastOK = now
}

// MemberStatus is what a LUN handle knows of one member of its set, for
// status and warnings.
type MemberStatus struct {
	Index     int    // 1..SetSize, as its header says
	Path      string // the device
	LastOK    time.Time
	LastErr   error     // the last I/O error (or timeout), nil if none yet
	LastErrAt time.Time // when; an error older than LastOK is over
	// HeaderChanged is why block 0 of this member no longer holds its
	// header (nil: it does). With three members, one changed header is a
	// warning: that member's I/O is ignored until it reads back.
	HeaderChanged error
	// Damaged counts the records whose copy on this member last read
	// damaged (of a set of 1: Integrity.Damaged); with three, the other
	// members' copies stand in until the next write rewrites it.
	Damaged int
}

// Healthy reports whether the member's header is intact and its latest
// I/O succeeded.
func (s MemberStatus) Healthy() bool {
	return s.HeaderChanged == nil && (s.LastErr == nil || s.LastOK.After(s.LastErrAt))
}

// Members returns the state of every member of the set, in index order.
func (l *LUN) Members() []MemberStatus {
	out := make([]MemberStatus, len(l.members))
	for i, m := range l.members {
		m.mu.Lock()
		out[i] = MemberStatus{Index: m.want.Member(), Path: m.dev.Path(), LastOK: m.lastOK, LastErr: m.lastErr, LastErrAt: m.lastErrAt,
			HeaderChanged: m.hw.get(), Damaged: len(m.damaged)}
		m.mu.Unlock()
	}
	if len(out) == 1 {
		out[0].Damaged = len(l.Integrity().Damaged())
	}
	return out
}

// lunSet is the members of a LUN set and how their I/O is combined; a
// LUN embeds it.
type lunSet struct {
	members []*member // in index order
}

// majority is how many members must answer a read or acknowledge a write.
func (l *lunSet) majority() int { return len(l.members)/2 + 1 }

// headersChanged counts the members whose header changed.
func (l *lunSet) headersChanged() int {
	n := 0
	for _, m := range l.members {
		if m.hw.get() != nil {
			n++
		}
	}
	return n
}

// usable reports whether the member's I/O counts: a member whose header
// changed is ignored while a majority of headers is intact (with a
// majority changed, or a set of 1, nothing is left to prefer).
func (l *lunSet) usable(m *member, changed int) bool {
	return m.hw.get() == nil || changed >= l.majority()
}

// errIgnored is the result of a member whose I/O is ignored.
var errIgnored = errors.New("its header changed: its I/O is ignored until the header reads back")

// errStraggler is the result of a member that had not answered when a
// majority had.
var errStraggler = errors.New("had not answered when a majority had")

// onMembers runs f on every member at once (every usable one, or all)
// and returns each one's result and error, in member order, as soon as a
// majority succeeded (a slow member does not delay it) or can no longer
// succeed, once every member's I/O ended (err is then non-nil). With
// linger, once a majority succeeded it waits for the others as long again
// as that took, plus R/10 and 1 ms, so that a read sees every healthy
// member while a hung one costs little. f must fail
// only for I/O: what a member holds is the caller's to judge. A set of 1
// runs f in the caller's goroutine and returns its error unchanged.
func onMembers[T any](ctx context.Context, l *lunSet, all, linger bool, f func(context.Context, *member) (T, error)) ([]T, []error, error) {
	n := len(l.members)
	vals, errs := make([]T, n), make([]error, n)
	if n == 1 {
		m := l.members[0]
		vals[0], errs[0] = f(ctx, m)
		m.noteIO(errs[0])
		return vals, errs, errs[0]
	}
	type result struct {
		i   int
		v   T
		err error
	}
	ch := make(chan result, n)
	changed := l.headersChanged()
	started, begin := 0, time.Now()
	counts := make([]bool, n) // the member's result counts toward the majority
	for i, m := range l.members {
		counts[i] = l.usable(m, changed)
		if !all && !counts[i] {
			errs[i] = fmt.Errorf("lun %s: %w", m.dev.Path(), errIgnored)
			continue
		}
		started++
		go func() {
			v, err := f(ctx, m)
			m.noteIO(err)
			ch <- result{i, v, err}
		}()
	}
	for i := range errs {
		if errs[i] == nil {
			errs[i] = fmt.Errorf("lun %s: %w", l.members[i].dev.Path(), errStraggler)
		}
	}
	ok, failed, arrived, need := 0, 0, 0, l.majority()
	for _, c := range counts {
		if !c {
			failed++ // run only to watch its header
		}
	}
	take := func(r result) {
		arrived++
		vals[r.i], errs[r.i] = r.v, r.err
		switch {
		case !counts[r.i]:
		case r.err == nil:
			ok++
		default:
			failed++
		}
	}
	for ok < need && failed <= n-need {
		take(<-ch)
	}
	if ok >= need && linger && arrived < started {
		t := time.NewTimer(time.Since(begin) + time.Millisecond + l.members[0].want.Timings.Renew/10)
		defer t.Stop()
	wait:
		for arrived < started {
			select {
			case r := <-ch:
				take(r)
			case <-t.C:
				break wait
			}
		}
	}
	if ok >= need {
		return vals, errs, nil
	}
	for arrived < started { // failing: let the rest end (each within io_timeout) so nothing is left in flight
		take(<-ch)
	}
	var failures []error
	for _, e := range errs {
		if e != nil && !errors.Is(e, errStraggler) {
			failures = append(failures, e)
		}
	}
	return vals, errs, fmt.Errorf("%d of %d heartbeat LUNs failed, a majority of %d must answer: %w", failed, n, need, errors.Join(failures...))
}

// readEach reads n bytes at off from the members: one buffer each, nil
// for a member that failed or did not answer in time.
func (l *lunSet) readEach(ctx context.Context, all bool, off int64, n int) ([][]byte, error) {
	bufs, _, err := onMembers(ctx, l, all, true, func(ctx context.Context, m *member) ([]byte, error) { return m.io.read(ctx, off, n) })
	return bufs, err
}

// write writes p at off to every usable member; it succeeds once a
// majority did. ok says which members acknowledged in time.
func (l *lunSet) write(ctx context.Context, off int64, p []byte) (ok []bool, err error) {
	_, errs, err := onMembers(ctx, l, false, false, func(ctx context.Context, m *member) (struct{}, error) {
		return struct{}{}, m.io.write(ctx, off, p)
	})
	ok = make([]bool, len(errs))
	for i, e := range errs {
		ok[i] = e == nil
	}
	return ok, err
}

// checkSetSize refuses a set of other than 1 or 3 devices, and a device
// given twice.
func checkSetSize(devs []Device) error {
	if len(devs) != 1 && len(devs) != 3 {
		return fmt.Errorf("%w: %d heartbeat LUNs given; %s", ErrInvalid, len(devs), setSizeHint)
	}
	for i, a := range devs {
		for _, b := range devs[:i] {
			if sameDevice(a, b) {
				return fmt.Errorf("%w: heartbeat LUN %s is given twice; name 3 different LUNs, or just 1", ErrInvalid, a.Path())
			}
		}
	}
	return nil
}

// sameDevice reports whether a and b are one device (or one file).
func sameDevice(a, b Device) bool {
	if a.Path() == b.Path() {
		return true
	}
	fa, okA := a.(*FileDevice)
	fb, okB := b.(*FileDevice)
	if !okA || !okB {
		return false
	}
	sa, errA := fa.f.Stat()
	sb, errB := fb.f.Stat()
	return errA == nil && errB == nil && os.SameFile(sa, sb)
}

// FormatSet formats 1 or 3 devices as one LUN set: the same cluster,
// timings and geometry in each header, with the set's size, each member's
// index (in the order given) and a random set id. It probes every device
// for recognisable data before it writes any. A set of 1 is Format.
func FormatSet(ctx context.Context, devs []Device, opts FormatOptions) ([]*Header, error) {
	if err := checkSetSize(devs); err != nil {
		return nil, fmt.Errorf("format: %w", err)
	}
	var err error
	if opts, err = opts.complete(devs[0].Path()); err != nil {
		return nil, err
	}
	var id UUID
	if len(devs) > 1 {
		id = NewUUID()
		for _, d := range devs { // refuse before anything is written
			if err := refuseData(ctx, d, opts.Force); err != nil {
				return nil, err
			}
		}
	}
	again := func(err error, i int) error {
		if len(devs) > 1 {
			err = fmt.Errorf("%w (LUN %d of %d; format the set again)", err, i+1, len(devs))
		}
		return err
	}
	writeHeader := make([]func() (*Header, error), len(devs))
	for i, d := range devs {
		if writeHeader[i], err = formatMember(ctx, d, opts, len(devs), i+1, id); err != nil {
			return nil, again(err, i)
		}
	}
	hdrs := make([]*Header, len(devs))
	for i, w := range writeHeader {
		if hdrs[i], err = w(); err != nil {
			return nil, again(err, i)
		}
	}
	return hdrs, nil
}

// OpenSet opens 1 or 3 devices as one LUN set (see FormatSet), in any
// order. It refuses devices of different clusters or sets, a set size
// that differs from the number of devices, and a member index found
// twice. Of three, one whose header cannot be read (an I/O error, zeros,
// damage) is accepted while the other two agree: the set opens degraded,
// that member's I/O ignored (Members says why) until its header reads
// back (RestoreHeader writes it). It takes ownership of the devices only
// when it succeeds; Close closes them. A set of 1 is Open.
func OpenSet(ctx context.Context, devs []Device, opts OpenOptions) (*LUN, error) {
	if err := checkSetSize(devs); err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	type opened struct {
		m   *member
		raw []byte
		err error
	}
	got := make([]opened, len(devs))
	type result struct {
		i int
		opened
	}
	ch := make(chan result, len(devs))
	for i, d := range devs {
		go func() {
			m, raw, err := openMember(ctx, d, opts)
			ch <- result{i, opened{m, raw, err}}
		}()
	}
	// Once two headers read, the third gets the LUN's io_timeout more: a
	// hung member must not hold up the start for the 30 s of a format.
	var late <-chan time.Time
	pending, readOK := len(devs), 0
	for pending > 0 {
		select {
		case r := <-ch:
			got[r.i] = r.opened
			pending--
			if r.err == nil {
				if readOK++; readOK == 2 && pending > 0 {
					t := time.NewTimer(r.m.want.Timings.IOTimeout)
					defer t.Stop()
					late = t.C
				}
			}
		case <-late:
			for i := range got {
				if got[i].m == nil && got[i].err == nil {
					got[i].err = &BlockError{Path: devs[i].Path(), Block: 0, What: "header", Err: ErrIOTimeout,
						Hint: "no answer within io_timeout while the other two LUNs of the set answered; check the storage path"}
				}
			}
			pending = 0
		}
	}
	if len(devs) == 1 {
		if got[0].err != nil {
			return nil, got[0].err
		}
		if h := got[0].m.want; h.LUNs() != 1 {
			return nil, fmt.Errorf("open lun %s: %w: it is LUN %d of a set of %d (set %s); name all %d LUNs of the set", devs[0].Path(), ErrInvalid, h.Member(), h.LUNs(), h.SetID, h.LUNs())
		}
		return newLUN([]*member{got[0].m}), nil
	}
	var good []opened
	var bad []error
	for _, o := range got {
		switch {
		case o.err == nil:
			good = append(good, o)
		case errors.Is(o.err, ErrForeignCluster) || errors.Is(o.err, ErrTooSmall) || errors.Is(o.err, ErrVersion) || errors.Is(o.err, ErrUnsafeTimings):
			return nil, o.err // a readable header that is wrong: not a member to do without
		default:
			bad = append(bad, o.err)
		}
	}
	if len(good) < 2 {
		return nil, fmt.Errorf("open LUN set: only %d of %d heartbeat LUNs have a readable header, a majority of 2 must: %w; check the paths and the storage, or format the set again",
			len(good), len(devs), errors.Join(bad...))
	}
	first := good[0].m.want
	members := make([]*member, len(devs))
	for _, o := range good {
		h := o.m.want
		if err := sameSet(&first, good[0].m.dev.Path(), &h, o.m.dev.Path(), len(devs)); err != nil {
			return nil, err
		}
		if members[h.Member()-1] != nil {
			return nil, fmt.Errorf("open LUN set: %w: %s and %s are both member %d of set %s; name each LUN of the set once (is one a second path to the other?)",
				ErrInvalid, members[h.Member()-1].dev.Path(), o.m.dev.Path(), h.Member(), h.SetID)
		}
		members[h.Member()-1] = o.m
	}
	for i, o := range got { // the degraded member takes the missing index
		if o.err == nil {
			continue
		}
		at := slices.Index(members, nil)
		want := first
		want.SetMember = at + 1
		m := &member{dev: devs[i], io: newBoundedIO(devs[i], first.Timings.IOTimeout), want: want}
		m.io.observe = opts.ObserveIO
		m.hw.raw = want.encode()
		m.hw.set(fmt.Errorf("%w: unreadable when the set was opened: %w", ErrHeaderChanged, o.err))
		members[at] = m
	}
	return newLUN(members), nil
}

func newLUN(members []*member) *LUN {
	return &LUN{lunSet: lunSet{members}, hdr: members[slices.IndexFunc(members, func(m *member) bool { return m.hw.get() == nil })].want}
}

// sameSet checks that header b (of the LUN at pb) belongs to the set of
// header a (at pa), opened with n devices.
func sameSet(a *Header, pa string, b *Header, pb string, n int) error {
	refuse := func(err error, format string, args ...any) error {
		return fmt.Errorf("open LUN set: %w: %s and %s: %s", err, pa, pb, fmt.Sprintf(format, args...))
	}
	switch {
	case a.ClusterUUID != b.ClusterUUID || a.ClusterName != b.ClusterName:
		return refuse(ErrForeignCluster, "they belong to cluster %q (%s) and cluster %q (%s); name the LUNs of one cluster",
			a.ClusterName, a.ClusterUUID, b.ClusterName, b.ClusterUUID)
	case a.LUNs() != n || b.LUNs() != n:
		return refuse(ErrInvalid, "their headers say sets of %d and %d but %d LUNs were given; name every LUN of the set, and only those", a.LUNs(), b.LUNs(), n)
	case a.SetID != b.SetID || !a.Created.Equal(b.Created):
		return refuse(ErrInvalid, "they are of different LUN sets (%s and %s) of the same cluster; name the LUNs formatted together", a.SetID, b.SetID)
	case a.Geometry != b.Geometry || a.Timings != b.Timings || a.SectorSize != b.SectorSize:
		return refuse(ErrInvalid, "their geometry or timings differ (%+v %v and %+v %v); format the set again", a.Geometry, a.Timings, b.Geometry, b.Timings)
	}
	return nil
}

// paths is Path for a set: the members' paths joined.
func (l *lunSet) paths() string {
	out := make([]string, len(l.members))
	for i, m := range l.members {
		out[i] = m.dev.Path()
	}
	return strings.Join(out, "+")
}
