//go:build !wingman_faults

package main

import (
	"log/slog"

	"github.com/wingmanha/wingman/storage"
)

// faultInjection says whether this build injects LUN faults: the release
// build never does (faults_on.go is compiled only with -tags wingman_faults).
const faultInjection = false

// lunDevice is a heartbeat LUN member's device, as it is.
func lunDevice(_ int, dev storage.Device, _ string, _ *slog.Logger) storage.Device { return dev }
