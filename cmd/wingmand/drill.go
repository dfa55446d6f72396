package main

// The API of vm/drill: a drill's report, and the drill's questions to one
// host, forwarded there.

import (
	"context"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/vm/drill"
)

// apiDrillReport is rep as the API shows it.
func apiDrillReport(rep drill.Report) api.DrillReport {
	out := api.DrillReport{Pass: rep.Pass, Lost: rep.Lost, VMs: []api.DrillVM{}, Hosts: []api.DrillHost{}, Duration: rep.Duration}
	for _, x := range rep.Verdict.VMs {
		av := api.DrillVM{Name: x.Name, UUID: x.UUID, Owner: x.OwnerName, Target: x.TargetName, Unplaced: x.Unplaced,
			Skipped: x.Skipped, Problems: x.Definition, Pass: x.Pass, Checks: []api.DrillCheck{}}
		for _, c := range x.Cells {
			av.Checks = append(av.Checks, api.DrillCheck{Host: c.HostName, Planned: c.Planned, Problem: c.Problem})
		}
		out.VMs = append(out.VMs, av)
	}
	for _, h := range rep.Verdict.Hosts {
		out.Hosts = append(out.Hosts, api.DrillHost{Name: h.Name, State: string(h.State), Drilled: h.Drilled,
			VMs: h.VMs, Placed: h.Placed, Unplaced: h.Unplaced, Target: h.Target, Checked: h.Checked,
			CheckFailures: h.CheckFailures, Problem: h.Problem, Pass: h.Pass})
	}
	for _, h := range rep.Hops {
		out.Hops = append(out.Hops, api.DrillHop(h))
	}
	return out
}

// drillPeers sends a drill's questions to a host through the forwarding.
type drillPeers struct{ d apiServer }

func (p drillPeers) Check(ctx context.Context, host int, req drill.CheckRequest) (ans drill.Answer, err error) {
	err = p.d.call(ctx, host, "drill-check", req, &ans)
	return ans, err
}

func (p drillPeers) Live(ctx context.Context, host int, req drill.LiveRequest) (hop drill.Hop, err error) {
	err = p.d.call(ctx, host, "drill-live", req, &hop)
	return hop, err
}

func (p drillPeers) Cleanup(ctx context.Context, host int) error {
	return p.d.call(ctx, host, "drill-cleanup", nil, nil)
}

func (p drillPeers) CheckDisks(ctx context.Context, host int, req drill.DiskCheckRequest) (ans drill.Answer, err error) {
	err = p.d.call(ctx, host, "disk-check", req, &ans)
	return ans, err
}
