package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/vm"
)

// Protect asks every other alive host whether it reaches the VM's disks
// (vm.Config.CheckDisksOn): this host sends each one a "disk-check" over
// serf, which runs the drill's disk check there (vm.Manager.CheckDisks).
// Like a drill-check, a request and its answer each fit one serf message:
// the disks go in batches of at most diskCheckBudget bytes, and the answer
// holds only the failures, trimmed to fit (fitDrillAnswer).

const (
	// diskCheckBudget bounds the JSON of one disk-check's disks, so that
	// the forwarded command stays well under serf's 1024-byte queries.
	diskCheckBudget = 500
	// diskCheckMax bounds the disks of one disk-check (a request is
	// rejected beyond it, so an answer always fits).
	diskCheckMax = 16
)

// diskCheckRequest is the body of a forwarded "disk-check".
type diskCheckRequest struct {
	Disks []wireDisk `json:"d"`
}

// wireDisk is what a host needs of a disk to tell whether it reaches it.
type wireDisk struct {
	Path   string `json:"p,omitempty"`
	Pool   string `json:"pl,omitempty"`
	Volume string `json:"v,omitempty"`
}

// protect is the "protect" command: protect the local domain, checking its
// disks, and say what the other hosts answered.
func (d *Daemon) protect(ctx context.Context, name string, rp vm.RecordPolicy, opts vm.ProtectOptions) (api.ProtectResult, error) {
	rep, err := d.vms.Protect(ctx, d.decision(), name, rp, opts)
	switch {
	case errors.Is(err, vm.ErrUnsafeDisk):
		return api.ProtectResult{}, &httpError{status: http.StatusBadRequest, err: err}
	case errors.Is(err, vm.ErrDiskUnreachable):
		return api.ProtectResult{}, &httpError{status: http.StatusConflict, err: err,
			hint: "or protect it anyway with --force: those hosts then cannot start it after a failure, and 'wingman drill' reports it until they can"}
	case err != nil:
		return api.ProtectResult{}, err
	}
	v, err := d.apiVM(ctx, name)
	if err != nil {
		return api.ProtectResult{}, err
	}
	res := api.ProtectResult{VM: v, DisksReached: rep.Reached, DisksUnreachable: rep.Unreachable}
	for _, u := range rep.Unchecked {
		res.DisksUnchecked = append(res.DisksUnchecked, api.HostNote{Host: u.Host, Reason: u.Reason})
	}
	return res, nil
}

// checkDisksOn asks host, in batches, whether it reaches disks: one
// problem per disk, "" where it does.
func (d *Daemon) checkDisksOn(ctx context.Context, host int, disks []hypervisor.DiskSpec) ([]string, error) {
	batches, err := diskBatches(disks)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(disks))
	start := 0
	for _, b := range batches {
		body, _ := json.Marshal(diskCheckRequest{Disks: b})
		res, err := d.hostCommand(ctx, command{Op: "disk-check", Host: strconv.Itoa(host), Body: body})
		if err != nil {
			return nil, err
		}
		var ans drillCheckAnswer
		if err := remarshal(res, &ans); err != nil {
			return nil, fmt.Errorf("unreadable answer to disk-check: %v", err)
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

// diskBatches splits disks into requests of at most diskCheckBudget bytes
// and diskCheckMax disks.
func diskBatches(disks []hypervisor.DiskSpec) ([][]wireDisk, error) {
	var out [][]wireDisk
	var cur []wireDisk
	size := 0
	for _, dk := range disks {
		w := wireDisk{Path: dk.Path, Pool: dk.Pool, Volume: dk.Volume}
		b, _ := json.Marshal(w)
		if len(b) > diskCheckBudget-16 {
			return nil, fmt.Errorf("the source of disk %s is too long to ask another host about (%d bytes)", dk.Target, len(b))
		}
		if len(cur) > 0 && (size+len(b)+1 > diskCheckBudget || len(cur) == diskCheckMax) {
			out, cur, size = append(out, cur), nil, 0
		}
		cur, size = append(cur, w), size+len(b)+1
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out, nil
}

// answerDiskCheck is the "disk-check" command: does this host reach the disks?
func (d *Daemon) answerDiskCheck(ctx context.Context, body json.RawMessage) (drillCheckAnswer, error) {
	var req diskCheckRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return drillCheckAnswer{}, badRequest("", "decode disk-check: %v", err)
	}
	if len(req.Disks) > diskCheckMax {
		return drillCheckAnswer{}, badRequest("", "disk-check of %d disks: at most %d at a time", len(req.Disks), diskCheckMax)
	}
	disks := make([]hypervisor.DiskSpec, len(req.Disks))
	keys := make([]string, len(req.Disks))
	for i, w := range req.Disks {
		disks[i] = hypervisor.DiskSpec{Path: w.Path, Pool: w.Pool, Volume: w.Volume}
		keys[i] = strconv.Itoa(i)
	}
	problems, err := d.vms.CheckDisks(ctx, disks)
	if err != nil {
		return drillCheckAnswer{}, err
	}
	failed := map[string]string{}
	for i, p := range problems {
		if p != "" && i < len(keys) {
			failed[keys[i]] = p
		}
	}
	return fitDrillAnswer(keys, failed, drillAnswerBudget), nil
}
