package luns

import (
	"strings"
	"testing"
	"time"
)

// TestPollReportsEachChangeOnce: a member going bad is one change, staying
// bad none (its Since stays when it began), coming back one more once it has
// worked for backAfter; a member that fails again meanwhile stays bad.
func TestPollReportsEachChangeOnce(t *testing.T) {
	h := &Health{paths: Paths{"/a", "/b", "/c"}, members: []Member{{Index: 1, Path: "/a"}, {Index: 2, Path: "/b"}, {Index: 3, Path: "/c"}}}
	t0 := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	if ch := h.poll(t0, nil); len(ch) != 0 {
		t.Fatalf("healthy set: changes %+v", ch)
	}
	ch := h.poll(t0.Add(time.Second), map[int]string{2: "I/O timed out"})
	if len(ch) != 1 || !ch[0].Bad || ch[0].Member.Index != 2 || ch[0].Kind() != "lun-member-failed" ||
		!strings.Contains(ch[0].Message(), "heartbeat LUN 2 of 3 (/b) is failing: I/O timed out") {
		t.Fatalf("member 2 failing: changes %+v", ch)
	}
	if ch := h.poll(t0.Add(2*time.Second), map[int]string{2: "I/O errors: EIO"}); len(ch) != 0 {
		t.Fatalf("member 2 still failing: changes %+v", ch)
	}
	w := h.Warnings()
	if len(w) != 1 || !strings.Contains(w[0], "failing since 2026-12-05 12:00:01: I/O errors: EIO") {
		t.Fatalf("warnings %q", w)
	}
	if ms := h.Members(); len(ms) != 3 || ms[1].OK || !ms[0].OK || ms[1].Since != t0.Add(time.Second) {
		t.Fatalf("members %+v", ms)
	}
	if ch := h.poll(t0.Add(3*time.Second), nil); len(ch) != 0 {
		t.Fatalf("member 2 working for a moment: changes %+v", ch)
	}
	if ch := h.poll(t0.Add(4*time.Second), map[int]string{2: "I/O timed out"}); len(ch) != 0 {
		t.Fatalf("member 2 failing again: changes %+v", ch)
	}
	if ch := h.poll(t0.Add(5*time.Second), nil); len(ch) != 0 {
		t.Fatalf("member 2 working again: changes %+v", ch)
	}
	ch = h.poll(t0.Add(5*time.Second+backAfter), nil)
	if len(ch) != 1 || ch[0].Bad || ch[0].Kind() != "lun-member-back" || len(h.Warnings()) != 0 {
		t.Fatalf("member 2 back: changes %+v, warnings %q", ch, h.Warnings())
	}
}

// TestAliveByText: a majority of fresh copies is "disk k/n"; short of it,
// a lease says "network lease".
func TestAliveByText(t *testing.T) {
	for _, tc := range []struct {
		fresh, total int
		leased       bool
		want         string
	}{
		{1, 1, false, "disk"},
		{0, 1, true, "network lease"},
		{3, 3, false, "disk 3/3"},
		{2, 3, true, "disk 2/3"},
		{1, 3, true, "network lease"},
		{1, 3, false, "disk 1/3 (not fresh)"},
	} {
		if got := aliveBy(tc.fresh, tc.total, tc.leased); got != tc.want {
			t.Errorf("aliveBy(%d, %d, %v) = %q, want %q", tc.fresh, tc.total, tc.leased, got, tc.want)
		}
	}
}
