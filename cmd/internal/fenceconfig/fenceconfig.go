// Package fenceconfig reads the fencing tables of wingman.toml: [fence.HOST]
// (one agent, or the host's fencing levels) and [fence_device.NAME] (one
// fence device each), checks them key by key, and builds each host's
// fence.Topology.
//
// The levels are written as Pacemaker's fencing topology: a host's levels in
// order, each level one device name, or several joined by commas that must
// all confirm (`levels = ["kvm2-ipmi", "kvm2-pdu-a,kvm2-pdu-b"]`). The form
// of earlier releases, an agent set in [fence.HOST] itself, stays valid and
// is one level of one device.
//
// It must never run an agent (package fence does) nor decide when to fence
// (package quorum does).
package fenceconfig

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/wingmanha/wingman/cmd/internal/configfile"
	"github.com/wingmanha/wingman/quorum/fence"
)

// Bounds of a device's timeout. Below MinTimeout not even one action=off
// and one action=status fit at the agents' 500 ms poll interval. Above
// MaxTimeout a device only delays the next level: the power fence exists
// to beat the disk rule D (12 s by default, and the timing rule keeps every
// timing under 1 h), which declares the host dead meanwhile anyway.
const (
	MinTimeout = time.Second
	MaxTimeout = 5 * time.Minute
)

// Host is one [fence.HOST] table: the host's fencing levels, or, the form
// of earlier releases, one agent (a single level).
type Host struct {
	// Agent, Params and Timeout: the host's one fence agent, as a
	// [fence_device] sets them. Not with Levels.
	Agent   string              `toml:"agent"`
	Params  map[string]string   `toml:"params"`
	Timeout configfile.Duration `toml:"timeout"`
	// Levels are the host's fencing levels in order: each one
	// [fence_device] name, or several joined by commas that must all
	// confirm the host off.
	Levels []string `toml:"levels"`
}

// Device is one [fence_device.NAME] table: a fence agent with its
// parameters and timeout.
type Device struct {
	Agent   string              `toml:"agent"`
	Params  map[string]string   `toml:"params"`
	Timeout configfile.Duration `toml:"timeout"`
}

// config is d's fence.Config.
func (d Device) config(name string, log *slog.Logger) fence.Config {
	c := fence.DefaultConfig()
	c.Device, c.Agent, c.Params, c.Logger = name, d.Agent, d.Params, log
	if d.Timeout.Duration > 0 {
		c.Timeout = d.Timeout.Duration
	}
	return c
}

// Problem is what is wrong with one key, and what to do.
type Problem struct {
	Key, Msg string
}

// Problems are what is wrong with the [fence.HOST] tables hosts and the
// [fence_device.NAME] tables devices, each with what to change.
func Problems(hosts map[string]Host, devices map[string]Device) []Problem {
	var out []Problem
	bad := func(key, format string, a ...any) { out = append(out, Problem{key, fmt.Sprintf(format, a...)}) }
	usedBy := map[string]string{} // device -> the host whose levels name it
	for _, h := range slices.Sorted(maps.Keys(hosts)) {
		hc, key := hosts[h], "fence."+h
		switch {
		case hc.Agent != "" && len(hc.Levels) > 0:
			bad(key, "sets both agent and levels: keep agent for a single device, or move it into a [fence_device] table and list that in levels")
			continue
		case len(hc.Levels) == 0 && (hc.Agent != "" || len(hc.Params) > 0 || hc.Timeout.Duration > 0):
			checkDevice(bad, key, Device{hc.Agent, hc.Params, hc.Timeout})
			continue
		case len(hc.Levels) == 0:
			bad(key, "has neither agent nor levels: set agent (fence_ipmilan, ...) or levels = [\"DEVICE\", ...] naming [fence_device.DEVICE] tables")
			continue
		case len(hc.Params) > 0 || hc.Timeout.Duration > 0:
			bad(key, "sets params or timeout beside levels: they belong to each level's [fence_device] table")
		}
		at := map[string]int{} // device -> its level, within this host
		for i, lv := range hc.Levels {
			names := splitLevel(lv)
			if len(names) == 0 {
				bad(key+".levels", "level %d is empty: name a [fence_device] table, or remove the level", i+1)
				continue
			}
			for _, n := range names {
				if n == "" {
					bad(key+".levels", "level %d (%q) has an empty device name: remove the extra comma", i+1, lv)
					continue
				}
				if _, ok := devices[n]; !ok {
					bad(key+".levels", "level %d names device %q, which no [fence_device.%s] table defines: add that table with its agent, or fix the name (defined: %s)",
						i+1, n, n, strings.Join(slices.Sorted(maps.Keys(devices)), ", "))
					continue
				}
				if l, dup := at[n]; dup {
					bad(key+".levels", "device %q is in level %d and again in level %d: list each device once (a level that did not confirm is not tried again)", n, l, i+1)
					continue
				}
				at[n] = i + 1
				if other, shared := usedBy[n]; shared && other != h {
					bad(key+".levels", "device %q is also in the levels of %s: its params name one host's controller or outlet, so define one [fence_device] per host", n, other)
					continue
				}
				usedBy[n] = h
			}
		}
	}
	for _, n := range slices.Sorted(maps.Keys(devices)) {
		key := "fence_device." + n
		if !validName(n) {
			bad(key, "the name may hold only letters, digits, '-', '_' and '.': levels join names with commas")
		}
		checkDevice(bad, key, devices[n])
	}
	return out
}

// checkDevice checks one agent's keys under key.
func checkDevice(bad func(key, format string, a ...any), key string, d Device) {
	if d.Agent == "" {
		bad(key+".agent", "is not set: name the fence agent (fence_ipmilan, fence_redfish, fence_apc_snmp, ...) or its absolute path")
		return
	}
	if t := d.Timeout.Duration; t != 0 && (t < MinTimeout || t > MaxTimeout) {
		bad(key+".timeout", "%v is out of bounds: use %v to %v (default %v); keep it short where a next level follows, since the disk rule D declares the host dead meanwhile anyway",
			t, MinTimeout, MaxTimeout, fence.DefaultTimeout)
		return // fence.Config.Validate would only repeat it
	}
	if err := d.config("", nil).Validate(); err != nil {
		bad(key, "%v", err)
	}
}

// splitLevel is a level's device names: "a, b" is a and b. An empty level
// is no names.
func splitLevel(level string) []string {
	if strings.TrimSpace(level) == "" {
		return nil
	}
	names := strings.Split(level, ",")
	for i, n := range names {
		names[i] = strings.TrimSpace(n)
	}
	return names
}

func validName(n string) bool {
	if n == "" {
		return false
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// Topologies builds every host's fence.Topology from tables that Problems
// accepted; log receives the agents' lines.
func Topologies(hosts map[string]Host, devices map[string]Device, log *slog.Logger) (map[string]fence.Topology, error) {
	if ps := Problems(hosts, devices); len(ps) > 0 {
		return nil, fmt.Errorf("%s: %s", ps[0].Key, ps[0].Msg)
	}
	out := make(map[string]fence.Topology, len(hosts))
	for h, hc := range hosts {
		if len(hc.Levels) == 0 {
			out[h] = fence.Topology{{Device{hc.Agent, hc.Params, hc.Timeout}.config("", log)}}
			continue
		}
		var t fence.Topology
		for _, lv := range hc.Levels {
			var level []fence.Config
			for _, n := range splitLevel(lv) {
				level = append(level, devices[n].config(n, log))
			}
			t = append(t, level)
		}
		out[h] = t
	}
	return out, nil
}
