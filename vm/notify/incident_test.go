package notify

import (
	"crypto/sha256"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/storage"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/*.txt")

var base = time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC)

// vmID gives every VM name of a scenario a stable UUID.
func vmID(name string) storage.UUID {
	h := sha256.Sum256([]byte(name))
	var u storage.UUID
	copy(u[:], h[:16])
	return u
}

func offset(t *testing.T, s string) time.Time {
	t.Helper()
	d, err := time.ParseDuration(strings.TrimPrefix(s, "+"))
	if err != nil {
		t.Fatalf("bad offset %q: %v", s, err)
	}
	return base.Add(d)
}

func rel(at time.Time) string {
	if at.IsZero() {
		return "-"
	}
	return "+" + at.Sub(base).String()
}

// parseScenario reads a scenario file: hosts, the lost hosts' VMs, the
// settle bound, checkpoints (now) and events, one per line.
func parseScenario(t *testing.T, text string) (Facts, []time.Time) {
	f := Facts{HostNames: map[int]string{}, VMNames: map[storage.UUID]string{}, LostVMs: map[int][]storage.UUID{}}
	var nows []time.Time
	seq := map[int]uint64{}
	for ln, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		msg := ""
		if i := strings.Index(line, ` msg="`); i >= 0 {
			msg = strings.TrimSuffix(line[i+6:], `"`)
			line = line[:i]
		}
		w := strings.Fields(line)
		switch w[0] {
		case "hosts":
			for _, kv := range w[1:] {
				k, v, _ := strings.Cut(kv, "=")
				id, _ := strconv.Atoi(k)
				f.HostNames[id] = v
			}
		case "lost":
			h, _ := strconv.Atoi(w[1])
			f.LostVMs[h] = []storage.UUID{}
			for _, n := range w[2:] {
				f.LostVMs[h] = append(f.LostVMs[h], vmID(n))
				f.VMNames[vmID(n)] = n
			}
		case "bound":
			d, err := time.ParseDuration(w[1])
			if err != nil {
				t.Fatalf("line %d: %v", ln+1, err)
			}
			f.Bound = d
		case "rejoined":
			h, _ := strconv.Atoi(w[1])
			if f.Rejoined == nil {
				f.Rejoined = map[int]time.Time{}
			}
			f.Rejoined[h] = offset(t, w[2])
		case "now":
			nows = append(nows, offset(t, w[1]))
		case "event":
			e := storage.Event{Time: offset(t, w[1]), Message: msg}
			for _, kv := range w[2:] {
				k, v, _ := strings.Cut(kv, "=")
				switch k {
				case "host":
					e.Host, _ = strconv.Atoi(v)
				case "kind":
					e.Kind = v
				case "subject":
					e.Subject, _ = strconv.Atoi(v)
				case "vm":
					e.VM = vmID(v)
					f.VMNames[e.VM] = v
				default:
					t.Fatalf("line %d: unknown field %q", ln+1, k)
				}
			}
			seq[e.Host]++
			e.Seq = seq[e.Host]
			f.Events = append(f.Events, e)
		default:
			t.Fatalf("line %d: unknown directive %q", ln+1, w[0])
		}
	}
	return f, nows
}

// at returns f as seen at now: the events written by then.
func at(f Facts, now time.Time) Facts {
	g := f
	g.Now, g.Events, g.Rejoined = now, nil, nil
	for h, t := range f.Rejoined {
		if !t.After(now) {
			if g.Rejoined == nil {
				g.Rejoined = map[int]time.Time{}
			}
			g.Rejoined[h] = t
		}
	}
	for _, e := range f.Events {
		if !e.Time.After(now) {
			g.Events = append(g.Events, e)
		}
	}
	return g
}

func render(incs []Incident) string {
	var b strings.Builder
	for _, inc := range incs {
		fmt.Fprintf(&b, "incident %s host=%s how=%s lost=%s declared=%s settled=%v/%s resolved=%v/%s severity=%v\n",
			inc.ID, inc.Host, inc.How, rel(inc.Lost), rel(inc.Declared), inc.Settled, rel(inc.SettledAt), inc.Resolved, rel(inc.ResolvedAt), inc.Severity)
		for _, vm := range inc.VMs {
			fmt.Fprintf(&b, "  vm %s %s host=%q at=%s took=%v %s\n", vm.Name, vm.State, vm.Host, rel(vm.At), vm.Took, vm.Message)
		}
	}
	if len(incs) == 0 {
		b.WriteString("no incident\n")
	}
	return b.String()
}

func TestScenarios(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txt")
	if len(files) == 0 {
		t.Fatal("no scenario in testdata")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			f, nows := parseScenario(t, string(src))
			var b strings.Builder
			var last []Incident
			for _, now := range nows {
				last = Summarize(at(f, now))
				fmt.Fprintf(&b, "at %s:\n%s", rel(now), render(last))
			}
			for _, inc := range last {
				for _, kind := range []string{KindIncident, KindResolved} {
					if kind == KindResolved && !inc.Resolved {
						continue
					}
					n := ForIncident(inc, kind, "lab", "kvm2")
					fmt.Fprintf(&b, "--- %s %s %s: %s\n%s", kind, n.ID, n.Severity, n.Summary, n.Text)
				}
			}
			golden := strings.TrimSuffix(file, ".txt") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if b.String() != string(want) {
				t.Errorf("%s differs (run with -update after checking):\n--- got\n%s--- want\n%s", golden, b.String(), want)
			}
		})
	}
}

// randomHistory is a random cluster history: hosts lost (by any of the
// ways), their VMs started, failed or forgotten, hosts back, noise.
func randomHistory(r *rand.Rand) Facts {
	f := Facts{HostNames: map[int]string{}, VMNames: map[storage.UUID]string{}, LostVMs: map[int][]storage.UUID{}}
	hosts := 2 + r.IntN(5)
	for h := 1; h <= hosts; h++ {
		f.HostNames[h] = fmt.Sprintf("kvm%d", h)
	}
	seq := map[int]uint64{}
	add := func(at time.Duration, e storage.Event) {
		seq[e.Host]++
		e.Seq, e.Time = seq[e.Host], base.Add(at)
		f.Events = append(f.Events, e)
	}
	at := time.Duration(0)
	for range 1 + r.IntN(4) {
		lost := 1 + r.IntN(hosts)
		coord := lost%hosts + 1
		at += time.Duration(r.IntN(30)) * time.Second
		if r.IntN(2) == 0 {
			add(at, storage.Event{Host: coord, Kind: []string{"suspected", "pill-acknowledged", "power-fence-confirmed"}[r.IntN(3)], Subject: lost})
		}
		add(at+time.Second, storage.Event{Host: coord, Kind: "declared-dead", Subject: lost})
		for v := range r.IntN(4) {
			id := vmID(fmt.Sprintf("vm-%d-%d-%d", lost, v, at))
			f.VMNames[id] = fmt.Sprintf("vm%d", v)
			if r.IntN(4) > 0 {
				f.LostVMs[lost] = append(f.LostVMs[lost], id)
			}
			add(at+2*time.Second, storage.Event{Host: coord, Kind: "planned", VM: id})
			switch r.IntN(3) {
			case 0:
				add(at+time.Duration(3+r.IntN(20))*time.Second, storage.Event{Host: coord, Kind: "started", VM: id})
			case 1:
				add(at+time.Duration(3+r.IntN(20))*time.Second, storage.Event{Host: coord, Kind: "failed", VM: id, Message: "no room"})
			}
		}
		if r.IntN(2) == 0 {
			at += time.Duration(30+r.IntN(600)) * time.Second
			add(at, storage.Event{Host: lost, Kind: "network-lease"})
		}
	}
	f.Now = base.Add(at + time.Duration(r.IntN(900))*time.Second)
	return f
}

// Properties of every history: the same facts in any order give the same
// incidents; ids are unique and do not change as time goes on and more
// events arrive; a settled incident has no pending VM unless its bound
// passed or its host came back.
func TestSummarizeProperties(t *testing.T) {
	for seed := range uint64(500) {
		r := rand.New(rand.NewPCG(seed, 15))
		f := randomHistory(r)
		got := Summarize(f)

		shuffled := f
		shuffled.Events = append([]storage.Event(nil), f.Events...)
		r.Shuffle(len(shuffled.Events), func(i, j int) { shuffled.Events[i], shuffled.Events[j] = shuffled.Events[j], shuffled.Events[i] })
		if again := Summarize(shuffled); !reflect.DeepEqual(again, got) {
			t.Fatalf("seed %d: the order of the events changed the incidents:\n%s\nvs\n%s", seed, render(got), render(again))
		}

		ids := map[string]bool{}
		for _, inc := range got {
			if ids[inc.ID] {
				t.Fatalf("seed %d: id %s twice:\n%s", seed, inc.ID, render(got))
			}
			ids[inc.ID] = true
			pending := false
			for _, vm := range inc.VMs {
				pending = pending || vm.State == VMPending
			}
			bound := !f.Now.Before(inc.Declared.Add(DefaultSettleBound))
			if inc.Settled && pending && !bound && !inc.Resolved {
				t.Fatalf("seed %d: incident %s settled with a pending VM before its bound:\n%s", seed, inc.ID, render(got))
			}
			if !inc.Settled && !pending {
				t.Fatalf("seed %d: incident %s not settled though every VM is done:\n%s", seed, inc.ID, render(got))
			}
		}

		// Earlier views of the same history know the same ids.
		for _, e := range f.Events {
			for _, inc := range Summarize(at(f, e.Time)) {
				if !ids[inc.ID] {
					t.Fatalf("seed %d: at %s an incident %s appears that the full history does not have", seed, rel(e.Time), inc.ID)
				}
			}
		}
	}
}
