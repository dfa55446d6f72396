package hypervisor

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// libvirt's lock manager (qemu.conf's lock_manager: "lockd" for virtlockd,
// "sanlock") refuses to start a guest whose disk leases another host holds:
// the second guard, below Wingman's own lease, against two copies of one VM.
// Its configuration files say what libvirt will use at its next start; what
// it uses now is the plugin the running daemon loaded: libvirt dlopens
// <libdir>/libvirt/lock-driver/<name>.so when its QEMU driver starts, and
// loads none for the default "nop".

// Lock managers as LockManagerInUse reports them.
const (
	LockManagerNone    = "none"    // the daemon runs QEMU guests without a lock manager
	LockManagerLockd   = "lockd"   // virtlockd
	LockManagerSanlock = "sanlock" // sanlock
)

// qemuDaemons are the libvirt daemons that run the QEMU driver: the
// monolithic libvirtd and the modular virtqemud.
var qemuDaemons = []string{"libvirtd", "virtqemud"}

// LockManagerInUse says which lock manager the libvirt daemon that runs
// QEMU guests on this machine has loaded, read from its memory map under
// procRoot ("/proc"): LockManagerLockd, LockManagerSanlock, another plugin's
// name, or LockManagerNone. It fails when no such daemon runs or its map
// cannot be read (not root).
func LockManagerInUse(procRoot string) (string, error) {
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return "", fmt.Errorf("lock manager: %w", err)
	}
	var errs []error
	found := 0
	for _, e := range entries {
		pid := e.Name()
		if pid == "" || strings.Trim(pid, "0123456789") != "" {
			continue
		}
		comm, err := os.ReadFile(filepath.Join(procRoot, pid, "comm"))
		if err != nil || !isQEMUDaemon(strings.TrimSpace(string(comm))) {
			continue
		}
		maps, err := os.ReadFile(filepath.Join(procRoot, pid, "maps"))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		found++
		if name := lockDriverInMaps(maps); name != "" {
			return name, nil
		}
	}
	if found == 0 {
		if len(errs) > 0 {
			return "", fmt.Errorf("lock manager: read the libvirt daemon's memory map (run as root): %w", errors.Join(errs...))
		}
		return "", fmt.Errorf("lock manager: no %s process in %s: start libvirt", strings.Join(qemuDaemons, " or "), procRoot)
	}
	return LockManagerNone, nil
}

func isQEMUDaemon(comm string) bool {
	for _, d := range qemuDaemons {
		if comm == d {
			return true
		}
	}
	return false
}

// lockDriverInMaps is the lock manager plugin mapped in a /proc/PID/maps
// text ("": none): the name of a .../libvirt/lock-driver/NAME.so.
func lockDriverInMaps(maps []byte) string {
	s := bufio.NewScanner(bytes.NewReader(maps))
	s.Buffer(make([]byte, 0, 4096), 1<<20)
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) < 6 {
			continue
		}
		path := strings.Join(f[5:], " ")
		dir, file := filepath.Split(path)
		if filepath.Base(filepath.Clean(dir)) == "lock-driver" && strings.HasSuffix(file, ".so") {
			return strings.TrimSuffix(file, ".so")
		}
	}
	return ""
}
