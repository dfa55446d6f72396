package integration

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/wingmanha/wingman/test/cluster"
)

// baseline is what the machine looks like from the test process before any cluster starts: the
// mount points of its mount namespace and the interfaces of its network namespace. A cluster
// must change neither, while it runs or after it closed.
type baseline struct {
	mounts []string
	links  []string
}

func takeBaseline() (baseline, error) {
	m, err := mountPoints()
	if err != nil {
		return baseline{}, err
	}
	l, err := rootLinks()
	if err != nil {
		return baseline{}, err
	}
	return baseline{mounts: m, links: l}, nil
}

// footprint identifies what a running cluster owns: its directory, the PIDs of its host inits
// and the namespaces of its hosts and of its switch.
type footprint struct {
	dir        string
	initPIDs   []int
	namespaces map[string]string // namespace link ("pid:[4026532301]") -> what it is
	// closed is when Close returned (ticks since boot, as /proc/PID/stat counts), 0 before: a
	// process started later that sits in a namespace with one of the cluster's inode numbers is
	// in a new namespace that reused the number (the kernel recycles them; another test's
	// cluster running beside this one got one), not a leftover.
	closed uint64
}

// startTicks is when pid started, in clock ticks since boot (field 22 of /proc/PID/stat).
func startTicks(pid int) (uint64, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	i := strings.LastIndexByte(string(b), ')') // the command may hold spaces and parentheses
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, false
	}
	t, err := strconv.ParseUint(f[19], 10, 64)
	return t, err == nil
}

// markClosed notes that Close returned: startTicks of a process started now.
func (f *footprint) markClosed() {
	cmd := exec.Command("true")
	if cmd.Start() == nil {
		f.closed, _ = startTicks(cmd.Process.Pid)
		_ = cmd.Wait()
	}
}

// recordFootprint notes what c owns; all its hosts must be on.
func recordFootprint(c *cluster.Cluster) (footprint, error) {
	f := footprint{dir: c.Dir(), namespaces: map[string]string{}}
	add := func(pid int, what string, kinds ...string) error {
		for _, ns := range kinds {
			link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
			if err != nil {
				return fmt.Errorf("record footprint of the cluster: %s: %w", what, err)
			}
			f.namespaces[link] = what + " " + ns + " namespace"
		}
		return nil
	}
	for _, h := range c.Hosts() {
		pid := h.InitPID()
		if pid == 0 {
			return f, fmt.Errorf("record footprint of the cluster: %s is off", h.Name())
		}
		f.initPIDs = append(f.initPIDs, pid)
		if err := add(pid, h.Name(), "pid", "net", "mnt", "uts", "ipc"); err != nil {
			return f, err
		}
	}
	if err := add(c.SwitchPID(), "switch", "net"); err != nil {
		return f, err
	}
	return f, nil
}

// leftovers lists what is left of the cluster after Close: processes in its namespaces, host
// inits, nsenters into its hosts, processes whose command line mentions its directory (QEMU,
// qemu-nbd); mounts and network interfaces of the test's namespaces that were not in base; the
// cluster directory.
func (f footprint) leftovers(base baseline) []string {
	left := f.processes()
	left = append(left, namespaceChanges(base)...)
	if _, err := os.Stat(f.dir); err == nil {
		left = append(left, "directory "+f.dir)
	}
	return left
}

func (f footprint) processes() []string {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return []string{fmt.Sprintf("cannot list processes: %v", err)}
	}
	var left []string
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || len(cmdline) == 0 {
			continue // gone, or a kernel thread
		}
		cmd := strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))
		why := ""
		if strings.Contains(cmd, f.dir) {
			why = "its command line mentions the cluster dir"
		}
		if slices.Contains(f.initPIDs, pid) && strings.HasPrefix(cmd, "wingman-host-init:") {
			why = "a host init"
		}
		for _, ip := range f.initPIDs {
			if strings.HasPrefix(cmd, fmt.Sprintf("nsenter --target %d ", ip)) {
				why = "an nsenter into a host"
			}
		}
		for _, ns := range []string{"pid", "net", "mnt", "uts", "ipc"} {
			if link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns)); err == nil && f.namespaces[link] != "" {
				if st, ok := startTicks(pid); ok && f.closed != 0 && st > f.closed {
					continue // a recycled namespace number (see footprint.closed)
				}
				why = "in the " + f.namespaces[link]
			}
		}
		if why != "" {
			left = append(left, fmt.Sprintf("process %d (%s): %s", pid, cmd, why))
		}
	}
	return left
}

// namespaceChanges lists the mounts and network interfaces of the test's own namespaces that
// were not in base: a cluster must never add any, not even while it runs.
func namespaceChanges(base baseline) []string {
	var changes []string
	mounts, err := mountPoints()
	if err != nil {
		changes = append(changes, err.Error())
	}
	for _, m := range mounts {
		if !slices.Contains(base.mounts, m) {
			changes = append(changes, "mount "+m)
		}
	}
	links, err := rootLinks()
	if err != nil {
		changes = append(changes, err.Error())
	}
	for _, l := range links {
		if !slices.Contains(base.links, l) {
			changes = append(changes, "network interface "+l+" in the test's namespace")
		}
	}
	return changes
}

// mountPoints lists "mount point (fs type, source)" for each line of /proc/self/mountinfo.
func mountPoints() ([]string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		pre, post, _ := strings.Cut(line, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 2 {
			continue
		}
		out = append(out, fmt.Sprintf("%s (%s %s, root %s)", f[4], g[0], g[1], f[3]))
	}
	return out, nil
}

// rootLinks lists the network interfaces of the test's own network namespace.
func rootLinks() ([]string, error) {
	out, err := exec.Command("ip", "-o", "link", "show").Output()
	if err != nil {
		return nil, fmt.Errorf("ip link show: %w", err)
	}
	var links []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			links = append(links, strings.TrimSuffix(f[1], ":"))
		}
	}
	return links, nil
}

// TestCloseLeavesNothing brings up a cluster of its own, runs a guest on each host, one on a
// disk served by qemu-nbd, partitions a host and kills a libvirtd, closes the cluster, and then
// finds no process, mount, network interface or directory of it left.
func TestCloseLeavesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("integration: skipped in -short mode (starts real libvirtd and QEMU)")
	}
	base, err := takeBaseline()
	if err != nil {
		t.Fatal(err)
	}
	cfg := cluster.DefaultConfig()
	// Same subnet and ports as the shared cluster, which may be running: every cluster has a
	// switch of its own and every host a network namespace of its own, so they cannot clash.
	cfg.NamePrefix = "tidy"
	c := cluster.New(t, cfg)
	fp, err := recordFootprint(c)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	hosts := c.Hosts()
	for i, h := range hosts {
		conn := dial(t, h)
		spec, err := c.NewGuest(fmt.Sprintf("tidy-vm%d", i+1))
		if err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			disk := spec.Disk
			srv, err := c.ServeDiskNBD(ctx, disk)
			if err != nil {
				t.Fatal(err)
			}
			spec.Disk, spec.NBDSocket = "", srv.Socket
		}
		xml, err := spec.XML()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Define(ctx, xml); err != nil {
			t.Fatal(err)
		}
		startGuest(t, ctx, conn, spec.Name)
		_ = conn.Close()
	}
	if err := c.Partition(hosts[0]); err != nil {
		t.Fatal(err)
	}
	if err := c.KillLibvirtd(hosts[1]); err != nil {
		t.Fatal(err)
	}
	// While it runs, the cluster must not have touched the test's own mounts and interfaces.
	if changes := namespaceChanges(base); len(changes) > 0 {
		t.Errorf("while the cluster runs, the test's namespaces changed:\n  %s", strings.Join(changes, "\n  "))
	}
	var qemus int
	for _, h := range hosts {
		procs, err := h.Processes()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range procs {
			if strings.HasPrefix(p.Comm, "qemu-system") {
				qemus++
			}
		}
	}
	if qemus != len(hosts) {
		t.Fatalf("before close: %d QEMU processes in the hosts, want %d", qemus, len(hosts))
	}
	// The detector must see the cluster before Close, or its silence after Close means nothing:
	// two host inits, a libvirtd, two QEMUs, qemu-nbd, the switch, nsenters.
	if before := fp.processes(); len(before) < 6 {
		t.Fatalf("before close, the leftover detector sees only %d processes of the cluster:\n  %s",
			len(before), strings.Join(before, "\n  "))
	}
	if err := c.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	fp.markClosed()
	if left := fp.leftovers(base); len(left) > 0 {
		t.Errorf("after close, left behind:\n  %s", strings.Join(left, "\n  "))
	}
	if err := c.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}
