// Package systemd asks the host's systemd, over D-Bus, whether the host
// itself is going down (shutdown, reboot, halt, kexec, soft-reboot) while
// wingmand stops: then shutdown.policy applies; otherwise only the service
// stops (a restart, an upgrade) and the guests stay (vm/maintenance's
// PlanStop). It is the one package of the module that imports
// go-systemd's dbus package, and it implements maintenance.ServiceManager.
//
// It must never change anything in systemd (no job, no unit), nor wait
// long: a stop that cannot ask gets an error within Manager.Timeout, which
// the caller takes as "only the service stops".
package systemd

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"
)

// Manager is the host's systemd (PID 1).
type Manager struct {
	// Timeout bounds one question, the connection included; 0 means 2 s.
	Timeout time.Duration
}

// shutdownTargets are the targets a start job of which takes the host
// down (systemd.special(7)); each pulls in shutdown.target, except
// soft-reboot.target on systemds older than 254, which do not have it.
var shutdownTargets = []string{"shutdown.target", "poweroff.target", "reboot.target", "halt.target", "kexec.target", "soft-reboot.target"}

// HostGoingDown reports whether systemd is taking the host down: a start
// job for one of the shutdown targets is queued or running, or the
// manager's SystemState is "stopping" (what `systemctl
// is-system-running` prints then). It asks PID 1 on its private socket
// first (root only; the system bus may already be stopped during a
// shutdown), then through the system bus.
func (m Manager) HostGoingDown(ctx context.Context) (bool, string, error) {
	timeout := m.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	// The connection closes when ctx ends, which also bounds
	// GetManagerProperty (it takes no context).
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := sd.NewSystemdConnectionContext(ctx)
	if err != nil {
		var busErr error
		if conn, busErr = sd.NewSystemConnectionContext(ctx); busErr != nil {
			return false, "", fmt.Errorf("connect to systemd: %w; nor through the system bus: %w", err, busErr)
		}
	}
	defer conn.Close()
	jobs, err := conn.ListJobsContext(ctx)
	if err != nil {
		return false, "", fmt.Errorf("list systemd's jobs: %w", err)
	}
	state, err := conn.GetManagerProperty("SystemState")
	if err != nil {
		return false, "", fmt.Errorf("read systemd's SystemState: %w", err)
	}
	if s, err := strconv.Unquote(state); err == nil { // a GVariant string: "running"
		state = s
	}
	down, why := goingDown(jobs, state)
	return down, why, nil
}

// goingDown decides from systemd's jobs and system state.
func goingDown(jobs []sd.JobStatus, systemState string) (bool, string) {
	for _, j := range jobs {
		if j.JobType == "start" && slices.Contains(shutdownTargets, j.Unit) {
			return true, fmt.Sprintf("systemd has a %s job for %s (%s)", j.JobType, j.Unit, j.Status)
		}
	}
	if systemState == "stopping" {
		return true, "systemd's system state is stopping"
	}
	return false, fmt.Sprintf("systemd is %s with no shutdown job: only wingmand stops", systemState)
}
