package systemd

import (
	"context"
	"strings"
	"testing"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"
)

func TestGoingDown(t *testing.T) {
	job := func(unit, typ string) sd.JobStatus { return sd.JobStatus{Unit: unit, JobType: typ, Status: "waiting"} }
	restart := job("wingmand.service", "restart")
	for _, tc := range []struct {
		name  string
		jobs  []sd.JobStatus
		state string
		down  bool
		why   string
	}{
		{"systemctl restart wingmand", []sd.JobStatus{restart}, "running", false, "systemd is running with no shutdown job"},
		{"systemctl stop wingmand on a degraded host", []sd.JobStatus{job("wingmand.service", "stop")}, "degraded", false, "systemd is degraded"},
		{"systemctl poweroff", []sd.JobStatus{job("wingmand.service", "stop"), job("poweroff.target", "start")}, "running", true, "start job for poweroff.target (waiting)"},
		{"systemctl reboot", []sd.JobStatus{job("reboot.target", "start"), job("shutdown.target", "start")}, "stopping", true, "reboot.target"},
		{"systemctl kexec", []sd.JobStatus{job("kexec.target", "start")}, "running", true, "kexec.target"},
		{"systemctl halt", []sd.JobStatus{job("halt.target", "start")}, "running", true, "halt.target"},
		{"systemctl soft-reboot", []sd.JobStatus{job("soft-reboot.target", "start")}, "running", true, "soft-reboot.target"},
		{"the jobs are done, the state says it", nil, "stopping", true, "system state is stopping"},
		{"a stop job for a shutdown target is no shutdown", []sd.JobStatus{job("shutdown.target", "stop"), restart}, "running", false, "no shutdown job"},
	} {
		down, why := goingDown(tc.jobs, tc.state)
		if down != tc.down || !strings.Contains(why, tc.why) {
			t.Errorf("%s: %v (%s), want %v (%s)", tc.name, down, why, tc.down, tc.why)
		}
	}
}

// Where systemd cannot be asked (these test machines run none), the answer
// is an error within the timeout; where it can, this host is not going down.
func TestHostGoingDownAnswersInTime(t *testing.T) {
	start := time.Now()
	down, why, err := Manager{Timeout: time.Second}.HostGoingDown(context.Background())
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("took %v with a timeout of 1s", took)
	}
	if err != nil {
		t.Logf("no systemd here: %v", err)
		return
	}
	if down {
		t.Errorf("systemd says this host is going down: %s", why)
	}
}
