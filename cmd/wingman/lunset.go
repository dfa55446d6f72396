package main

import (
	"context"
	"fmt"
	"os"

	"github.com/wingmanha/wingman/cmd/internal/luns"
	"github.com/wingmanha/wingman/storage"
)

// formatPaths formats the LUNs at paths (1 or 3) as one set, creating the
// regular files that do not exist yet; on failure it removes those again.
func formatPaths(ctx context.Context, paths []string, opts storage.FormatOptions) ([]*storage.Header, error) {
	var devs []storage.Device
	var created []string
	defer func() {
		for _, d := range devs {
			d.Close()
		}
	}()
	fail := func(err error) ([]*storage.Header, error) {
		for _, p := range created {
			os.Remove(p) // it holds no LUN: leave nothing behind
		}
		return nil, err
	}
	for _, p := range paths {
		dev, isNew, err := openOrCreate(p)
		if err != nil {
			return fail(err)
		}
		devs = append(devs, dev)
		if isNew {
			created = append(created, p)
		}
	}
	hs, err := luns.Format(ctx, devs, opts)
	if err != nil {
		return fail(err)
	}
	return hs, nil
}

// openPaths opens the LUNs at paths (1 or 3) read-only, as one set.
func openPaths(ctx context.Context, paths []string) (*storage.LUN, error) {
	return luns.Open(ctx, paths, func(_ int, dev storage.Device) storage.Device { return dev }, storage.OpenOptions{ReadOnly: true})
}

// memberSeqs are the sequences of slot v on each LUN of a set of three.
func memberSeqs(v storage.SlotView) []uint64 { return v.MemberSeq }

// memberReport is what each LUN of the set l holds on its own, as d (read
// from l) shows it: its header, its I/O, a copy of each used slot.
func memberReport(l *storage.LUN, d *dumpJSON) []memberJSON {
	ms := l.Members()
	if len(ms) < 2 {
		return nil
	}
	out := make([]memberJSON, 0, len(ms))
	for i, m := range ms {
		mj := memberJSON{Index: m.Index, Path: m.Path, Problems: []string{}}
		if p := luns.Problem(m); p != "" {
			mj.Problems = append(mj.Problems, p)
		}
		for _, s := range d.Slots {
			if i < len(s.MemberSeqs) && s.MemberSeqs[i] == 0 && m.HeaderChanged == nil {
				mj.Problems = append(mj.Problems, fmt.Sprintf("heartbeat slot %d (%s) is blank, damaged or unread here (sequence %d on the others); the host rewrites it with its next heartbeat", s.Host, orDash(s.Name), s.Sequence))
			}
		}
		mj.OK = len(mj.Problems) == 0
		out = append(out, mj)
	}
	return out
}
