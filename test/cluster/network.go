package cluster

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// The switch is a network namespace, held by a "sleep infinity" child of the harness, with a
// bridge br0 and one veth port per host ("port<N>"); the other end of each veth is eth0 inside
// the host. No interface, address or route is ever added to the root namespace.

// startSwitch creates the switch namespace and its bridge.
func (c *Cluster) startSwitch(ctx context.Context) error {
	cmd := exec.Command("sleep", "infinity")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	if err := startBound(cmd); err != nil {
		return fmt.Errorf("start switch namespace (needs root): %w", err)
	}
	c.sw, c.swDone = cmd, waited(cmd)
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0"},
		{"link", "set", "br0", "up"},
	} {
		if err := c.switchIP(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

// SwitchPID is the PID of the process holding the switch's network namespace (while the cluster runs),
// for tests that check what the cluster leaves behind.
func (c *Cluster) SwitchPID() int {
	if c.sw == nil {
		return 0
	}
	return c.sw.Process.Pid
}

// switchIP runs ip with args in the switch's network namespace.
func (c *Cluster) switchIP(ctx context.Context, args ...string) error {
	return runIP(ctx, c.sw.Process.Pid, "switch", args...)
}

// runIP runs ip in the network namespace of pid.
func runIP(ctx context.Context, pid int, where string, args ...string) error {
	a := append([]string{"--target", strconv.Itoa(pid), "--net", "--", "ip"}, args...)
	out, err := exec.CommandContext(ctx, "nsenter", a...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s in %s: %w: %s", strings.Join(args, " "), where, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func portName(h *Host) string { return "port" + strconv.Itoa(h.index) }

// plugIn creates h's veth pair straight between the switch and h, and configures both ends.
func (c *Cluster) plugIn(ctx context.Context, h *Host) error {
	initPID := h.InitPID()
	port := portName(h)
	prefix := strconv.Itoa(c.cfg.Subnet.Bits())
	// After a quick power cycle the old port can outlive its host's network namespace for a
	// moment (the kernel tears it down asynchronously): remove it, else the add fails.
	_ = c.switchIP(ctx, "link", "del", port)
	if err := c.switchIP(ctx, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", strconv.Itoa(initPID)); err != nil {
		return fmt.Errorf("plug %s in: %w", h.name, err)
	}
	for _, args := range [][]string{
		{"link", "set", port, "master", "br0"},
		{"link", "set", port, "up"},
	} {
		if err := c.switchIP(ctx, args...); err != nil {
			return fmt.Errorf("plug %s in: %w", h.name, err)
		}
	}
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"addr", "add", h.addr.String() + "/" + prefix, "dev", "eth0"},
		{"link", "set", "eth0", "up"},
	} {
		if err := runIP(ctx, initPID, h.name, args...); err != nil {
			return fmt.Errorf("plug %s in: %w", h.name, err)
		}
	}
	return nil
}

// Partition cuts h off the network: its port on the switch goes down, so h reaches no other
// host and no host reaches h (packets are dropped, connections hang, nothing is refused). h keeps
// running, and so do its guests and its libvirtd (reachable from the harness by URI).
func (c *Cluster) Partition(h *Host) error {
	if err := c.setPort(h, "down"); err != nil {
		return fmt.Errorf("partition %s: %w", h.name, err)
	}
	return nil
}

// Heal puts h back on the network after Partition.
func (c *Cluster) Heal(h *Host) error {
	if err := c.setPort(h, "up"); err != nil {
		return fmt.Errorf("heal %s: %w", h.name, err)
	}
	return nil
}

// Partitioned reports whether h is cut off by Partition.
func (c *Cluster) Partitioned(h *Host) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.partitioned
}

func (c *Cluster) setPort(h *Host, state string) error {
	if !h.On() {
		return fmt.Errorf("the host is powered off (its port is gone)")
	}
	if err := c.switchIP(context.Background(), "link", "set", portName(h), state); err != nil {
		return err
	}
	h.mu.Lock()
	h.partitioned = state == "down"
	h.mu.Unlock()
	return nil
}
