package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/quorum/gossip"
	"github.com/wingmanha/wingman/test/cluster"
)

// TestWrongGossipKey: kvm3's wingmand restarts with a keyring holding another key, as a host
// set up with a wrong serf.keyring. Serf on either side cannot decrypt the other's packets, so
// serf alone shows kvm3 failed or left and kvm3 cut off; `wingman status` and `wingman
// host-list` (the real CLI) on a good host and on kvm3 itself name the key as the cause, from
// the key fingerprints the slots publish on the LUN, and say what to copy where.
func TestWrongGossipKey(t *testing.T) {
	full(t)
	e := startEnv(t, Options{Profile: "fast"})
	ctx := ctxFor(t, 5*time.Minute)
	h1, h3 := e.Hosts()[0], e.Hosts()[2]
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	wrong := filepath.Join(e.C.Dir(), "wrong.keyring")
	if err := gossip.WriteKeyringFile(wrong, base64.StdEncoding.EncodeToString(key)); err != nil {
		t.Fatal(err)
	}
	if err := e.C.StopWingmand(h3, time.Minute); err != nil {
		t.Fatal(err)
	}
	o := e.WingmandOptions()
	o.Keyring = wrong
	if err := e.C.StartWingmand(ctx, h3, o); err != nil {
		t.Fatal(err)
	}
	cli, err := cluster.BuildBinary(ctx, "./cmd/wingman", true)
	if err != nil {
		t.Fatal(err)
	}
	wants := []struct {
		on       *cluster.Host
		status   string
		hostList string // on kvm3's line
		fix      string // what to copy where, in the status
	}{
		{h1, "host kvm3's gossip key differs from the majority's", "gossip key differs from the majority's",
			"copy " + filepath.Join(e.C.Dir(), "keyring.json") + " from a host with the majority's key (kvm1, kvm2) to kvm3"},
		{h3, "this host's gossip key differs from the one kvm1, kvm2 use", "gossip key differs from the majority's",
			"copy " + wrong + " from kvm1 to this host"},
	}
	for _, w := range wants {
		var status, list string
		err := Poll(ctx, time.Minute, 200*time.Millisecond, func() (bool, error) {
			status = runCLI(ctx, cli, w.on, "status")
			list = runCLI(ctx, cli, w.on, "host-list")
			return strings.Contains(status, w.status) && strings.Contains(lineOf(list, h3.Name()), w.hostList), nil
		})
		if err != nil {
			t.Fatalf("on %s: the mismatch is not named: %v\nstatus:\n%s\nhost-list:\n%s", w.on.Name(), err, status, list)
		}
		if !strings.Contains(status, w.fix) {
			t.Errorf("on %s: the status does not say what to copy where:\n%s", w.on.Name(), status)
		}
		for _, good := range []string{"kvm1", "kvm2"} {
			if strings.Contains(lineOf(list, good), "gossip key") {
				t.Errorf("on %s: host-list marks %s, which has the cluster's key:\n%s", w.on.Name(), good, list)
			}
		}
		t.Logf("on %s:\n%s\n%s", w.on.Name(), status, list)
	}
}

// runCLI runs the wingman CLI against h's wingmand and returns its output, errors included.
func runCLI(ctx context.Context, cli string, h *cluster.Host, args ...string) string {
	out, err := exec.CommandContext(ctx, cli, append([]string{"-c", h.APISocket()}, args...)...).CombinedOutput()
	if err != nil {
		return string(out) + "\n" + err.Error()
	}
	return string(out)
}

// lineOf is the first line of a table whose second column starts with name.
func lineOf(table, name string) string {
	for _, l := range strings.Split(table, "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[1] == name {
			return l
		}
	}
	return ""
}
