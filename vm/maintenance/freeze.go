package maintenance

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
// away, and the list is kept in the state directory; when the daemon starts
// again it starts them again (taking their leases back if the host was
// declared dead meanwhile).

func (h *Host) frozenFile() string { return filepath.Join(h.cfg.StateDir, "frozen") }

// Freeze stops the protected VMs this host runs and remembers them for Thaw.
func (h *Host) Freeze(ctx context.Context) error {
	recs, errs := h.records.ReadVMs(ctx)
	if len(errs) > 0 {
		return fmt.Errorf("freeze: %d VM records unreadable: %w", len(errs), errors.Join(errs...))
	}
	doms, err := h.doms.ListDomains(ctx)
	if err != nil {
		return fmt.Errorf("freeze: %w", err)
	}
	running := map[string]bool{}
	for _, dm := range doms {
		if dm.Active() {
			running[strings.ToLower(dm.UUID)] = true
		}
	}
	var frozen []string
	var failed []error
	for _, r := range recs {
		if !r.Protected() {
			continue
		}
		id := strings.ToLower(r.Config.UUID.String())
		if r.Lease.Owner.Host != h.cfg.HostID || r.Lease.Owner.Gen != h.cfg.Generation || !running[id] {
			continue
		}
		if err := h.vms.Stop(ctx, id); err != nil {
			failed = append(failed, fmt.Errorf("%s: %w", r.Config.Name, err))
			continue
		}
		frozen = append(frozen, id)
		h.event(storage.SevInfo, "frozen", "%s stopped until this host's wingmand is back", r.Config.Name)
	}
	if err := os.WriteFile(h.frozenFile(), []byte(strings.Join(frozen, "\n")+"\n"), 0o600); err != nil {
		failed = append(failed, fmt.Errorf("record the frozen VMs in %s: %w", h.frozenFile(), err))
	}
	return errors.Join(failed...)
}

// Thaw starts again the VMs Freeze stopped when the daemon last stopped.
func (h *Host) Thaw(ctx context.Context) {
	b, err := os.ReadFile(h.frozenFile())
	if err != nil {
		return
	}
	os.Remove(h.frozenFile())
	for _, id := range strings.Fields(string(b)) {
		if err := h.vms.Start(ctx, id); err != nil {
			h.event(storage.SevError, "thaw-failed", "start frozen VM %s again: %v; start it with 'wingman start'", id, err)
			continue
		}
		h.event(storage.SevInfo, "thawed", "frozen VM %s set to run again", id)
	}
}
