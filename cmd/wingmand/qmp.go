package main

import (
	"context"
	"time"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/cmd/internal/apiview"
)

// qmpForwardTimeout bounds a QMP diagnostic asked of another host: its own
// QMP queries are bounded by hypervisor.Config.QMPTimeout; the rest is serf.
const qmpForwardTimeout = 30 * time.Second

// vmQMP asks the host that runs v (its lease owner, or this host for an
// unprotected local domain) for QEMU's view of v over QMP. Only an
// operator's explicit request gets here ('wingman dominfo --qmp'): libvirt
// marks the domain tainted (custom-monitor). What fails is said in the
// answer, next to the rest of v, rather than failing the request.
func (d apiServer) vmQMP(ctx context.Context, v api.VM) *api.QMPDiagnostics {
	ctx, cancel := context.WithTimeout(ctx, qmpForwardTimeout)
	defer cancel()
	q, err := d.ops.qmp.Call(ctx, v.Owner, v.Name, none{})
	if err != nil {
		q = api.QMPDiagnostics{Host: v.OwnerName, Error: err.Error()}
	}
	return &q
}

// qmpDiagnostics reads QEMU's view of a local domain over QMP.
func (d apiServer) qmpDiagnostics(ctx context.Context, name string) api.QMPDiagnostics {
	d.log.Info("QMP diagnostics asked for; a running domain is marked tainted (custom-monitor) in libvirt until its QEMU exits", "vm", name)
	q, err := d.hv.QMPDiagnostics(ctx, name)
	return apiview.QMP(d.cfg.HostName, q, err)
}
