package api

import (
	"context"
	"time"
)

// DrillRequest asks for a failover drill: what would happen if Host (""
// every host, each in turn) were lost now. Nothing is stopped or moved,
// except, with Live, a throwaway guest per host.
type DrillRequest struct {
	Host string `json:"host,omitempty"`
	// Live also starts a throwaway 64 MiB diskless guest on every host and
	// live-migrates each to the next host of the ring, then destroys it.
	Live bool `json:"live,omitempty"`
}

// DrillReport is a drill's verdict. Pass is false when any VM or host
// fails.
type DrillReport struct {
	Pass     bool          `json:"pass"`
	Lost     []string      `json:"lost"` // the drilled hosts
	VMs      []DrillVM     `json:"vms"`
	Hosts    []DrillHost   `json:"hosts"`
	Hops     []DrillHop    `json:"hops,omitempty"` // with Live
	Duration time.Duration `json:"duration_ns"`
}

// DrillVM is one protected VM of a drilled host.
type DrillVM struct {
	Name  string `json:"name"`
	UUID  string `json:"uuid"`
	Owner string `json:"owner"`
	// LockManager is its owner's Host.LockManager: whether libvirt's lock
	// manager would also refuse a second copy of it.
	LockManager string `json:"lock_manager,omitempty"`
	// Target is where its owner's failover would start it now ("": nowhere).
	Target   string `json:"target,omitempty"`
	Unplaced string `json:"unplaced,omitempty"` // why no host has room
	Skipped  string `json:"skipped,omitempty"`  // why it would not be restarted (not a failure)
	// Problems are what is wrong with its stored definition wherever it
	// runs: a disk that would lose acknowledged writes (cache='unsafe'),
	// or that cannot follow it to another host.
	Problems []string `json:"problems,omitempty"`
	// Checks: one per host that could receive it.
	Checks []DrillCheck `json:"checks"`
	Pass   bool         `json:"pass"`
}

// DrillCheck is whether one host could start one VM.
type DrillCheck struct {
	Host    string `json:"host"`
	Planned bool   `json:"planned,omitempty"` // the plan sends it here
	Problem string `json:"problem,omitempty"` // "" passes
}

// DrillHost is one host: as the lost host (do its VMs fit elsewhere) and
// as a target (can it start the others' VMs).
type DrillHost struct {
	Name    string `json:"name"`
	State   string `json:"state"`
	Drilled bool   `json:"drilled,omitempty"`
	// VMs, Placed and Unplaced count its protected VMs in its own failover.
	VMs      int  `json:"vms"`
	Placed   int  `json:"placed"`
	Unplaced int  `json:"unplaced"`
	Target   bool `json:"target"` // takes failed-over VMs (alive)
	// Checked and CheckFailures count the other hosts' VMs checked here.
	Checked       int    `json:"checked"`
	CheckFailures int    `json:"check_failures"`
	Problem       string `json:"problem,omitempty"`
	Pass          bool   `json:"pass"`
}

// DrillHop is one live migration of the throwaway guest.
type DrillHop struct {
	Guest    string        `json:"guest"`
	From     string        `json:"from"`
	To       string        `json:"to"`
	Duration time.Duration `json:"duration_ns"`
	Downtime time.Duration `json:"downtime_ns"`
	Error    string        `json:"error,omitempty"`
	Pass     bool          `json:"pass"`
}

// Drill runs a failover drill (POST /v1/drill).
func (c *Client) Drill(ctx context.Context, r DrillRequest) (DrillReport, error) {
	var out DrillReport
	err := c.do(ctx, "POST", "/v1/drill", r, &out)
	return out, err
}
