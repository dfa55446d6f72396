package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/wingmanha/wingman/storage"
)

// The freeze shutdown policy: the host's protected VMs are shut down and
// marked stopped on the LUN, so that no host starts them while this one is
// away, and the list is kept in the state directory; when wingmand starts
// again it starts them again (taking their leases back if the host was
// declared dead meanwhile).

func (d *Daemon) frozenFile() string { return filepath.Join(d.cfg.StateDir, "frozen") }

func (d *Daemon) freeze(ctx context.Context) error {
	recs, errs := d.lun.ReadVMs(ctx)
	if len(errs) > 0 {
		return fmt.Errorf("freeze: %d VM records unreadable: %w", len(errs), errors.Join(errs...))
	}
	doms, err := d.hv.ListDomains(ctx)
	if err != nil {
		return fmt.Errorf("freeze: %w", err)
	}
	running := map[string]bool{}
	for _, dm := range doms {
		if dm.Active() {
			running[strings.ToLower(dm.UUID)] = true
		}
	}
	self, gen := d.slot.HostID(), d.slot.Generation()
	var frozen []string
	var failed []error
	for _, r := range recs {
		if !r.Protected() {
			continue
		}
		id := strings.ToLower(r.Config.UUID.String())
		if r.Lease.Owner.Host != self || r.Lease.Owner.Gen != gen || !running[id] {
			continue
		}
		if err := d.vms.Stop(ctx, id); err != nil {
			failed = append(failed, fmt.Errorf("%s: %w", r.Config.Name, err))
			continue
		}
		frozen = append(frozen, id)
		d.event(storage.SevInfo, "frozen", self, "%s stopped until this host's wingmand is back", r.Config.Name)
	}
	if err := os.WriteFile(d.frozenFile(), []byte(strings.Join(frozen, "\n")+"\n"), 0o600); err != nil {
		failed = append(failed, fmt.Errorf("record the frozen VMs in %s: %w", d.frozenFile(), err))
	}
	return errors.Join(failed...)
}

// thaw starts again the VMs the freeze policy stopped when wingmand last stopped.
func (d *Daemon) thaw(ctx context.Context) {
	b, err := os.ReadFile(d.frozenFile())
	if err != nil {
		return
	}
	os.Remove(d.frozenFile())
	for _, id := range strings.Fields(string(b)) {
		if err := d.vms.Start(ctx, id); err != nil {
			d.event(storage.SevError, "thaw-failed", d.slot.HostID(), "start frozen VM %s again: %v; start it with 'wingman start'", id, err)
			continue
		}
		d.event(storage.SevInfo, "thawed", d.slot.HostID(), "frozen VM %s set to run again", id)
	}
}
