//go:build wingman_faults

// This file is compiled only into the test cluster's wingmand (built with
// -tags wingman_faults by test/cluster): a SAN path failure on one host cannot
// be produced on one machine without device-mapper, so each heartbeat LUN's
// device is wrapped in storagetest's fault device, driven by a file in the
// state directory. TestReleaseBuildHasNoFaultInjection proves the release
// build does not contain it.

package main

import (
	"log/slog"
	"path/filepath"
	"time"

	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/storage/storagetest"
)

const faultInjection = true

// lunFaultPoll is how often the fault file is read without inotify.
const lunFaultPoll = 20 * time.Millisecond

// lunDevice wraps heartbeat LUN member's device (1..3) in a fault device
// controlled by <state_dir>/lun-fault for member 1 and lun-fault.N for
// member N ("eio", "latency 300ms", "hang", empty: healthy; see
// storagetest.ParseFault), acknowledged in <file>.active.
func lunDevice(member int, dev storage.Device, stateDir string, log *slog.Logger) storage.Device {
	path := filepath.Join(stateDir, storagetest.MemberStateFile(member))
	log.Warn("TEST BUILD (-tags wingman_faults): heartbeat LUN faults are injected from a file; never run this binary in production", "file", path)
	return storagetest.ControlFromFile(dev, path, lunFaultPoll, func(msg string) { log.Warn("TEST FAULT: "+msg, "member", member) })
}
