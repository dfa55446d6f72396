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
//	cluster hosts=N [timings=default|fast] [fenceable=2,3] [fence=fails] [serf-delay=5s] [seed=1]
//	run 20s            advance virtual time; prints what happened
//	states             prints each host's view
//	crash H            power loss (no self-fence, no goodbye)
//	freeze H / thaw H  the whole machine H stalls (its watchdog timer too) / resumes
//	stall H            only wingmand of H stops (SIGSTOP); thaw resumes it
//	pill H GEN         a poison pill for generation GEN appears in H's mailbox
//	partition 1,2 | 3  network groups; heal joins them again
//	lun-lost H.. / lun-back H..
//	latency H 1500ms   LUN I/O latency of H
//	boot H             start a crashed host again (new generation)
//	mail H test        the coordinator sends a test message to H
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
	f := strings.Fields(line)
	fail := func(format string, a ...any) (string, *sim) {
		t.Fatalf("%s: %q: %s", path, line, fmt.Sprintf(format, a...))
		return "", s
	}
	if f[0] != "cluster" && s == nil {
		return fail("the first command must be cluster")
	}
	ids := func(args []string) []*simHost {
		var hs []*simHost
		for _, a := range args {
			for _, p := range strings.Split(a, ",") {
				id, err := strconv.Atoi(p)
				if err != nil || id < 1 || id > len(s.hosts) {
					fail("bad host %q", p)
				}
				hs = append(hs, s.host(id))
			}
		}
		return hs
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
		tm := DefaultTimings()
		if opts["timings"] == "fast" {
			tm = FastTimings()
		}
		seed, _ := strconv.ParseUint(opts["seed"], 10, 64)
		s = newSim(n, tm, seed+1)
		if v, ok := opts["serf-delay"]; ok {
			s.serfDelay, _ = time.ParseDuration(v)
		}
		if opts["fence"] == "fails" {
			s.fenceOK = false
		}
		if v, ok := opts["fenceable"]; ok {
			for _, h := range ids([]string{v}) {
				h.fenceable = true
			}
		}
		return "", s
	case "run":
		d, err := time.ParseDuration(f[1])
		if err != nil {
			return fail("%v", err)
		}
		s.run(d)
	case "states":
		return s.states(), s
	case "crash":
		for _, h := range ids(f[1:]) {
			h.up, h.vms = false, false
			s.logf("host %d: power loss", h.id)
		}
	case "freeze":
		for _, h := range ids(f[1:]) {
			h.frozen = true
			s.logf("host %d: frozen", h.id)
		}
	case "thaw":
		// The daemon's first step after a stall is a heartbeat cycle,
		// before the host's guests get to run: that is what the check sees.
		for _, h := range ids(f[1:]) {
			s.logf("host %d: resumed", h.id)
			h.frozen, h.stalled = false, false
			if h.up {
				h.nextBeat = s.now + s.t.Renew
				s.cycle(h)
			}
		}
		s.check()
	case "stall":
		for _, h := range ids(f[1:]) {
			h.stalled = true
			s.logf("host %d: daemon stopped (SIGSTOP)", h.id)
		}
	case "pill":
		h := ids(f[1:2])[0]
		gen, _ := strconv.ParseUint(f[2], 10, 64)
		s.nonce++
		s.mail[h.id] = Message{Kind: MsgFence, From: 1, ToGen: gen, Nonce: s.nonce}
		s.logf("mailbox of host %d: poison pill for generation %d", h.id, gen)
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
	case "latency":
		d, err := time.ParseDuration(f[2])
		if err != nil {
			return fail("%v", err)
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
		h := ids(f[1:2])[0]
		s.nonce++
		s.mail[h.id] = Message{Kind: MsgTest, From: 1, ToGen: h.gen, Nonce: s.nonce}
		s.logf("host 1: test message to host %d nonce %d", h.id, s.nonce)
	case "acked":
		h := ids(f[1:2])[0]
		return fmt.Sprintf("host %d acknowledged nonce %d\n", h.id, h.acked), s
	default:
		return fail("unknown command")
	}
	return strings.Join(s.log[before:], "\n") + nlIf(len(s.log) > before), s
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
