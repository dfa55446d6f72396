// Package storage owns the heartbeat LUN: its on-disk format (v1), direct
// block I/O bounded by io_timeout, host heartbeat slots, per-host mailboxes,
// protected-VM records with their leases, and per-host event rings.
//
// Layout, in 4096-byte blocks (every record is little-endian and CRC32C-checked):
//
//	block 0                      header: magic, version, cluster UUID and name, geometry, timings,
//	                             LUN set size, member index and set id (zero for a lone LUN)
//	1 .. H                       heartbeat slot of host 1..H (written only by its owner)
//	H+1 .. 2H                    mailbox (inbox) of host 1..H (written by senders; acks go in the target's slot)
//	2H+1 .. 2H+H*E               event ring of host 1..H, E blocks each (written only by that host)
//	then, per VM record:          config copy A (C blocks), config copy B (C blocks), one lease block per host
//	from the next 1 MiB boundary: the cluster-records area (below)
//
// The cluster-records area holds the values every host must see alike and
// any host may change: the cluster settings record (notification targets,
// the cluster-wide keys of `wingman config`; more sections later) and the incident ledger (which notifications
// were claimed, so none is sent twice). It lies after format v1's last
// block, which v1 daemons never read or write, so it needs no new format
// version and old and new daemons run side by side. A LUN too small for it
// (a block device cut to the v1 size) keeps working for everything else;
// reading or writing these records fails with ErrTooSmall and the size it
// needs. A file LUN grows to hold it when the records are first used.
//
//	per register (settings, then ledger), per host 1..H: ballot copy A (4 blocks), copy B (4 blocks)
//
// A register is written by compare-and-swap on its generation, with the
// same single-disk Disk Paxos as VM leases: generation g+1 is instance
// g+1, the value is the whole encoded record, and each host writes only its
// own ballot, alternating between its copies so an interrupted write leaves
// the previous copy intact. Each ballot carries the value chosen at g (so the
// record survives writers that fail mid-way) and the hashes of the last 16
// chosen values (so a writer that backed off learns whether its value won).
// Ballots carry the cluster UUID and the header's creation time: leftovers of
// an earlier format of the device read as never written, while a damaged
// ballot of this cluster is an error, never empty. The settings record is a
// list of tagged sections and its targets and values lists of tagged fields; what this
// build does not know it keeps and writes back unchanged. Secrets never go on
// the LUN: a target names a file that each host holds.
//
// Format upgrades: a record of format v1 gains a field only in bytes that
// the previous release writes as zeros (a v1 reader reads fixed offsets and
// ignores them; the slot's gossip key fingerprint is one), and the
// previous release's golden image (testdata/lun-v1.img.gz) must read back,
// and re-encode byte for byte, with every later build.
//
// Every block has one writer at a time, so no write ever clobbers another
// host's data. Host slots are taken with a delta lease (read, write, wait,
// re-read, as in sanlock's host_id leases). VM leases use single-disk Disk
// Paxos: each host writes only its own ballot block, so even a write that
// lands late cannot make two hosts owners of one epoch.
//
// A LUN set (set.go) is one heartbeat LUN or three used as one *LUN, as
// Disk Paxos was first written for several disks: every record is written
// to each member and the write counts once a majority acknowledged it (a
// slow member does not delay it); a read needs a majority of members and
// merges their copies, each record by its own ordering: a slot is the
// newest record any member read holds (any majority read includes a member
// that took each write a majority took), and its liveness is its Beat, the
// writer's last write a majority acknowledged (so a host that reaches one
// member only, and keeps writing there, does not look fresh), a lease block, config copy or
// register ballot the newest any member holds (a host's own block only moves
// forward), a mailbox the newest valid message (a fence seen anywhere is
// obeyed), an event-ring entry the highest sequence. A block damaged on one
// member is ignored while a majority holds it intact; the next write
// rewrites it. A member whose header changed is that member's warning and
// its I/O is ignored; only a majority of changed headers is the set's
// ErrHeaderChanged. With three, losing two members is what losing the only
// LUN is; a set of 1 does byte for byte and I/O for I/O what one LUN always did.
//
// The package does I/O and waits; it makes no failover decisions. It must
// never silently reset anything it finds on disk: a bad checksum, a foreign
// cluster or a changed header is an error naming the path and the block.
package storage
