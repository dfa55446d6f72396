package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/quorum/heartbeat"
	"github.com/wingmanha/wingman/vm"
	"github.com/wingmanha/wingman/vm/drill"
	"github.com/wingmanha/wingman/vm/plan"
)

func lookupGroup(name string) (int, error) {
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(g.Gid)
}

// httpError carries a status code and a hint for the operator.
type httpError struct {
	status int
	err    error
	hint   string
}

func (e *httpError) Error() string { return e.err.Error() }

// refusal is the status and hint of an error the operator can act on: an
// httpError of this package, or a vm.Refusal of the library packages.
func refusal(err error) (status int, hint string, ok bool) {
	var he *httpError
	if errors.As(err, &he) {
		return he.status, he.hint, true
	}
	var rf *vm.Refusal
	if !errors.As(err, &rf) {
		return 0, "", false
	}
	switch rf.Class {
	case vm.ErrConflict:
		status = http.StatusConflict
	case vm.ErrForbidden:
		status = http.StatusForbidden
	default:
		status = http.StatusBadRequest
	}
	return status, rf.Hint, true
}

func notFound(format string, a ...any) error {
	return &httpError{status: http.StatusNotFound, err: fmt.Errorf(format, a...)}
}

func badRequest(hint, format string, a ...any) error {
	return &httpError{status: http.StatusBadRequest, err: fmt.Errorf(format, a...), hint: hint}
}

// apiServer answers the API's requests: here, or forwarded over serf to
// the host that must act, and it answers the requests forwarded to this
// host.
type apiServer struct{ *Daemon }

// Handler returns the API's HTTP handler.
func (d apiServer) Handler() http.Handler {
	mux := http.NewServeMux()
	h := func(pattern string, fn func(r *http.Request) (any, error)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			out, err := fn(r)
			w.Header().Set("Content-Type", "application/json")
			if err != nil {
				status, hint, ok := refusal(err)
				switch {
				case ok:
				case isNotFound(err):
					status = http.StatusNotFound
				case errors.Is(err, vm.ErrNotOwner), errors.Is(err, vm.ErrNoQuorum), errors.Is(err, plan.ErrInvalidPolicy):
					status = http.StatusConflict
				default:
					status = http.StatusInternalServerError
				}
				w.WriteHeader(status)
				json.NewEncoder(w).Encode(api.Error{Error: err.Error(), Hint: hint})
				return
			}
			if out == nil {
				out = struct{}{}
			}
			json.NewEncoder(w).Encode(out)
		})
	}
	h("GET /v1/status", func(r *http.Request) (any, error) { return d.apiStatus(r.Context()) })
	h("GET /v1/hosts", func(r *http.Request) (any, error) { return d.apiHosts(r.Context()) })
	h("GET /v1/hosts/{host}", func(r *http.Request) (any, error) { return d.apiHost(r.Context(), r.PathValue("host")) })
	h("GET /v1/vms", func(r *http.Request) (any, error) { return d.apiVMs(r.Context()) })
	h("GET /v1/vms/{vm}", func(r *http.Request) (any, error) {
		withQMP, err := queryBool(r, "qmp")
		if err != nil {
			return nil, err
		}
		v, err := d.apiVM(r.Context(), r.PathValue("vm"))
		if err != nil || !withQMP {
			return v, err
		}
		v.QMP = d.vmQMP(r.Context(), v)
		return v, nil
	})
	h("GET /v1/events", func(r *http.Request) (any, error) { return d.apiEvents(r) })
	for _, op := range []string{"protect", "policy", "unprotect", "start", "stop", "migrate"} {
		h("POST /v1/vms/{vm}/"+op, func(r *http.Request) (any, error) {
			var body json.RawMessage
			if r.ContentLength != 0 {
				if err := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20)).Decode(&body); err != nil {
					return nil, badRequest("send a JSON body", "decode request: %v", err)
				}
			}
			// A command runs to its end even if the client goes away: an
			// interrupted CLI must not abort a migration half way.
			return d.vmCommand(context.WithoutCancel(r.Context()), command{Op: op, VM: r.PathValue("vm"), Body: body})
		})
	}
	h("POST /v1/hosts/{host}/maintenance", func(r *http.Request) (any, error) {
		var req api.MaintenanceRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			return nil, badRequest(`send {"enter": true|false}`, "decode request: %v", err)
		}
		b, _ := json.Marshal(req)
		return d.hostCommand(context.WithoutCancel(r.Context()), command{Op: "maintenance", Host: r.PathValue("host"), Body: b})
	})
	h("POST /v1/hosts/{host}/exec", d.apiExec)
	h("POST /v1/hosts/{host}/reboot", d.apiReboot)
	h("GET /v1/hosts/{host}/evacuation", func(r *http.Request) (any, error) {
		return d.hostCommand(r.Context(), command{Op: "evacuation", Host: r.PathValue("host")})
	})
	h("GET /v1/hosts/{host}/evacuation-plan", func(r *http.Request) (any, error) {
		return d.apiEvacuationPlan(r.Context(), r.PathValue("host"))
	})
	h("POST /v1/hosts/{host}/fence", func(r *http.Request) (any, error) {
		var req api.FenceRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			return nil, badRequest(`send {"test": true|false}`, "decode request: %v", err)
		}
		return d.fence(r.Context(), r.PathValue("host"), req)
	})
	h("POST /v1/drill", func(r *http.Request) (any, error) {
		var req api.DrillRequest
		if r.ContentLength != 0 {
			if err := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20)).Decode(&req); err != nil {
				return nil, badRequest(`send {"host": "NAME", "live": true|false}`, "decode request: %v", err)
			}
		}
		// A live drill runs to its end, cleanup included, even if the
		// client goes away: no throwaway guest is left behind.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), drill.Timeout)
		defer cancel()
		rep, err := d.drills.Run(ctx, drill.Request(req))
		return apiDrillReport(rep), err
	})
	return mux
}

// ServeTLS serves the API on a mutual-TLS listener at addr until ctx ends.
func (d *Daemon) ServeTLS(ctx context.Context, addr string, files api.TLSFiles) (net.Addr, error) {
	cfg, err := api.ServerTLS(files)
	if err != nil {
		return nil, fmt.Errorf("api.tls_listen: %w", err)
	}
	l, err := tls.Listen("tcp", addr, cfg)
	if err != nil {
		return nil, fmt.Errorf("api.tls_listen %s: %w", addr, err)
	}
	go d.Serve(ctx, l)
	return l.Addr(), nil
}

// Serve serves the API on l until ctx ends.
func (d *Daemon) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{Handler: apiServer{d}.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	err := srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func (d *Daemon) decision() quorum.Decision {
	dec, _ := d.loop.Decision()
	return dec
}

// resolveHost finds a host by name or id.
func (d *Daemon) resolveHost(s string) (quorum.Host, error) {
	dec := d.decision()
	for _, h := range dec.Hosts {
		if h.Name == s || strconv.Itoa(h.ID) == s {
			return h, nil
		}
	}
	var names []string
	for _, h := range dec.Hosts {
		names = append(names, h.Name)
	}
	return quorum.Host{}, notFound("no host named %q: hosts are %s", s, strings.Join(names, ", "))
}

func (d apiServer) apiHosts(ctx context.Context) ([]api.Host, error) {
	dec := d.decision()
	serfStatus := map[int]string{}
	tags := map[int]api.Host{}
	for _, m := range d.serf.Members() {
		if m.HostID == 0 {
			continue
		}
		serfStatus[m.HostID] = m.Status.String()
		tags[m.HostID] = api.Host{MemoryMiB: m.Tags.MemoryTotalMiB, FreeMiB: m.Tags.MemoryFreeMiB, CPUs: m.Tags.CPUs, Maintenance: m.Tags.Maintenance}
	}
	owned := map[int]int{}
	if recs, _ := d.lun.ReadVMs(ctx); recs != nil {
		for _, r := range recs {
			if r.Protected() && r.Lease.Held() {
				owned[r.Lease.Owner.Host]++
			}
		}
	}
	var fenceable quorum.Set
	if d.fencer != nil {
		fenceable = d.fencer.Fenceable()
	}
	var out []api.Host
	for _, h := range dec.Hosts {
		t := tags[h.ID]
		s := serfStatus[h.ID]
		if s == "" {
			s = "unknown"
		}
		out = append(out, api.Host{ID: h.ID, Name: h.Name, State: h.State.String(), Reason: h.Reason, Generation: h.Gen,
			Serf: s, Maintenance: t.Maintenance || h.State == quorum.StateMaintenance, Coordinator: h.ID == dec.Coordinator,
			MemoryMiB: t.MemoryMiB, FreeMiB: t.FreeMiB, CPUs: t.CPUs, VMs: owned[h.ID], Fenceable: fenceable.Has(h.ID)})
	}
	return out, nil
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
	dec := d.decision()
	in := d.loopInput()
	t := d.hdr.Timings
	last, worst := d.renewLatency.Get()
	hosts, _ := d.apiHosts(ctx)
	s := api.Status{Host: d.cfg.HostName, HostID: d.slot.HostID(), Generation: d.slot.Generation(), Cluster: d.hdr.ClusterName,
		ClusterUUID: d.hdr.ClusterUUID.String(), Version: version, Now: time.Now(), Quorate: dec.Quorate,
		Coordinator: dec.Coordinator, Partition: dec.Partition.IDs(), Voters: dec.Voters.IDs(), MayRunVMs: dec.MayRunVMs,
		LUN: api.LUNHealth{Path: d.cfg.LUN, LastWriteAgo: in.Now - in.LastWrite, LastReadAgo: in.Now - in.LastRead,
			WriteLatency: last, WriteLatencyHi: worst, NetworkLease: in.LeaseUntil > in.Now},
		Timings:  api.Timings{Renew: t.Renew, IOTimeout: t.IOTimeout, SelfFence: t.SelfFence, Watchdog: t.Watchdog, Dead: t.Dead, PowerFence: t.PowerFence},
		Watchdog: d.wd.Kind(), Hosts: hosts, Warnings: d.warnings(dec, worst)}
	s.Capacity = d.capacityVerdict(ctx, dec)
	if !s.Capacity.Survivable {
		s.Warnings = append(s.Warnings, fmt.Sprintf("N+%d capacity lost: %s", s.Capacity.K, strings.Join(s.Capacity.Problems, "; ")))
	}
	return s, nil
}

// warnings are the proactive health warnings (before anything fails).
func (d apiServer) warnings(dec quorum.Decision, worst time.Duration) []string {
	t := d.hdr.Timings
	var w []string
	if lw := heartbeat.LatencyWarning(worst, t.IOTimeout, t.SelfFence); lw != "" {
		w = append(w, lw)
	}
	if d.wd.Kind() == "software" {
		w = append(w, "no hardware watchdog: a frozen host cannot be reset (load a watchdog driver, e.g. iTCO_wdt or ipmi_watchdog)")
	}
	if !d.hv.Connected() {
		w = append(w, "libvirt is unreachable: local VMs cannot be watched or started")
	}
	if !dec.Quorate {
		w = append(w, "this host's partition is not quorate: it takes no failover action")
	}
	for _, m := range d.serf.Members() {
		if m.TagsErr != nil {
			w = append(w, fmt.Sprintf("serf member %s: %v", m.Name, m.TagsErr))
		} else if m.Tags.ClusterUUID != "" && m.Tags.ClusterUUID != d.hdr.ClusterUUID.String() {
			w = append(w, fmt.Sprintf("serf member %s uses another heartbeat LUN (cluster %s): configuration drift", m.Name, m.Tags.ClusterUUID))
		} else if m.Tags.Version != "" && m.Tags.Version != version {
			w = append(w, fmt.Sprintf("serf member %s runs wingmand %s, this host %s", m.Name, m.Tags.Version, version))
		}
	}
	w = append(w, d.disks.Warnings()...)
	if d.wdNote != "" && d.wd.Kind() == "device" {
		w = append(w, d.wdNote)
	}
	return w
}

// capacityVerdict runs admission control: can every protected VM be
// restarted after losing any one host?
func (d apiServer) capacityVerdict(ctx context.Context, dec quorum.Decision) api.CapacityVerdict {
	v := api.CapacityVerdict{K: 1, Survivable: true}
	res, err := d.vms.Survivable(ctx, dec, v.K)
	if err != nil {
		v.Survivable = false
		v.Problems = append(v.Problems, err.Error())
		return v
	}
	v.Survivable = res.OK
	names := d.slotNames()
	for _, f := range res.Failures {
		var lost, down []string
		for _, id := range f.Lost {
			lost = append(lost, names[id])
		}
		for _, u := range f.Unplaced {
			down = append(down, fmt.Sprintf("%s (%s)", u.Name, u.Reason))
		}
		v.Problems = append(v.Problems, fmt.Sprintf("if %s fails, %s stay down", strings.Join(lost, "+"), strings.Join(down, ", ")))
	}
	return v
}

func (d *Daemon) loopInput() quorum.Input { return d.loop.Input() }

// apiVMs lists protected VMs (from the LUN) and this host's unprotected domains.
func (d apiServer) apiVMs(ctx context.Context) ([]api.VM, error) {
	vms, err := vm.List(ctx, d.lun, d.hv)
	if err != nil {
		return nil, err
	}
	names := d.slotNames()
	dec := d.decision()
	self := d.slot.HostID()
	out := make([]api.VM, 0, len(vms))
	for _, l := range vms {
		v := api.VM{Name: l.Name, UUID: l.UUID, Protected: l.Protected, LeaseEpoch: l.LeaseEpoch, Owner: l.Owner, OwnerName: names[l.Owner],
			Migration: l.Migration, MemoryMiB: l.MemoryBytes >> 20, VCPUs: l.VCPUs, State: "unknown"}
		switch {
		case !l.Protected: // a domain of this host
			v.Owner, v.OwnerName = self, d.cfg.HostName
		case l.Owner == 0:
			v.OwnerName = ""
		}
		if l.Protected {
			v.Priority, v.Policy, v.Stopped = int(l.Policy.Policy.Priority), toAPIPolicy(l.Policy.Policy), l.Policy.Stopped
		}
		if dm := l.Local; dm != nil && (v.Owner == self || dm.Active()) {
			v.State, v.Reason = dm.State.String(), dm.Reason
		} else if v.Owner != 0 && v.Owner != self {
			// Not visible here: a protected VM runs where its lease is,
			// unless its owner is gone.
			v.State = "running on " + names[v.Owner]
			if h, ok := dec.Host(v.Owner); ok && h.State.Gone() {
				v.State = "lost with " + h.Name
			}
		} else if l.Policy.Stopped {
			v.State = "shutoff"
		}
		out = append(out, v)
	}
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
	return api.VM{}, notFound("no VM named %q on the LUN or on this host; see 'wingman list --all'", s)
}

func (d apiServer) apiEvents(r *http.Request) ([]api.Event, error) {
	var since time.Time
	if s := r.URL.Query().Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, badRequest("use RFC 3339, e.g. 2026-01-02T15:04:05Z", "since %q: %v", s, err)
		}
		since = t
	}
	evs, err := d.lun.ReadEvents(r.Context(), since)
	if err != nil {
		return nil, err
	}
	if n, _ := strconv.Atoi(r.URL.Query().Get("limit")); n > 0 && len(evs) > n {
		evs = evs[len(evs)-n:]
	}
	names := d.slotNames()
	vmNames := map[string]string{} // by UUID
	if recs, _ := d.lun.ReadVMs(r.Context()); recs != nil {
		for _, rec := range recs {
			if rec.Config != nil {
				vmNames[rec.Config.UUID.String()] = rec.Config.Name
			}
		}
	}
	out := make([]api.Event, 0, len(evs))
	for _, e := range evs {
		ae := api.Event{Time: e.Time, Host: e.Host, HostName: names[e.Host], Seq: e.Seq, Severity: e.Severity.String(),
			Kind: e.Kind, Subject: e.Subject, Message: e.Message}
		if !e.VM.IsZero() {
			ae.VM = vmNames[e.VM.String()]
			if ae.VM == "" {
				ae.VM = e.VM.String()
			}
		}
		out = append(out, ae)
	}
	return out, nil
}

func toAPIPolicy(p plan.Policy) api.Policy {
	return api.Policy{Priority: p.Priority.String(), Restart: string(p.Restart), RestartMax: p.RestartLimit.Max,
		RestartWindow: p.RestartLimit.Window, AntiAffinity: p.AntiAffinity, PreferredHosts: p.PreferredHosts,
		StartOrder: p.StartOrder, StartDelay: p.StartDelay, WaitGuestAgent: p.WaitGuestAgent, Isolation: string(p.Isolation)}
}

// applyAPIPolicy sets the fields of a that are given on p.
func applyAPIPolicy(p plan.Policy, a api.Policy) (plan.Policy, error) {
	if a.Priority != "" {
		pr, err := plan.ParsePriority(a.Priority)
		if err != nil {
			return p, badRequest("use high, medium, low or 0..1000", "priority: %v", err)
		}
		p.Priority = pr
	}
	if a.Restart != "" {
		p.Restart = plan.RestartPolicy(a.Restart)
	}
	if a.RestartMax != 0 {
		p.RestartLimit.Max = a.RestartMax
	}
	if a.RestartWindow != 0 {
		p.RestartLimit.Window = a.RestartWindow
	}
	if a.AntiAffinity != "" {
		p.AntiAffinity = a.AntiAffinity
	}
	if a.PreferredHosts != nil {
		p.PreferredHosts = a.PreferredHosts
	}
	if a.StartOrder != 0 {
		p.StartOrder = a.StartOrder
	}
	if a.StartDelay != 0 {
		p.StartDelay = a.StartDelay
	}
	if a.WaitGuestAgent {
		p.WaitGuestAgent = true
	}
	if a.Isolation != "" {
		p.Isolation = plan.IsolationResponse(a.Isolation)
	}
	if err := p.Validate(); err != nil {
		return p, badRequest("see 'wingman help protect'", "%v", err)
	}
	return p, nil
}
