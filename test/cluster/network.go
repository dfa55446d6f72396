package cluster

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The switch is a network namespace, held by a "sleep infinity" child of the harness, with a
// bridge br0 and one veth port per host ("port<N>"); the other end of each veth is eth0 inside
// the host. No interface, address or route is ever added to the root namespace.

// startSwitch creates the switch namespace and its bridge.
func (c lanSwitch) startSwitch(ctx context.Context) error {
	cmd := exec.Command("sleep", "infinity")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	if err := startBound(cmd); err != nil {
		return fmt.Errorf("start switch namespace (needs root): %w", err)
	}
	c.sw, c.swDone = cmd, waited(cmd)
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0"},
		// A fixed MAC: a bridge otherwise takes the lowest of its ports', and when that host
		// powers off, ClientAddr moves to another MAC that the hosts' ARP caches do not know for
		// up to a minute (seen as timeouts to the harness's servers, ListenSwitch).
		{"link", "set", "br0", "address", switchMAC},
		{"link", "set", "br0", "up"},
		{"addr", "add", c.ClientAddr().String() + "/" + strconv.Itoa(c.cfg.Subnet.Bits()), "dev", "br0"},
	} {
		if err := c.switchIP(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

// switchMAC is the switch's own MAC on br0 (locally administered).
const switchMAC = "02:77:00:00:00:fe"

// ClientAddr is the switch's own address on the test network, the last one of Config.Subnet:
// where the guests' users are (DialSwitch).
func (c *Cluster) ClientAddr() netip.Addr {
	a := c.cfg.Subnet.Addr()
	for i := 0; i < 1<<(32-c.cfg.Subnet.Bits())-2; i++ {
		a = a.Next()
	}
	return a
}

// GuestAddr is the address of the nth guest (1, 2, ...) on the test network: the subnet's
// 100+nth address, above every host's. It fails when the subnet has no room for it.
func (c *Cluster) GuestAddr(n int) (netip.Addr, error) {
	a := c.cfg.Subnet.Addr()
	for i := 0; i < 100+n; i++ {
		a = a.Next()
	}
	if n < 1 || 100+n <= c.cfg.Hosts || !c.cfg.Subnet.Contains(a) || a.Compare(c.ClientAddr()) >= 0 {
		return netip.Addr{}, fmt.Errorf("guest address %d: subnet %v has no room for it above the hosts", n, c.cfg.Subnet)
	}
	return a, nil
}

// GuestMAC is the fixed MAC address of the nth guest's NIC (locally administered, QEMU's prefix).
func GuestMAC(n int) string { return fmt.Sprintf("52:54:00:77:%02x:%02x", n>>8&0xff, n&0xff) }

// DialSwitch opens a TCP connection to addr from the switch's network namespace, at ClientAddr:
// as a user on the LAN reaches a guest, whichever host runs it. The harness itself stays in the
// root namespace: only the socket is made in the switch's, on a thread that then exits.
func (c *Cluster) DialSwitch(ctx context.Context, addr string, timeout time.Duration) (net.Conn, error) {
	return inSwitch(c, "dial "+addr+" from the switch", func() (net.Conn, error) {
		d := net.Dialer{Timeout: timeout}
		return d.DialContext(ctx, "tcp", addr)
	})
}

// ListenSwitch listens on ClientAddr:port (0: any free port) in the switch's network namespace:
// a server of the harness (a mail server, a webhook receiver) that every host reaches on the
// test network, as a server on the LAN. Only the socket is in the switch's namespace; serve it
// from any goroutine. It goes away with the cluster.
func (c *Cluster) ListenSwitch(port int) (net.Listener, error) {
	addr := net.JoinHostPort(c.ClientAddr().String(), strconv.Itoa(port))
	return inSwitch(c, "listen on "+addr+" in the switch", func() (net.Listener, error) { return net.Listen("tcp", addr) })
}

// inSwitch runs fn on a thread in the switch's network namespace. The thread is never unlocked:
// it ends with its goroutine, so no other goroutine ever runs in the switch's namespace.
func inSwitch[T any](c *Cluster, what string, fn func() (T, error)) (T, error) {
	var zero T
	if c.sw == nil {
		return zero, fmt.Errorf("%s: the cluster is closed", what)
	}
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	pid := c.sw.Process.Pid
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/net", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- result{err: fmt.Errorf("%s: %w", what, err)}
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			ch <- result{err: fmt.Errorf("%s: setns: %w", what, err)}
			return
		}
		v, err := fn()
		ch <- result{v, err}
	}()
	r := <-ch
	return r.v, r.err
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
func (c lanSwitch) switchIP(ctx context.Context, args ...string) error {
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
func (c lanSwitch) plugIn(ctx context.Context, h *Host) error {
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
	// The host's address lives on its own bridge br0, with eth0 as its uplink port, as on a KVM
	// host whose guests are bridged onto the LAN: a guest's NIC joins br0 (GuestSpec.MAC) and is
	// reachable from the switch at its own address, from whichever host runs it.
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0"},
		{"link", "set", "eth0", "master", "br0"},
		{"addr", "add", h.addr.String() + "/" + prefix, "dev", "br0"},
		{"link", "set", "eth0", "up"},
		{"link", "set", "br0", "up"},
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
	if err := (lanSwitch{c}).setPort(h, "down"); err != nil {
		return fmt.Errorf("partition %s: %w", h.name, err)
	}
	return nil
}

// Heal puts h back on the network after Partition.
func (c *Cluster) Heal(h *Host) error {
	if err := (lanSwitch{c}).setPort(h, "up"); err != nil {
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

// CutLink drops every frame between a and b in the switch (an nftables bridge rule on their
// ports), both ways: they no longer reach each other, while each still reaches the switch's own
// address (ClientAddr, the gateway of isolation tests) and every other host. JoinLinks undoes it.
// (Functions, not methods: Cluster is at the guard's limit of methods.)
func CutLink(c *Cluster, a, b *Host) error {
	pa, pb := portName(a), portName(b)
	script := fmt.Sprintf(`add table bridge wingman_cut
add chain bridge wingman_cut forward { type filter hook forward priority 0; policy accept; }
add rule bridge wingman_cut forward iifname %[1]q oifname %[2]q drop comment %[3]q
add rule bridge wingman_cut forward iifname %[2]q oifname %[1]q drop comment %[3]q
`, pa, pb, pa+"-"+pb)
	if err := (lanSwitch{c}).nft(script); err != nil {
		return fmt.Errorf("cut the link between %s and %s: %w", a.name, b.name, err)
	}
	return nil
}

// JoinLinks removes every cut that CutLink made.
func JoinLinks(c *Cluster) error {
	if err := (lanSwitch{c}).nft("delete table bridge wingman_cut\n"); err != nil {
		return fmt.Errorf("join the cut links: %w", err)
	}
	return nil
}

// nft runs an nftables script in the switch's network namespace.
func (c lanSwitch) nft(script string) error {
	if c.sw == nil {
		return fmt.Errorf("the cluster is closed")
	}
	cmd := exec.Command("nsenter", "--target", strconv.Itoa(c.sw.Process.Pid), "--net", "--", "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft (make deps installs nftables): %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (c lanSwitch) setPort(h *Host, state string) error {
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

// lanSwitch is the cluster's switch plumbing: the bridge namespace and the
// ports of the hosts.
type lanSwitch struct{ *Cluster }
