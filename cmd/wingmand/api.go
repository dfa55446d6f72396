package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/cmd/internal/apiview"
	"github.com/wingmanha/wingman/cmd/internal/dashboard"
	"github.com/wingmanha/wingman/cmd/internal/forward"
	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/quorum/heartbeat"
	"github.com/wingmanha/wingman/vm"
	"github.com/wingmanha/wingman/vm/drill"
)

// apiServer answers the API's requests: here, or through the forwarding
// table on the host that must act.
type apiServer struct{ *Daemon }

// Handler returns the API's HTTP handler.
func (d apiServer) Handler() http.Handler { return d.router() }

// router is the API's route table, which the OpenAPI test lists.
func (d apiServer) router() *api.Router {
	rt := api.NewRouter(apiview.Classify)
	rt.Handle("GET /v1/status", func(r *http.Request) (any, error) { return d.apiStatus(r.Context()) })
	rt.Handle("GET /v1/hosts", func(r *http.Request) (any, error) { return d.apiHosts(r.Context()) })
	rt.Handle("GET /v1/hosts/{host}", func(r *http.Request) (any, error) { return d.apiHost(r.Context(), r.PathValue("host")) })
	rt.Handle("GET /v1/vms", func(r *http.Request) (any, error) { return d.apiVMs(r.Context()) })
	rt.Handle("GET /v1/vms/{vm}", func(r *http.Request) (any, error) {
		withQMP, err := api.QueryBool(r, "qmp")
		if err != nil {
			return nil, err
		}
		v, err := d.apiVM(r.Context(), r.PathValue("vm"))
		if err != nil || !withQMP {
			return v, err
		}
		v.QMP = d.vmQMP(r.Context(), v)
		return v, nil
	}, "qmp")
	rt.Handle("GET /v1/events", func(r *http.Request) (any, error) { return d.apiEvents(r) }, "since", "limit")
	rt.Handle("GET /v1/incidents", func(r *http.Request) (any, error) { return d.apiIncidents(r.Context()) })
	api.Post(rt, "POST /v1/vms/{vm}/protect", `send {"policy": {"priority": "high"}, "force": false}`, false, func(ctx context.Context, r *http.Request, req api.ProtectRequest) (any, error) {
		return d.protectVM(ctx, r.PathValue("vm"), req)
	})
	api.Post(rt, "POST /v1/vms/{vm}/policy", `send {"policy": {...}} with the fields of the policy to change`, false, func(ctx context.Context, r *http.Request, req api.ProtectRequest) (any, error) {
		return onOwner(ctx, d, d.ops.policy, r.PathValue("vm"), req)
	})
	for _, op := range []*forward.Op[none, none]{d.ops.unprotect, d.ops.start, d.ops.stop} {
		api.Post(rt, "POST /v1/vms/{vm}/"+op.Name(), "send no body, or {}", false, func(ctx context.Context, r *http.Request, req none) (any, error) {
			return onOwner(ctx, d, op, r.PathValue("vm"), req)
		})
	}
	api.Post(rt, "POST /v1/vms/{vm}/migrate", `send {"target": "HOST"} or {}`, false, func(ctx context.Context, r *http.Request, req api.MigrateRequest) (any, error) {
		return onOwner(ctx, d, d.ops.migrate, r.PathValue("vm"), req)
	})
	api.Post(rt, "POST /v1/hosts/{host}/maintenance", `send {"enter": true|false}`, true, func(ctx context.Context, r *http.Request, req api.MaintenanceRequest) (any, error) {
		return onHost(ctx, d, d.ops.maintenance, r.PathValue("host"), req)
	})
	api.Post(rt, "POST /v1/hosts/{host}/exec", `send {"command": "apt-get -y upgrade", "timeout_ns": 1800000000000}`, false, d.apiExec)
	api.Post(rt, "POST /v1/hosts/{host}/reboot", `send {"exit_maintenance": true, "failback": true}`, false, d.apiReboot)
	rt.Handle("GET /v1/hosts/{host}/evacuation", func(r *http.Request) (any, error) {
		return onHost(r.Context(), d, d.ops.evacuation, r.PathValue("host"), none{})
	})
	rt.Handle("GET /v1/hosts/{host}/evacuation-plan", func(r *http.Request) (any, error) {
		return d.apiEvacuationPlan(r.Context(), r.PathValue("host"))
	})
	api.Post(rt, "POST /v1/hosts/{host}/fence", `send {"test": true|false}`, true, func(_ context.Context, r *http.Request, req api.FenceRequest) (any, error) {
		return d.fence(r.Context(), r.PathValue("host"), req)
	})
	api.Post(rt, "POST /v1/hosts/{host}/confirm-off", "send no body, or {}", false, func(ctx context.Context, r *http.Request, _ none) (any, error) {
		return apiview.ConfirmOffOn(ctx, d.ops.confirmOff, d.decision(), r.PathValue("host"), api.Caller(r), d.cfg.HostName)
	})
	api.Post(rt, "POST /v1/hosts/{host}/quarantine", `send {"quarantine": true|false}`, true, func(ctx context.Context, r *http.Request, req api.QuarantineRequest) (any, error) {
		return apiview.Quarantine(ctx, d.quarantine, r.PathValue("host"), req, api.Caller(r), d.cfg.HostName)
	})
	api.Post(rt, "POST /v1/drill", `send {"host": "NAME", "live": true|false}`, false, func(ctx context.Context, _ *http.Request, req api.DrillRequest) (any, error) {
		// A live drill runs to its end, cleanup included: no throwaway
		// guest is left behind.
		ctx, cancel := context.WithTimeout(ctx, drill.Timeout)
		defer cancel()
		rep, err := d.drills.Run(ctx, drill.Request(req))
		return apiview.DrillReport(rep, apiview.LockManagers(d.serf.Members())), err
	})
	api.Post(rt, "POST /v1/ha/disarm", `send {"for_ns": 3600000000000, "reason": "SAN firmware", "force": false}`, true, func(ctx context.Context, _ *http.Request, req api.DisarmRequest) (any, error) {
		vms, _ := d.apiVMs(ctx)
		return apiview.Disarm(d.loop, req, vms, d.decision(), time.Now())
	})
	api.Post(rt, "POST /v1/ha/arm", "send no body, or {}", false, func(context.Context, *http.Request, none) (any, error) {
		return apiview.Arm(d.loop, d.decision(), time.Now())
	})
	d.notifyRoutes(rt)
	rt.Handle("GET /v1/config", func(r *http.Request) (any, error) { return apiview.ClusterSettings(d.config.List(r.Context())) })
	rt.Handle("GET /v1/config/{key}", apiview.OnSettingKey(d.config.Get))
	api.Post(rt, "PUT /v1/config/{key}", `send {"value": "5m"}`, true, func(ctx context.Context, r *http.Request, req api.ConfigSetRequest) (any, error) {
		return apiview.ClusterSetting(d.config.Set(ctx, r.PathValue("key"), req.Value))
	})
	rt.Handle("DELETE /v1/config/{key}", apiview.OnSettingKey(d.config.Unset))
	return rt
}

// notifyRoutes serve vm/notify's targets and test messages.
func (d apiServer) notifyRoutes(rt *api.Router) {
	rt.Handle("GET /v1/notify/targets", func(r *http.Request) (any, error) { return apiview.NotifyTargets(d.notify.Targets(r.Context())) })
	api.Post(rt, "POST /v1/notify/targets", "send a target as `wingman notify add` does", true, func(ctx context.Context, _ *http.Request, req api.NotifyTarget) (any, error) {
		t, err := apiview.StorageTarget(req)
		if err == nil {
			err = d.notify.AddTarget(ctx, t)
		}
		return req, err
	})
	rt.Handle("DELETE /v1/notify/targets/{name}", func(r *http.Request) (any, error) {
		return none{}, d.notify.RemoveTarget(r.Context(), r.PathValue("name"))
	})
	api.Post(rt, "POST /v1/lun/restore-header", `send {"force": true} to write over another valid header, or nothing`, false, func(ctx context.Context, _ *http.Request, req api.RestoreHeaderRequest) (any, error) {
		res, err := d.lun.Integrity().RestoreHeader(ctx, req.Force)
		if res.Wrote {
			d.onLoopEvent(heartbeat.Event{Kind: "lun-header-written", Subject: d.slot.HostID(), Error: true, Message: "restore-header wrote this host's copy of the LUN header back; block 0 held " + res.Found})
		}
		return api.RestoreHeaderResult{Host: d.cfg.HostName, Found: res.Found, Wrote: res.Wrote}, err
	})
	api.Post(rt, "POST /v1/lun/reclaim-lease", `send {"record": N}`, true, func(ctx context.Context, _ *http.Request, req api.ReclaimLeaseRequest) (any, error) {
		lease, err := vm.ReclaimLease(ctx, d.vms, req.Record)
		return api.ReclaimLeaseResult{Record: req.Record, Host: d.cfg.HostName, Epoch: lease.Epoch}, err
	})
	api.Post(rt, "POST /v1/notify/test", `send {"target": "NAME"}, or nothing for every target`, false, func(ctx context.Context, _ *http.Request, req api.NotifyTestRequest) (any, error) {
		res, err := d.notify.Test(ctx, req.Target)
		return apiview.NotifyTests(res), err
	})
}

// ServeTLS serves the API on a mutual-TLS listener at addr until ctx ends.
func (d *Daemon) ServeTLS(ctx context.Context, addr string, files api.TLSFiles) (net.Addr, error) {
	l, err := api.ListenTLS(addr, files)
	if err != nil {
		return nil, fmt.Errorf("api.tls_listen %s: %w", addr, err)
	}
	go api.Serve(ctx, l, dashboard.ForTLS(apiServer{d}.Handler())) // the client certificate is the authority
	return l.Addr(), nil
}

// Serve serves the API on l until ctx ends.
func (d *Daemon) Serve(ctx context.Context, l net.Listener) error {
	return api.Serve(ctx, l, apiServer{d}.Handler())
}

func (d *Daemon) decision() quorum.Decision {
	dec, _ := d.loop.Decision()
	return dec
}

// resolveHost finds a host by name or id.
func (d *Daemon) resolveHost(s string) (quorum.Host, error) {
	return apiview.ResolveHost(d.decision(), s)
}

func (d apiServer) apiHosts(ctx context.Context) ([]api.Host, error) {
	recs, _ := d.lun.ReadVMs(ctx)
	var fenceable quorum.Set
	if d.fencer != nil {
		fenceable = d.fencer.Fenceable()
	}
	dec, in := d.decision(), d.loop.Input()
	hosts := apiview.Hosts(dec, d.serf.Members(), recs, fenceable)
	d.members.AliveBy(hosts, dec, d.slot.HostID(), in.LeaseUntil > in.Now, time.Now())
	apiview.MarkGossipKeys(hosts, d.slot.HostID(), d.loop.GossipKeys(), d.serf.AliveSet())
	apiview.MarkQuarantined(hosts, d.quarantine.Record())
	return hosts, nil
}

func (d apiServer) apiHost(ctx context.Context, s string) (api.Host, error) {
	hosts, err := d.apiHosts(ctx)
	if err != nil {
		return api.Host{}, err
	}
	for _, h := range hosts {
		if h.Name == s || strconv.Itoa(h.ID) == s {
			return h, nil
		}
	}
	_, err = d.resolveHost(s)
	return api.Host{}, err
}

func (d apiServer) apiStatus(ctx context.Context) (api.Status, error) {
	io := d.lun.IOStats() // before this request's own reads
	dec := d.decision()
	in := d.loop.Input()
	t := d.hdr.Timings
	last, worst := d.renewLatency.Get()
	hosts, _ := d.apiHosts(ctx)
	s := api.Status{Host: d.cfg.HostName, HostID: d.slot.HostID(), Generation: d.slot.Generation(), Cluster: d.hdr.ClusterName,
		ClusterUUID: d.hdr.ClusterUUID.String(), Version: version, Now: time.Now(), Quorate: dec.Quorate,
		Coordinator: dec.Coordinator, Partition: dec.Partition.IDs(), Voters: dec.Voters.IDs(), MayRunVMs: dec.MayRunVMs,
		LUN: api.LUNHealth{Path: d.cfg.LUN.String(), LastWriteAgo: in.Now - in.LastWrite, LastReadAgo: in.Now - in.LastRead,
			WriteLatency: last, WriteLatencyHi: worst, NetworkLease: in.LeaseUntil > in.Now, Reads: io.Reads, Writes: io.Writes, Members: d.members.Members()},
		Timings:  api.Timings{Renew: t.Renew, IOTimeout: t.IOTimeout, SelfFence: t.SelfFence, Watchdog: t.Watchdog, Dead: t.Dead, PowerFence: t.PowerFence, LeaseCeiling: t.Ceiling()},
		Watchdog: d.wd.Kind(), Hosts: hosts, Warnings: append(d.warnings(dec, worst), d.config.Warnings()...), HA: apiview.HA(in, dec, time.Now())}
	s.Warnings = append(s.Warnings, d.members.Warnings()...)
	s.Warnings = append(s.Warnings, apiview.GossipKeyWarnings(hosts, s.HostID, d.loop.GossipKeys(), d.serf.AliveSet(), d.cfg.Serf.Keyring)...)
	s.Capacity = d.capacityVerdict(ctx, dec)
	if !s.Capacity.Survivable {
		s.Warnings = append(s.Warnings, fmt.Sprintf("N+%d capacity lost: %s", s.Capacity.K, strings.Join(s.Capacity.Problems, "; ")))
	}
	return s, nil
}

// warnings are the proactive health warnings (before anything fails).
func (d apiServer) warnings(dec quorum.Decision, worst time.Duration) []string {
	t := d.hdr.Timings
	return apiview.Warnings(apiview.Health{Latency: heartbeat.LatencyWarning(worst, t.IOTimeout, t.SelfFence), Watchdog: d.wd.Kind(),
		WatchdogNote: d.wdNote, LibvirtConnected: d.hv.Connected(), Quorate: dec.Quorate, Members: d.serf.Members(),
		ClusterUUID: d.hdr.ClusterUUID.String(), Version: version, Disks: d.disks.Warnings(), LUNHeader: d.lun.Integrity().HeaderChanged(), LUNDamaged: d.lun.Integrity().Damaged()})
}

// capacityVerdict runs admission control: can every protected VM be
// restarted after losing any one host?
func (d apiServer) capacityVerdict(ctx context.Context, dec quorum.Decision) api.CapacityVerdict {
	res, err := d.vms.Survivable(ctx, dec, 1)
	return apiview.Capacity(1, res, err, d.slotNames())
}

// apiVMs lists protected VMs (from the LUN) and this host's unprotected domains.
func (d apiServer) apiVMs(ctx context.Context) ([]api.VM, error) {
	vms, err := vm.List(ctx, d.lun, d.hv)
	if err != nil {
		return nil, err
	}
	out := apiview.VMs(vms, d.decision(), d.slotNames(), d.slot.HostID(), d.cfg.HostName)
	apiview.MarkLockManagers(out, apiview.LockManagers(d.serf.Members()))
	return out, nil
}

func (d apiServer) apiVM(ctx context.Context, s string) (api.VM, error) {
	vms, err := d.apiVMs(ctx)
	if err != nil {
		return api.VM{}, err
	}
	for _, v := range vms {
		if v.Name == s || strings.EqualFold(v.UUID, s) {
			return v, nil
		}
	}
	return api.VM{}, api.Fail(api.ErrNotFound, "", "no VM named %q on the LUN or on this host; see 'wingman list --all'", s)
}

func (d apiServer) apiEvents(r *http.Request) ([]api.Event, error) {
	since, err := api.QueryTime(r, "since")
	if err != nil {
		return nil, err
	}
	limit, err := api.QueryLimit(r, "limit")
	if err != nil {
		return nil, err
	}
	evs, err := d.lun.ReadEvents(r.Context(), since)
	if err != nil {
		return nil, err
	}
	if limit > 0 && len(evs) > limit {
		evs = evs[len(evs)-limit:]
	}
	recs, _ := d.lun.ReadVMs(r.Context())
	return apiview.Events(evs, d.slotNames(), recs), nil
}

// apiIncidents are the failovers that every host's events on the LUN tell.
func (d apiServer) apiIncidents(ctx context.Context) ([]api.Incident, error) {
	evs, err := d.lun.ReadEvents(ctx, time.Time{})
	if err != nil {
		return nil, err
	}
	recs, _ := d.lun.ReadVMs(ctx)
	return apiview.Incidents(evs, d.slotNames(), recs, d.hdr.Timings.Dead, time.Now()), nil
}
