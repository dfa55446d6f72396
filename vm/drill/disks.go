package drill

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/vm"
)

// Protect asks every other alive host whether it reaches the VM's disks
// (vm.Config.CheckDisksOn is Runner.CheckDisksOn): each host answers with
// the VM manager's disk check (Runner.AnswerDiskCheck). Like a drill's
// check, a request and its answer each fit one serf message.

const (
	// DiskCheckBudget bounds the JSON of one DiskCheckRequest's disks, so
	// that the forwarded question stays well under serf's 1024 bytes.
	DiskCheckBudget = 500
	// DiskCheckMax bounds the disks of one DiskCheckRequest (a request is
	// refused beyond it, so an answer always fits).
	DiskCheckMax = 16
)

// DiskCheckRequest asks a host whether it reaches disks.
type DiskCheckRequest struct {
	Disks []WireDisk `json:"d"`
}

// WireDisk is what a host needs of a disk to tell whether it reaches it.
type WireDisk struct {
	Path   string `json:"p,omitempty"`
	Pool   string `json:"pl,omitempty"`
	Volume string `json:"v,omitempty"`
}

// CheckDisksOn asks host, in batches, whether it reaches disks: one
// problem per disk, "" where it does.
func (r *Runner) CheckDisksOn(ctx context.Context, host int, disks []hypervisor.DiskSpec) ([]string, error) {
	batches, err := DiskBatches(disks)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(disks))
	start := 0
	for _, b := range batches {
		ans, err := r.peers.CheckDisks(ctx, host, DiskCheckRequest{Disks: b})
		if err != nil {
			return nil, err
		}
		for k, p := range ans.Failed {
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(b) {
				return nil, fmt.Errorf("disk-check answer names disk %q of a batch of %d", k, len(b))
			}
			out[start+i] = p
		}
		start += len(b)
	}
	return out, nil
}

// DiskBatches splits disks into requests of at most DiskCheckBudget bytes
// and DiskCheckMax disks.
func DiskBatches(disks []hypervisor.DiskSpec) ([][]WireDisk, error) {
	var out [][]WireDisk
	var cur []WireDisk
	size := 0
	for _, dk := range disks {
		w := WireDisk{Path: dk.Path, Pool: dk.Pool, Volume: dk.Volume}
		b, _ := json.Marshal(w)
		if len(b) > DiskCheckBudget-16 {
			return nil, fmt.Errorf("the source of disk %s is too long to ask another host about (%d bytes)", dk.Target, len(b))
		}
		if len(cur) > 0 && (size+len(b)+1 > DiskCheckBudget || len(cur) == DiskCheckMax) {
			out, cur, size = append(out, cur), nil, 0
		}
		cur, size = append(cur, w), size+len(b)+1
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out, nil
}

// AnswerDiskCheck answers another host's DiskCheckRequest: does this host
// reach the disks?
func (r *Runner) AnswerDiskCheck(ctx context.Context, req DiskCheckRequest) (Answer, error) {
	if len(req.Disks) > DiskCheckMax {
		return Answer{}, vm.Refuse(vm.ErrInvalid, "", "disk-check of %d disks: at most %d at a time", len(req.Disks), DiskCheckMax)
	}
	disks := make([]hypervisor.DiskSpec, len(req.Disks))
	keys := make([]string, len(req.Disks))
	for i, w := range req.Disks {
		disks[i] = hypervisor.DiskSpec{Path: w.Path, Pool: w.Pool, Volume: w.Volume}
		keys[i] = strconv.Itoa(i)
	}
	problems, err := r.vms.CheckDisks(ctx, disks)
	if err != nil {
		return Answer{}, err
	}
	failed := map[string]string{}
	for i, p := range problems {
		if p != "" && i < len(keys) {
			failed[keys[i]] = p
		}
	}
	return FitAnswer(keys, failed, AnswerBudget), nil
}

// FitAnswer keeps the answer's JSON within budget bytes by trimming the
// longest problems first; every failing item stays listed.
func FitAnswer(items []string, problems map[string]string, budget int) Answer {
	ans := Answer{Failed: map[string]string{}}
	for i, id := range items {
		if p, ok := problems[id]; ok {
			ans.Failed[strconv.Itoa(i)] = p
		}
	}
	for {
		b, _ := json.Marshal(ans)
		if len(b) <= budget {
			return ans
		}
		longest := ""
		for k, p := range ans.Failed {
			if longest == "" || len(p) > len(ans.Failed[longest]) {
				longest = k
			}
		}
		p := ans.Failed[longest]
		cut := max(len(p)-(len(b)-budget)-3, len(p)/2)
		if len(p) <= 8 {
			return ans // nothing more to trim: at most Batch short entries
		}
		for cut > 0 && !utf8.RuneStart(p[cut]) {
			cut--
		}
		ans.Failed[longest] = p[:cut] + "..."
	}
}
