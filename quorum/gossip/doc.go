// Package gossip is Wingman's adapter to serf: cluster membership on the
// management network, the small facts every host publishes about itself
// (tags), and request/response queries between hosts.
//
// It owns:
//   - the serf agent of this host: its configuration (Config, with encryption
//     required), joining the cluster in the background, leaving and shutting down;
//   - the Tags a host advertises (host id, capacity, maintenance flag, API
//     address, LUN cluster UUID, version) and their encoding within serf's
//     512-byte limit;
//   - a snapshot of the members as serf sees them (Members, AliveSet) and a
//     "membership changed" notification (Subscribe) fed by a drain that never
//     blocks serf;
//   - named query handlers and queries that collect the peers' answers
//     (HandleQuery, Query), used for example to ask peers for a network lease,
//     and a query to one named host only (Ask, serf's node filter).
//
// It must never decide anything. Serf has no quorum and cannot tell an isolated
// host from a dead one, so what this package reports is a hint: "failed" here
// means "serf stopped hearing from it", never "dead". Host states, quorum,
// fencing and failover are decided in package quorum from the heartbeat LUN and
// this hint together. This package does no LUN I/O, touches no VM, and never
// lets a slow consumer or a slow query handler stall serf's own goroutines.
package gossip
