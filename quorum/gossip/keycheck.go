package gossip

import (
	"crypto/sha256"
	"encoding/binary"
	"sort"
)

// KeyFingerprint names a gossip key without revealing it: the first 8 bytes
// of its SHA-256, big-endian, so that `base64 -d | sha256sum` of the key
// shows it as the first 16 hex digits. Hosts publish it in their heartbeat
// slot; 0 is kept for "not published".
func KeyFingerprint(key []byte) uint64 {
	if len(key) == 0 {
		return 0
	}
	sum := sha256.Sum256(key)
	return max(binary.BigEndian.Uint64(sum[:8]), 1)
}

// KeyFingerprint is the fingerprint of the agent's primary key (the one it
// encrypts with), 0 without encryption.
func (a *Agent) KeyFingerprint() uint64 {
	if a.keyring == nil {
		return 0
	}
	return KeyFingerprint(a.keyring.GetPrimaryKey())
}

// KeyReport says whose gossip key differs, from the fingerprints the hosts
// publish on the LUN. Serf cannot tell: a host without the cluster's key
// only fails to be heard, and the receiver logs an undecryptable packet
// from an address, not from a host.
type KeyReport struct {
	// Reference is the fingerprint the others are compared with: the one
	// more than half of the publishing hosts use, else this host's.
	Reference uint64
	// Majority is set when Reference is a majority's.
	Majority bool
	// Differ are the hosts, this one included, whose key is not Reference
	// and that the cause explains: another host that serf does not hear,
	// or this host when serf hears no host holding Reference. A host whose
	// key differs but that serf hears is in the middle of a key rotation
	// (it still holds the others' key), which is no fault.
	Differ []int
	// Holders are the hosts that use Reference, in increasing order.
	Holders []int
}

// CheckKeys compares the gossip key fingerprints published by the hosts
// (fingerprints, by host id; 0 or absent: not published, as by an older
// wingmand) as host self sees them, with heard the hosts its serf sees
// alive. Pure: the daemon gives it the latest read of the slots.
func CheckKeys(self int, fingerprints map[int]uint64, heard map[int]bool) KeyReport {
	count := map[uint64]int{}
	published := 0
	for _, fp := range fingerprints {
		if fp != 0 {
			count[fp]++
			published++
		}
	}
	var r KeyReport
	for fp, n := range count {
		if 2*n > published {
			r.Reference, r.Majority = fp, true
		}
	}
	if !r.Majority {
		r.Reference = fingerprints[self]
	}
	if r.Reference == 0 {
		return KeyReport{}
	}
	heardHolder := false
	for id, fp := range fingerprints {
		if fp == r.Reference {
			r.Holders = append(r.Holders, id)
			heardHolder = heardHolder || (id != self && heard[id])
		}
	}
	for id, fp := range fingerprints {
		switch {
		case fp == 0 || fp == r.Reference:
		case id == self && !heardHolder:
			r.Differ = append(r.Differ, id)
		case id != self && !heard[id]:
			r.Differ = append(r.Differ, id)
		}
	}
	sort.Ints(r.Differ)
	sort.Ints(r.Holders)
	return r
}
