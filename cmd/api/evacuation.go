package api

import (
	"context"
	"net/http"
	"time"
)

// Evacuation is the progress of a host's evacuation (maintenance enter):
// the live migrations in flight with their progress, and counts of the
// rest. A host that never evacuated answers with Planned 0.
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
	// Active are the migrations running now, at most Parallel of them.
	Active []MigrationProgress `json:"active,omitempty"`
	// Hidden counts migrations in flight left out of Active to keep the
	// answer small (a forwarded answer must fit one serf message).
	Hidden   int `json:"hidden,omitempty"`
	Parallel int `json:"parallel"`
	// Errors are the first failures, shortened ("web1: reason"); Error is
	// why the evacuation as a whole ended early (aborted, no plan, ...).
	Errors []string `json:"errors,omitempty"`
	Error  string   `json:"error,omitempty"`
}

// Queued is how many planned VMs have not started to migrate yet.
func (e Evacuation) Queued() int {
	return max(e.Planned-e.Done-e.Failed-len(e.Active)-e.Hidden, 0)
}

// MigrationProgress is one running live migration.
type MigrationProgress struct {
	VM      string        `json:"vm"`
	To      string        `json:"to"`
	Elapsed time.Duration `json:"elapsed_ns"`
	Percent float64       `json:"percent"`
	// Processed and Total are bytes of memory (and disks) as libvirt's job
	// statistics count them; Total grows when the guest dirties memory.
	Processed uint64 `json:"processed"`
	Total     uint64 `json:"total"`
	// ETA is the remaining bytes at the rate so far (0: not known yet).
	ETA time.Duration `json:"eta_ns,omitempty"`
}

// Evacuation returns the progress of a host's evacuation.
func (c *Client) Evacuation(ctx context.Context, nameOrID string) (Evacuation, error) {
	var e Evacuation
	return e, c.do(ctx, http.MethodGet, "/v1/hosts/"+esc(nameOrID)+"/evacuation", nil, &e)
}
