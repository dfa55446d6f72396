package main

// The API's operations that one host must carry out, in the forwarding
// table (cmd/internal/forward): each runs on the host that must act, here
// or sent to that host alone, with one answer type either way.

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/cmd/internal/apiview"
	"github.com/wingmanha/wingman/cmd/internal/forward"
	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/vm"
	"github.com/wingmanha/wingman/vm/drill"
	"github.com/wingmanha/wingman/vm/maintenance"
	"github.com/wingmanha/wingman/vm/plan"
)

type none = struct{}

// ops are the operations of the table; their names are the wire's.
type ops struct {
	protect                *forward.Op[api.ProtectRequest, api.ProtectResult]
	policy                 *forward.Op[api.ProtectRequest, api.VM]
	unprotect, start, stop *forward.Op[none, none]
	migrate                *forward.Op[api.MigrateRequest, api.MigrateResult]
	maintenance            *forward.Op[api.MaintenanceRequest, api.Host]
	evacuation             *forward.Op[none, api.Evacuation]
	exec                   *forward.Op[api.ExecRequest, api.ExecResult]
	reboot                 *forward.Op[api.RebootRequest, api.RebootResult]
	qmp                    *forward.Op[none, api.QMPDiagnostics]
	drillCheck             *forward.Op[drill.CheckRequest, drill.Answer]
	diskCheck              *forward.Op[drill.DiskCheckRequest, drill.Answer]
	drillLive              *forward.Op[drill.LiveRequest, drill.Hop]
	drillCleanup           *forward.Op[none, none]
	domain                 *forward.Op[none, domainHere] // registered by the wiring: it asks libvirt
	confirmOff             *forward.Op[api.ConfirmOffRequest, api.ConfirmOffResult]
}

type domainHere = apiview.DomainHere

// register adds the API's operations to t.
func (d apiServer) register(t *forward.Table) *ops {
	vmOp := func(name string, fn func(context.Context, string) error) *forward.Op[none, none] {
		return forward.Register(t, name, func(ctx context.Context, vm string, _ none) (none, error) { return none{}, fn(ctx, vm) })
	}
	return &ops{
		protect: forward.Register(t, "protect", func(ctx context.Context, name string, req api.ProtectRequest) (api.ProtectResult, error) {
			p, err := apiview.ApplyPolicy(plan.DefaultPolicy(), req.Policy)
			if err != nil {
				return api.ProtectResult{}, err
			}
			return d.protect(ctx, name, vm.RecordPolicy{Policy: p}, vm.ProtectOptions{Force: req.Force})
		}),
		policy:    forward.Register(t, "policy", d.setPolicy),
		unprotect: vmOp("unprotect", d.vms.Unprotect),
		start:     vmOp("start", d.vms.Start),
		stop:      vmOp("stop", d.vms.Stop),
		migrate: forward.Register(t, "migrate", func(ctx context.Context, name string, req api.MigrateRequest) (api.MigrateResult, error) {
			res, to, err := d.maint.Migrate(ctx, name, req.Target)
			return api.MigrateResult{VM: name, From: d.cfg.HostName, To: to.Name, Duration: res.Wall, Downtime: res.Downtime,
				Bytes: res.DataTransferred}, err
		}),
		maintenance: forward.Register(t, "maintenance", func(ctx context.Context, _ string, req api.MaintenanceRequest) (api.Host, error) {
			if err := d.maint.Set(ctx, maintenance.Request(req)); err != nil {
				return api.Host{}, err
			}
			return d.apiHost(ctx, d.cfg.HostName)
		}),
		evacuation: forward.Register(t, "evacuation", func(context.Context, string, none) (api.Evacuation, error) {
			return apiview.Evacuation(d.maint.Evacuation(evacuationAnswerLimit)), nil
		}),
		exec: forward.Register(t, "exec", func(ctx context.Context, _ string, req api.ExecRequest) (api.ExecResult, error) {
			res, err := d.maint.Exec(ctx, maintenance.ExecRequest(req))
			return api.ExecResult(res), err
		}).Timeout(execTimeout),
		reboot: forward.Register(t, "reboot", func(ctx context.Context, _ string, req api.RebootRequest) (api.RebootResult, error) {
			res, err := d.maint.Reboot(ctx, maintenance.RebootRequest(req))
			return api.RebootResult(res), err
		}),
		qmp: forward.Register(t, "qmp", func(ctx context.Context, name string, _ none) (api.QMPDiagnostics, error) {
			return d.qmpDiagnostics(ctx, name), nil
		}),
		drillCheck: forward.Register(t, "drill-check", func(ctx context.Context, _ string, req drill.CheckRequest) (drill.Answer, error) {
			return d.drills.AnswerCheck(ctx, req)
		}),
		diskCheck: forward.Register(t, "disk-check", func(ctx context.Context, _ string, req drill.DiskCheckRequest) (drill.Answer, error) {
			return d.drills.AnswerDiskCheck(ctx, req)
		}),
		drillLive: forward.Register(t, "drill-live", func(ctx context.Context, _ string, req drill.LiveRequest) (drill.Hop, error) {
			return d.drills.LiveHop(ctx, req)
		}),
		drillCleanup: forward.Register(t, "drill-cleanup", func(ctx context.Context, _ string, _ none) (none, error) {
			return none{}, d.drills.Cleanup(ctx)
		}),
		confirmOff: forward.Register(t, "confirm-off", func(_ context.Context, _ string, req api.ConfirmOffRequest) (api.ConfirmOffResult, error) {
			return apiview.ConfirmOff(d.loop, d.cfg.HostName, req)
		}),
	}
}

// onOwner runs op about VM name on the host that holds its lease (here
// when nobody does).
func onOwner[Req, Resp any](ctx context.Context, d apiServer, op *forward.Op[Req, Resp], name string, req Req) (Resp, error) {
	owner, err := d.ownerOf(ctx, name)
	if err != nil {
		var zero Resp
		return zero, err
	}
	return op.Call(ctx, owner, name, req)
}

// onHost runs op on the host named (by name or id).
func onHost[Req, Resp any](ctx context.Context, d apiServer, op *forward.Op[Req, Resp], host string, req Req) (Resp, error) {
	h, err := d.resolveHost(host)
	if err != nil {
		var zero Resp
		return zero, err
	}
	return op.Call(ctx, h.ID, "", req)
}

// ownerOf is the host that holds the VM's lease (0: nobody), as the VM
// manager finds it.
func (d apiServer) ownerOf(ctx context.Context, nameOrUUID string) (int, error) {
	r, _, err := d.vms.Find(ctx, nameOrUUID)
	if err != nil || !r.Lease.Held() {
		return 0, err
	}
	return r.Lease.Owner.Host, nil
}

// protectVM protects name on the host that must: its owner if it is
// protected already, else the host whose libvirt has the domain.
func (d apiServer) protectVM(ctx context.Context, name string, req api.ProtectRequest) (api.ProtectResult, error) {
	owner, err := d.ownerOf(ctx, name)
	if errors.Is(err, vm.ErrNotFound) {
		owner, err = d.domainHost(ctx, name)
	}
	if err != nil {
		return api.ProtectResult{}, err
	}
	return d.ops.protect.Call(ctx, owner, name, req)
}

// domainHost is the host whose libvirt has the unprotected domain name:
// this one if it has it; else the one host that runs it or, if none runs
// it, the one that defines it, each asked alone; this one again if none
// has it (its protect then says so).
func (d apiServer) domainHost(ctx context.Context, name string) (int, error) {
	self := d.slot.HostID()
	if here, err := d.ops.domain.Call(ctx, self, name, none{}); err != nil || here.Defined {
		return self, err
	}
	var peers []quorum.Host
	for _, h := range d.decision().Hosts {
		if h.ID != self && !h.State.Gone() {
			peers = append(peers, h)
		}
	}
	found := make([]domainHere, len(peers))
	var wg sync.WaitGroup
	for i, h := range peers {
		wg.Go(func() { found[i], _ = d.ops.domain.Call(ctx, h.ID, name, none{}) }) // a host that does not answer has not got it
	}
	wg.Wait()
	return apiview.DomainHost(name, self, peers, found)
}

// protect protects the local domain, checking its disks, and says what the
// other hosts answered.
func (d apiServer) protect(ctx context.Context, name string, rp vm.RecordPolicy, opts vm.ProtectOptions) (api.ProtectResult, error) {
	rep, err := d.vms.Protect(ctx, d.decision(), name, rp, opts)
	if err != nil {
		return api.ProtectResult{}, err // apiview.Classify gives it its class and hint
	}
	v, err := d.apiVM(ctx, name)
	return apiview.ProtectResult(v, rep), err
}

// setPolicy changes the fields of a protected VM's policy that req gives.
func (d apiServer) setPolicy(ctx context.Context, name string, req api.ProtectRequest) (api.VM, error) {
	_, err := d.vms.SetPolicy(ctx, name, func(rp vm.RecordPolicy) (vm.RecordPolicy, error) {
		var err error
		rp.Policy, err = apiview.ApplyPolicy(rp.Policy, req.Policy)
		return rp, err
	})
	if err != nil {
		return api.VM{}, err
	}
	return d.apiVM(ctx, name)
}

// execTimeout bounds an exec on its host: its own timeout plus a minute to
// report, at least forward.DefaultTimeout.
func execTimeout(req api.ExecRequest) time.Duration {
	return max(forward.DefaultTimeout, req.Timeout+time.Minute)
}
