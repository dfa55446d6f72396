package apiview

import (
	"errors"
	"testing"
	"time"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/quorum"
)

type fakeDisarmer struct {
	got quorum.DisarmRequest
	in  quorum.Input
}

func (f *fakeDisarmer) Disarm(r quorum.DisarmRequest) (quorum.Disarm, error) {
	f.got = r
	if r.Failover != "" {
		return quorum.Disarm{}, quorum.ErrDisarmRefused
	}
	return quorum.Disarm{Gen: 1, For: r.For}, nil
}

func (f *fakeDisarmer) Input() quorum.Input { return f.in }

func TestDisarmNamesTheFailoverInProgress(t *testing.T) {
	f := &fakeDisarmer{}
	vms := []api.VM{{Name: "a", State: "lost with kvm3"}, {Name: "b", State: "running"}, {Name: "c", State: "lost with kvm3"}}
	_, err := Disarm(f, api.DisarmRequest{For: time.Hour}, vms, quorum.Decision{}, time.Now())
	if !errors.Is(Classify(err), api.ErrConflict) || f.got.Failover != "2 VMs of kvm3 not running again yet" {
		t.Fatalf("err %v, failover %q", err, f.got.Failover)
	}
	if _, err := Disarm(f, api.DisarmRequest{}, nil, quorum.Decision{}, time.Now()); !errors.Is(err, api.ErrInvalid) {
		t.Fatalf("zero duration: %v, want invalid", err)
	}
}

func TestHAShowsWhoIsStillDisarmed(t *testing.T) {
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	in := quorum.Input{Now: 50 * time.Second, Disarm: quorum.DisarmStatus{Disarmed: true, Until: 110 * time.Second,
		Request: quorum.Disarm{Gen: 3, By: 2, For: time.Minute, Reason: "SAN"}},
		Slots: []quorum.Slot{{ID: 1, Name: "kvm1"}, {ID: 2, Name: "kvm2", Disarmed: true, Disarm: quorum.Disarm{For: time.Minute}}}}
	h := HA(in, quorum.Decision{}, now)
	if !h.Disarmed || h.By != "kvm2" || h.Remaining != time.Minute || !h.Until.Equal(now.Add(time.Minute)) ||
		len(h.DisarmedHosts) != 1 || h.DisarmedHosts[0] != "kvm2" || h.Generation != 3 {
		t.Errorf("HA = %+v", h)
	}
}
