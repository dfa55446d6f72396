package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wingmanha/wingman/cmd/api"
)

// TestUnreachableDaemon: exit 1 and a message that says what is wrong with
// the socket and what to do.
func TestUnreachableDaemon(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.sock")
	code, _, errOut := wingman(t, "-c", missing, "list")
	if code != exitFailed || !strings.Contains(errOut, "no socket at "+missing) || !strings.Contains(errOut, "systemctl start wingmand") {
		t.Errorf("missing socket: exit %d, %q", code, errOut)
	}

	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	code, _, errOut = wingman(t, "status", "--connect", stale)
	if code != exitFailed || !strings.Contains(errOut, "nothing listens on "+stale) {
		t.Errorf("stale socket: exit %d, %q", code, errOut)
	}

	// Root passes every permission check, so feed the errno directly.
	denied := &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.EACCES)}
	err = explainUnreachable("/run/wingman/wingman.sock", denied, api.ErrUnreachable)
	if err == nil || !strings.Contains(err.Error(), "permission denied on /run/wingman/wingman.sock") || !strings.Contains(err.Error(), "group wingman") {
		t.Errorf("permission denied: %v", err)
	}
	if os.Geteuid() != 0 {
		sock := filepath.Join(dir, "private.sock")
		l, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		os.Chmod(sock, 0)
		if code, _, errOut = wingman(t, "-c", sock, "list"); code != exitFailed || !strings.Contains(errOut, "group wingman") {
			t.Errorf("socket without permission: exit %d, %q", code, errOut)
		}
	}
	// Anything else keeps the client's own message.
	other := errors.New("wingmand is not reachable: i/o timeout")
	if err := explainUnreachable("/x", errors.New("timeout"), other); err != other {
		t.Errorf("unknown dial error: %v", err)
	}
}

// TestEventsFollow: --follow prints the log, then only new events (the
// overlapping polls repeat old ones), and ends cleanly when interrupted.
func TestEventsFollow(t *testing.T) {
	d := startFakeDaemon(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	late := api.Event{Time: fakeNow.Add(5 * time.Second), Host: 3, HostName: "kvm3", Seq: 12, Severity: "info", Kind: "host.joined", Message: "kvm3 joined, generation 10"}
	d.feedOnce(cancel, late)
	s := session{args: []string{"events", "--follow", "--since", "30m"}}
	code, out, errOut := d.exec(t, ctx, s)
	if code != exitOK {
		t.Errorf("exit %d: %s", code, errOut)
	}
	checkGolden(t, filepath.Join("testdata", "events_follow.golden"), d.transcript(s, code, out, errOut))

	// Without --since or --limit, following starts after the newest
	// event: nothing old is printed, only what comes, in order, once.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	d.events, d.calls = append([]api.Event(nil), fakeEvents...), 0
	newer := api.Event{Time: fakeNow.Add(9 * time.Second), Host: 1, HostName: "kvm1", Seq: 50, Severity: "info", Kind: "vm.migrated", VM: "web1", Message: "web1 moved"}
	d.feedOnce(cancel, newer, late) // one poll brings two, out of order
	_, out, _ = d.exec(t, ctx, session{args: []string{"events", "--follow", "--json"}})
	if got := jsonKinds(t, out); !slices.Equal(got, []string{"host.joined", "vm.migrated"}) {
		t.Errorf("follow --json printed %v, want only the two new events, oldest first", got)
	}

	// --limit N prints the newest N, then only new events: the events it
	// left out are not printed by the polls that reach back over them.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	d.events, d.calls = append([]api.Event(nil), fakeEvents...), 0
	d.feedOnce(cancel, late)
	_, out, _ = d.exec(t, ctx, session{args: []string{"events", "--follow", "--json", "--limit", "2"}})
	if got := jsonKinds(t, out); !slices.Equal(got, []string{"lease.taken", "vm.restarted", "host.joined"}) {
		t.Errorf("follow --limit 2 printed %v, want the newest two, then the new one", got)
	}
}

// feedOnce makes d add evs to its log before its second answer to events,
// and interrupt the client (cancel) before its fourth.
func (d *fakeDaemon) feedOnce(cancel func(), evs ...api.Event) {
	d.onEvents = func(call int) {
		switch call {
		case 2:
			d.events = append(d.events, evs...)
		case 4:
			cancel()
		}
	}
}

// jsonKinds are the kinds of the events out prints, one JSON object a line.
func jsonKinds(t *testing.T, out string) []string {
	t.Helper()
	var kinds []string
	for l := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		var e api.Event
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.Kind == "" {
			t.Errorf("line %q is not an event: %v", l, err)
			continue
		}
		kinds = append(kinds, e.Kind)
	}
	return kinds
}

// TestSpinner: on a terminal, progress redraws one line until stopped and
// then clears it.
func TestSpinner(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var b bytes.Buffer
		stop := progress(stdio{errOut: &b, errTerminal: true}, "migrating web1 to kvm2")
		time.Sleep(1250 * time.Millisecond)
		stop()
		got := b.String()
		if n := strings.Count(got, "\r"); n != 14 {
			t.Errorf("%d redraws, want 13 and a clear:\n%q", n, got)
		}
		if !strings.Contains(got, `\ migrating web1 to kvm2 (1s)`) || !strings.HasSuffix(got, "\r\033[K") {
			t.Errorf("spinner output %q", got)
		}
	})
}

func TestHumanUnits(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 800 * time.Microsecond: "800µs", 1800 * time.Microsecond: "1.8ms", 45 * time.Millisecond: "45ms",
		time.Second: "1s", 1234 * time.Millisecond: "1.2s", 90 * time.Second: "1m30s", 2 * time.Minute: "2m",
		time.Hour: "1h", 3*time.Hour + 10*time.Minute: "3h10m", -2 * time.Second: "-2s",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
		}
	}
	for mib, want := range map[uint64]string{0: "0 MiB", 512: "512 MiB", 1024: "1 GiB", 15872: "15.5 GiB", 2 << 20: "2 TiB"} {
		if got := humanMiB(mib); got != want {
			t.Errorf("humanMiB(%d) = %q, want %q", mib, got, want)
		}
	}
	for b, want := range map[uint64]string{900: "900 B", 3584: "3.5 KiB", 5 << 20: "5 MiB", 9126805504: "8.5 GiB"} {
		if got := humanBytes(b); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", b, got, want)
		}
	}
}

func TestGlobalFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want globals
		rest []string
		err  bool
	}{
		{[]string{"list"}, globals{}, []string{"list"}, false},
		{[]string{"-c", "/s", "--json", "list", "-c", "/t"}, globals{connect: "/s", json: true}, []string{"list", "-c", "/t"}, false},
		{[]string{"--connect=/s", "status"}, globals{connect: "/s"}, []string{"status"}, false},
		{[]string{"-c/s", "status"}, globals{connect: "/s"}, []string{"status"}, false},
		{[]string{"--json"}, globals{json: true}, nil, false},
		{[]string{"--help"}, globals{}, []string{"--help"}, false},
		{[]string{"-c"}, globals{}, nil, true},
	} {
		g, rest, err := parseGlobals(tc.args)
		if (err != nil) != tc.err || g != tc.want || strings.Join(rest, " ") != strings.Join(tc.rest, " ") {
			t.Errorf("parseGlobals(%q) = %+v, %q, %v", tc.args, g, rest, err)
		}
	}
	if code, _, errOut := wingman(t, "--bogus", "list"); code != exitUsage || !strings.Contains(errOut, "unknown flag --bogus") {
		t.Errorf("unknown global flag: exit %d, %q", code, errOut)
	}
}
