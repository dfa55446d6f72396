package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// HostDiskDir is where Host.LoopDisk puts a host's own path to a disk, inside the host: under
// /var/lib/libvirt, which is bind-mounted per host.
const HostDiskDir = "/var/lib/libvirt/disks"

// LoopDisk gives the host its own block device over the image file (a loop device of the
// machine) and returns its path as the host sees it: HostDiskDir/<name>, the same path on every
// host that calls LoopDisk with the same name, as a SAN LUN has the same /dev/disk/by-id path on
// every host. Each host's QEMU then opens a different device, so QEMU's own image locking, which
// on one shared kernel would refuse a second opener of the same file, does not see the other
// host, as it cannot across real hosts. Detach removes the loop device; call it after the guests
// using it are gone.
func (h *Host) LoopDisk(file, name string) (path string, detach func() error, err error) {
	if name == "" || strings.ContainsAny(name, "/\x00") {
		return "", nil, fmt.Errorf("loop disk %q on %s: use a name without '/'", name, h.name)
	}
	out, err := exec.Command("losetup", "--find", "--show", "--direct-io=on", file).CombinedOutput()
	if err != nil {
		return "", nil, fmt.Errorf("loop disk %s on %s: losetup: %w: %s", file, h.name, err, strings.TrimSpace(string(out)))
	}
	dev := strings.TrimSpace(string(out))
	detach = func() error {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			return fmt.Errorf("detach %s of %s: %w: %s", dev, h.name, err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	dir := filepath.Join(h.dir, "lib", filepath.Base(HostDiskDir))
	link := filepath.Join(dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, fmt.Errorf("loop disk on %s: %w (also %v)", h.name, err, detach())
	}
	_ = os.Remove(link)
	if err := os.Symlink(dev, link); err != nil {
		return "", nil, fmt.Errorf("loop disk on %s: %w (also %v)", h.name, err, detach())
	}
	return filepath.Join(HostDiskDir, name), detach, nil
}
