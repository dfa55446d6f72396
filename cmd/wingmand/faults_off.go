//go:build !wingman_faults

package main

import (
	"log/slog"

	"github.com/wingmanha/wingman/storage"
)

// faultInjection says whether this build injects LUN faults: the release
// build never does (faults_on.go is compiled only with -tags wingman_faults).
const faultInjection = false

// lunDevice is the heartbeat LUN's device, as it is.
func lunDevice(dev storage.Device, _ string, _ *slog.Logger) storage.Device { return dev }
