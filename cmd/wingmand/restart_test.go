package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/cmd/internal/luns"
	"github.com/wingmanha/wingman/storage"
)

// A stop of wingmand alone (restart, upgrade: SIGTERM without a host
// shutdown; no systemd here and no host-shutdown file) leaves the protected
// VM here whatever shutdown.policy says: no migration, no release, the slot
// not left; the restarted daemon resumes the same generation and the VM's
// lease is untouched.
func TestServiceStopLeavesGuestsProtected(t *testing.T) {
	// F - R = 2.9 s: room for a stop and a start on a loaded test machine.
	timings := testTimings()
	timings.SelfFence = 3 * time.Second
	timings.Dead = timings.MinDead()
	lun := formatLUNWith(t, timings, storage.Geometry{MaxHosts: 4, MaxVMs: 8, EventBlocks: 4, ConfigBlks: 4})
	a, b := twoDaemons(t, func(c *Config) { c.LUN, c.Shutdown.Policy = luns.Paths{lun}, "migrate" })
	ctx := context.Background()
	if _, err := a.client.Protect(ctx, "web1", api.ProtectRequest{}); err != nil {
		t.Fatal(err)
	}
	before, err := b.client.VM(ctx, "web1")
	if err != nil || !before.Protected || before.Owner != 1 {
		t.Fatalf("before the restart web1 is %+v (%v), want protected and owned by kvm1", before, err)
	}
	cfg, gen, t0 := a.d.cfg, a.d.slot.Generation(), time.Now()
	a.stop()
	a2 := startDaemon(t, cfg)
	if g := a2.d.slot.Generation(); g != gen {
		t.Errorf("generation %d after the restart, want %d: the slot was left, or not resumed in time", g, gen)
	}
	after, err := b.client.VM(ctx, "web1")
	if err != nil || !after.Protected || after.Stopped || after.Owner != 1 || after.LeaseEpoch != before.LeaseEpoch {
		t.Errorf("after the restart web1 is %+v (%v), want protected, not stopped, owned by kvm1 with lease epoch %d", after, err, before.LeaseEpoch)
	}
	evs, err := b.client.Events(ctx, t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	told := false
	for _, e := range evs {
		switch e.Kind {
		case "migration-started", "migration-failed", "evacuated", "evacuation-failed", "released", "cold-moved", "frozen", "left", "declared-dead":
			t.Errorf("a restart of wingmand caused %s: %s", e.Kind, e.Message)
		case "stopping":
			told = e.HostName == "kvm1" && strings.Contains(e.Message, "guests stay: restart within 2.9s")
		}
	}
	if !told {
		t.Errorf("no event of kvm1 saying its guests stay and the restart window: %+v", evs)
	}
}
