// Package luns is a host's heartbeat LUNs as wingmand and the CLI name them:
// the lun key of wingman.toml (one path, or a list of one or three), the one
// check of their number that the daemon, --check-config and `wingman lun
// format` share, opening them as one storage set (each member through the
// caller's wrapper: the test build injects faults there), and the health of
// each member of a set of three as status warnings, events and how each host
// is alive ("disk 3/3", "disk 2/3", "network lease").
//
// It decides nothing about who is alive: the quorum layer judges a host from
// the set's merged (majority) heartbeat; this package only says what each
// member shows, so an operator sees a failing LUN before a second one fails.
package luns
