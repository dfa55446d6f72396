package apiview

import (
	"errors"
	"testing"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/quorum/gossip"
	"github.com/wingmanha/wingman/vm"
	"github.com/wingmanha/wingman/vm/drill"
)

// A protected VM shows the lock manager of the host that owns its lease, as
// that host's tags say; a host that says nothing (an older wingmand, or
// tags that did not decode) shows as unknown, never as off.
func TestLockManagersFollowTheOwner(t *testing.T) {
	members := []gossip.Member{
		{HostID: 1, Tags: gossip.Tags{HostID: 1, LockManager: "lockd"}},
		{HostID: 2, Tags: gossip.Tags{HostID: 2, LockManager: "none"}},
		{HostID: 3, Tags: gossip.Tags{HostID: 3}},
		{HostID: 0, TagsErr: errors.New("bad tags")},
	}
	lm := LockManagers(members)
	vms := []api.VM{
		{Name: "web1", Protected: true, Owner: 1},
		{Name: "db1", Protected: true, Owner: 2},
		{Name: "old1", Protected: true, Owner: 3},
		{Name: "gone1", Protected: true, Owner: 7},
		{Name: "free1", Protected: true},
		{Name: "local1", Owner: 1},
	}
	MarkLockManagers(vms, lm)
	want := map[string]string{"web1": "lockd", "db1": "none", "old1": "", "gone1": "", "free1": "", "local1": ""}
	for _, v := range vms {
		if v.LockManager != want[v.Name] {
			t.Errorf("%s (owner %d): lock manager %q, want %q", v.Name, v.Owner, v.LockManager, want[v.Name])
		}
	}

	rep := drill.Report{Verdict: vm.Drill{VMs: []vm.DrillVM{{Name: "web1", Owner: 1, OwnerName: "kvm1"}, {Name: "db1", Owner: 2, OwnerName: "kvm2"}}}}
	got := DrillReport(rep, lm)
	if got.VMs[0].LockManager != "lockd" || got.VMs[1].LockManager != "none" {
		t.Errorf("drill: lock managers %q, %q; want lockd, none", got.VMs[0].LockManager, got.VMs[1].LockManager)
	}

	dec := quorum.Decision{Hosts: []quorum.Host{{ID: 1, Name: "kvm1"}, {ID: 2, Name: "kvm2"}, {ID: 3, Name: "kvm3"}}}
	hosts := Hosts(dec, members, nil, quorum.Set{})
	for _, h := range hosts {
		if want := map[int]string{1: "lockd", 2: "none"}[h.ID]; h.LockManager != want {
			t.Errorf("host %d: lock manager %q, want %q", h.ID, h.LockManager, want)
		}
	}
}
