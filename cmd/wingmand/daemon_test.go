package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/cmd/internal/luns"
	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/vm/maintenance"
	"github.com/wingmanha/wingman/vm/plan"
)

// These tests run whole daemons in this process: a real LUN file with
// O_DIRECT, real serf agents on loopback (fast profile, no encryption: a
// test network), libvirt's test:/// driver (one simulated host file each),
// the software watchdog, and the API on a real unix socket.

func testTimings() storage.Timings {
	t := storage.Timings{Renew: 100 * time.Millisecond, IOTimeout: 500 * time.Millisecond,
		SelfFence: time.Second, Watchdog: time.Second, PowerFence: time.Second}
	t.Dead = t.MinDead()
	return t
}

func formatLUN(t *testing.T) string {
	t.Helper()
	return formatLUNWith(t, testTimings(), storage.Geometry{MaxHosts: 4, MaxVMs: 8, EventBlocks: 4, ConfigBlks: 4})
}

// formatLUNWith formats a LUN file in a temporary directory with timings
// and geometry g.
func formatLUNWith(t *testing.T, timings storage.Timings, g storage.Geometry) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "lun.img")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	dev, err := storage.OpenFile(p)
	if err != nil {
		t.Skipf("skipping: %s does not support O_DIRECT: %v", dir, err)
	}
	defer dev.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := storage.Format(ctx, dev, storage.FormatOptions{ClusterName: "unit", Timings: timings, Geometry: g}); err != nil {
		t.Fatal(err)
	}
	return p
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type testDaemon struct {
	d      *Daemon
	client *api.Client
	stop   func()
}

func testConfig(t *testing.T, lun, name string, id int, join []string, port int) Config {
	dir := t.TempDir()
	hostXML, _ := filepath.Abs("../../hypervisor/testdata/kvm1.xml")
	if id != 1 {
		hostXML, _ = filepath.Abs("../../hypervisor/testdata/kvm2.xml")
	}
	hostXML = withSharedDisks(t, hostXML, filepath.Dir(lun), dir)
	cfg := DefaultConfig()
	cfg.path = "(test)"
	cfg.Cluster, cfg.LUN, cfg.HostName, cfg.HostID, cfg.StateDir = "unit", luns.Paths{lun}, name, id, dir
	cfg.Libvirt.URI = "test://" + hostXML
	cfg.Serf = SerfConfig{Bind: fmt.Sprintf("127.0.0.1:%d", port), Join: join, Insecure: true, Profile: "fast"}
	cfg.API.Socket = filepath.Join(dir, "api.sock")
	cfg.Watchdog.Mode = "software"
	cfg.Shutdown.Policy = "keep"
	return cfg
}

// withSharedDisks copies the simulated host file src into dir with web1's
// disk (/shared/web1.img) moved to a real file in shared, the directory of
// the LUN: storage that every daemon of the test sees at the same path, so
// that protect finds it reachable from every host. It returns the copy.
func withSharedDisks(t *testing.T, src, shared, dir string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	disk := sharedDisk(shared)
	if _, err := os.Stat(disk); err != nil {
		if err := os.WriteFile(disk, make([]byte, 512), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, filepath.Base(src))
	if err := os.WriteFile(out, []byte(strings.ReplaceAll(string(b), "/shared/web1.img", disk)), 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}

// sharedDisk is web1's disk in the shared directory of a test's daemons.
func sharedDisk(shared string) string { return filepath.Join(shared, "web1.img") }

func startDaemon(t *testing.T, cfg Config) *testDaemon {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := Start(ctx, cfg, log, nil)
	if err != nil {
		t.Fatalf("start %s: %v", cfg.HostName, err)
	}
	l, err := listenSocket(cfg.API.Socket, "nogroup-for-tests")
	if err != nil {
		t.Fatal(err)
	}
	sctx, sstop := context.WithCancel(context.Background())
	go d.Serve(sctx, l)
	td := &testDaemon{d: d, client: api.NewClient(cfg.API.Socket)}
	stopped := false
	td.stop = func() {
		if stopped {
			return
		}
		stopped = true
		sstop()
		c, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = d.Stop(c)
	}
	t.Cleanup(td.stop)
	return td
}

// crash stops the daemon as a SIGKILL would: nothing is released or
// written, its software watchdog dies with it.
func (td *testDaemon) crash() {
	td.d.wd.Close()
	td.d.cancel()
	td.d.wg.Wait()
	td.d.serf.Shutdown()
	td.d.closeAll()
	td.stop = func() {}
}

// shutdown stops the daemon as its host's shutdown or reboot does: the
// host-shutdown file tells it the host is going down (no systemd here to
// ask), so its shutdown policy runs.
func (td *testDaemon) shutdown(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(filepath.Dir(td.d.cfg.API.Socket), maintenance.HostShutdownFile), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	td.stop()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// twoDaemons starts kvm1 and kvm2 on one LUN; opts adjust both configs.
func twoDaemons(t *testing.T, opts ...func(*Config)) (*testDaemon, *testDaemon) {
	lun := formatLUN(t)
	p1, p2 := freePort(t), freePort(t)
	c1 := testConfig(t, lun, "kvm1", 1, []string{fmt.Sprintf("127.0.0.1:%d", p2)}, p1)
	c2 := testConfig(t, lun, "kvm2", 2, []string{fmt.Sprintf("127.0.0.1:%d", p1)}, p2)
	for _, o := range opts {
		o(&c1)
		o(&c2)
	}
	a, b := startDaemon(t, c1), startDaemon(t, c2)
	ctx := context.Background()
	waitFor(t, "both hosts alive and quorate", func() bool {
		for _, d := range []*testDaemon{a, b} {
			s, err := d.client.Status(ctx)
			if err != nil || !s.Quorate || len(s.Hosts) != 2 {
				return false
			}
			for _, h := range s.Hosts {
				if h.State != "alive" || h.Serf != "alive" {
					return false
				}
			}
		}
		return true
	})
	return a, b
}

func TestTwoDaemonsFormAClusterAndServeTheAPI(t *testing.T) {
	a, b := twoDaemons(t)
	ctx := context.Background()
	s, err := b.client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Coordinator != 1 || s.Cluster != "unit" || s.Timings.Dead != testTimings().Dead || s.Watchdog != "software" {
		t.Errorf("status = %+v", s)
	}
	if !strings.Contains(strings.Join(s.Warnings, "\n"), "no hardware watchdog") {
		t.Errorf("warnings %q do not mention the missing hardware watchdog", s.Warnings)
	}
	// Protect web1 (running on kvm1's simulated host) from host 2's API:
	// the request is forwarded? No: protect runs where the domain is.
	v, err := a.client.Protect(ctx, "web1", api.ProtectRequest{Policy: api.Policy{Priority: "high"}})
	if err != nil {
		t.Fatalf("protect: %v", err)
	}
	if !v.Protected || v.Owner != 1 || v.Policy.Priority != "high" {
		t.Errorf("protected VM = %+v", v)
	}
	// web1's disk goes away: the hosts say so.
	if err := os.Remove(sharedDisk(filepath.Dir(a.d.cfg.LUN[0]))); err != nil {
		t.Fatal(err)
	}
	if why := b.d.disks.Unreachable(ctx)["web1"]; !strings.Contains(why, "cannot run on kvm2") {
		t.Errorf("unreachable disk not reported: %q", why)
	}
	// Host 2 sees it on the LUN, owned by host 1.
	vb, err := b.client.VM(ctx, "web1")
	if err != nil || vb.Owner != 1 || vb.OwnerName != "kvm1" {
		t.Errorf("host 2 sees web1 as %+v, %v", vb, err)
	}
	// set-policy from host 2 is forwarded to the owner over serf.
	v.VM, err = b.client.SetPolicy(ctx, "web1", api.ProtectRequest{Policy: api.Policy{AntiAffinity: "web"}})
	if err != nil {
		t.Fatalf("set-policy via host 2: %v", err)
	}
	if v.Policy.AntiAffinity != "web" || v.Policy.Priority != "high" {
		t.Errorf("after set-policy: %+v", v.Policy)
	}
	// Stop through Wingman: stays stopped.
	if err := b.client.Stop(ctx, "web1"); err != nil {
		t.Fatalf("stop via host 2: %v", err)
	}
	v.VM, _ = a.client.VM(ctx, "web1")
	if !v.Stopped || v.State != "shutoff" {
		t.Errorf("after stop: %+v", v)
	}
	if err := a.client.Start(ctx, "web1"); err != nil {
		t.Fatalf("start: %v", err)
	}
	waitFor(t, "web1 running again", func() bool { v, _ := a.client.VM(ctx, "web1"); return v.State == "running" && !v.Stopped })
	m := scrape(t, a.d)
	for _, want := range []string{`wingman_quorate 1`, `wingman_host_state{host="kvm2",state="alive"} 1`, `wingman_events_total{kind="desired-stopped"} 1`,
		`wingman_vm_state{state="running",uuid="` + v.UUID + `",vm="web1"} 1`, `wingman_events_dropped_total 0`,
		`wingman_lun_io_errors_total{op="write"} 0`, `wingman_build_info{goversion="` + runtime.Version() + `",version="dev"} 1`} {
		if !slices.Contains(m, want) {
			t.Errorf("metrics lack %s:\n%s", want, strings.Join(m, "\n"))
		}
	}
	for _, name := range []string{"wingman_heartbeat_renew_seconds ", `wingman_lun_io_operations_total{op="read"} `,
		`wingman_lun_io_duration_seconds_count{op="write"} `, "go_goroutines ", "process_resident_memory_bytes "} {
		if !slices.ContainsFunc(m, func(s string) bool { return strings.HasPrefix(s, name) && !strings.HasSuffix(s, " 0") }) {
			t.Errorf("metrics lack a non-zero %s:\n%s", name, strings.Join(m, "\n"))
		}
	}
	evs, err := b.client.Events(ctx, time.Time{}, 0)
	if err != nil || len(evs) == 0 {
		t.Fatalf("events: %v %v", evs, err)
	}
	// Unknown VM: 404 with a hint.
	_, err = a.client.VM(ctx, "nope")
	if !api.IsNotFound(err) || !strings.Contains(err.Error(), "wingman list --all") {
		t.Errorf("unknown VM: %v", err)
	}
	// A bad priority is a 400 with the field named.
	_, err = a.client.SetPolicy(ctx, "web1", api.ProtectRequest{Policy: api.Policy{Priority: "urgent"}})
	var re *api.RemoteError
	if !errors.As(err, &re) || re.Status != 400 || !strings.Contains(err.Error(), "priority") {
		t.Errorf("bad priority: %v", err)
	}
}

// scrape reads d's metrics as Prometheus does and returns each sample as
// `name{labels} value`, labels sorted.
func scrape(t *testing.T, d *Daemon) []string {
	t.Helper()
	rec := httptest.NewRecorder()
	d.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	var out []string
	for name, f := range fams {
		for _, m := range f.Metric {
			var labels []string
			for _, l := range m.Label {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			slices.Sort(labels)
			ls := ""
			if len(labels) > 0 {
				ls = "{" + strings.Join(labels, ",") + "}"
			}
			var v float64
			switch {
			case m.Gauge != nil:
				v = m.Gauge.GetValue()
			case m.Counter != nil:
				v = m.Counter.GetValue()
			case m.Histogram != nil:
				out = append(out, fmt.Sprintf("%s_count%s %d", name, ls, m.Histogram.GetSampleCount()))
				continue
			default:
				continue
			}
			out = append(out, fmt.Sprintf("%s%s %s", name, ls, strconv.FormatFloat(v, 'g', -1, 64)))
		}
	}
	return out
}

func TestCrashedDaemonIsDeclaredDeadAndItsVMRestartsElsewhere(t *testing.T) {
	a, b := twoDaemons(t)
	ctx := context.Background()
	// db1 is defined (shut off) on both simulated hosts with the same UUID?
	// No: protect web1 on host 1 and watch host 2 take it over.
	if _, err := a.client.Protect(ctx, "web1", api.ProtectRequest{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "D of fresh LUN reads on host 2", func() bool {
		in := b.d.loop.Input()
		return in.Now-in.ReadFreshSince >= in.Timings.Dead
	})
	// Host 1's daemon dies without a word (its simulated VMs die with its
	// test:/// connection): stop everything but write nothing.
	a.d.wd.Close() // a dead process's software watchdog dies with it
	a.d.cancel()
	a.d.wg.Wait()
	a.d.serf.Shutdown()
	crashed := time.Now()
	waitFor(t, "host 2 to declare host 1 dead", func() bool {
		h, err := b.client.Host(ctx, "kvm1")
		return err == nil && h.State == "dead"
	})
	waitFor(t, "web1 to run on host 2", func() bool {
		v, err := b.client.VM(ctx, "web1")
		return err == nil && v.Owner == 2 && v.State == "running"
	})
	t.Logf("failover took %v (D = %v)", time.Since(crashed).Round(time.Millisecond), testTimings().Dead)
	if m := scrape(t, b.d); !slices.Contains(m, "wingman_failover_duration_seconds_count 1") {
		t.Errorf("host 2's metrics lack the failover of web1:\n%s", strings.Join(m, "\n"))
	}
	a.d.closeAll()
	a.stop = func() {}
}

func TestSecondDaemonOnTheSameHostIsRefused(t *testing.T) {
	lun := formatLUN(t)
	cfg := testConfig(t, lun, "kvm1", 1, nil, freePort(t))
	startDaemon(t, cfg)
	cfg2 := cfg
	cfg2.Serf.Bind = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := Start(ctx, cfg2, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err == nil || !strings.Contains(err.Error(), "another wingmand already runs") {
		t.Fatalf("second daemon: %v", err)
	}
}

func TestWrongLUNIsAClearError(t *testing.T) {
	lun := formatLUN(t)
	cfg := testConfig(t, lun, "kvm1", 1, nil, freePort(t))
	cfg.Cluster = "other"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := Start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if !errors.Is(err, storage.ErrForeignCluster) || !strings.Contains(err.Error(), lun) {
		t.Fatalf("foreign cluster: %v", err)
	}
}

func TestConfigErrorsNameFileAndKey(t *testing.T) {
	dir := t.TempDir()
	shared := filepath.Join(dir, "tmp") // like /tmp
	if err := os.Mkdir(shared, 0o755); err != nil || os.Chmod(shared, 0o777|os.ModeSticky) != nil {
		t.Fatal(err)
	}
	write := func(body string) string {
		p := filepath.Join(dir, "wingman.toml")
		os.WriteFile(p, []byte(body), 0o600)
		return p
	}
	for _, tc := range []struct{ body, want string }{
		{"cluster = \"c\"\nlun = \"/dev/x\"\nbogus = 1\n", "unknown key bogus"},
		{"cluster = \"c\"\nlun = \n", "line 2"},
		{"cluster = \"c\"\nlun = \"/x\"\n[serf]\nprofile = \"slow\"\n", "serf.profile"},
		{"cluster = \"c\"\nlun = \"/x\"\n", "serf.keyring: is required"},
		{"lun = \"/x\"\n[serf]\ninsecure = true\n", "cluster: must be"},
		{"cluster = \"c\"\nlun = \"/x\"\n[serf]\ninsecure = true\n[shutdown]\ntimeout = \"soon\"\n", "line 6, key shutdown.timeout: \"soon\" is not a duration"},
		{"cluster = \"c\"\nlun = \"/x\"\n[serf]\ninsecure = true\n[shutdown]\ntimeout = \"-5s\"\n", "line 6, key shutdown.timeout: \"-5s\" is negative"},
		{"cluster = \"c\"\nlun = \"/x\"\n[serf]\ninsecure = true\n[shutdown]\ntimeout = \"0s\"\n", "shutdown.timeout: 0s: must be positive"},
		{"cluster = \"c\"\nlun = \"/x\"\n[serf]\nkeyring = \"/nonexistent/serf.keyring\"\n", "serf.keyring: stat /nonexistent/serf.keyring: no such file"},
		{"cluster = \"c\"\nlun = \"/x\"\n[serf]\ninsecure = true\n[fence.kvm2]\nagent = \"fence_wingman_nosuch\"\n", "fence.kvm2: agent /usr/sbin/fence_wingman_nosuch not found"},
		{"cluster = \"c\"\nlun = \"/x\"\n[serf]\ninsecure = true\n[fence_device.kvm2-ipmi]\nagent = \"/bin/true\"\n[fence.kvm2]\nlevels = [\"kvm2-ipmi\", \"kvm2-pdu\"]\n",
			"fence.kvm2.levels: level 2 names device \"kvm2-pdu\", which no [fence_device.kvm2-pdu] table defines"},
		{"cluster = \"c\"\nlun = \"/x\"\n[serf]\ninsecure = true\n[fence_device.kvm2-ipmi]\nagent = \"/bin/true\"\ntimeout = \"10m\"\n[fence.kvm2]\nlevels = [\"kvm2-ipmi\"]\n",
			"fence_device.kvm2-ipmi.timeout: 10m0s is out of bounds: use 1s to 5m0s"},
		{"cluster = \"c\"\nlun = \"/x\"\n[serf]\ninsecure = true\n[fence_device.kvm2-ipmi]\nagent = \"/bin/true\"\n[fence.kvm2]\nlevels = [\"kvm2-ipmi\", \"kvm2-ipmi\"]\n",
			"fence.kvm2.levels: device \"kvm2-ipmi\" is in level 1 and again in level 2"},
		{"cluster = \"c\"\nlun = \"/x\"\n[serf]\ninsecure = true\n[fence_device.kvm2-ipmi]\nparams = { ip = \"192.0.2.1\" }\n[fence.kvm2]\nlevels = [\"kvm2-ipmi\"]\n",
			"fence_device.kvm2-ipmi.agent: is not set"},
		{"cluster = \"c\"\nlun = \"/x\"\n[serf]\ninsecure = true\n[api]\nsocket = \"" + shared + "/wingman.sock\"\n", "api.socket: directory " + shared + " is shared"},
		{"cluster = \"c\"\nlun = \"/x\"\n[serf]\ninsecure = true\n[api]\nsocket = \"wingman.sock\"\n", "api.socket: \"wingman.sock\" is relative"},
		{"cluster = \"c\"\nv = " + strings.Repeat("{a=", 1<<14) + "\n", "line 2: configuration nested too deep"},
		{"cluster = \"c\"\nlun = \"/x\"\n[serf]\ninsecure = true\n[maintenance]\nparallel_migrations = 0\n", "maintenance.parallel_migrations"},
		{"cluster = \"c\"\nlun = \"/x\"\n[serf]\ninsecure = true\n[maintenance]\non_migration_failure = \"cold\"\n", "cold-move"},
		{"cluster = \"c\"\nlun = \"/x\"\n[serf]\ninsecure = true\n[maintenance]\nexec_timeout = \"0s\"\n", "maintenance.exec_timeout: 0s: must be positive"},
		{"cluster = \"c\"\nlun = \"/x\"\n[serf]\ninsecure = true\n[placement]\ncpu_overcommit = 0.5\n", "placement.cpu_overcommit: 0.5: use 1 to 64"},
		{"cluster = \"c\"\nlun = \"/x\"\n[serf]\ninsecure = true\n[placement]\nmemory_overcommit = 20.0\n", "placement.memory_overcommit"},
		{"cluster = \"c\"\nlun = \"/x\"\n[serf]\ninsecure = true\n[placement]\nparallel_starts = 0\n", "placement.parallel_starts: 0: must be 1 to 64"},
		{"cluster = \"c\"\nlun = \"/x\"\n[serf]\ninsecure = true\n[placement]\ncpu_overcommit = \"lots\"\n", "cpu_overcommit"},
		{"cluster = \"c\"\nlun = \"/x\"\n[serf]\ninsecure = true\n[failover]\nguest_agent_wait = \"1s\"\n", "failover.guest_agent_wait: 1s: use 10s to 1h (default 5m)"},
		{"cluster = \"c\"\nlun = \"/x\"\n[serf]\ninsecure = true\n[failover]\nguest_agent_wait = \"forever\"\n", "not a duration"},
		{"cluster = \"c\"\nlun = \"/x\"\n[serf]\ninsecure = true\n[failover]\ndisk_loss_grace = \"5s\"\n", "failover.disk_loss_grace: 5s: use 15s to 24h (default 1m); below 15s a SAN path failover"},
		{"cluster = \"c\"\nlun = \"/x\"\n[serf]\ninsecure = true\n[failover]\ndisk_loss = \"kill\"\n", "failover.disk_loss: \"kill\": use \"restart\""},
		{"cluster = \"c\"\nlun = \"/x\"\n[serf]\ninsecure = true\n[metrics]\nlisten = \"127.0.0.1:9477\"\nbasic_auth_user = \"p\"\n", "metrics.basic_auth_user: basic_auth_user and basic_auth_password_file go together"},
		{"cluster = \"c\"\nlun = \"/x\"\n[serf]\ninsecure = true\n[metrics]\nlisten = \"127.0.0.1:9477\"\ntls_cert = \"/no/cert.pem\"\ntls_key = \"/no/key.pem\"\n", "metrics.tls_cert: stat /no/cert.pem"},
		{"cluster = \"c\"\nlun = \"/x\"\n[serf]\ninsecure = true\n[metrics]\nbasic_auth_password = \"x\"\n", "unknown key metrics.basic_auth_password"},
		{"cluster = \"c\"\nlun = [\"/x\", \"/y\"]\n[serf]\ninsecure = true\n", "lun: 2 heartbeat LUNs: use 1 or 3; a majority of 2 is 2"},
		{"cluster = \"c\"\nlun = [\"/x\", \"/y\", \"/z\", \"/w\"]\n[serf]\ninsecure = true\n", "lun: 4 heartbeat LUNs: use 1 or 3"},
		{"cluster = \"c\"\nlun = [\"/x\", \"/y\", \"/x\"]\n[serf]\ninsecure = true\n", "lun: \"/x\" is named twice"},
		{"cluster = \"c\"\nlun = \"/x\"\n[serf]\ninsecure = true\n[isolation]\naddresses = [\"192.0.2.1\", \"gw_1:80\"]\n",
			"isolation.addresses[1]: \"gw_1:80\" is not an IP address or a host name (label \"gw_1:80\"): write an IP address"},
	} {
		p := write(tc.body)
		cfg, err := LoadConfig(p, false)
		if err == nil {
			err = cfg.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("config %q: error %v, want it to name %s and %q", tc.body, err, p, tc.want)
		}
	}
	var out bytes.Buffer
	if code := run([]string{"-f", filepath.Join(dir, "missing.toml")}, &out); code != exitConfig || !strings.Contains(out.String(), "missing.toml") {
		t.Errorf("missing file: exit %d, %q", code, out.String())
	}
	// --check-config refuses what the daemon would: a socket in /tmp.
	out.Reset()
	p := write("cluster = \"c\"\nlun = \"/x\"\n[serf]\ninsecure = true\n[api]\nsocket = \"" + shared + "/wingman.sock\"\n")
	if code := run([]string{"--check-config", "-f", p}, &out); code != exitConfig || !strings.Contains(out.String(), "api.socket") {
		t.Errorf("--check-config of a socket in a shared directory: exit %d, %q", code, out.String())
	}
	out.Reset()
	p = write("cluster = \"c\"\nlun = \"/x\"\n[serf]\ninsecure = true\n[isolation]\naddresses = [\"http://gw\"]\n")
	if code := run([]string{"--check-config", "-f", p}, &out); code != exitConfig || !strings.Contains(out.String(), "isolation.addresses[0]") {
		t.Errorf("--check-config of a bad isolation address: exit %d, %q", code, out.String())
	}
	if code := run([]string{"--bogus"}, &out); code != exitUsage {
		t.Errorf("bad flag: exit %d", code)
	}
}

func TestRestartedDaemonResumesItsSlotAtOnce(t *testing.T) {
	a, b := twoDaemons(t)
	ctx := context.Background()
	cfg := a.d.cfg
	gen := a.d.slot.Generation()
	// wingmand dies (SIGKILL): nothing is released, the guests keep running.
	a.crash()
	start := time.Now()
	a2 := startDaemon(t, cfg)
	if took := time.Since(start); took >= testTimings().Dead {
		t.Errorf("restart took %v, not under D = %v", took, testTimings().Dead)
	}
	if a2.d.slot.Generation() != gen {
		t.Errorf("generation %d after the restart, want %d (resumed)", a2.d.slot.Generation(), gen)
	}
	// Host 2 never declared it dead.
	evs, err := b.client.Events(ctx, time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Kind == "declared-dead" {
			t.Errorf("a restarted daemon's host was declared dead: %+v", e)
		}
	}
}

func TestFreezePolicyKeepsVMsStoppedUntilTheHostIsBack(t *testing.T) {
	a, b := twoDaemons(t)
	ctx := context.Background()
	if _, err := a.client.Protect(ctx, "web1", api.ProtectRequest{}); err != nil {
		t.Fatal(err)
	}
	cfg := a.d.cfg
	a.d.cfg.Shutdown.Policy = "freeze"
	a.shutdown(t)
	v, err := b.client.VM(ctx, "web1")
	if err != nil || !v.Stopped {
		t.Fatalf("after a freeze web1 is %+v (%v), want stopped", v, err)
	}
	if _, err := os.Stat(filepath.Join(cfg.StateDir, "frozen")); err != nil {
		t.Fatalf("frozen list: %v", err)
	}
	// Host 1 left; host 2 must not start a frozen VM.
	waitFor(t, "host 2 to see host 1 gone", func() bool { h, err := b.client.Host(ctx, "kvm1"); return err == nil && h.State == "left" })
	if v, _ := b.client.VM(ctx, "web1"); v.Owner == 2 || !v.Stopped {
		t.Fatalf("host 2 took a frozen VM: %+v", v)
	}
	// Host 1 comes back: web1 is set to run again, owned by host 1.
	cfg.Serf.Bind = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	a2 := startDaemon(t, cfg)
	v, err = a2.client.VM(ctx, "web1")
	if err != nil || v.Stopped || v.Owner != 1 {
		t.Fatalf("after the host came back web1 is %+v (%v), want running on host 1", v, err)
	}
}

func TestMaintenanceSurvivesARestart(t *testing.T) {
	a, _ := twoDaemons(t)
	ctx := context.Background()
	if _, err := a.client.Maintenance(ctx, "kvm1", api.MaintenanceRequest{Enter: true}); err != nil {
		t.Fatalf("enter maintenance: %v", err)
	}
	cfg := a.d.cfg
	a.stop()
	cfg.Serf.Bind = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	a2 := startDaemon(t, cfg)
	waitFor(t, "kvm1 in maintenance after the restart", func() bool {
		h, err := a2.client.Host(ctx, "kvm1")
		return err == nil && h.Maintenance && h.State == "maintenance"
	})
	if _, err := a2.client.Maintenance(ctx, "kvm1", api.MaintenanceRequest{Enter: false}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "kvm1 alive again", func() bool {
		h, err := a2.client.Host(ctx, "kvm1")
		return err == nil && !h.Maintenance && h.State == "alive"
	})
}

// Each host advertises its own placement limits; every host plans with them.
func TestPlacementLimitsTravelBySerf(t *testing.T) {
	a, b := twoDaemons(t, func(c *Config) {
		if c.HostID == 2 {
			c.Placement.CPUOvercommit, c.Placement.ReservedMemoryMiB, c.Placement.ParallelStarts = 16, 2048, 6
		}
	})
	for _, d := range []*testDaemon{a, b} {
		waitFor(t, fmt.Sprintf("%s to see both hosts' limits", d.d.cfg.HostName), func() bool {
			caps := d.d.capacities()
			l1, l2 := caps[1].Limits, caps[2].Limits
			return l1 != nil && l2 != nil && *l1 == DefaultConfig().Placement.Limits() &&
				*l2 == plan.Limits{CPUOvercommit: 16, MemoryOvercommit: 1, ReservedMemory: 2 << 30, MaxStarts: 6}
		})
	}
}
