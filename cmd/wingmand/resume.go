package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// A restarted wingmand takes its heartbeat slot back at once when it can
// prove the previous daemon of this host wrote it less than F ago: the host
// then never looks dead to the others, and its guests are never started
// twice. The proof is a small file in the runtime directory (a tmpfs, gone
// with a reboot) that records the slot's incarnation and the boot-time
// clock of the last completed write; the state directory's lock guarantees
// that no other daemon of this host still writes the slot.

func (d *Daemon) resumeFile() string {
	return filepath.Join(filepath.Dir(d.cfg.API.Socket), "heartbeat.state")
}

func bootClock() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// noteWrite records a completed heartbeat write for a later resume.
func (d *Daemon) noteWrite(issued time.Duration) {
	if d.slot == nil {
		return
	}
	p := d.resumeFile()
	tmp := p + ".tmp"
	body := fmt.Sprintf("%d %d\n", d.slot.Record().Incarnation, int64(issued))
	if err := os.WriteFile(tmp, []byte(body), 0o600); err == nil {
		_ = os.Rename(tmp, p)
	}
}

// resumeIncarnation returns the incarnation to resume, or 0. If the
// previous daemon's last write is F old or older, the guests it left have
// run unwatched for too long: they are destroyed first, as the self-fence
// at F would have done.
func (d *Daemon) resumeIncarnation(ctx context.Context) uint64 {
	b, err := os.ReadFile(d.resumeFile())
	if err != nil {
		return 0
	}
	var inc uint64
	var at int64
	if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%d %d", &inc, &at); err != nil || inc == 0 {
		return 0
	}
	os.Remove(d.resumeFile())
	age := bootClock() - time.Duration(at)
	t := d.hdr.Timings
	if age >= 0 && age < t.SelfFence-t.Renew {
		d.status("resuming after a restart: the last heartbeat was written %v ago", age.Round(time.Millisecond))
		return inc
	}
	d.log.Error("the previous wingmand stopped heartbeating more than F ago: destroying this host's protected VMs before rejoining", "age", age, "F", t.SelfFence)
	d.destroyProtected(ctx)
	return 0
}

// destroyProtected destroys every local running domain that has a
// protected-VM record on the LUN.
func (d *Daemon) destroyProtected(ctx context.Context) {
	recs, errs := d.lun.ReadVMs(ctx)
	protected := map[string]bool{}
	for _, r := range recs {
		if r.Protected() {
			protected[strings.ToLower(r.Config.UUID.String())] = true
		}
	}
	doms, err := d.hv.ListDomains(ctx)
	if err != nil {
		d.log.Error("cannot list domains to fence them", "err", err)
		return
	}
	for _, dm := range doms {
		if dm.Active() && (protected[strings.ToLower(dm.UUID)] || (len(errs) > 0 && len(recs) == 0)) {
			if err := d.hv.Destroy(ctx, dm.Name); err != nil {
				d.log.Error("destroy", "domain", dm.Name, "err", err)
			}
		}
	}
}
