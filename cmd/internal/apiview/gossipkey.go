package apiview

import (
	"fmt"
	"slices"
	"strings"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/quorum/gossip"
)

// MarkGossipKeys notes, on each host whose gossip key differs from the
// cluster's, what differs, in GossipKey and in front of its reason: serf
// alone shows such a host only as failed or left, and the host itself as
// cut off from everyone. self, fingerprints and heard are
// gossip.CheckKeys's.
func MarkGossipKeys(hosts []api.Host, self int, fingerprints map[int]uint64, heard map[int]bool) {
	rep := gossip.CheckKeys(self, fingerprints, heard)
	what := "differs from this host's"
	if rep.Majority {
		what = "differs from the majority's"
	}
	for i, h := range hosts {
		if slices.Contains(rep.Differ, h.ID) {
			hosts[i].GossipKey = what
			hosts[i].Reason = strings.TrimSuffix("gossip key "+what+"; "+h.Reason, "; ")
		}
	}
}

// GossipKeyWarnings are the status warnings of host self (whose keyring
// file is keyring) for the hosts whose gossip key differs, with what to do.
func GossipKeyWarnings(hosts []api.Host, self int, fingerprints map[int]uint64, heard map[int]bool, keyring string) []string {
	rep := gossip.CheckKeys(self, fingerprints, heard)
	names := map[int]string{}
	for _, h := range hosts {
		names[h.ID] = h.Name
	}
	var holders []string
	for _, id := range rep.Holders {
		holders = append(holders, names[id])
	}
	var w []string
	for _, id := range rep.Differ {
		switch {
		case id == self:
			w = append(w, fmt.Sprintf("this host's gossip key differs from the one %s use: they cannot hear this host over serf nor it them, so it is cut off (isolated to them); copy %s from %s to this host and restart wingmand",
				strings.Join(holders, ", "), keyring, holders[0]))
		case rep.Majority:
			w = append(w, fmt.Sprintf("host %s's gossip key differs from the majority's: serf cannot hear it, so it shows isolated; copy %s from a host with the majority's key (%s) to %s and restart wingmand there",
				names[id], keyring, strings.Join(holders, ", "), names[id]))
		default:
			w = append(w, fmt.Sprintf("host %s's gossip key differs from this host's and no key is held by a majority: serf cannot hear it; give every host the same %s and restart wingmand where it changed",
				names[id], keyring))
		}
	}
	return w
}
