package plan

import (
	"errors"
	"fmt"
	"github.com/wingmanha/wingman/test/golden"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scenarioNow is the Now of every scenario; restarts= offsets count back from it.
var scenarioNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// TestScenarios runs testdata/*.txt. A file is a cluster description, then
// commands, then "----" and the expected output:
//
//	# comment
//	config reserved=0 mem-overcommit=1 cpu-overcommit=4 starts=8 starts-per-host=2 migrations=2 migrations-per-host=1
//	host <id> <name> <alive|maintenance|suspect|dead|left> mem=64G cpus=16 [other-mem=4G] [other-cpus=2]
//	vm <name> host=<id> mem=8G cpus=2 [stopped] [prio=high|0..1000] [restart=always|on-failure|never]
//	   [limit=3/1h] [restarts=10m,20m (ago)] [group=db] [prefer=kvm1,2] [tier=1] [delay=5s] [agent] [uuid=u]
//	failover | evacuate <id> | whatif <id>... | survivable <k>
//	----
//	> failover
//	wave 1 ...
//
// Run with -update to rewrite everything after "----".
func TestScenarios(t *testing.T) {
	golden.Run(t, "testdata/*.txt", runScenario)
}

func runScenario(t *testing.T, src string) string {
	t.Helper()
	in := Input{Config: DefaultConfig(), Now: scenarioNow}
	var out strings.Builder
	for n, line := range strings.Split(src, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		fail := func(format string, args ...any) {
			t.Fatalf("line %d %q: %s", n+1, line, fmt.Sprintf(format, args...))
		}
		switch f[0] {
		case "config":
			if err := parseConfig(&in.Config, f[1:]); err != nil {
				fail("%v", err)
			}
		case "host":
			h, err := parseHost(f[1:])
			if err != nil {
				fail("%v", err)
			}
			in.Hosts = append(in.Hosts, h)
		case "vm":
			v, err := parseVM(f[1:])
			if err != nil {
				fail("%v", err)
			}
			in.VMs = append(in.VMs, v)
		case "failover", "evacuate", "whatif", "survivable":
			fmt.Fprintf(&out, "> %s\n", strings.Join(f, " "))
			var ids []int
			for _, a := range f[1:] {
				id, err := strconv.Atoi(a)
				if err != nil {
					fail("want integers after the command")
				}
				ids = append(ids, id)
			}
			out.WriteString(runCommand(in, f[0], ids))
		default:
			fail("unknown directive %q", f[0])
		}
	}
	return out.String()
}

func runCommand(in Input, cmd string, ids []int) string {
	var p Plan
	var err error
	switch cmd {
	case "failover":
		p, err = Failover(in)
	case "evacuate":
		if len(ids) != 1 {
			return "error: evacuate takes one host id\n"
		}
		p, err = Evacuate(in, ids[0])
	case "whatif":
		p, err = WhatIf(in, ids...)
	case "survivable":
		if len(ids) != 1 {
			return "error: survivable takes k\n"
		}
		var s Survivability
		s, err = Survivable(in, ids[0])
		if err != nil {
			break
		}
		return formatSurvivability(s)
	}
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	return p.String()
}

func formatSurvivability(s Survivability) string {
	var b strings.Builder
	verdict := "survivable"
	if !s.OK {
		verdict = "not survivable"
	}
	fmt.Fprintf(&b, "%s: k=%d scenarios=%d failures=%d\n", verdict, s.K, s.Scenarios, s.FailureCount)
	for _, f := range s.Failures {
		fmt.Fprintf(&b, "  lost %v:\n", f.Lost)
		for _, u := range f.Unplaced {
			fmt.Fprintf(&b, "    %s prio=%s: %s (%s)\n", u.Name, u.Priority, u.Reason, u.Detail)
		}
	}
	return b.String()
}

func parseSize(s string) (uint64, error) {
	mult := uint64(1)
	switch {
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("size %q: use e.g. 8G or 512M", s)
	}
	return uint64(f * float64(mult)), nil
}

func keyValues(args []string, each func(k, v string) error) error {
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		if err := each(k, v); err != nil {
			return fmt.Errorf("%s: %w", a, err)
		}
	}
	return nil
}

func parseConfig(c *Config, args []string) error {
	return keyValues(args, func(k, v string) error {
		var err error
		switch k {
		case "reserved":
			c.ReservedMemory, err = parseSize(v)
		case "mem-overcommit":
			c.MemoryOvercommit, err = strconv.ParseFloat(v, 64)
		case "cpu-overcommit":
			c.CPUOvercommit, err = strconv.ParseFloat(v, 64)
		case "starts":
			c.MaxConcurrentStarts, err = strconv.Atoi(v)
		case "starts-per-host":
			c.MaxStartsPerHost, err = strconv.Atoi(v)
		case "migrations":
			c.MaxConcurrentMigrations, err = strconv.Atoi(v)
		case "migrations-per-host":
			c.MaxMigrationsPerHost, err = strconv.Atoi(v)
		default:
			err = fmt.Errorf("unknown config key")
		}
		return err
	})
}

func parseHost(f []string) (Host, error) {
	if len(f) < 3 {
		return Host{}, fmt.Errorf("want: host <id> <name> <state> key=value...")
	}
	id, err := strconv.Atoi(f[0])
	if err != nil {
		return Host{}, err
	}
	h := Host{ID: id, Name: f[1], State: HostState(f[2])}
	err = keyValues(f[3:], func(k, v string) error {
		var err error
		switch k {
		case "mem":
			h.Memory, err = parseSize(v)
		case "cpus":
			h.CPUs, err = strconv.Atoi(v)
		case "other-mem":
			h.OtherMemory, err = parseSize(v)
		case "other-cpus":
			h.OtherCPUs, err = strconv.Atoi(v)
		case "limits":
			// limits=CPU/MEM/RESERVED/STARTS, e.g. limits=16/1.5/2G/8
			f := strings.Split(v, "/")
			if len(f) != 4 {
				return fmt.Errorf("want cpu-overcommit/mem-overcommit/reserved/starts")
			}
			var l Limits
			var e1, e2, e3, e4 error
			l.CPUOvercommit, e1 = strconv.ParseFloat(f[0], 64)
			l.MemoryOvercommit, e2 = strconv.ParseFloat(f[1], 64)
			l.ReservedMemory, e3 = parseSize(f[2])
			l.MaxStarts, e4 = strconv.Atoi(f[3])
			h.Limits, err = &l, errors.Join(e1, e2, e3, e4)
		default:
			err = fmt.Errorf("unknown host key")
		}
		return err
	})
	return h, err
}

func parseVM(f []string) (VM, error) {
	if len(f) < 1 {
		return VM{}, fmt.Errorf("want: vm <name> key=value...")
	}
	v := VM{Name: f[0], UUID: "uuid-" + f[0], Running: true, Policy: DefaultPolicy()}
	err := keyValues(f[1:], func(k, val string) error {
		var err error
		p := &v.Policy
		switch k {
		case "host":
			v.Owner, err = strconv.Atoi(val)
		case "mem":
			v.Memory, err = parseSize(val)
		case "cpus":
			v.VCPUs, err = strconv.Atoi(val)
		case "stopped":
			v.Running = false
		case "uuid":
			v.UUID = val
		case "prio":
			p.Priority, err = ParsePriority(val)
		case "restart":
			p.Restart = RestartPolicy(val)
		case "limit":
			m, w, _ := strings.Cut(val, "/")
			if p.RestartLimit.Max, err = strconv.Atoi(m); err == nil {
				p.RestartLimit.Window, err = time.ParseDuration(w)
			}
		case "restarts":
			for _, ago := range strings.Split(val, ",") {
				d, err := time.ParseDuration(ago)
				if err != nil {
					return err
				}
				v.Restarts = append(v.Restarts, scenarioNow.Add(-d))
			}
		case "group":
			p.AntiAffinity = val
		case "prefer":
			p.PreferredHosts = strings.Split(val, ",")
		case "tier":
			p.StartOrder, err = strconv.Atoi(val)
		case "delay":
			p.StartDelay, err = time.ParseDuration(val)
		case "agent":
			p.WaitGuestAgent = true
		default:
			err = fmt.Errorf("unknown vm key")
		}
		return err
	})
	return v, err
}
