//go:build wingman_faults

// This file is compiled only into the test cluster's wingmand (built with
// -tags wingman_faults by test/cluster): a SAN path failure on one host cannot
// be produced on one machine without device-mapper, so the heartbeat LUN's
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

// lunDevice wraps the heartbeat LUN's device in a fault device controlled by
// <state_dir>/lun-fault ("eio", "latency 300ms", "hang", empty: healthy; see
// storagetest.ParseFault), acknowledged in <state_dir>/lun-fault.active.
func lunDevice(dev storage.Device, stateDir string, log *slog.Logger) storage.Device {
	path := filepath.Join(stateDir, storagetest.StateFile)
	log.Warn("TEST BUILD (-tags wingman_faults): heartbeat LUN faults are injected from a file; never run this binary in production", "file", path)
	return storagetest.ControlFromFile(dev, path, lunFaultPoll, func(msg string) { log.Warn("TEST FAULT: " + msg) })
}
