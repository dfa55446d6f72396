package apiview

import (
	"reflect"
	"strings"
	"testing"

	"github.com/wingmanha/wingman/cmd/api"
)

func TestGossipKeyMismatchIsNamedWithTheFix(t *testing.T) {
	hosts := func() []api.Host {
		return []api.Host{{ID: 1, Name: "kvm1", Reason: "heartbeat fresh"}, {ID: 2, Name: "kvm2"}, {ID: 3, Name: "kvm3", Reason: "poison pill acknowledged"}}
	}
	fps := map[int]uint64{1: 0xaa, 2: 0xaa, 3: 0xbb}
	const keyring = "/etc/wingman/serf.keyring"

	good := hosts()
	heard := map[int]bool{1: true, 2: true}
	MarkGossipKeys(good, 1, fps, heard)
	if good[2].GossipKey != "differs from the majority's" || good[2].Reason != "gossip key differs from the majority's; poison pill acknowledged" ||
		good[0].GossipKey != "" || good[1].GossipKey != "" || good[0].Reason != "heartbeat fresh" {
		t.Errorf("marked from a good host: %+v", good)
	}
	w := GossipKeyWarnings(good, 1, fps, heard, keyring)
	if len(w) != 1 || !strings.Contains(w[0], "host kvm3's gossip key differs from the majority's") ||
		!strings.Contains(w[0], "copy "+keyring+" from a host with the majority's key (kvm1, kvm2) to kvm3") {
		t.Errorf("warnings on a good host: %q", w)
	}

	bad := hosts()
	MarkGossipKeys(bad, 3, fps, map[int]bool{3: true})
	if bad[2].GossipKey != "differs from the majority's" || bad[0].GossipKey != "" {
		t.Errorf("marked from the bad host: %+v", bad)
	}
	w = GossipKeyWarnings(bad, 3, fps, map[int]bool{3: true}, keyring)
	if len(w) != 1 || !strings.Contains(w[0], "this host's gossip key differs from the one kvm1, kvm2 use") ||
		!strings.Contains(w[0], "copy "+keyring+" from kvm1 to this host") {
		t.Errorf("warnings on the bad host: %q", w)
	}

	two := hosts()[:2]
	twoKeys := map[int]uint64{1: 0xaa, 2: 0xbb}
	MarkGossipKeys(two, 1, twoKeys, map[int]bool{1: true})
	w = GossipKeyWarnings(two, 1, twoKeys, map[int]bool{1: true}, keyring)
	if two[1].GossipKey != "differs from this host's" || len(w) != 1 || !strings.Contains(w[0], "no key is held by a majority") {
		t.Errorf("two hosts with two keys: %+v, %q", two, w)
	}

	same := hosts()
	oneKey := map[int]uint64{1: 0xaa, 2: 0xaa, 3: 0xaa}
	MarkGossipKeys(same, 1, oneKey, nil)
	if !reflect.DeepEqual(same, hosts()) || GossipKeyWarnings(same, 1, oneKey, nil, keyring) != nil {
		t.Errorf("one key everywhere changed the hosts: %+v", same)
	}
}
