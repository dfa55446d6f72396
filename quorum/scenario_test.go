package quorum

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the expected output of the scenario files in testdata/")

// TestScenarios runs every testdata/*.txt scenario on the simulator and
// compares each command's output with the text after its "----" line.
//
// A scenario is a list of commands, each followed by "----" and its expected
// output, then a blank line:
//
//	cluster hosts=N [timings=default|fast] [ceiling=60s] [fenceable=2,3] [fence=fails] [serf-delay=5s] [addresses=1,2] [seed=1]
//	                   addresses: hosts with isolation addresses configured (each reaches them until addr-lost)
//	run 20s            advance virtual time; prints what happened
//	states             prints each host's view
//	crash H            power loss (no self-fence, no goodbye)
//	freeze H / thaw H  the whole machine H stalls (its watchdog timer too) / resumes
//	suspend H          like freeze, but H's monotonic clock stops too (system sleep)
//	drift H 300ppm     H's monotonic clock runs fast (negative: slow) from now on
//	stall H            only wingmand of H stops (SIGSTOP); thaw resumes it
//	libvirt-hang H     destroying a VM on H hangs (self-fence, pill): only the watchdog stops them
//	libvirt-back H     libvirt answers again
//	pill H GEN         a poison pill for generation GEN appears in H's mailbox
//	partition 1,2 | 3  network groups; heal joins them again
//	lun-lost H.. / lun-back H..
//	header-changed / header-restored   the LUN's header zeroed / written back (every host reads it)
//	latency H 1500ms   LUN I/O latency of H
//	boot H             start a crashed host again (new generation)
//	mail H test        the coordinator sends a test message to H
//	disarm H 60s [force]  the operator disarms HA on H for 60s (force: may shorten)
//	arm H              the operator arms HA on H
//	confirm-off H on O the operator confirms on host O that host H is off
//	addr-lost H.. / addr-back H..   H no longer reaches / reaches again its isolation addresses
//	quarantine         prints the quarantine record (cluster ... quarantine=3/1h/2h: threshold/window/duration)
//	unquarantine H     the operator clears H's quarantine
//
// Run with -update to rewrite the expected output.
func TestScenarios(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txt")
	if len(files) == 0 {
		t.Fatal("no scenario files in testdata/")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runScenario(t, f) })
	}
}

func runScenario(t *testing.T, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blocks := parseScenario(string(data))
	var s *sim
	var out strings.Builder
	for _, b := range blocks {
		got := ""
		if b.cmd != "" {
			got, s = execScenario(t, path, s, b.cmd)
			if s != nil && s.violation != "" {
				got += "VIOLATION: " + s.violation + "\n"
			}
		}
		out.WriteString(b.comments)
		if b.cmd == "" {
			continue
		}
		out.WriteString(b.cmd + "\n----\n" + got + "\n")
		if !*update && got != b.want {
			t.Errorf("%s: %s\n--- want\n%s--- got\n%s", path, b.cmd, b.want, got)
		}
		if s != nil && s.violation != "" {
			t.Errorf("%s: %s: invariant violated: %s", path, b.cmd, s.violation)
		}
	}
	if *update {
		if err := os.WriteFile(path, []byte(strings.TrimRight(out.String(), "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type scenarioBlock struct {
	comments string // comment and blank lines before the command
	cmd      string
	want     string
}

func parseScenario(text string) []scenarioBlock {
	lines := strings.Split(text, "\n")
	var blocks []scenarioBlock
	var cur scenarioBlock
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.HasPrefix(l, "#") || strings.TrimSpace(l) == "" {
			cur.comments += l + "\n"
			continue
		}
		cur.cmd = l
		if i+1 < len(lines) && lines[i+1] == "----" {
			i += 2
			for ; i < len(lines) && lines[i] != ""; i++ {
				cur.want += lines[i] + "\n"
			}
		}
		blocks = append(blocks, cur)
		cur = scenarioBlock{}
	}
	// Trailing comments.
	if strings.TrimSpace(cur.comments) != "" {
		blocks = append(blocks, cur)
	}
	return blocks
}

func execScenario(t *testing.T, path string, s *sim, line string) (string, *sim) {
	out, s, err := execCommand(s, line)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return out, s
}

// execCommand runs one scenario command on s (nil before "cluster") and
// returns what it logged and the simulator. It checks the invariants after
// the command, as the random schedules do.
func execCommand(s *sim, line string) (string, *sim, error) {
	f := strings.Fields(line)
	var err error
	fail := func(format string, a ...any) {
		if err == nil {
			err = fmt.Errorf("%q: %s", line, fmt.Sprintf(format, a...))
		}
	}
	if len(f) == 0 || f[0] != "cluster" && s == nil {
		return "", s, fmt.Errorf("%q: the first command must be cluster", line)
	}
	ids := func(args []string) []*simHost {
		var hs []*simHost
		for _, a := range args {
			for _, p := range strings.Split(a, ",") {
				id, err := strconv.Atoi(p)
				if err != nil || id < 1 || id > len(s.hosts) {
					fail("bad host %q: want a host id from 1 to %d", p, len(s.hosts))
					continue
				}
				hs = append(hs, s.host(id))
			}
		}
		return hs
	}
	arg := func(i int) string {
		if i >= len(f) {
			fail("missing argument %d", i)
			return ""
		}
		return f[i]
	}
	before := len(s.logLen())
	switch f[0] {
	case "cluster":
		opts := map[string]string{}
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			opts[k] = v
		}
		n, _ := strconv.Atoi(opts["hosts"])
		if n < 1 || n > 255 {
			return "", s, fmt.Errorf("%q: hosts=%q: want 1 to 255 hosts (host ids are 1..255)", line, opts["hosts"])
		}
		tm := DefaultTimings()
		if opts["timings"] == "fast" {
			tm = FastTimings()
		}
		if v, ok := opts["ceiling"]; ok {
			c, perr := time.ParseDuration(v)
			if tm.LeaseCeiling = c; perr != nil || tm.Validate() != nil {
				return "", s, fmt.Errorf("%q: ceiling=%q: want a duration above F = %v", line, v, tm.SelfFence)
			}
		}
		seed, _ := strconv.ParseUint(opts["seed"], 10, 64)
		serfDelay := 5 * time.Second
		if v, ok := opts["serf-delay"]; ok {
			serfDelay, _ = time.ParseDuration(v)
		}
		s = newSim(n, tm, seed+1, serfDelay)
		if opts["fence"] == "fails" {
			s.fenceOK = false
		}
		if v, ok := opts["fenceable"]; ok {
			for _, h := range ids([]string{v}) {
				h.fenceable = true
			}
		}
		if v, ok := opts["addresses"]; ok {
			for _, h := range ids([]string{v}) {
				h.addresses, h.addrOK = true, true
			}
		}
		switch opts["luns"] {
		case "", "1":
		case "3":
			s.setLUNs()
		default:
			return "", s, fmt.Errorf("%q: luns=%q: want 1 or 3 heartbeat LUNs", line, opts["luns"])
		}
		if v, ok := opts["quarantine"]; ok {
			if s.qcfg, err = parseQuarantineOpt(v); err != nil {
				return "", s, fmt.Errorf("%q: %w", line, err)
			}
			s.quarantine = &QuarantineRecord{}
		}
		return "", s, err
	case "run":
		d, perr := time.ParseDuration(arg(1))
		if perr != nil {
			return "", s, fmt.Errorf("%q: %v", line, perr)
		}
		s.run(d)
	case "states":
		return s.states(), s, nil
	case "crash":
		for _, h := range ids(f[1:]) {
			h.up, h.vms = false, false
			s.logf("host %d: power loss", h.id)
		}
	case "freeze", "suspend":
		// suspend: the machine sleeps and its monotonic clock stops with it.
		for _, h := range ids(f[1:]) {
			h.frozen = true
			if f[0] == "suspend" {
				h.setClock(s.now, h.ppm, true)
				s.logf("host %d: suspended (its monotonic clock stops)", h.id)
			} else {
				s.logf("host %d: frozen", h.id)
			}
		}
	case "thaw":
		// The daemon's first step after a stall is a heartbeat cycle,
		// before the host's guests get to run: that is what the check sees.
		for _, h := range ids(f[1:]) {
			s.logf("host %d: resumed", h.id)
			h.frozen, h.stalled = false, false
			if h.suspended {
				h.setClock(s.now, h.ppm, false)
			}
			if h.up {
				h.nextBeat = s.now + h.real(s.t.Renew)
				s.cycle(h)
			}
		}
	case "drift":
		// drift H 300ppm: H's monotonic clock runs 300 parts per million
		// fast from now on (negative: slow).
		ppm, perr := strconv.ParseInt(strings.TrimSuffix(arg(2), "ppm"), 10, 64)
		if perr != nil || ppm <= -1e6 || ppm >= 1e6 {
			return "", s, fmt.Errorf("%q: want a clock rate error like 300ppm or -50ppm, within ±1e6", line)
		}
		for _, h := range ids(f[1:2]) {
			h.setClock(s.now, ppm, h.suspended)
			s.logf("host %d: clock drift %+dppm", h.id, ppm)
		}
	case "libvirt-hang", "libvirt-back":
		// libvirt-hang H: destroying a VM on H hangs; libvirt-back H: it
		// answers again, and a destroy that hung completes.
		for _, h := range ids(f[1:]) {
			h.libvirtHung = f[0] == "libvirt-hang"
			if !h.libvirtHung && h.stuck {
				s.libvirtBack(h)
				s.logf("host %d: libvirt answers: its VMs are destroyed", h.id)
				continue
			}
			s.logf("host %d: %s", h.id, map[bool]string{true: "libvirt hangs", false: "libvirt answers"}[h.libvirtHung])
		}
	case "stall":
		for _, h := range ids(f[1:]) {
			h.stalled = true
			s.logf("host %d: daemon stopped (SIGSTOP)", h.id)
		}
	case "pill":
		h := ids(f[1:2])
		gen, perr := strconv.ParseUint(arg(2), 10, 64)
		if err != nil || perr != nil || len(h) == 0 {
			return "", s, fmt.Errorf("%q: want pill HOST GEN", line)
		}
		s.nonce++
		s.mail[h[0].id] = Message{Kind: MsgFence, From: 1, ToGen: gen, Nonce: s.nonce}
		s.logf("mailbox of host %d: poison pill for generation %d", h[0].id, gen)
	case "partition":
		g := 0
		for _, a := range f[1:] {
			if a == "|" {
				g++
				continue
			}
			for _, h := range ids([]string{a}) {
				h.group = g
			}
		}
		s.logf("network: %s", strings.Join(f[1:], " "))
	case "heal":
		for _, h := range s.hosts {
			h.group = 0
		}
		s.logf("network: healed")
	case "lun-lost", "lun-back":
		for _, h := range ids(f[1:]) {
			h.lunOK = f[0] == "lun-back"
		}
		s.logf("LUN %s on %s", strings.TrimPrefix(f[0], "lun-"), strings.Join(f[1:], ","))
	case "lun-member-lost", "lun-member-back", "path-lost", "path-back", "lun-member-latency":
		if lerr := execLUNsCommand(s, f); lerr != nil {
			return "", s, fmt.Errorf("%q: %w", line, lerr)
		}
	case "addr-lost", "addr-back":
		for _, h := range ids(f[1:]) {
			h.addrOK = f[0] == "addr-back"
		}
		s.logf("isolation addresses %s on %s", strings.TrimPrefix(f[0], "addr-"), strings.Join(f[1:], ","))
	case "header-changed":
		s.header = "block 0 holds zeros"
		s.logf("LUN header zeroed")
	case "header-restored":
		s.header = ""
		s.logf("LUN header restored")
	case "latency":
		d, perr := time.ParseDuration(arg(2))
		if perr != nil {
			return "", s, fmt.Errorf("%q: %v", line, perr)
		}
		for _, h := range ids(f[1:2]) {
			h.latency = d
		}
		s.logf("LUN latency of host %s: %v", f[1], d)
	case "boot":
		for _, h := range ids(f[1:]) {
			s.boot(h)
			s.logf("host %d: booted, generation %d", h.id, h.gen)
		}
	case "mail":
		h := ids(f[1:2])
		if len(h) == 0 {
			return "", s, fmt.Errorf("%q: want mail HOST test", line)
		}
		s.nonce++
		s.mail[h[0].id] = Message{Kind: MsgTest, From: 1, ToGen: h[0].gen, Nonce: s.nonce}
		s.logf("host 1: test message to host %d nonce %d", h[0].id, s.nonce)
	case "disarm", "arm":
		h := ids(f[1:2])
		req := DisarmRequest{Reason: "scenario"}
		if f[0] == "disarm" {
			d, perr := time.ParseDuration(arg(2))
			if perr != nil {
				return "", s, fmt.Errorf("%q: want disarm HOST DURATION [force]: %v", line, perr)
			}
			req.For, req.Force = d, len(f) > 3 && f[3] == "force"
		}
		if len(h) == 0 || err != nil {
			return "", s, fmt.Errorf("%q: want %s HOST", line, f[0])
		}
		s.disarm(h[0], req)
	case "confirm-off":
		if len(f) != 4 || f[2] != "on" {
			return "", s, fmt.Errorf("%q: want confirm-off HOST on HOST", line)
		}
		hs := ids([]string{f[1], f[3]})
		if len(hs) != 2 || err != nil {
			return "", s, err
		}
		s.confirmOff(hs[0], hs[1])
	case "quarantine", "unquarantine":
		if s.quarantine == nil {
			return "", s, fmt.Errorf("%q: the cluster runs no quarantine: add quarantine=N/WINDOW/DURATION to its cluster line", line)
		}
		if f[0] == "quarantine" {
			return formatQuarantine(*s.quarantine, wallEpoch), s, err
		}
		h := ids(f[1:2])
		if len(h) == 0 {
			return "", s, fmt.Errorf("%q: want unquarantine HOST", line)
		}
		rec, e, uerr := Unquarantine(*s.quarantine, h[0].id, "root", wallEpoch.Add(s.now))
		if uerr != nil {
			return uerr.Error() + "\n", s, err
		}
		*s.quarantine = rec
		s.logf("operator: %s host=%d: %s", e.Kind, e.Subject, e.Message)
	case "acked":
		h := ids(f[1:2])
		if len(h) == 0 {
			return "", s, fmt.Errorf("%q: want acked HOST", line)
		}
		return fmt.Sprintf("host %d acknowledged nonce %d\n", h[0].id, h[0].node.SlotWrite().Ack.Nonce), s, err
	default:
		return "", s, fmt.Errorf("%q: unknown command", line)
	}
	s.check()
	return strings.Join(s.log[before:], "\n") + nlIf(len(s.log) > before), s, err
}

func (s *sim) logLen() []string {
	if s == nil {
		return nil
	}
	return s.log
}

func nlIf(b bool) string {
	if b {
		return "\n"
	}
	return ""
}
