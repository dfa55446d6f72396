package apiview

import (
	"context"
	"fmt"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/quorum"
)

// ConfirmOffer is the heartbeat loop's side of `wingman host confirm-off`
// (heartbeat.Loop).
type ConfirmOffer interface {
	ConfirmOff(host int, by string) (quorum.Verdict, error)
}

// ConfirmOffCaller carries a confirm-off to the host that must act (the
// forwarding table's operation).
type ConfirmOffCaller interface {
	Call(ctx context.Context, host int, vm string, req api.ConfirmOffRequest) (api.ConfirmOffResult, error)
}

// ConfirmOffOn sends the operator's confirmation that host is off to the
// coordinator of dec, which declares hosts dead (to this host, if it sees
// none: the confirmation may be what makes this host's partition quorate,
// as the last host standing). caller is api.Caller's answer; self names
// this host, the caller's stand-in when the API does not know who called.
func ConfirmOffOn(ctx context.Context, op ConfirmOffCaller, dec quorum.Decision, host, caller, self string) (api.ConfirmOffResult, error) {
	h, err := ResolveHost(dec, host)
	if err != nil {
		return api.ConfirmOffResult{}, err
	}
	by := fmt.Sprintf("%s on %s", caller, self)
	if caller == "" {
		by = "an operator on " + self
	}
	at := dec.Coordinator
	if at == h.ID {
		at = 0 // a host does not confirm itself off: this one refuses (it is running)
	}
	res, err := op.Call(ctx, at, "", api.ConfirmOffRequest{Host: h.ID, By: by})
	res.Host = h.Name
	return res, err
}

// ConfirmOff records the confirmation on this host (here: its name), the
// coordinator, through its heartbeat loop.
func ConfirmOff(l ConfirmOffer, here string, req api.ConfirmOffRequest) (api.ConfirmOffResult, error) {
	if req.By == "" {
		return api.ConfirmOffResult{}, api.Fail(api.ErrInvalid, "", "by is empty: say who confirmed the host off")
	}
	v, err := l.ConfirmOff(req.Host, req.By)
	if err != nil {
		return api.ConfirmOffResult{}, err
	}
	return api.ConfirmOffResult{HostID: v.ID, Generation: v.Gen, By: req.By, DeclaredOn: here}, nil
}
