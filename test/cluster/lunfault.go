package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wingmanha/wingman/storage/storagetest"
)

// WingmandTestTags are the build tags of the test cluster's wingmand: wingman_faults compiles in
// the heartbeat LUN fault injection of cmd/wingmand/faults_on.go (SetLUNFault). The release
// build has none of them.
var WingmandTestTags = []string{"wingman_faults"}

// lunFaultAckTimeout bounds the wait for wingmand to apply a LUN fault (it reads the file every
// 20 ms).
const lunFaultAckTimeout = 5 * time.Second

// LUNFaultFile is the file from which h's wingmand takes the fault of heartbeat LUN member (1 for
// a single LUN; 1..3 in the order of LUNs.Paths).
func (h *Host) LUNFaultFile(member int) string {
	return filepath.Join(h.WingmanDir(), "state", storagetest.MemberStateFile(member))
}

// SetLUNFault breaks the heartbeat LUN for h alone, as a failed SAN path of one host does: every
// I/O of h's wingmand to the LUN fails ("eio"), is delayed ("latency 800ms") or never returns
// ("hang"), optionally only reads or writes ("latency 1s writes"); see storagetest.ParseFault.
// "" heals it (hung I/Os then complete). The other hosts keep their healthy path. When wingmand
// runs on h, SetLUNFault returns once wingmand has applied the fault; otherwise the fault applies
// from wingmand's next start. With three heartbeat LUNs it breaks every one of them: the
// host's whole SAN path (LUNs.SetMemberFault breaks one).
func (c *Cluster) SetLUNFault(h *Host, spec string) error {
	for m := 1; m <= c.cfg.HeartbeatLUNs; m++ {
		if err := c.LUNs().SetMemberFault(h, m, spec); err != nil {
			return err
		}
	}
	return nil
}

// SetMemberFault breaks heartbeat LUN member (1..3, in the order of Paths) for h alone, as
// Cluster.SetLUNFault breaks the LUN; the other members keep working.
func (l LUNs) SetMemberFault(h *Host, member int, spec string) error {
	c := l.c
	if member < 1 || member > c.cfg.HeartbeatLUNs {
		return fmt.Errorf("set LUN fault on %s: member %d: the cluster has %d heartbeat LUNs (Config.HeartbeatLUNs)", h.name, member, c.cfg.HeartbeatLUNs)
	}
	f, err := storagetest.ParseFault(spec)
	if err != nil {
		return fmt.Errorf("set LUN fault on %s: %w", h.name, err)
	}
	want := storagetest.FaultText(f)
	p := h.LUNFaultFile(member)
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return fmt.Errorf("set LUN fault on %s: %w", h.name, err)
	}
	tmp := p + ".harness"
	if err := os.WriteFile(tmp, []byte(want+"\n"), 0o644); err != nil {
		return fmt.Errorf("set LUN fault on %s: %w", h.name, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("set LUN fault on %s: %w", h.name, err)
	}
	if !h.WingmandRunning() {
		return nil
	}
	ack := storagetest.AckPath(p)
	deadline := time.Now().Add(lunFaultAckTimeout)
	var got string
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(ack)
		got = strings.TrimSpace(string(b))
		if got == want {
			return nil
		}
		if strings.HasPrefix(got, "error: ") {
			return fmt.Errorf("set LUN fault %q on %s: wingmand refused it: %s", want, h.name, got)
		}
		if !h.WingmandRunning() {
			return nil // it exited meanwhile; the fault applies at its next start
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("set LUN fault %q on %s: wingmand did not apply it within %v (%s says %q): "+
		"is it built with -tags %s? Binaries in WINGMAN_BIN_DIR must be", want, h.name, lunFaultAckTimeout, ack, got,
		strings.Join(WingmandTestTags, ","))
}

// LUNFault is the fault of heartbeat LUN member (as LUNFaultFile) in force for h's wingmand, as
// it last acknowledged it ("" healthy).
func (h *Host) LUNFault(member int) string {
	b, _ := os.ReadFile(storagetest.AckPath(h.LUNFaultFile(member)))
	return strings.TrimSpace(string(b))
}
