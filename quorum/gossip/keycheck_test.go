package gossip

import (
	"encoding/base64"
	"path/filepath"
	"reflect"
	"testing"
)

func TestKeyFingerprintIsSHA256Prefix(t *testing.T) {
	// printf 'wingman-test-key-of-32-bytes!!!!' | sha256sum
	key := []byte("wingman-test-key-of-32-bytes!!!!")
	if got, want := KeyFingerprint(key), uint64(0xae0c0fa265eae767); got != want {
		t.Errorf("fingerprint %016x, want %016x", got, want)
	}
	if KeyFingerprint(nil) != 0 {
		t.Error("no key must give 0 (not published)")
	}
}

func TestCheckKeys(t *testing.T) {
	const good, bad, other = 0xaa, 0xbb, 0xcc
	all := map[int]bool{1: true, 2: true, 3: true}
	for _, tc := range []struct {
		name  string
		self  int
		fps   map[int]uint64
		heard map[int]bool
		want  KeyReport
	}{
		{"all alike", 1, map[int]uint64{1: good, 2: good, 3: good}, all,
			KeyReport{Reference: good, Majority: true, Holders: []int{1, 2, 3}}},
		{"bad host seen from a good one", 1, map[int]uint64{1: good, 2: good, 3: bad}, map[int]bool{1: true, 2: true},
			KeyReport{Reference: good, Majority: true, Differ: []int{3}, Holders: []int{1, 2}}},
		{"bad host seen from itself", 3, map[int]uint64{1: good, 2: good, 3: bad}, map[int]bool{3: true},
			KeyReport{Reference: good, Majority: true, Differ: []int{3}, Holders: []int{1, 2}}},
		{"rotation: differs but heard", 1, map[int]uint64{1: good, 2: good, 3: bad}, all,
			KeyReport{Reference: good, Majority: true, Holders: []int{1, 2}}},
		{"rotation seen from the rotated host", 3, map[int]uint64{1: good, 2: good, 3: bad}, all,
			KeyReport{Reference: good, Majority: true, Holders: []int{1, 2}}},
		{"two hosts, no majority: the other differs from this one", 1, map[int]uint64{1: good, 2: bad}, map[int]bool{1: true},
			KeyReport{Reference: good, Differ: []int{2}, Holders: []int{1}}},
		{"three keys, no majority", 2, map[int]uint64{1: good, 2: bad, 3: other}, map[int]bool{2: true},
			KeyReport{Reference: bad, Differ: []int{1, 3}, Holders: []int{2}}},
		{"an older wingmand publishes nothing", 1, map[int]uint64{1: good, 2: good, 3: 0}, map[int]bool{1: true, 2: true},
			KeyReport{Reference: good, Majority: true, Holders: []int{1, 2}}},
		{"nobody publishes", 1, map[int]uint64{1: 0, 2: 0}, all, KeyReport{}},
		{"down host with the cluster's key is no key fault", 1, map[int]uint64{1: good, 2: good, 3: good}, map[int]bool{1: true},
			KeyReport{Reference: good, Majority: true, Holders: []int{1, 2, 3}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CheckKeys(tc.self, tc.fps, tc.heard); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("CheckKeys(%d, %v, %v) = %+v, want %+v", tc.self, tc.fps, tc.heard, got, tc.want)
			}
		})
	}
}

func TestAgentPublishesItsPrimaryKeysFingerprint(t *testing.T) {
	primary, second := newKey(t), newKey(t)
	path := filepath.Join(t.TempDir(), "keyring")
	if err := WriteKeyringFile(path, primary, second); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig("kvm1", 1, "")
	cfg.KeyringFile = path
	a := startAgent(t, cfg)
	k, _ := base64.StdEncoding.DecodeString(primary)
	if got, want := a.KeyFingerprint(), KeyFingerprint(k); got != want || got == 0 {
		t.Errorf("agent's fingerprint %016x, want its primary key's %016x", got, want)
	}
}
