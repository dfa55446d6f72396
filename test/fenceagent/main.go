// Command fenceagent is Wingman's own fence agent for tests: it speaks the
// ClusterLabs fence agent protocol (key=value lines on stdin, ended by EOF;
// exit 0 on success, 1 on failure; action=status exits 0 when on, 2 when off)
// and "powers off" a test host by recording OFF in a state file and, if
// asked, by SIGKILLing a process (the test cluster kills a host's namespace
// init). Install or build it as fence_test.
//
// It owns only this test double. It must never be installed on a production
// host or configured for a real machine: it fences nothing but a file and,
// with kill_pid, one process.
//
// Parameters (unknown ones are ignored, as the protocol asks):
//
//	action=off|on|reboot|status|monitor|list|metadata
//	state_file=PATH   where ON/OFF is recorded (missing file: ON)
//	fail=1            fail every action with a message on stderr; fail=ACTION fails only that one
//	delay=DURATION    sleep this long before acting (a slow BMC), e.g. 500ms
//	kill_pid=N        on off (and reboot), SIGKILL process N
//	confirm=never     status always reports ON, as if the off never took effect
//	pid_file=PATH     write this agent's pid to PATH before acting
//	child=1           start a child process that outlives a killed agent's
//	                  wait (proves a timeout kills the whole process group);
//	                  its pid goes to PATH.child when pid_file is set
//	password=...      accepted and, when failing, echoed on stderr like a
//	                  careless agent would (proves the caller redacts it)
//
// Exit codes: 0 success (status: on), 1 failure, 2 status: off.
package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	exitOK   = 0
	exitFail = 1
	exitOff  = 2
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == "-hang" {
		// The child started with child=1: hold stdout and stderr open
		// until killed.
		time.Sleep(time.Hour)
		return
	}
	os.Exit(run())
}

func run() int {
	params, err := readParams()
	if err != nil {
		fmt.Fprintf(os.Stderr, "fence_test: read stdin: %v\n", err)
		return exitFail
	}
	action := params["action"]
	if action == "" {
		action = params["option"] // the deprecated name of action
	}
	action = strings.ToLower(action)
	if p := params["pid_file"]; p != "" {
		if err := os.WriteFile(p, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "fence_test: write pid file: %v\n", err)
			return exitFail
		}
	}
	if params["child"] == "1" {
		child := exec.Command(os.Args[0], "-hang")
		child.Stdout, child.Stderr = os.Stdout, os.Stderr
		if err := child.Start(); err != nil {
			fmt.Fprintf(os.Stderr, "fence_test: start child: %v\n", err)
			return exitFail
		}
		if p := params["pid_file"]; p != "" {
			_ = os.WriteFile(p+".child", []byte(strconv.Itoa(child.Process.Pid)), 0o644)
		}
	}
	if d := params["delay"]; d != "" {
		dur, err := time.ParseDuration(d)
		if err != nil {
			fmt.Fprintf(os.Stderr, "fence_test: bad delay %q: %v\n", d, err)
			return exitFail
		}
		time.Sleep(dur)
	}
	if f := params["fail"]; f == "1" || (f != "" && f == action) {
		fmt.Fprintf(os.Stderr, "fence_test: unable to connect to the fence device as %q with password %q\n", params["username"], params["password"])
		return exitFail
	}

	state := params["state_file"]
	switch action {
	case "off", "reboot":
		if pid := params["kill_pid"]; pid != "" {
			n, err := strconv.Atoi(pid)
			if err != nil || n <= 1 {
				fmt.Fprintf(os.Stderr, "fence_test: bad kill_pid %q\n", pid)
				return exitFail
			}
			if err := syscall.Kill(n, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
				fmt.Fprintf(os.Stderr, "fence_test: kill %d: %v\n", n, err)
				return exitFail
			}
		}
		power := "OFF"
		if action == "reboot" {
			power = "ON"
		}
		if err := writeState(state, power); err != nil {
			fmt.Fprintf(os.Stderr, "fence_test: %v\n", err)
			return exitFail
		}
		fmt.Println("Success: Powered OFF")
		return exitOK
	case "on":
		if err := writeState(state, "ON"); err != nil {
			fmt.Fprintf(os.Stderr, "fence_test: %v\n", err)
			return exitFail
		}
		fmt.Println("Success: Powered ON")
		return exitOK
	case "status":
		on, err := readState(state)
		if err != nil {
			fmt.Fprintf(os.Stderr, "fence_test: %v\n", err)
			return exitFail
		}
		if on || params["confirm"] == "never" {
			fmt.Println("Status: ON")
			return exitOK
		}
		fmt.Println("Status: OFF")
		return exitOff
	case "monitor":
		if _, err := readState(state); err != nil {
			fmt.Fprintf(os.Stderr, "fence_test: %v\n", err)
			return exitFail
		}
		return exitOK
	case "list":
		fmt.Println("1,test-host")
		return exitOK
	case "metadata":
		fmt.Print(metadata)
		return exitOK
	default:
		fmt.Fprintf(os.Stderr, "fence_test: unsupported action %q\n", action)
		return exitFail
	}
}

// readParams reads key=value lines until EOF; '#' lines and lines without
// '=' are ignored, and a repeated key keeps its last value.
func readParams() (map[string]string, error) {
	params := map[string]string{}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		line := strings.TrimLeft(sc.Text(), " \t")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		params[strings.TrimSpace(k)] = v
	}
	return params, sc.Err()
}

func readState(path string) (on bool, err error) {
	if path == "" {
		return true, nil
	}
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("read state file: %w", err)
	}
	return strings.TrimSpace(string(b)) != "OFF", nil
}

func writeState(path, power string) error {
	if path == "" {
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(power+"\n"), 0o644); err != nil {
		return fmt.Errorf("write state file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write state file: %w", err)
	}
	return nil
}

const metadata = `<?xml version="1.0" ?>
<resource-agent name="fence_test" shortdesc="Wingman's fence agent for tests">
<longdesc>Records power state in a file and may kill one process. For tests only.</longdesc>
<parameters>
	<parameter name="action" unique="0" required="1"><content type="string" default="off"/><shortdesc lang="en">Fencing action</shortdesc></parameter>
	<parameter name="state_file" unique="0" required="0"><content type="string"/><shortdesc lang="en">File recording ON or OFF</shortdesc></parameter>
	<parameter name="kill_pid" unique="0" required="0"><content type="integer"/><shortdesc lang="en">Process to SIGKILL on off</shortdesc></parameter>
</parameters>
<actions>
	<action name="on"/>
	<action name="off"/>
	<action name="reboot"/>
	<action name="status"/>
	<action name="monitor"/>
	<action name="list"/>
	<action name="metadata"/>
</actions>
</resource-agent>
`
