package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/cmd/internal/apiview"
	"github.com/wingmanha/wingman/cmd/internal/forward"
	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/vm/drill"
)

// defineGuest defines and starts, on d's simulated host, a guest whose
// disks are the given <disk> elements.
func defineGuest(t *testing.T, d *testDaemon, name, uuid, disks string) {
	t.Helper()
	ctx := context.Background()
	x := fmt.Sprintf(`<domain type='test'><name>%s</name><uuid>%s</uuid><memory unit='MiB'>128</memory>
<os><type>hvm</type></os><devices>%s</devices></domain>`, name, uuid, disks)
	if _, err := d.d.hv.Define(ctx, x); err != nil {
		t.Fatal(err)
	}
	if err := d.d.hv.Start(ctx, name); err != nil {
		t.Fatal(err)
	}
}

func fileDisk(path, target, cache string) string {
	driver := ""
	if cache != "" {
		driver = "<driver name='qemu' type='raw' cache='" + cache + "'/>"
	}
	return "<disk type='file' device='disk'>" + driver + "<source file='" + path + "'/><target dev='" + target + "'/></disk>"
}

// TestProtectAsksTheOtherHostsOverSerf: protect on kvm1 asks kvm2, over
// serf, whether it reaches the VM's disks. A disk kvm2 cannot reach is
// refused with what to do (409), unless forced; cache='unsafe' is refused
// (400) even when forced; a VM with many disks is asked about in batches;
// and once kvm2 is gone, protect says it could not ask it instead of
// waiting for it.
func TestProtectAsksTheOtherHostsOverSerf(t *testing.T) {
	a, b := twoDaemons(t)
	ctx := context.Background()
	dir := t.TempDir()

	v, err := a.client.Protect(ctx, "web1", api.ProtectRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !v.Protected || !slices.Equal(v.DisksReached, []string{"kvm2"}) || len(v.DisksUnchecked) != 0 || len(v.DisksUnreachable) != 0 {
		t.Errorf("protect web1 = %+v, want its disk reached from kvm2", v)
	}

	local := filepath.Join(dir, "local1.img") // exists on no host
	defineGuest(t, a, "local1", "3f6b1c0e-9a51-4c1e-8d2a-0000000000b1", fileDisk(local, "vda", "none"))
	_, err = a.client.Protect(ctx, "local1", api.ProtectRequest{})
	var re *api.RemoteError
	want := `protect "local1": disk not reachable from every host: kvm2: disk vda: ` + local + `: no such file or directory; ` +
		`put disk vda on shared storage that every host mounts at the same path, or in a libvirt storage pool that is defined and active on every host`
	if !errors.As(err, &re) || re.Status != 409 || re.Err.Error != want || !strings.Contains(re.Err.Hint, "--force") {
		t.Fatalf("protect local1 = %v (%+v)\nwant a 409: %s", err, re, want)
	}
	v, err = a.client.Protect(ctx, "local1", api.ProtectRequest{Force: true})
	if err != nil {
		t.Fatalf("protect local1 with force: %v", err)
	}
	if !v.Protected || len(v.DisksReached) != 0 || !slices.Equal(v.DisksUnreachable, []string{"kvm2: disk vda: " + local + ": no such file or directory"}) {
		t.Errorf("protect local1 with force = %+v, want the accepted problem", v)
	}

	shared := filepath.Join(dir, "fast1.img")
	if err := os.WriteFile(shared, make([]byte, 512), 0o600); err != nil {
		t.Fatal(err)
	}
	defineGuest(t, a, "fast1", "3f6b1c0e-9a51-4c1e-8d2a-0000000000b2", fileDisk(shared, "vda", "unsafe"))
	_, err = a.client.Protect(ctx, "fast1", api.ProtectRequest{Force: true})
	if !errors.As(err, &re) || re.Status != 400 || !strings.Contains(err.Error(), `protect "fast1": disk not safe for failover: disk vda has cache='unsafe'`) ||
		!strings.Contains(err.Error(), "set cache='none' (or writethrough or directsync) on disk vda; change the definition ('virsh edit fast1')") {
		t.Errorf("protect fast1 = %v, want a 400 saying to change the cache mode", err)
	}

	// 20 disks with long paths take several disk-checks; the one missing
	// disk is named.
	long := filepath.Join(dir, strings.Repeat("d", 40))
	if err := os.Mkdir(long, 0o700); err != nil {
		t.Fatal(err)
	}
	var disks strings.Builder
	for i := range 20 {
		p := filepath.Join(long, fmt.Sprintf("many-%02d.img", i))
		if i != 17 {
			if err := os.WriteFile(p, make([]byte, 512), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		disks.WriteString(fileDisk(p, fmt.Sprintf("vd%c", 'a'+i), ""))
	}
	defineGuest(t, a, "many1", "3f6b1c0e-9a51-4c1e-8d2a-0000000000b3", disks.String())
	_, err = a.client.Protect(ctx, "many1", api.ProtectRequest{})
	if err == nil || !strings.Contains(err.Error(), "kvm2: disk vdr: "+filepath.Join(long, "many-17.img")+": no such file or directory; put disk vdr on") {
		t.Errorf("protect many1 = %v, want disk vdr missing on kvm2", err)
	}

	// kvm2 leaves (its host shuts down): protect goes on without it and says so.
	b.shutdown(t)
	waitFor(t, "kvm1 to see kvm2 gone", func() bool {
		h, err := a.client.Host(ctx, "kvm2")
		return err == nil && h.State != "alive"
	})
	if err := os.Remove(filepath.Join(long, "many-00.img")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	v, err = a.client.Protect(ctx, "many1", api.ProtectRequest{})
	if err != nil {
		t.Fatalf("protect many1 with kvm2 gone: %v", err)
	}
	t.Logf("with kvm2 gone: %+v", v.DisksUnchecked)
	if len(v.DisksUnchecked) != 1 || v.DisksUnchecked[0].Host != "kvm2" || !strings.HasPrefix(v.DisksUnchecked[0].Reason, "it ") {
		t.Errorf("protect many1 with kvm2 gone = %+v, want kvm2 unchecked", v)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("protect took %v with kvm2 gone: it must not wait for it", took)
	}
}

// The disks of a protect's question travel in batches that fit one forwarded
// serf query with the forwarding envelope.
func TestDiskBatches(t *testing.T) {
	var disks []hypervisor.DiskSpec
	for i := range 40 {
		disks = append(disks, hypervisor.DiskSpec{Target: fmt.Sprint(i), Path: "/srv/vm/" + strings.Repeat("x", i*3) + ".img"})
	}
	disks = append(disks, hypervisor.DiskSpec{Target: "pool", Pool: "san", Volume: "lun7"})
	diskCheck := forward.Register(forward.New(1, nil, apiview.Classify), "disk-check",
		func(context.Context, string, drill.DiskCheckRequest) (drill.Answer, error) {
			return drill.Answer{}, nil
		})
	batches, err := drill.DiskBatches(disks)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, b := range batches {
		body, _ := json.Marshal(drill.DiskCheckRequest{Disks: b})
		if len(body) > drill.DiskCheckBudget+16 || len(b) > drill.DiskCheckMax || len(b) == 0 {
			t.Errorf("batch of %d disks is %d bytes", len(b), len(body))
		}
		// The whole forwarded request must fit one serf query.
		if err := diskCheck.Fits(64, "", drill.DiskCheckRequest{Disks: b}); err != nil {
			t.Errorf("forwarded disk-check: %v", err)
		}
		for _, w := range b {
			if d := disks[n]; w.Path != d.Path || w.Pool != d.Pool || w.Volume != d.Volume {
				t.Errorf("disk %d travels as %+v", n, w)
			}
			n++
		}
	}
	if n != len(disks) {
		t.Errorf("%d disks in the batches, want %d", n, len(disks))
	}
	_, err = drill.DiskBatches([]hypervisor.DiskSpec{{Target: "vdz", Path: "/" + strings.Repeat("p", 600)}})
	if err == nil || !strings.Contains(err.Error(), "source of disk vdz is too long") {
		t.Errorf("a 600-byte path: %v, want it refused", err)
	}
}

// Protect asked of a host that does not have the domain goes to the host
// whose libvirt runs it; one that no host has is not found, as a class the
// client tests.
func TestProtectThroughAnotherHostGoesToTheDomainsHost(t *testing.T) {
	a, b := twoDaemons(t)
	ctx := context.Background()
	v, err := b.client.Protect(ctx, "web1", api.ProtectRequest{Policy: api.Policy{Priority: "high"}})
	if err != nil {
		t.Fatalf("protect web1 through kvm2: %v", err)
	}
	if !v.Protected || v.Owner != 1 || v.OwnerName != "kvm1" || v.Policy.Priority != "high" || !slices.Equal(v.DisksReached, []string{"kvm2"}) {
		t.Errorf("protect web1 through kvm2 = %+v, want it protected on kvm1", v)
	}
	if va, err := a.client.VM(ctx, "web1"); err != nil || !va.Protected || va.Owner != 1 {
		t.Errorf("kvm1 sees web1 as %+v, %v", va, err)
	}
	// A second protect, through either host, says so without internals
	// (forwarded, it names the host that answered).
	for _, c := range []*api.Client{a.client, b.client} {
		_, err = c.Protect(ctx, "web1", api.ProtectRequest{})
		var re *api.RemoteError
		if !errors.Is(err, api.ErrConflict) || !errors.As(err, &re) || !strings.HasSuffix(re.Err.Error, "web1 is already protected") || strings.Contains(re.Err.Error, "record") || !strings.Contains(re.Err.Hint, "set-policy") {
			t.Errorf("second protect of web1 = %v, want a conflict: web1 is already protected", err)
		}
	}
	_, err = b.client.Protect(ctx, "nope", api.ProtectRequest{})
	if !errors.Is(err, api.ErrNotFound) {
		t.Errorf("protect nope through kvm2 = %v, want api.ErrNotFound", err)
	}
}

// TestConcurrentPolicyChangesAllLand: eight policy changes at once, each
// of another field, all answer 200 and all land. The policy used to be
// read before the VM manager's lock and written under it, so the last
// writer undid the others' changes while every request answered 200.
func TestConcurrentPolicyChangesAllLand(t *testing.T) {
	a := startDaemon(t, testConfig(t, formatLUN(t), "kvm1", 1, nil, freePort(t)))
	ctx := context.Background()
	if _, err := a.client.Protect(ctx, "web1", api.ProtectRequest{}); err != nil {
		t.Fatal(err)
	}
	for round := range 10 {
		n := round + 1
		want := api.Policy{Priority: strconv.Itoa(n), Restart: []string{"always", "on-failure"}[n%2], RestartMax: n,
			RestartWindow: time.Duration(n) * time.Minute, AntiAffinity: fmt.Sprint("group", n), PreferredHosts: []string{"kvm1"},
			StartOrder: n, StartDelay: time.Duration(n) * time.Second}
		changes := []api.Policy{{Priority: want.Priority}, {Restart: want.Restart}, {RestartMax: n}, {RestartWindow: want.RestartWindow},
			{AntiAffinity: want.AntiAffinity}, {PreferredHosts: want.PreferredHosts}, {StartOrder: n}, {StartDelay: want.StartDelay}}
		var wg sync.WaitGroup
		for _, p := range changes {
			wg.Go(func() {
				if _, err := a.client.SetPolicy(ctx, "web1", api.ProtectRequest{Policy: p}); err != nil {
					t.Errorf("round %d: set %+v: %v", round, p, err)
				}
			})
		}
		wg.Wait()
		v, err := a.client.VM(ctx, "web1")
		if err != nil {
			t.Fatal(err)
		}
		got := v.Policy
		got.Isolation, got.WaitGuestAgent = "", false
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d: policy after eight concurrent changes\n got %+v\nwant %+v", round, got, want)
		}
	}
}

// TestDaemonAPIIsStrict: the daemon's own socket refuses a misspelt policy
// field (it used to answer 200 and change nothing), answers an unknown
// path and a wrong method in the one error shape, and refuses a limit
// that is not a positive integer.
func TestDaemonAPIIsStrict(t *testing.T) {
	a := startDaemon(t, testConfig(t, formatLUN(t), "kvm1", 1, nil, freePort(t)))
	ctx := context.Background()
	if _, err := a.client.Protect(ctx, "web1", api.ProtectRequest{Policy: api.Policy{Priority: "high"}}); err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", a.d.cfg.API.Socket)
	}}}
	send := func(method, path, body string) (int, http.Header, api.Error) {
		req, _ := http.NewRequest(method, "http://wingmand"+path, strings.NewReader(body))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e api.Error
		json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode, resp.Header, e
	}
	for _, tc := range []struct {
		method, path, body string
		status             int
		class, msg         string
	}{
		{"POST", "/v1/vms/web1/policy", `{"policy": {"priorty": "low"}}`, 400, "invalid", `unknown field "priorty"`},
		{"POST", "/v1/vms/web1/policy", `{"policy": {"priority": "low"}}{}`, 400, "invalid", "more than one JSON value"},
		{"GET", "/v1/vm", "", 404, "not-found", "no route GET /v1/vm"},
		{"DELETE", "/v1/vms/web1", "", 405, "invalid", "method not allowed"},
		{"GET", "/v1/events?limit=x", "", 400, "invalid", "not a positive integer"},
		{"GET", "/v1/events?since=yesterday", "", 400, "invalid", "not a time"},
	} {
		status, hdr, e := send(tc.method, tc.path, tc.body)
		if status != tc.status || e.Class != tc.class || !strings.Contains(e.Error, tc.msg) || e.Hint == "" {
			t.Errorf("%s %s %s: %d %+v, want %d %s %q with a hint", tc.method, tc.path, tc.body, status, e, tc.status, tc.class, tc.msg)
		}
		if status == 405 && hdr.Get("Allow") != "GET" {
			t.Errorf("405 with Allow %q, want GET", hdr.Get("Allow"))
		}
	}
	if v, err := a.client.VM(ctx, "web1"); err != nil || v.Policy.Priority != "high" {
		t.Errorf("after the refused changes web1 is %+v (%v), want priority high", v.Policy, err)
	}
}
