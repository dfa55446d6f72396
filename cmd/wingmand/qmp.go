package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/wingmanha/wingman/cmd/api"
)

// qmpForwardTimeout bounds a QMP diagnostic asked of another host: its own
// QMP queries are bounded by hypervisor.Config.QMPTimeout; the rest is serf.
const qmpForwardTimeout = 30 * time.Second

// queryBool reads an optional boolean query parameter ("1", "true", ...).
func queryBool(r *http.Request, name string) (bool, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, badRequest(fmt.Sprintf("use ?%s=1", name), "query parameter %s=%q: not a boolean", name, s)
	}
	return b, nil
}

// vmQMP asks the host that runs v (its lease owner, or this host for an
// unprotected local domain) for QEMU's view of v over QMP. Only an
// operator's explicit request gets here ('wingman dominfo --qmp'): libvirt
// marks the domain tainted (custom-monitor). What fails is said in the
// answer, next to the rest of v, rather than failing the request.
func (d apiServer) vmQMP(ctx context.Context, v api.VM) *api.QMPDiagnostics {
	c := command{Op: "qmp", VM: v.Name}
	var out any
	var err error
	if self := d.slot.HostID(); v.Owner != 0 && v.Owner != self {
		c.To = v.Owner
		fctx, cancel := context.WithTimeout(ctx, qmpForwardTimeout)
		defer cancel()
		out, err = d.forward(fctx, c)
	} else {
		out, err = d.runCommand(ctx, c)
	}
	q := api.QMPDiagnostics{Host: v.OwnerName}
	if err != nil {
		q.Error = err.Error()
		return &q
	}
	// One answer type, local or forwarded (a forwarded one is raw JSON).
	b, _ := json.Marshal(out)
	if err := json.Unmarshal(b, &q); err != nil {
		q.Error = fmt.Sprintf("decode the answer of %s: %v", v.OwnerName, err)
	}
	return &q
}

// qmpDiagnostics reads QEMU's view of a local domain over QMP.
func (d apiServer) qmpDiagnostics(ctx context.Context, name string) api.QMPDiagnostics {
	out := api.QMPDiagnostics{Host: d.cfg.HostName}
	d.log.Info("QMP diagnostics asked for; a running domain is marked tainted (custom-monitor) in libvirt until its QEMU exits", "vm", name)
	q, err := d.hv.QMPDiagnostics(ctx, name)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	out.Status, out.Condition, out.QEMUVersion, out.Errors = q.Status, q.Condition.String(), q.QEMUVersion, q.Errors
	for _, k := range q.Disks {
		dev := k.Device
		if dev == "" {
			dev = k.Node
		}
		out.Disks = append(out.Disks, api.QMPDisk{Device: dev, File: k.File, IOStatus: k.IOStatus, ReadOnly: k.ReadOnly})
	}
	return out
}
