package hypervisor

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"libvirt.org/go/libvirt"
)

// Replies as libvirt's virDomainQemuMonitorCommand returned them from QEMU
// 7.2 under libvirt 9.0 (-blockdev, so query-block names no device), with
// the id libvirt adds.
const (
	replyStatusIOError = `{"return":{"status":"io-error","singlestep":false,"running":false},"id":"libvirt-421"}`
	replyStatusRunning = `{"return":{"status":"running","singlestep":false,"running":true},"id":"libvirt-17"}`
	replyVersion       = `{"return":{"qemu":{"micro":0,"minor":2,"major":7},"package":"Debian 1:7.2+dfsg-7+deb12u7"},"id":"libvirt-422"}`
	replyBlock         = `{"return":[` +
		`{"io-status":"failed","device":"","locked":false,"removable":false,"inserted":{"iops_rd":0,"detect_zeroes":"off",` +
		`"image":{"virtual-size":10737418240,"filename":"/srv/san/web1.qcow2","cluster-size":65536,"format":"qcow2","actual-size":1470464,` +
		`"format-specific":{"type":"qcow2","data":{"compat":"1.1","compression-type":"zlib","lazy-refcounts":false,"refcount-bits":16,"corrupt":false,"extended-l2":false}},` +
		`"dirty-flag":false},"iops_wr":0,"ro":false,"node-name":"libvirt-2-format","backing_file_depth":0,"drv":"qcow2","iops":0,"bps_wr":0,` +
		`"write_threshold":0,"encrypted":false,"bps":0,"bps_rd":0,"cache":{"no-flush":false,"direct":true,"writeback":true},"file":"/srv/san/web1.qcow2"},` +
		`"qdev":"/machine/peripheral/virtio-disk0/virtio-backend","type":"unknown"},` +
		`{"io-status":"ok","device":"","locked":false,"removable":false,"inserted":{"image":{"filename":"/srv/san/seed.iso","format":"raw","virtual-size":374784},` +
		`"ro":true,"node-name":"libvirt-1-format","drv":"raw","file":"/srv/san/seed.iso"},"qdev":"ua-seed","type":"unknown"},` +
		`{"device":"","locked":false,"removable":true,"qdev":"ide0-0-0","tray_open":false,"type":"unknown"}],"id":"libvirt-423"}`
	replyNotFound = `{"id":"libvirt-424","error":{"class":"CommandNotFound","desc":"The command query-block has not been found"}}`
)

// recorded answers each QMP command from a table and notes what was sent.
type recorded struct {
	replies map[string]string // by "execute"
	errs    map[string]error  // libvirt's own failures, by "execute"
	sent    []string
}

func (r *recorded) run(cmd string) (string, error) {
	var c struct {
		Execute string `json:"execute"`
	}
	if err := json.Unmarshal([]byte(cmd), &c); err != nil {
		return "", err
	}
	r.sent = append(r.sent, c.Execute)
	if err := r.errs[c.Execute]; err != nil {
		return "", err
	}
	if out, ok := r.replies[c.Execute]; ok {
		return out, nil
	}
	return `{"error":{"class":"CommandNotFound","desc":"The command ` + c.Execute + ` has not been found"}}`, nil
}

// running is libvirt's view of a guest it believes runs.
var running = QMPDiagnostics{Domain: "web1", State: StateRunning, Reason: "booted", ReasonCode: int(libvirt.DOMAIN_RUNNING_BOOTED)}

// readQMP over the libvirt adapter, with replies recorded from a real QEMU:
// go-qemu's typed queries parse them, QEMU's error replies become errors
// (never an empty answer), and only read-only queries are sent.
func TestReadQMPRecordedReplies(t *testing.T) {
	r := &recorded{replies: map[string]string{
		"query-status": replyStatusIOError, "query-version": replyVersion, "query-block": replyBlock}}
	got, err := readQMP(newLibvirtMonitor(r.run), running)
	if err != nil {
		t.Fatal(err)
	}
	want := running
	want.Status, want.Condition, want.QEMUVersion = "io-error", ConditionIOError, "7.2.0"
	want.Disks = []QMPDisk{
		{Node: "libvirt-2-format", File: "/srv/san/web1.qcow2", IOStatus: "failed"},
		{Node: "libvirt-1-format", File: "/srv/san/seed.iso", IOStatus: "ok", ReadOnly: true},
		{},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("readQMP =\n%+v\nwant\n%+v", got, want)
	}
	if s := strings.Join(r.sent, " "); s != "query-status query-version query-block" {
		t.Errorf("sent %q, want only the three read-only queries", s)
	}

	// A QEMU without query-block still gives its run state; the diagnostic
	// says what is missing.
	r = &recorded{replies: map[string]string{"query-status": replyStatusRunning, "query-version": replyVersion, "query-block": replyNotFound}}
	got, err = readQMP(newLibvirtMonitor(r.run), running)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != "running" || got.Condition != ConditionRunning || got.Disks != nil ||
		len(got.Errors) != 1 || !strings.Contains(got.Errors[0], "query-block: qmp query-block: CommandNotFound: The command query-block has not been found") {
		t.Errorf("readQMP without query-block = %+v, want running with one error naming the query", got)
	}
}

// query-status must answer; each way it can fail is an error that says why.
func TestReadQMPFailures(t *testing.T) {
	noQMP := libvirt.Error{Code: libvirt.ERR_NO_SUPPORT, Message: "this function is not supported by the connection driver: virDomainQemuMonitorCommand"}
	for _, tc := range []struct {
		name    string
		reply   string
		err     error
		wantErr string
	}{
		{"error reply", `{"id":"libvirt-9","error":{"class":"GenericError","desc":"QEMU is not ready"}}`, nil, "qmp query-status: GenericError: QEMU is not ready"},
		{"garbage", `{"return":`, nil, "qmp query-status: bad reply"},
		{"neither", `{"id":"libvirt-9"}`, nil, "has neither return nor error"},
		{"unknown run state", `{"return":{"status":"hibernating","running":false}}`, nil, "hibernating"},
		{"libvirt error", "", noQMP, "not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorded{replies: map[string]string{"query-status": tc.reply}, errs: map[string]error{"query-status": tc.err}}
			got, err := readQMP(newLibvirtMonitor(r.run), running)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("readQMP = %+v, %v; want an error containing %q", got, err, tc.wantErr)
			}
			if tc.err != nil && !errors.Is(classify(err), ErrUnsupported) {
				t.Errorf("libvirt's error %v lost its class on the way through go-qemu: %v", tc.err, err)
			}
		})
	}
}

// test:/// has no QMP: the diagnostic says so for a running domain, and
// does not even ask for one that is off.
func TestQMPDiagnosticsOnTestDriver(t *testing.T) {
	t.Parallel()
	c := dialHost(t, "kvm1")
	ctx := testCtx(t)
	_, err := c.QMPDiagnostics(ctx, "web1")
	wantErrIs(t, err, ErrUnsupported)
	_, err = c.QMPDiagnostics(ctx, "db1")
	wantErrIs(t, err, ErrNotRunning)
	_, err = c.QMPDiagnostics(ctx, "nope")
	wantErrIs(t, err, ErrNotFound)
}
