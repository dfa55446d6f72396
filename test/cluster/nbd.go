package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// NBDServer is a qemu-nbd process serving one raw disk image on a Unix socket in the shared
// directory, so that a guest's disk can be made to die: KillNBD, and the guest's next read fails
// and libvirt pauses it with reason I/O error (GuestSpec.XML sets error_policy='stop').
// It runs in the harness's namespaces, outside every host, so it survives host power-offs.
type NBDServer struct {
	Socket string // Unix socket path: GuestSpec.NBDSocket
	Disk   string // the image served

	cmd  *exec.Cmd
	done <-chan struct{}
}

// NBDExport is the export name under which ServeDiskNBD serves a disk, and which GuestSpec.XML
// asks for. It must not be empty: libvirt 9.0 reports a network disk's export name as the source
// path of its I/O-error event, and a disk without one makes libvirtd fail to encode the event
// ("Unable to encode message payload"), so that no client ever receives it.
const NBDExport = "disk"

// ServeDiskNBD starts qemu-nbd serving disk (a raw image, e.g. from CreateDisk) and waits until
// its socket is there. Up to 8 clients may connect at once (a migration needs two).
func (c *Cluster) ServeDiskNBD(ctx context.Context, disk string) (*NBDServer, error) {
	c.mu.Lock()
	c.nbdCount++
	n := c.nbdCount
	c.mu.Unlock()
	sock := filepath.Join(c.sharedDir, "nbd"+strconv.Itoa(n)+".sock")
	logPath := filepath.Join(c.dir, "nbd"+strconv.Itoa(n)+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("serve %s over nbd: %w", disk, err)
	}
	defer logf.Close()
	cmd := exec.Command("qemu-nbd", "--socket="+sock, "--format=raw", "--persistent", "--shared=8", "--export-name="+NBDExport,
		"--cache=none", "--aio=native", disk)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := startBound(cmd); err != nil {
		return nil, fmt.Errorf("serve %s over nbd: start qemu-nbd (package qemu-utils): %w", disk, err)
	}
	s := &NBDServer{Socket: sock, Disk: disk, cmd: cmd, done: waited(cmd)}
	c.mu.Lock()
	c.nbd[s] = struct{}{}
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, c.cfg.StartTimeout)
	defer cancel()
	// qemu-nbd creates the socket after listen(2); connecting to probe would use up a client slot.
	err = pollUntil(ctx, 10*time.Millisecond, func() (bool, error) {
		select {
		case <-s.done:
			return false, fmt.Errorf("qemu-nbd exited: %s", tail(logPath, 5))
		default:
		}
		_, err := os.Stat(sock)
		return err == nil, nil
	})
	if err != nil {
		_ = c.KillNBD(s)
		return nil, fmt.Errorf("serve %s over nbd: %w", disk, err)
	}
	return s, nil
}

// KillNBD kills the NBD server with SIGKILL and waits until it is gone. Killing one already
// killed does nothing.
func (c *Cluster) KillNBD(s *NBDServer) error {
	c.mu.Lock()
	delete(c.nbd, s)
	c.mu.Unlock()
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil && !isNotRunning(err) {
		return fmt.Errorf("kill nbd server of %s: %w", s.Disk, err)
	}
	if !waitDone(s.done, c.cfg.StopTimeout) {
		return fmt.Errorf("kill nbd server of %s: still there after %v", s.Disk, c.cfg.StopTimeout)
	}
	return nil
}
