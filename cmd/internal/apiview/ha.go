package apiview

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/quorum"
)

// Disarmer is the heartbeat loop's side of `wingman ha` (heartbeat.Loop).
type Disarmer interface {
	Disarm(quorum.DisarmRequest) (quorum.Disarm, error)
	Input() quorum.Input
}

// Disarm disarms HA for req.For through this host's heartbeat loop, which
// publishes the request in its slot for every host, and returns the new
// state. It is refused while a failover is in progress: protected VMs
// whose owner is gone that are not running again (vms, as GET /v1/vms
// lists them).
func Disarm(l Disarmer, req api.DisarmRequest, vms []api.VM, dec quorum.Decision, now time.Time) (api.HAState, error) {
	if req.For <= 0 {
		return api.HAState{}, api.Fail(api.ErrInvalid, "", "for_ns is %d: give how long to disarm (to arm, POST /v1/ha/arm)", req.For)
	}
	lost := map[string]int{}
	for _, v := range vms {
		if host, ok := strings.CutPrefix(v.State, "lost with "); ok {
			lost[host]++
		}
	}
	var failover []string
	for host, n := range lost {
		failover = append(failover, fmt.Sprintf("%d VMs of %s not running again yet", n, host))
	}
	slices.Sort(failover)
	_, err := l.Disarm(quorum.DisarmRequest{For: req.For, Reason: req.Reason, Force: req.Force, Failover: strings.Join(failover, ", ")})
	if err != nil {
		return api.HAState{}, err
	}
	return HA(l.Input(), dec, now), nil
}

// Arm re-arms HA cluster-wide at once: the hosts that read it re-arm; a
// host cut off meanwhile re-arms when its own timer runs out.
func Arm(l Disarmer, dec quorum.Decision, now time.Time) (api.HAState, error) {
	if _, err := l.Disarm(quorum.DisarmRequest{}); err != nil {
		return api.HAState{}, err
	}
	return HA(l.Input(), dec, now), nil
}

// HA is the disarm state of this host's heartbeat core (in), with the
// hosts whose slots say they are disarmed, leaving out those dec shows gone.
func HA(in quorum.Input, dec quorum.Decision, now time.Time) api.HAState {
	st := in.Disarm
	s := api.HAState{Disarmed: st.Disarmed, Generation: st.Request.Gen}
	by := fmt.Sprintf("host %d", st.Request.By)
	for _, sl := range in.Slots {
		if sl.ID == st.Request.By {
			by = sl.Name
		}
		if h, ok := dec.Host(sl.ID); sl.Disarmed && sl.Disarm.For > 0 && (!ok || !h.State.Gone()) {
			s.DisarmedHosts = append(s.DisarmedHosts, sl.Name)
		}
	}
	if st.Disarmed {
		s.Remaining = st.Until - in.Now
		s.Until = now.Add(s.Remaining).Truncate(time.Second)
		s.By, s.For, s.Reason = by, st.Request.For, st.Request.Reason
	}
	return s
}
