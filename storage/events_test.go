package storage_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/wingmanha/wingman/storage"
)

func TestEventRingWrapsAndOrders(t *testing.T) {
	ctx := testCtx(t)
	geo := storage.Geometry{MaxHosts: 3, MaxVMs: 1, EventBlocks: 2, ConfigBlks: 2}
	const capacity = 2 * 16 // 2 blocks of 16 events
	path := lunFile(t, storage.FormatOptions{Geometry: geo})
	l := openLUN(t, path)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }

	el1, err := l.EventLog(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	vm := storage.NewUUID()
	const n1 = capacity + 13 // wraps once, part way into the ring
	for i := 1; i <= n1; i++ {
		e, err := el1.Append(ctx, storage.Event{Time: at(2 * i), Severity: storage.SevWarning, Kind: "declared-dead",
			VM: vm, Subject: 3, Message: fmt.Sprintf("event %d", i)})
		if err != nil {
			t.Fatal(err)
		}
		if e.Host != 1 || e.Seq != uint64(i) {
			t.Fatalf("append %d: %+v", i, e)
		}
	}
	// Host 2 writes interleaved times through its own handle.
	el2, err := openLUN(t, path).EventLog(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		if _, err := el2.Append(ctx, storage.Event{Time: at(2*(n1-5+i) + 1), Kind: "lease-acquired", Message: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}

	all, err := l.ReadEvents(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != capacity+5 {
		t.Fatalf("read %d events, want %d (ring of %d + 5)", len(all), capacity+5, capacity)
	}
	var host1 []storage.Event
	for i, e := range all {
		if i > 0 && e.Time.Before(all[i-1].Time) {
			t.Fatalf("event %d out of order: %v after %v", i, e.Time, all[i-1].Time)
		}
		if e.Host == 1 {
			host1 = append(host1, e)
		}
	}
	// The oldest n1-capacity events were overwritten; the rest are in order.
	for i, e := range host1 {
		want := uint64(n1 - capacity + 1 + i)
		if e.Seq != want || e.Message != fmt.Sprintf("event %d", want) || e.Kind != "declared-dead" || e.VM != vm ||
			e.Subject != 3 || e.Severity != storage.SevWarning || !e.Time.Equal(at(2*int(want))) {
			t.Fatalf("host 1 event %d: %+v, want seq %d", i, e, want)
		}
	}
	last := all[len(all)-1]
	if last.Host != 2 || last.Seq != 5 {
		t.Errorf("newest event %+v", last)
	}

	// since keeps strictly newer events only.
	cut := at(2 * (n1 - 2))
	recent, err := l.ReadEvents(ctx, cut)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range recent {
		got = append(got, fmt.Sprintf("%d/%d", e.Host, e.Seq))
	}
	if want := "[2/3 1/44 2/4 1/45 2/5]"; fmt.Sprint(got) != want {
		t.Errorf("since %v: %v, want %s", cut, got, want)
	}

	// A reopened log continues the sequence after the wrap.
	el1b, err := openLUN(t, path).EventLog(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	e, err := el1b.Append(ctx, storage.Event{Kind: "restart"})
	if err != nil || e.Seq != n1+1 || e.Time.IsZero() {
		t.Fatalf("append after reopen: %+v %v", e, err)
	}
}
