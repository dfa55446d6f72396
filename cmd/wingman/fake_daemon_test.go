package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wingmanha/wingman/cmd/api"
)

// fakeDaemon serves canned answers of a three-host cluster on a real unix
// socket, as wingmand does, and records every request.
type fakeDaemon struct {
	socket string

	mu       sync.Mutex
	requests []string
	evacuate map[string]int // host -> protected VMs left, while entering maintenance
	events   []api.Event
	onEvents func(call int) // called with mu held before each events answer (follow tests)
	calls    int

	// Rolling updates: reboots per host (each bumps its generation), a
	// host whose wingmand forbids exec, and a host whose maintenance
	// another operator ends as soon as it is empty.
	rebooted   map[string]int
	execDenied string
	dropMaint  string
	noRoom     string // a host whose VMs would not fit elsewhere
	evacFails  string // a host whose evacuation fails: no target answers
	onExec     func() // called before each exec answer
	interrupt  func() // Ctrl-C: cancels the running command

	// Starts: a started VM shows shut off (no longer stopped) to one
	// question, then running to the next, and is forgotten; stuck never
	// runs.
	starting map[string]bool
	stuck    string
}

var (
	fakeNow   = time.Date(2025, 3, 1, 10, 30, 0, 0, time.UTC)
	fakeHosts = []api.Host{
		{ID: 1, Name: "kvm1", State: "alive", Generation: 7, Serf: "alive", MemoryMiB: 262144, FreeMiB: 98304, CPUs: 64, VMs: 2, Fenceable: true, LockManager: "lockd", AliveBy: "disk 2/3",
			Quarantine: &api.HostQuarantine{Since: fakeNow.Add(-10 * time.Minute), Until: fakeNow.Add(110 * time.Minute), By: "wingman", Why: "3 flaps within 1h (last: isolated by a poison pill)"}},
		{ID: 2, Name: "kvm2", State: "alive", Generation: 5, Serf: "alive", Coordinator: true, MemoryMiB: 262144, FreeMiB: 180224, CPUs: 64, VMs: 1, Fenceable: true, LockManager: "none", AliveBy: "network lease"},
		{ID: 3, Name: "kvm3", State: "dead", Reason: "no heartbeat for 12s, fenced", Generation: 9, Serf: "failed", MemoryMiB: 131072, FreeMiB: 0, CPUs: 32, Fenceable: true},
	}
	fakeVMs = []api.VM{
		{Name: "web1", UUID: "6f1c2a9e-0000-4000-8000-000000000001", Protected: true, Owner: 1, OwnerName: "kvm1", State: "running", LockManager: "lockd", Priority: 900,
			Policy:     api.Policy{Priority: "high", Restart: "always", RestartMax: 3, RestartWindow: time.Hour, AntiAffinity: "web", PreferredHosts: []string{"kvm1", "kvm2"}, Isolation: "leave-running"},
			LeaseEpoch: 12, Migration: "none", MemoryMiB: 8192, VCPUs: 4},
		{Name: "db1", UUID: "6f1c2a9e-0000-4000-8000-000000000002", Protected: true, Owner: 2, OwnerName: "kvm2", State: "running", Priority: 500,
			Policy:     api.Policy{Priority: "medium", Restart: "on-failure", StartOrder: 1, StartDelay: 30 * time.Second, WaitGuestAgent: true},
			LeaseEpoch: 4, Migration: "none", MemoryMiB: 32768, VCPUs: 16},
		{Name: "batch1", UUID: "6f1c2a9e-0000-4000-8000-000000000003", Protected: true, Owner: 1, OwnerName: "kvm1", State: "shut off", Reason: "stopped through wingman", Stopped: true, Priority: 100,
			Policy: api.Policy{Priority: "low", Restart: "on-failure"}, LeaseEpoch: 2, MemoryMiB: 512, VCPUs: 1},
		{Name: "scratch", UUID: "6f1c2a9e-0000-4000-8000-000000000004", State: "running", MemoryMiB: 2048, VCPUs: 2},
	}
	fakeEvents = []api.Event{
		{Time: fakeNow.Add(-2 * time.Hour), Host: 1, HostName: "kvm1", Seq: 40, Severity: "info", Kind: "vm.protected", VM: "web1", Message: "web1 protected, priority high"},
		{Time: fakeNow.Add(-20 * time.Minute), Host: 2, HostName: "kvm2", Seq: 71, Severity: "warning", Kind: "host.suspect", Subject: 3, Message: "no heartbeat from kvm3 for 4s"},
		{Time: fakeNow.Add(-20*time.Minute + 8*time.Second), Host: 2, HostName: "kvm2", Seq: 72, Severity: "error", Kind: "host.dead", Subject: 3, Message: "kvm3 dead: no heartbeat for 12s"},
		{Time: fakeNow.Add(-20*time.Minute + 9500*time.Millisecond), Host: 2, Seq: 73, Severity: "info", Kind: "host.fenced", Subject: 3, Message: "fence agent ipmi: power off"},
		{Time: fakeNow.Add(-20*time.Minute + 10*time.Second), Host: 1, HostName: "kvm1", Seq: 41, Severity: "info", Kind: "lease.taken", VM: "web2", Message: "lease of web2 taken, epoch 6"},
		{Time: fakeNow.Add(-20*time.Minute + 14200*time.Millisecond), Host: 1, HostName: "kvm1", Seq: 42, Severity: "info", Kind: "vm.restarted", VM: "web2", Message: "web2 running on kvm1"},
	}
)

// fakeQMP is what the host running v says over QMP: web1's disk failed
// under a libvirt that still calls it running; a VM that is off has no QEMU
// to ask.
func fakeQMP(v api.VM) *api.QMPDiagnostics {
	if v.State != "running" {
		return &api.QMPDiagnostics{Host: v.OwnerName,
			Error: `read QMP diagnostics of domain "` + v.Name + `" on ` + v.OwnerName + `: domain not running (start the domain first)`}
	}
	return &api.QMPDiagnostics{Host: v.OwnerName, Status: "io-error", Condition: "io-error", QEMUVersion: "7.2.0",
		Disks: []api.QMPDisk{{Device: "libvirt-2-format", File: "/srv/san/" + v.Name + ".qcow2", IOStatus: "failed"},
			{Device: "libvirt-1-format", File: "/srv/san/seed.iso", IOStatus: "ok", ReadOnly: true}, {}}}
}

func fakeStatus() api.Status {
	return api.Status{Host: "kvm1", HostID: 1, Generation: 7, Cluster: "clinic", ClusterUUID: "0d5f0c3e-1111-4222-8333-444455556666",
		Version: "0.3.0", Now: fakeNow, Quorate: true, Coordinator: 2, Partition: []int{1, 2}, Voters: []int{1, 2, 3}, MayRunVMs: true,
		LUN: api.LUNHealth{Path: "/dev/mapper/wingman-a, /dev/mapper/wingman-b, /dev/mapper/wingman-c", LastWriteAgo: 230 * time.Millisecond, LastReadAgo: 410 * time.Millisecond,
			WriteLatency: 1800 * time.Microsecond, WriteLatencyHi: 47 * time.Millisecond,
			Members: []api.LUNMember{{Index: 1, Path: "/dev/mapper/wingman-a", OK: true},
				{Index: 2, Path: "/dev/mapper/wingman-b", Problem: "I/O timed out", Since: fakeNow.Add(-3 * time.Minute)},
				{Index: 3, Path: "/dev/mapper/wingman-c", OK: true}}},
		Timings: api.Timings{Renew: time.Second, IOTimeout: 2 * time.Second, SelfFence: 4 * time.Second, Watchdog: 6 * time.Second,
			Dead: 12 * time.Second, PowerFence: 30 * time.Second},
		Watchdog: "/dev/watchdog0 (iTCO_wdt), armed",
		Capacity: api.CapacityVerdict{K: 1, Survivable: false, Problems: []string{"losing kvm2 leaves db1 (32 GiB) without a host: kvm1 has 96 GiB free but anti-affinity group db"}},
		Warnings: []string{"kvm3 is dead: the cluster runs without spare capacity"},
		Hosts:    fakeHosts}
}

func startFakeDaemon(t *testing.T) *fakeDaemon {
	t.Helper()
	d := &fakeDaemon{socket: filepath.Join(t.TempDir(), "wingman.sock"), evacuate: map[string]int{},
		events: append([]api.Event(nil), fakeEvents...)}
	ln, err := net.Listen("unix", d.socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: d.mux()}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return d
}

// takeRequests returns and forgets the requests recorded so far.
func (d *fakeDaemon) takeRequests() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.requests
	d.requests = nil
	return r
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if v != nil {
		json.NewEncoder(w).Encode(v)
	}
}

func findVM(name string) (api.VM, bool) {
	for _, v := range fakeVMs {
		if v.Name == name || v.UUID == name {
			return v, true
		}
	}
	return api.VM{}, false
}

func findHost(name string) (api.Host, bool) {
	for _, h := range fakeHosts {
		if h.Name == name || strconv.Itoa(h.ID) == name {
			return h, true
		}
	}
	return api.Host{}, false
}

func (d *fakeDaemon) mux() http.Handler {
	m := http.NewServeMux()
	// vmOr404 answers 404 for unknown VMs and 500 for "broken".
	vmOr404 := func(w http.ResponseWriter, r *http.Request) (api.VM, bool) {
		name := r.PathValue("vm")
		if name == "broken" {
			reply(w, 500, api.Error{Error: "libvirt on kvm1: connection reset", Hint: "check libvirtd on kvm1: systemctl status libvirtd"})
			return api.VM{}, false
		}
		v, ok := findVM(name)
		if !ok {
			reply(w, 404, api.Error{Error: "no VM " + name})
		}
		return v, ok
	}
	hostOr404 := func(w http.ResponseWriter, r *http.Request) (api.Host, bool) {
		h, ok := findHost(r.PathValue("host"))
		if !ok {
			reply(w, 404, api.Error{Error: "no host " + r.PathValue("host")})
		}
		return h, ok
	}
	m.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		st := fakeStatus()
		st.Hosts = append([]api.Host(nil), st.Hosts...)
		d.mu.Lock()
		for i, h := range st.Hosts {
			if _, ok := d.evacuate[h.Name]; ok {
				st.Hosts[i].Maintenance, st.Hosts[i].State = true, "maintenance"
			}
		}
		d.mu.Unlock()
		reply(w, 200, st)
	})
	m.HandleFunc("GET /v1/hosts", func(w http.ResponseWriter, r *http.Request) { reply(w, 200, fakeHosts) })
	m.HandleFunc("GET /v1/hosts/{host}", func(w http.ResponseWriter, r *http.Request) {
		h, ok := hostOr404(w, r)
		if !ok {
			return
		}
		d.mu.Lock()
		if left, evac := d.evacuate[h.Name]; evac {
			h.Maintenance, h.State, h.VMs = true, "maintenance", left
			if left > 0 {
				d.evacuate[h.Name] = left - 1
			}
		}
		h.Generation += uint64(d.rebooted[h.Name])
		d.mu.Unlock()
		reply(w, 200, h)
	})
	m.HandleFunc("GET /v1/vms", func(w http.ResponseWriter, r *http.Request) {
		// A host entering maintenance hands its running VMs over after as
		// many calls as it had VMs.
		vms := append([]api.VM(nil), fakeVMs...)
		d.mu.Lock()
		for host, left := range d.evacuate {
			if left > 0 {
				d.evacuate[host] = left - 1
				continue
			}
			if d.dropMaint == host {
				delete(d.evacuate, host) // another operator ends its maintenance
			}
			for i, v := range vms {
				if v.OwnerName == host && !v.Stopped {
					vms[i].OwnerName = map[string]string{"kvm1": "kvm2", "kvm2": "kvm1"}[host]
				}
			}
		}
		d.mu.Unlock()
		reply(w, 200, vms)
	})
	m.HandleFunc("GET /v1/vms/{vm}", func(w http.ResponseWriter, r *http.Request) {
		v, ok := vmOr404(w, r)
		if !ok {
			return
		}
		d.mu.Lock()
		if asked, starting := d.starting[v.Name]; starting {
			v.Stopped, v.Reason = false, ""
			if asked && v.Name != d.stuck {
				v.State = "running"
				delete(d.starting, v.Name)
			} else {
				d.starting[v.Name] = true
			}
		}
		d.mu.Unlock()
		if r.URL.Query().Get("qmp") == "1" {
			v.QMP = fakeQMP(v)
		}
		reply(w, 200, v)
	})
	for _, action := range []string{"protect", "policy"} {
		m.HandleFunc("POST /v1/vms/{vm}/"+action, func(w http.ResponseWriter, r *http.Request) {
			var req api.ProtectRequest
			json.NewDecoder(r.Body).Decode(&req)
			// Domains of kvm1 whose disks protect refuses.
			switch name := r.PathValue("vm"); {
			case action == "protect" && name == "fast1":
				reply(w, 400, api.Error{Error: `protect "fast1": disk not safe for failover: disk vda has cache='unsafe', which ignores the guest's flushes: ` +
					`writes the guest was told are on disk are lost when its host loses power, and a failover restarts the VM from what reached the disk; ` +
					`set cache='none' (or writethrough or directsync) on disk vda; change the definition ('virsh edit fast1'), shut the guest down and start it again, then protect it`})
				return
			case action == "protect" && name == "local1" && !req.Force:
				reply(w, 409, api.Error{Error: `protect "local1": disk not reachable from every host: kvm2: disk vda: /var/lib/libvirt/images/local1.img: no such file or directory; ` +
					`put disk vda on shared storage that every host mounts at the same path, or in a libvirt storage pool that is defined and active on every host`,
					Hint: "or protect it anyway with --force: those hosts then cannot start it after a failure, and 'wingman drill' reports it until they can"})
				return
			case action == "protect" && name == "local1":
				reply(w, 200, api.ProtectResult{VM: api.VM{Name: "local1", UUID: "6f1c2a9e-0000-4000-8000-000000000005", Protected: true, Owner: 1, OwnerName: "kvm1",
					State: "running", Priority: 500, Policy: api.Policy{Priority: "medium", Restart: "on-failure", Isolation: "leave-running"}},
					DisksUnreachable: []string{"kvm2: disk vda: /var/lib/libvirt/images/local1.img: no such file or directory"},
					DisksUnchecked:   []api.HostNote{{Host: "kvm3", Reason: "it is dead"}}})
				return
			}
			v, ok := vmOr404(w, r)
			if !ok {
				return
			}
			if action == "protect" {
				v.Protected, v.Owner, v.OwnerName, v.Policy, v.Priority = true, 1, "kvm1", api.Policy{Priority: "medium", Restart: "on-failure", Isolation: "leave-running"}, 500
			}
			p := req.Policy
			if p.Priority != "" {
				v.Policy.Priority = p.Priority
				v.Priority = map[string]int{"high": 900, "medium": 500, "low": 100}[p.Priority]
				if n, err := strconv.Atoi(p.Priority); err == nil {
					v.Priority = n
				}
			}
			if p.Restart != "" {
				v.Policy.Restart = p.Restart
			}
			if p.RestartMax != 0 {
				v.Policy.RestartMax, v.Policy.RestartWindow = p.RestartMax, p.RestartWindow
			}
			if p.AntiAffinity != "" {
				v.Policy.AntiAffinity = p.AntiAffinity
			}
			if p.PreferredHosts != nil {
				v.Policy.PreferredHosts = p.PreferredHosts
			}
			if p.StartOrder != 0 || p.StartDelay != 0 {
				v.Policy.StartOrder, v.Policy.StartDelay = p.StartOrder, p.StartDelay
			}
			v.Policy.WaitGuestAgent = v.Policy.WaitGuestAgent || p.WaitGuestAgent
			if p.Isolation != "" {
				v.Policy.Isolation = p.Isolation
			}
			if action == "protect" {
				// kvm3 is dead: it cannot say whether it reaches the disks.
				reply(w, 200, api.ProtectResult{VM: v, DisksReached: []string{"kvm2"}, DisksUnchecked: []api.HostNote{{Host: "kvm3", Reason: "it is dead"}}})
				return
			}
			reply(w, 200, v)
		})
	}
	for _, action := range []string{"unprotect", "start", "stop"} {
		m.HandleFunc("POST /v1/vms/{vm}/"+action, func(w http.ResponseWriter, r *http.Request) {
			v, ok := vmOr404(w, r)
			switch {
			case !ok:
			case action == "start" && v.State == "running":
				reply(w, 409, api.Error{Error: v.Name + " is already running on " + v.OwnerName})
			case action == "start":
				d.mu.Lock()
				if d.starting == nil {
					d.starting = map[string]bool{}
				}
				d.starting[v.Name] = false
				d.mu.Unlock()
				reply(w, 204, nil)
			default:
				reply(w, 204, nil)
			}
		})
	}
	m.HandleFunc("POST /v1/vms/{vm}/migrate", func(w http.ResponseWriter, r *http.Request) {
		var req api.MigrateRequest
		json.NewDecoder(r.Body).Decode(&req)
		if req.Target != "" {
			if _, ok := findHost(req.Target); !ok {
				reply(w, 404, api.Error{Error: "no host " + req.Target})
				return
			}
		}
		v, ok := vmOr404(w, r)
		if !ok {
			return
		}
		if req.Target == "kvm3" {
			reply(w, 409, api.Error{Error: "kvm3 is dead", Hint: "choose an alive host: wingman host-list"})
			return
		}
		to := req.Target
		if to == "" {
			to = "kvm2"
		}
		reply(w, 200, api.MigrateResult{VM: v.Name, From: v.OwnerName, To: to, Duration: 12340 * time.Millisecond, Downtime: 45 * time.Millisecond, Bytes: 9126805504})
	})
	m.HandleFunc("GET /v1/hosts/{host}/evacuation", func(w http.ResponseWriter, r *http.Request) {
		h, ok := hostOr404(w, r)
		if !ok {
			return
		}
		// The host's running protected VMs move one per call, each shown
		// half way first.
		var moving []string
		for _, v := range fakeVMs {
			if v.Protected && v.OwnerName == h.Name && !v.Stopped {
				moving = append(moving, v.Name)
			}
		}
		d.mu.Lock()
		left, evac := d.evacuate[h.Name]
		if evac && left > 0 {
			d.evacuate[h.Name] = left - 1
		}
		d.mu.Unlock()
		e := api.Evacuation{Host: h.Name, Parallel: 2}
		if evac {
			e.Started, e.Planned, e.Running = fakeNow, len(moving), left > 0
			e.Done = min(max(len(moving)-left, 0), len(moving))
			if e.Running && e.Done < len(moving) {
				e.Active = []api.MigrationProgress{{VM: moving[e.Done], To: map[string]string{"kvm1": "kvm2", "kvm2": "kvm1"}[h.Name], Elapsed: 3 * time.Second, Percent: 50,
					Processed: 4 << 30, Total: 8 << 30, ETA: 3 * time.Second}}
			}
			if !e.Running {
				e.Ended = fakeNow.Add(20 * time.Second)
			}
			if d.evacFails == h.Name {
				e.Running, e.Ended, e.Done, e.Failed, e.Active = false, fakeNow.Add(5*time.Second), 0, len(moving), nil
				for _, vm := range moving {
					e.Errors = append(e.Errors, vm+": operation failed: migration out job: unexpectedly failed")
				}
				e.Error = "evacuate host 1: " + e.Errors[0]
			}
		}
		reply(w, 200, e)
	})
	m.HandleFunc("POST /v1/hosts/{host}/maintenance", func(w http.ResponseWriter, r *http.Request) {
		h, ok := hostOr404(w, r)
		if !ok {
			return
		}
		var req api.MaintenanceRequest
		json.NewDecoder(r.Body).Decode(&req)
		d.mu.Lock()
		if req.Enter {
			h.Maintenance, h.State = true, "maintenance"
			d.evacuate[h.Name] = h.VMs
		} else {
			delete(d.evacuate, h.Name)
		}
		d.mu.Unlock()
		reply(w, 200, h)
	})
	m.HandleFunc("GET /v1/hosts/{host}/evacuation-plan", func(w http.ResponseWriter, r *http.Request) {
		h, ok := hostOr404(w, r)
		if !ok {
			return
		}
		p := api.EvacuationPlan{Host: h.Name, Moves: []api.EvacuationMove{}}
		d.mu.Lock()
		noRoom := d.noRoom == h.Name
		d.mu.Unlock()
		switch {
		case noRoom:
			p.Unplaced = []string{"db1: needs 32 GiB, kvm1 has 24 GiB free"}
		case h.Name == "kvm1":
			p.Moves = append(p.Moves, api.EvacuationMove{VM: "web1", To: "kvm2"})
		case h.Name == "kvm2":
			p.Moves = append(p.Moves, api.EvacuationMove{VM: "db1", To: "kvm1"})
		case h.Name == "kvm3":
			reply(w, 409, api.Error{Error: "kvm3 is dead", Hint: "its VMs are restarted by failover, not migrated"})
			return
		}
		reply(w, 200, p)
	})
	m.HandleFunc("POST /v1/hosts/{host}/exec", func(w http.ResponseWriter, r *http.Request) {
		h, ok := hostOr404(w, r)
		if !ok {
			return
		}
		var req api.ExecRequest
		json.NewDecoder(r.Body).Decode(&req)
		d.mu.Lock()
		_, inMaint := d.evacuate[h.Name]
		denied, onExec := d.execDenied == h.Name, d.onExec
		d.mu.Unlock()
		if onExec != nil {
			onExec()
		}
		switch {
		case denied:
			reply(w, 403, api.Error{Error: "remote execution is disabled on " + h.Name + " (maintenance.allow_exec = false)",
				Hint: "run the command on the host yourself, or set maintenance.allow_exec = true in /etc/wingman/wingman.toml"})
		case !inMaint:
			reply(w, 409, api.Error{Error: h.Name + " is not in maintenance: exec runs only on a host in maintenance that holds no protected VM (it is a patching tool)",
				Hint: "put it in maintenance first ('wingman maintenance enter " + h.Name + "'), or use 'wingman rolling-update'"})
		case strings.Contains(req.Command, "nosuch"):
			reply(w, 200, api.ExecResult{Host: h.Name, ExitCode: 100, Duration: 2300 * time.Millisecond, Output: "Reading package lists...\nE: Unable to locate package nosuch\n"})
		default:
			reply(w, 200, api.ExecResult{Host: h.Name, Duration: 41200 * time.Millisecond, Output: "Reading package lists...\n0 upgraded, 0 newly installed\n"})
		}
	})
	m.HandleFunc("POST /v1/hosts/{host}/reboot", func(w http.ResponseWriter, r *http.Request) {
		h, ok := hostOr404(w, r)
		if !ok {
			return
		}
		var req api.RebootRequest
		json.NewDecoder(r.Body).Decode(&req)
		d.mu.Lock()
		if d.rebooted == nil {
			d.rebooted = map[string]int{}
		}
		h.Generation += uint64(d.rebooted[h.Name])
		d.rebooted[h.Name]++
		if req.ExitMaintenance {
			// The host's next wingmand leaves maintenance by itself.
			delete(d.evacuate, h.Name)
			d.events = append(d.events, api.Event{Time: fakeNow.Add(time.Minute), Host: h.ID, HostName: h.Name, Seq: 90, Severity: "info",
				Kind: "reboot-done", Message: h.Name + " left maintenance after its reboot (failback true)"})
		}
		d.mu.Unlock()
		reply(w, 200, api.RebootResult{Host: h.Name, Generation: h.Generation, At: fakeNow, Command: "systemctl reboot"})
	})
	m.HandleFunc("POST /v1/hosts/{host}/fence", func(w http.ResponseWriter, r *http.Request) {
		h, ok := hostOr404(w, r)
		if !ok {
			return
		}
		var req api.FenceRequest
		json.NewDecoder(r.Body).Decode(&req)
		if req.Test {
			reply(w, 200, api.FenceResult{Host: h.Name, Test: true, Mailbox: "acknowledged", Agent: "ipmi: power is on", Duration: 830 * time.Millisecond})
			return
		}
		reply(w, 200, api.FenceResult{Host: h.Name, Mailbox: "not acknowledged", Agent: "ipmi: powered off", Duration: 6200 * time.Millisecond})
	})
	m.HandleFunc("POST /v1/hosts/{host}/quarantine", func(w http.ResponseWriter, r *http.Request) {
		h, ok := hostOr404(w, r)
		if !ok {
			return
		}
		var req api.QuarantineRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			reply(w, 400, api.Error{Error: err.Error(), Class: "invalid"})
			return
		}
		switch {
		case req.Quarantine == (h.Quarantine != nil) && req.Quarantine:
			reply(w, 409, api.Error{Error: "kvm1: host is already quarantined: host 1 since 2025-03-01T10:20:00Z by wingman, until 2025-03-01T12:20:00Z", Class: "conflict"})
		case req.Quarantine == (h.Quarantine != nil):
			reply(w, 409, api.Error{Error: h.Name + " is not quarantined", Class: "conflict", Hint: "`wingman host-list` shows which hosts are quarantined"})
		case req.Quarantine:
			reply(w, 200, api.QuarantineResult{Host: h.Name, Quarantine: &api.HostQuarantine{Since: fakeNow, Until: fakeNow.Add(2 * time.Hour), By: "user alice (uid 1000) on kvm1", Why: "put in quarantine by command"}})
		default:
			reply(w, 200, api.QuarantineResult{Host: h.Name})
		}
	})
	m.HandleFunc("POST /v1/hosts/{host}/confirm-off", func(w http.ResponseWriter, r *http.Request) {
		h, ok := hostOr404(w, r)
		if !ok {
			return
		}
		if h.State != "dead" && h.State != "suspect" {
			reply(w, 409, api.Error{Error: "on host 2: confirm-off refused: the heartbeat of " + h.Name + " (host " + strconv.Itoa(h.ID) + ") changed 800ms ago, within D = 12s, so it may be running: check that it is off, and confirm once its heartbeat has stopped for D (11.2s from now)", Class: "conflict"})
			return
		}
		reply(w, 200, api.ConfirmOffResult{Host: h.Name, HostID: h.ID, Generation: h.Generation, By: "user alice (uid 1000) on kvm1", DeclaredOn: "kvm2"})
	})
	d.notifyRoutes(m)
	m.HandleFunc("GET /v1/events", func(w http.ResponseWriter, r *http.Request) {
		var since time.Time
		if s := r.URL.Query().Get("since"); s != "" {
			since, _ = time.Parse(time.RFC3339Nano, s)
		}
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		d.mu.Lock()
		d.calls++
		if d.onEvents != nil {
			d.onEvents(d.calls)
		}
		out := []api.Event{}
		for _, e := range d.events {
			if e.Time.After(since) {
				out = append(out, e)
			}
		}
		d.mu.Unlock()
		if limit > 0 && len(out) > limit {
			out = out[len(out)-limit:]
		}
		reply(w, 200, out)
	})
	m.HandleFunc("GET /v1/incidents", func(w http.ResponseWriter, r *http.Request) { reply(w, 200, fakeIncidents) })
	// ha disarm: a failover is in progress for any reason "busy"; a
	// disarm shorter than 2h "would end sooner" without force.
	m.HandleFunc("POST /v1/ha/disarm", func(w http.ResponseWriter, r *http.Request) {
		var req api.DisarmRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		switch {
		case req.Reason == "busy":
			reply(w, 409, api.Error{Error: "disarm refused: a failover is in progress (2 VMs of kvm3 not running again yet): wait until 'wingman status' shows it done, then disarm", Class: "conflict"})
		case req.For < 2*time.Hour && !req.Force:
			reply(w, 409, api.Error{Error: "disarm refused: HA is disarmed for 1h59m more (by host 2): a disarm for " + req.For.String() + " would end sooner; give a longer duration, or --force to shorten it", Class: "conflict"})
		default:
			reply(w, 200, api.HAState{Disarmed: true, Until: fakeNow.Add(req.For), Remaining: req.For, By: "kvm1", For: req.For,
				Reason: req.Reason, Generation: 4, DisarmedHosts: []string{"kvm1", "kvm2"}})
		}
	})
	m.HandleFunc("POST /v1/ha/arm", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 200, api.HAState{Generation: 5, DisarmedHosts: []string{"kvm2"}})
	})
	return recordRequests(d, m)
}

// fakeIncidents is kvm3's loss as fakeEvents tell it.
var fakeIncidents = []api.Incident{{ID: "inc-5e0b8c1d2a3f4e5d6c7b8a90", Host: "kvm3", HostID: 3, Lost: fakeNow.Add(-20 * time.Minute),
	LastHeartbeat: fakeNow.Add(-20*time.Minute - 4*time.Second), Declared: fakeNow.Add(-20*time.Minute + 8*time.Second), How: "heartbeat",
	Reason: "kvm3 dead: no heartbeat for 12s", Settled: true, SettledAt: fakeNow.Add(-20*time.Minute + 14200*time.Millisecond), Severity: "warning",
	VMs: []api.IncidentVM{{Name: "web2", UUID: "6f1c2a9e-0000-4000-8000-000000000006", State: "started", Host: "kvm1",
		Planned: fakeNow.Add(-20*time.Minute + 9800*time.Millisecond), At: fakeNow.Add(-20*time.Minute + 14200*time.Millisecond), Took: 6200 * time.Millisecond}}}}

func recordRequests(d *fakeDaemon, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		line := r.Method + " " + r.URL.RequestURI()
		if len(body) > 0 {
			line += " " + strings.TrimSpace(string(body))
		}
		d.mu.Lock()
		d.requests = append(d.requests, line)
		d.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

var fakeTargets = []api.NotifyTarget{
	{Name: "ops", Kind: "mail", Address: "smtp.clinic.example:587", From: "wingman@clinic.example", To: []string{"ops@clinic.example"},
		User: "wingman", SecretFile: "/etc/wingman/secrets/smtp.pass", MinSeverity: "info", Counts: &api.NotifyCounts{Sent: 2}},
	{Name: "chat", Kind: "webhook", Address: "https://chat.clinic.example/hooks/wingman", MinSeverity: "warning", Kinds: []string{"incident", "resolved"},
		Counts: &api.NotifyCounts{Sent: 1, Failed: 3, GaveUp: 1, Retried: 2}},
	{Name: "pager", Kind: "exec", Address: "/usr/local/bin/page-oncall", MinSeverity: "error", Hosts: []string{"kvm1"}},
}

// notifyRoutes answer as wingmand does: a target is refused with the
// daemon's message and hint.
func (d *fakeDaemon) notifyRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /v1/notify/targets", func(w http.ResponseWriter, r *http.Request) { reply(w, 200, fakeTargets) })
	m.HandleFunc("POST /v1/notify/targets", func(w http.ResponseWriter, r *http.Request) {
		var t api.NotifyTarget
		json.NewDecoder(r.Body).Decode(&t)
		switch {
		case t.SecretFile == "/nonexistent/key":
			reply(w, 400, api.Error{Class: "invalid", Error: `target "` + t.Name + `": invalid notification target: secret file: open /nonexistent/key: no such file or directory; create it on every host (mode 0600)`})
		case strings.HasPrefix(t.Address, "ftp:"):
			reply(w, 400, api.Error{Class: "invalid", Error: `target "` + t.Name + `": invalid notification target: webhook URL "` + t.Address + `": give an absolute http:// or https:// URL`})
		default:
			reply(w, 200, t)
		}
	})
	m.HandleFunc("DELETE /v1/notify/targets/{name}", func(w http.ResponseWriter, r *http.Request) {
		if n := r.PathValue("name"); n != "chat" {
			reply(w, 404, api.Error{Class: "not-found", Error: `target "` + n + `": no such notification target (targets: ops, chat, pager); see ` + "`wingman notify list`"})
			return
		}
		reply(w, 200, struct{}{})
	})
	m.HandleFunc("POST /v1/notify/test", func(w http.ResponseWriter, r *http.Request) {
		var req api.NotifyTestRequest
		json.NewDecoder(r.Body).Decode(&req)
		all := []api.NotifyTestResult{{Target: "ops", Kind: "mail", OK: true, Took: 420 * time.Millisecond},
			{Target: "chat", Kind: "webhook", OK: true, Took: 95 * time.Millisecond},
			{Target: "pager", Kind: "exec", Error: `hook exited with 1 (/usr/local/bin/page-oncall): "pager API down"`, Took: 12 * time.Millisecond}}
		for _, x := range all {
			if x.Target == req.Target {
				reply(w, 200, []api.NotifyTestResult{x})
				return
			}
		}
		reply(w, 200, all)
	})
}
