package e2e

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/storage"
)

// headerWarning is the status warning of a changed LUN header.
func headerWarning(ws []string) string {
	for _, w := range ws {
		if strings.Contains(w, "LUN header changed") {
			return w
		}
	}
	return ""
}

// whenWarned polls the status of every host until each shows the warning that pick picks out
// of its warnings ("": none), for up to timeout, and returns how long after t0 each showed it.
func whenWarned(ctx context.Context, e *Env, t0 time.Time, timeout time.Duration, pick func([]string) string) (map[string]time.Duration, error) {
	noticed := map[string]time.Duration{}
	err := Poll(ctx, timeout, 50*time.Millisecond, func() (bool, error) {
		for _, h := range e.Hosts() {
			if _, ok := noticed[h.Name()]; ok {
				continue
			}
			sctx, cancel := context.WithTimeout(ctx, time.Second)
			s, err := e.Client(h).Status(sctx)
			cancel()
			if err == nil && pick(s.Warnings) != "" {
				noticed[h.Name()] = time.Since(t0)
			}
		}
		return len(noticed) == len(e.Hosts()), nil
	})
	return noticed, err
}

// TestHeaderChangedUnderRunningCluster: the first 4 KiB of the running
// cluster's LUN are zeroed, as an operator's mistaken dd would. Every
// daemon must report it (status warning and event) within a few
// heartbeats, keep its guests and start or fence nothing for 3 × D (the
// issue asks for 3 × the network-lease ceiling, which does not exist yet:
// D of the fast profile stands in for it), and `lun restore-header`, called
// through one daemon's API as the CLI does, must end the alarm everywhere.
// The never-two checker watches throughout.
func TestHeaderChangedUnderRunningCluster(t *testing.T) {
	e, ctx, h1, guests := lunFaultEnv(t, "hc")
	w := e.StartWatch(guests, WatchOptions{MustNotStop: true})
	f, err := os.OpenFile(e.C.LUNs().Paths()[0], os.O_RDWR|os.O_SYNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	old := make([]byte, storage.BlockSize)
	if _, err := f.ReadAt(old, 0); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if _, err := f.WriteAt(make([]byte, storage.BlockSize), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()

	noticed, err := whenWarned(ctx, e, t0, 15*time.Second, headerWarning)
	for _, h := range e.Hosts() {
		if took, ok := noticed[h.Name()]; ok {
			t.Logf("%s's status warned %v after the header was zeroed (R = %v)", h.Name(), took.Round(time.Millisecond), fastTimings.Renew)
		} else {
			t.Errorf("%s never warned about the zeroed header", h.Name())
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	// Within a few heartbeats; a status call of each host per round adds its own time.
	for name, took := range noticed {
		if limit := 4*fastTimings.Renew + time.Second; took > limit {
			t.Errorf("%s took %v to notice, more than %v", name, took, limit)
		}
	}
	s, err := e.Client(h1).Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s status: quorate %v, warning %q", h1.Name(), s.Quorate, headerWarning(s.Warnings))

	hold := 3 * fastTimings.Dead
	observe(hold - time.Since(t0))
	for _, h := range e.Hosts() {
		evs, err := e.Client(h).Events(ctx, t0, 0)
		if err != nil {
			t.Fatal(err)
		}
		seen := false
		for _, ev := range evs {
			if ev.Kind == "lun-header-changed" && ev.HostName == h.Name() && !seen {
				seen = true
				// The hosts share this machine's clock: the event's time is when the host noticed.
				t.Logf("%s noticed the zeroed header %v after it was zeroed (its event)", h.Name(), ev.Time.Sub(t0).Round(time.Millisecond))
			}
		}
		if !seen {
			t.Errorf("no lun-header-changed event from %s", h.Name())
		}
	}
	noFailoverEvents(t, ctx, e, h1, t0)

	h2 := e.Hosts()[1]
	res, err := e.Client(h2).RestoreHeader(ctx, false)
	if err != nil || !res.Wrote || res.Found != "zeros" {
		t.Fatalf("restore-header through %s: %+v, %v", h2.Name(), res, err)
	}
	restored := time.Now()
	for _, h := range e.Hosts() {
		err := Poll(ctx, 10*time.Second, 50*time.Millisecond, func() (bool, error) {
			s, err := e.Client(h).Status(ctx)
			return err == nil && headerWarning(s.Warnings) == "" && s.Quorate, nil
		})
		if err != nil {
			t.Errorf("%s still warns about the header %v after restore-header: %v", h.Name(), time.Since(restored), err)
		}
	}
	b, err := os.ReadFile(e.C.LUNs().Paths()[0])
	if err != nil {
		t.Fatal(err)
	}
	if string(b[:storage.BlockSize]) != string(old) {
		t.Error("the restored header differs from the one formatted")
	}
	observe(2 * time.Second)
	checkWatch(t, w)
	placedOn(t, e, guests, h1.Name())
}
