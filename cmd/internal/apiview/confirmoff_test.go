package apiview

import (
	"context"
	"testing"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/quorum"
)

type fakeConfirmCall struct {
	host int
	req  api.ConfirmOffRequest
}

func (f *fakeConfirmCall) Call(_ context.Context, host int, _ string, req api.ConfirmOffRequest) (api.ConfirmOffResult, error) {
	f.host, f.req = host, req
	return api.ConfirmOffResult{HostID: req.Host, By: req.By}, nil
}

// TestConfirmOffGoesToTheCoordinator: the request goes to the coordinator,
// which declares hosts dead, naming the caller, or the host that took it
// when the API does not know who called.
func TestConfirmOffGoesToTheCoordinator(t *testing.T) {
	dec := quorum.Decision{Coordinator: 2, Hosts: []quorum.Host{{ID: 1, Name: "kvm1"}, {ID: 2, Name: "kvm2"}, {ID: 3, Name: "kvm3", State: quorum.StateSuspect}}}
	var f fakeConfirmCall
	res, err := ConfirmOffOn(context.Background(), &f, dec, "kvm3", "user alice (uid 1000)", "kvm1")
	if err != nil || f.host != 2 || f.req.Host != 3 || f.req.By != "user alice (uid 1000) on kvm1" || res.Host != "kvm3" {
		t.Errorf("sent to host %d: %+v; result %+v, %v", f.host, f.req, res, err)
	}
	if _, err := ConfirmOffOn(context.Background(), &f, dec, "3", "", "kvm1"); err != nil || f.req.By != "an operator on kvm1" {
		t.Errorf("unknown caller: %+v, %v", f.req, err)
	}
	if _, err := ConfirmOffOn(context.Background(), &f, dec, "kvm2", "", "kvm1"); err != nil || f.host != 0 {
		t.Errorf("confirm-off of the coordinator itself went to host %d (%v), want this host, which checks its heartbeat", f.host, err)
	}
	if _, err := ConfirmOffOn(context.Background(), &f, dec, "kvm9", "", "kvm1"); err == nil {
		t.Error("an unknown host was sent")
	}
}
