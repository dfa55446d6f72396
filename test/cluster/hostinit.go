package cluster

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// The harness re-executes its own binary as the init (PID 1) of each host's PID namespace. The
// package's init function recognises that role from the environment and never returns then, so any
// binary that imports this package (a test binary, a demo program) can be a host init.
const (
	roleEnv     = "WINGMAN_CLUSTER_ROLE"
	roleHost    = "host-init"
	hostSpecEnv = "WINGMAN_CLUSTER_HOST_SPEC"
)

// initSpec is what a host init needs to set up its mount and UTS namespaces.
type initSpec struct {
	Hostname string
	Binds    []bindMount
}

type bindMount struct {
	Source, Target string
}

// fixedLibvirtDirs are the paths a root libvirtd always uses, whatever its --config says; each host
// gets a private directory bind-mounted over each of them.
var fixedLibvirtDirs = []struct{ sub, target string }{
	{"etc", "/etc/libvirt"},
	{"run", "/run/libvirt"},
	{"lib", "/var/lib/libvirt"},
	{"log", "/var/log/libvirt"},
	{"cache", "/var/cache/libvirt"},
}

func init() {
	if os.Getenv(roleEnv) == roleHost {
		os.Exit(hostInitMain())
	}
}

// hostInitMain runs as PID 1 of a new PID, mount, UTS, network and IPC namespace. It makes the
// mounts private, mounts a /proc for the new PID namespace, bind-mounts the host's libvirt
// directories, sets the hostname, reports "ok" (or the error) on fd 3, and then reaps orphans
// forever. Killing it kills every process of the host.
func hostInitMain() int {
	ready := os.NewFile(3, "ready")
	if err := setupHost(); err != nil {
		fmt.Fprintf(ready, "error: %v\n", err)
		return 1
	}
	if _, err := ready.WriteString("ok\n"); err != nil {
		return 1
	}
	ready.Close()
	reapForever()
	return 0
}

func setupHost() error {
	var spec initSpec
	if err := json.Unmarshal([]byte(os.Getenv(hostSpecEnv)), &spec); err != nil {
		return fmt.Errorf("read host spec from %s: %w", hostSpecEnv, err)
	}
	// Without this, mounts could propagate back to the root namespace if / is a shared mount.
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	// libvirtd finds its QEMU processes by namespace-relative PID in /proc.
	if err := syscall.Mount("proc", "/proc", "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	for _, b := range spec.Binds {
		if err := syscall.Mount(b.Source, b.Target, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s over %s: %w", b.Source, b.Target, err)
		}
	}
	if err := syscall.Sethostname([]byte(spec.Hostname)); err != nil {
		return fmt.Errorf("set hostname %q: %w", spec.Hostname, err)
	}
	return nil
}

// reapForever waits for every child and orphan of the namespace so none stays a zombie: QEMU
// daemonises, so its parent becomes this init.
func reapForever() {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGCHLD)
	for {
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if err == syscall.EINTR {
				continue
			}
			if pid <= 0 || err != nil {
				break
			}
		}
		<-sigs
	}
}
