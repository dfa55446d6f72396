package maintenance

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/vm"
)

// Evacuation is the progress of a host's evacuation (api.Evacuation).
type Evacuation struct {
	Host    string    `json:"host"`
	Running bool      `json:"running"`
	Started time.Time `json:"started,omitzero"`
	Ended   time.Time `json:"ended,omitzero"`
	// Planned is the number of protected VMs the evacuation moves; Done
	// and Failed count those that ended (after the retry to another host).
	Planned int `json:"planned"`
	Done    int `json:"done"`
	Failed  int `json:"failed"`
	// Active are the migrations running now, by VM name.
	Active []MigrationProgress `json:"active,omitempty"`
	// Hidden counts migrations in flight left out of Active to keep the
	// answer small.
	Hidden   int `json:"hidden,omitempty"`
	Parallel int `json:"parallel"`
	// Errors are the first failures, shortened ("web1: reason"); Error is
	// why the evacuation as a whole ended early.
	Errors []string `json:"errors,omitempty"`
	Error  string   `json:"error,omitempty"`
}

// Queued is how many planned VMs have not started to migrate yet.
func (e Evacuation) Queued() int {
	return max(e.Planned-e.Done-e.Failed-len(e.Active)-e.Hidden, 0)
}

// MigrationProgress is one migration of an evacuation in flight.
type MigrationProgress struct {
	VM        string        `json:"vm"`
	To        string        `json:"to"`
	Elapsed   time.Duration `json:"elapsed_ns"`
	Percent   float64       `json:"percent"`
	Processed uint64        `json:"processed"`
	Total     uint64        `json:"total"`
	// ETA is the remaining bytes at the rate so far (0: not known yet).
	ETA time.Duration `json:"eta_ns,omitempty"`
}

// Tracker follows this host's evacuation: what is planned, which
// migrations run now and how far they are, what ended.
type Tracker struct {
	mu     sync.Mutex
	cur    Evacuation
	active map[string]MigrationProgress // by VM UUID
}

func (t *Tracker) start(host string, parallel int, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cur = Evacuation{Host: host, Running: true, Started: now, Parallel: parallel}
	t.active = map[string]MigrationProgress{}
}

func (t *Tracker) running() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cur.Running
}

func (t *Tracker) planned(moves []vm.Move) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cur.Planned = len(moves)
}

func (t *Tracker) progress(mv vm.Move, p hypervisor.MigrationProgress) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.active == nil {
		return
	}
	t.active[mv.UUID] = MigrationProgress{VM: mv.Name, To: mv.ToName, Elapsed: p.Elapsed, Percent: p.Percent,
		Processed: p.DataProcessed, Total: p.DataTotal, ETA: eta(p)}
}

func (t *Tracker) done(mv vm.Move, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.active, mv.UUID)
	if err == nil {
		t.cur.Done++
		return
	}
	t.cur.Failed++
	t.cur.Errors = append(t.cur.Errors, shorten(mv.Name+": "+err.Error(), 120))
}

// end marks the evacuation ended with err; it ends only a running one.
func (t *Tracker) end(err error, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.cur.Running {
		return
	}
	t.cur.Running, t.cur.Ended = false, now
	t.active = nil
	switch {
	case errors.Is(err, context.Canceled):
		t.cur.Error = "aborted: the migrations in flight were cancelled, no new one started"
	case err != nil:
		t.cur.Error = shorten(err.Error(), 200)
	}
}

// Snapshot is the evacuation with the migrations in flight by VM name, and
// no more of them and of the errors than fit in limit bytes of JSON
// (Hidden counts the migrations left out): a forwarded answer must fit one
// serf message.
func (t *Tracker) Snapshot(limit int) Evacuation {
	t.mu.Lock()
	e := t.cur
	e.Errors = append([]string(nil), t.cur.Errors...)
	e.Active = make([]MigrationProgress, 0, len(t.active))
	for _, p := range t.active {
		e.Active = append(e.Active, p)
	}
	t.mu.Unlock()
	sort.Slice(e.Active, func(i, j int) bool { return e.Active[i].VM < e.Active[j].VM })
	for {
		b, _ := json.Marshal(e)
		if len(b) <= limit {
			return e
		}
		switch {
		case len(e.Errors) > 1:
			e.Errors = e.Errors[:len(e.Errors)-1]
		case len(e.Active) > 0:
			e.Active = e.Active[:len(e.Active)-1]
			e.Hidden++
		default:
			e.Errors, e.Error = nil, shorten(e.Error, 80)
			return e
		}
	}
}

// eta is the time the rest of a migration takes at its rate so far
// (0: not known yet). The remaining bytes grow when the guest dirties
// memory, so it is an estimate, like virsh domjobinfo's.
func eta(p hypervisor.MigrationProgress) time.Duration {
	if p.DataProcessed == 0 || p.Elapsed <= 0 {
		return 0
	}
	rate := float64(p.DataProcessed) / p.Elapsed.Seconds() // bytes per second
	return time.Duration(float64(p.DataRemaining) / rate * float64(time.Second)).Round(100 * time.Millisecond)
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
