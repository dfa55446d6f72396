package reconcile

import (
	"fmt"
	"github.com/wingmanha/wingman/test/golden"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/vm/plan"
)

var scenarioNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// TestScenarios runs testdata/*.txt: one host's snapshot, "----", and the
// actions Reconcile returns, one per line. Lines:
//
//	self <id> gen=<g> [minority] [no-run]
//	host <id> <alive|dead|left|suspect|isolated|maintenance|joining> gen=<g> [mem=64G] [cpus=16]
//	verdict <id> <gen>
//	vm <name> idx=<i> [owner=<h>/<g>] [epoch=<e>] [released] [mig=<started|completed|aborted>:<h>/<g>]
//	   [stopped] [prio=high] [restart=always] [limit=3/1h] [ioerr=<wait|resume|restart>/<after>] [mem=4G]
//	local <name> <running|paused|io-error|panicked|crashed|shutoff|lost> [inactive] [since=<ago>]
//	history <name> [restarts=10m,20m] [failures=<n>/<ago>]
//	migrating <name>
//	diskloss <off|restart/<grace>>
//
// A vm line's avoid=<h>[,<h>]/<ago> marks hosts that cannot reach its disks,
// a mark this host first saw that long ago.
//
// Rerun with -update to rewrite the part after "----".
func TestScenarios(t *testing.T) {
	golden.Run(t, "testdata/*.txt", func(t *testing.T, src string) string {
		var b strings.Builder
		for _, a := range Reconcile(parseScenario(t, src)) {
			b.WriteString(a.String() + "\n")
		}
		if b.Len() == 0 {
			return "nothing to do\n"
		}
		return b.String()
	})
}

func parseScenario(t *testing.T, src string) Input {
	in := Input{Now: scenarioNow, MayRunVMs: true, Quorate: true, Config: DefaultConfig(),
		History: map[string]History{}, MigratingOut: map[string]bool{}}
	in.Config.Plan.ReservedMemory = 0
	uuid := func(name string) string { return "uuid-" + name }
	for n, line := range strings.Split(src, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("line %d %q: %s", n+1, line, fmt.Sprintf(format, args...))
		}
		kv := map[string]string{}
		var flags []string
		for _, w := range f[1:] {
			if k, v, ok := strings.Cut(w, "="); ok {
				kv[k] = v
			} else {
				flags = append(flags, w)
			}
		}
		has := func(s string) bool {
			for _, x := range flags {
				if x == s {
					return true
				}
			}
			return false
		}
		atoi := func(s string) int {
			n, err := strconv.Atoi(s)
			if err != nil {
				fail("%v", err)
			}
			return n
		}
		owner := func(s string) Owner {
			h, g, ok := strings.Cut(s, "/")
			if !ok {
				fail("owner %q: use host/gen", s)
			}
			return Owner{atoi(h), uint64(atoi(g))}
		}
		dur := func(s string) time.Duration {
			d, err := time.ParseDuration(s)
			if err != nil {
				fail("%v", err)
			}
			return d
		}
		switch f[0] {
		case "self":
			in.Self = atoi(f[1])
			in.SelfGen = uint64(atoi(kv["gen"]))
			in.Quorate = !has("minority")
			in.MayRunVMs = !has("no-run")
		case "host":
			states := map[string]quorum.HostState{"alive": quorum.StateAlive, "dead": quorum.StateDead, "left": quorum.StateLeft,
				"suspect": quorum.StateSuspect, "isolated": quorum.StateIsolated, "maintenance": quorum.StateMaintenance, "joining": quorum.StateJoining}
			st, ok := states[f[2]]
			if !ok {
				fail("state %q", f[2])
			}
			h := Host{ID: atoi(f[1]), Name: "kvm" + f[1], Gen: uint64(atoi(kv["gen"])), State: st, Memory: 64 << 30, CPUs: 16}
			if m, ok := kv["mem"]; ok {
				h.Memory = uint64(atoi(strings.TrimSuffix(m, "G"))) << 30
			}
			if c, ok := kv["cpus"]; ok {
				h.CPUs = atoi(c)
			}
			h.Quarantined = kv["quarantined"] == "yes"
			if s, ok := kv["starts"]; ok { // the host's own limit of starts at once
				l := plan.DefaultConfig().Limits()
				l.MaxStarts = atoi(s)
				h.Limits = &l
			}
			in.Hosts = append(in.Hosts, h)
		case "verdict":
			in.Verdicts = append(in.Verdicts, quorum.Verdict{ID: atoi(f[1]), Gen: uint64(atoi(f[2]))})
		case "vm":
			r := Record{Name: f[1], UUID: uuid(f[1]), Index: atoi(kv["idx"]), Policy: plan.DefaultPolicy(), Memory: 4 << 30, VCPUs: 2}
			if o, ok := kv["owner"]; ok {
				r.Lease.Owner = owner(o)
				r.Lease.Epoch = 1
			}
			if e, ok := kv["epoch"]; ok {
				r.Lease.Epoch = uint64(atoi(e))
			}
			r.Lease.Released = has("released")
			r.Stopped = has("stopped")
			if m, ok := kv["mig"]; ok {
				ph, tgt, _ := strings.Cut(m, ":")
				phases := map[string]MigrationPhase{"started": MigrationStarted, "completed": MigrationCompleted, "aborted": MigrationAborted}
				o := owner(tgt)
				r.Lease.Migration = Migration{Phase: phases[ph], Target: o.Host, TargetGen: o.Gen}
			}
			if p, ok := kv["prio"]; ok {
				pr, err := plan.ParsePriority(p)
				if err != nil {
					fail("%v", err)
				}
				r.Policy.Priority = pr
			}
			if p, ok := kv["restart"]; ok {
				r.Policy.Restart = plan.RestartPolicy(p)
			}
			if l, ok := kv["limit"]; ok {
				m, w, _ := strings.Cut(l, "/")
				r.Policy.RestartLimit = plan.RestartLimit{Max: atoi(m), Window: dur(w)}
			}
			if l, ok := kv["ioerr"]; ok {
				resp, after, _ := strings.Cut(l, "/")
				r.Policy.IOError = plan.IOErrorPolicy{Response: plan.IOErrorResponse(resp), After: dur(after)}
			}
			if m, ok := kv["mem"]; ok {
				r.Memory = uint64(atoi(strings.TrimSuffix(m, "G"))) << 30
			}
			if t, ok := kv["tier"]; ok {
				r.Policy.StartOrder = atoi(t)
			}
			if d, ok := kv["delay"]; ok { // its own start delay
				r.Policy.StartDelay = dur(d)
			}
			r.Policy.WaitGuestAgent = has("agent") // later tiers wait for its guest agent
			r.Lease.GuestUp = has("guest-up")      // its owner saw the agent answer
			if h, ok := kv["held"]; ok {           // this host saw its epoch taken that long ago
				r.HeldSince = scenarioNow.Add(-dur(h))
			}
			if a, ok := kv["avoid"]; ok {
				hs, ago, _ := strings.Cut(a, "/")
				for _, h := range strings.Split(hs, ",") {
					r.AvoidHosts = append(r.AvoidHosts, atoi(h))
				}
				r.AvoidSince = scenarioNow.Add(-dur(ago))
			}
			in.Records = append(in.Records, r)
		case "local":
			d := Domain{Name: f[1], UUID: uuid(f[1]), State: DomainState(f[2]), Active: !has("inactive"), Since: scenarioNow}
			if s, ok := kv["since"]; ok {
				d.Since = scenarioNow.Add(-dur(s))
			}
			in.Local = append(in.Local, d)
		case "history":
			var h History
			if r, ok := kv["restarts"]; ok {
				for _, ago := range strings.Split(r, ",") {
					h.Restarts = append(h.Restarts, scenarioNow.Add(-dur(ago)))
				}
			}
			if fl, ok := kv["failures"]; ok {
				n, ago, _ := strings.Cut(fl, "/")
				h.StartFailures, h.LastFailure = atoi(n), scenarioNow.Add(-dur(ago))
			}
			if d, ok := kv["delay"]; ok { // its start delay began that long ago, at epoch "epoch"
				h.DelaySince, h.DelayEpoch = scenarioNow.Add(-dur(d)), uint64(atoi(kv["epoch"]))
			}
			in.History[uuid(f[1])] = h
		case "migrating":
			in.MigratingOut[uuid(f[1])] = true
		case "diskloss":
			in.Config.DiskLoss = DiskLossPolicy{}
			if f[1] != "off" {
				_, g, _ := strings.Cut(f[1], "/")
				in.Config.DiskLoss = DiskLossPolicy{Restart: true, Grace: dur(g)}
			}
		default:
			fail("unknown line")
		}
	}
	return in
}
