package apiview

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/quorum"
)

type quarantiner struct {
	rec quorum.QuarantineRecord
	by  string
}

func (q *quarantiner) Record() quorum.QuarantineRecord { return q.rec }

func (q *quarantiner) Quarantine(_ context.Context, host, by string) (quorum.Quarantined, error) {
	q.by = by
	if host != "kvm2" {
		return quorum.Quarantined{}, errors.New("no host " + host)
	}
	return quorum.Quarantined{Host: 2, Until: time.Unix(7200, 0), By: by}, nil
}

func (q *quarantiner) Unquarantine(_ context.Context, _, by string) (quorum.Quarantined, error) {
	q.by = by
	return quorum.Quarantined{}, nil
}

func TestQuarantineView(t *testing.T) {
	q := &quarantiner{rec: quorum.QuarantineRecord{Hosts: []quorum.Quarantined{{Host: 2, Since: time.Unix(0, 0), Until: time.Unix(7200, 0), By: "wingman", Why: "3 flaps within 1h"}}}}
	hosts := []api.Host{{ID: 1, Name: "kvm1"}, {ID: 2, Name: "kvm2"}}
	MarkQuarantined(hosts, q.Record())
	if hosts[0].Quarantine != nil || hosts[1].Quarantine == nil || hosts[1].Quarantine.Why != "3 flaps within 1h" {
		t.Fatalf("marked %+v %+v", hosts[0].Quarantine, hosts[1].Quarantine)
	}
	r, err := Quarantine(context.Background(), q, "kvm2", api.QuarantineRequest{Quarantine: true}, "user alice (uid 1000)", "kvm1")
	if err != nil || r.Quarantine == nil || q.by != "user alice (uid 1000) on kvm1" {
		t.Errorf("quarantine: %+v, %v, by %q", r, err, q.by)
	}
	r, err = Quarantine(context.Background(), q, "kvm2", api.QuarantineRequest{}, "", "kvm1")
	if err != nil || r.Quarantine != nil || q.by != "an operator on kvm1" {
		t.Errorf("unquarantine: %+v, %v, by %q", r, err, q.by)
	}
}
