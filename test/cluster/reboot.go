package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// A reboot in the test cluster must not reboot the machine: each host's wingmand gets
// maintenance.reboot_command = "touch <RebootRequestFile>", and the harness's BMC loop, seeing
// the file, plays the host's systemd and firmware: it stops wingmand telling it the host goes
// down (Host.ShutdownWingmand: its shutdown policy runs, as under `systemctl reboot`), powers the
// host off and on, and starts wingmand again with the options it last had.

// RebootRequestFile is the file through which the host's wingmand asks the harness to reboot it.
func (h *Host) RebootRequestFile() string { return filepath.Join(h.dir, "reboot-request") }

// Reboots is how many reboots wingmand asked for on h and the harness completed.
func (h *Host) Reboots() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.reboots
}

// rebootCommand is the maintenance.reboot_command of h's wingmand.
func (h *Host) rebootCommand() string { return "touch " + h.RebootRequestFile() }

// checkRebootRequest starts a reboot of h when its wingmand asked for one. Called by the BMC loop.
func (c rebooter) checkRebootRequest(h *Host) {
	if _, err := os.Stat(h.RebootRequestFile()); err != nil {
		return
	}
	os.Remove(h.RebootRequestFile())
	h.mu.Lock()
	if h.rebooting || h.wingmand == nil {
		h.mu.Unlock()
		return
	}
	h.rebooting = true
	opts := h.wingmand.opts
	h.mu.Unlock()
	s := &c.wingman
	s.reboots.Add(1)
	go func() {
		defer s.reboots.Done()
		err := c.reboot(h, opts)
		h.mu.Lock()
		h.rebooting = false
		if err == nil {
			h.reboots++
		}
		h.mu.Unlock()
		if err != nil {
			fmt.Fprintf(os.Stderr, "test cluster: reboot of %s: %v\n", h.name, err)
		}
	}()
}

func (c rebooter) reboot(h *Host, opts WingmandOptions) error {
	fmt.Fprintf(os.Stderr, "test cluster: %s's wingmand asked for a reboot\n", h.name)
	if h.WingmandRunning() {
		if err := h.ShutdownWingmand(3 * time.Minute); err != nil {
			return err
		}
	}
	if err := h.powerOff(); err != nil {
		return err
	}
	// What a real reboot resets: the hardware watchdog, and /run, where a real wingmand keeps
	// its resume file (here next to its socket).
	os.Remove(h.WatchdogFile())
	os.Remove(filepath.Join(h.WingmanDir(), "heartbeat.state"))
	select {
	case <-c.wingman.bmcStop:
		return fmt.Errorf("the cluster is closing: %s stays off", h.name)
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := h.powerOn(ctx); err != nil {
		return err
	}
	return c.StartWingmand(ctx, h, opts)
}

// rebooter carries out the reboots that hosts request of the cluster.
type rebooter struct{ *Cluster }
