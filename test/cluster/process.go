package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is one process seen in /proc of the harness (the root PID namespace).
type Process struct {
	PID     int    // PID in the harness's namespace (use it with kill)
	NSPID   int    // PID inside the host's PID namespace (what libvirt records)
	PPID    int    // parent PID in the harness's namespace (0 if outside of it)
	Comm    string // short command name, e.g. "libvirtd", "qemu-system-x86"
	Cmdline string // full command line, arguments separated by spaces
}

// spawner starts processes that must die with the harness from one goroutine locked to its OS
// thread forever: Pdeathsig fires when the thread that started the child ends, and a Go thread
// ends when a goroutine locked to it returns, so the starting thread must never end.
var spawner struct {
	once sync.Once
	reqs chan spawnRequest
}

type spawnRequest struct {
	cmd  *exec.Cmd
	done chan error
}

// startBound starts cmd in its own process group (a Ctrl-C of the terminal is handled by the
// harness, which then kills it in order) with SIGKILL as its parent-death signal.
func startBound(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnRequest)
		go func() {
			runtime.LockOSThread()
			for r := range spawner.reqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	done := make(chan error, 1)
	spawner.reqs <- spawnRequest{cmd: cmd, done: done}
	return <-done
}

// waited runs cmd.Wait in the background and closes the returned channel when the process is
// reaped, so that killers can wait for it with a deadline.
func waited(cmd *exec.Cmd) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	return done
}

// waitDone waits for done until timeout.
func waitDone(done <-chan struct{}, timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// nsLink returns the namespace link of a process, e.g. "pid:[4026532301]".
func nsLink(pid int, ns string) (string, error) {
	return os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
}

// processesIn lists the processes whose PID namespace is pidNS (an nsLink value).
func processesIn(pidNS string) ([]Process, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var out []Process
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		link, err := nsLink(pid, "pid")
		if err != nil || link != pidNS {
			continue // gone meanwhile, or another namespace
		}
		p, err := readProcess(pid)
		if err != nil {
			continue // gone meanwhile
		}
		out = append(out, p)
	}
	return out, nil
}

// outsideParents are the parents of procs (the processes of one PID namespace) that live outside
// of it, other than the harness itself: the nsenter processes that started libvirtd and wingmand.
// nsenter (util-linux) stops itself whenever its child stops, and sends the child SIGCONT when it
// is continued, so after a Freeze these wait stopped and reap nothing: a killed libvirtd then
// stays a zombie, and the host's init, which waits for every process of its namespace to be
// reaped, never exits.
func outsideParents(procs []Process) []int {
	in := map[int]bool{}
	for _, p := range procs {
		in[p.PID] = true
	}
	var out []int
	seen := map[int]bool{}
	for _, p := range procs {
		if p.PPID <= 1 || in[p.PPID] || seen[p.PPID] || p.PPID == os.Getpid() {
			continue
		}
		seen[p.PPID] = true
		out = append(out, p.PPID)
	}
	return out
}

// allProcesses lists every process of the machine.
func allProcesses() ([]Process, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var out []Process
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, err := readProcess(pid); err == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

func readProcess(pid int) (Process, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Process{}, err
	}
	p := Process{PID: pid}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Name":
			p.Comm = v
		case "PPid":
			p.PPID, _ = strconv.Atoi(v)
		case "NSpid":
			f := strings.Fields(v)
			if len(f) > 0 {
				p.NSPID, _ = strconv.Atoi(f[len(f)-1])
			}
		}
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return Process{}, err
	}
	p.Cmdline = strings.TrimSpace(string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
	return p, nil
}

// killTree sends SIGKILL to pid and to every descendant of it (nsenter forks once, and killing
// nsenter alone leaves its child running).
func killTree(pid int) {
	procs, _ := allProcesses()
	children := map[int][]int{}
	for _, p := range procs {
		children[p.PPID] = append(children[p.PPID], p.PID)
	}
	var walk func(int)
	walk = func(p int) {
		for _, c := range children[p] {
			walk(c)
		}
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	walk(pid)
}

// pollUntil calls cond every interval until it returns true or an error, or ctx ends.
func pollUntil(ctx context.Context, interval time.Duration, cond func() (bool, error)) error {
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// tail returns the last n lines of a file, for error messages; "" if it cannot be read.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// isNotRunning reports whether err says a process does not exist.
func isNotRunning(err error) bool {
	return errors.Is(err, syscall.ESRCH) || errors.Is(err, os.ErrProcessDone)
}
