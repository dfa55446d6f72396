// Package storage owns the heartbeat LUN: its on-disk format (v1), direct
// block I/O bounded by io_timeout, host heartbeat slots, per-host mailboxes,
// protected-VM records with their leases, and per-host event rings.
//
// Layout, in 4096-byte blocks (every record is little-endian and CRC32C-checked):
//
//	block 0                      header: magic, version, cluster UUID and name, geometry, timings
//	1 .. H                       heartbeat slot of host 1..H (written only by its owner)
//	H+1 .. 2H                    mailbox (inbox) of host 1..H (written by senders; acks go in the target's slot)
//	2H+1 .. 2H+H*E               event ring of host 1..H, E blocks each (written only by that host)
//	then, per VM record:          config copy A (C blocks), config copy B (C blocks), one lease block per host
//
// Every block has one writer at a time, so no write ever clobbers another
// host's data. Host slots are taken with a delta lease (read, write, wait,
// re-read, as in sanlock's host_id leases). VM leases use single-disk Disk
// Paxos: each host writes only its own ballot block, so even a write that
// lands late cannot make two hosts owners of one epoch.
//
// The package does I/O and waits; it makes no failover decisions. It must
// never silently reset anything it finds on disk: a bad checksum, a foreign
// cluster or a changed header is an error naming the path and the block.
package storage
