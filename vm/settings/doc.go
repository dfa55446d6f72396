// Package settings owns the cluster-wide keys: the few keys of
// wingman.toml whose value must be alike on every host, stored once for
// the whole cluster in the heartbeat LUN's settings record (DESIGN.md,
// sources of truth) and changed with `wingman config set`.
//
// It owns:
//   - the key table (Keys): each cluster-wide key, its default, its range
//     and why it must be alike; and the per-host keys, which stay in
//     wingman.toml, with the reason;
//   - the one set of checks of these values (Values.Problems), which
//     wingmand --check-config applies to the file and Parse to a value
//     given to `wingman config set`;
//   - Merge, pure: the stored values over this host's file over the
//     defaults, key by key, with where each value comes from, and the
//     file's conflicts with the cluster;
//   - Service, which keeps a host's view fresh (Refresh, Run), changes the
//     record by compare-and-swap with an event per change, and hands the
//     values to the features that apply them (vm's GuestAgentWait,
//     vm/maintenance's Defaults) at each use, so a change needs no restart.
//
// What it must never do: apply a value that its own checks refuse (a
// value stored by a newer build with a wider range is listed, not
// applied), or accept a per-host key into the cluster record.
package settings
