package realguest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// bootQEMU boots the image under plain QEMU (TCG, user networking with the service forwarded to
// a loopback port) and returns the service's address and the QEMU process.
func bootQEMU(t *testing.T, img Image, disk string) (string, *exec.Cmd) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command("qemu-system-x86_64", "-accel", "tcg", "-m", "128", "-nographic", "-no-reboot",
		"-kernel", img.Kernel, "-initrd", img.Initrd,
		"-append", "console=ttyS0 quiet panic=0 wingman.ip=10.0.2.15/24",
		"-drive", "file="+disk+",if=virtio,format=raw,cache=none",
		"-nic", fmt.Sprintf("user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:%d-:%d", port, Port),
		"-device", "pvpanic")
	cmd.Stdout, _ = os.Create(filepath.Join(t.TempDir(), "console.log"))
	if err := cmd.Start(); err != nil {
		t.Fatalf("start qemu: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return fmt.Sprintf("127.0.0.1:%d", port), cmd
}

// TestLedgerSurvivesPowerCut boots the real guest under QEMU, writes records, cuts the power
// (kills QEMU) while writing, boots it again from the same disk, and checks that every
// acknowledged record is there, intact, and that the file system is clean after a clean shutdown.
func TestLedgerSurvivesPowerCut(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a real guest (about 10 s)")
	}
	for _, tool := range []string{"qemu-system-x86_64", "apt-get", "dpkg-deb", "mkfs.ext4", "e2fsck"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s missing: run make deps", tool)
			}
			t.Skipf("%s missing: run make deps", tool)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	img, err := Build(ctx, CacheDir(), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(t.TempDir(), "data.img")
	if err := CreateDataDisk(ctx, disk, 64); err != nil {
		t.Fatal(err)
	}
	addr, q := bootQEMU(t, img, disk)
	start := time.Now()
	if _, err := WaitAnswering(ctx, TCPDial, addr, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("service answered %.1fs after QEMU started", time.Since(start).Seconds())
	w := StartWriter(ctx, WriterConfig{Addr: addr, Dial: TCPDial})
	for len(w.Log().Acks) < 50 {
		time.Sleep(20 * time.Millisecond)
	}
	_ = q.Process.Kill() // the power cut, mid-write
	_ = q.Wait()
	log := w.Stop()

	addr, q = bootQEMU(t, img, disk)
	if _, err := WaitAnswering(ctx, TCPDial, addr, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	l, err := ReadLedger(ctx, TCPDial, addr)
	if err != nil {
		t.Fatal(err)
	}
	v := l.Check(log)
	t.Logf("%v; ledger holds %d records, torn tail %d bytes", v, l.Lines, l.Torn)
	if !v.OK() || v.Acked < 50 {
		t.Fatalf("ledger check: %v", v)
	}
	if _, err := Command(ctx, TCPDial, addr, "HALT"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- q.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("guest did not power off within 30s of HALT")
	}
	if err := CheckFilesystem(ctx, disk); err != nil {
		t.Fatal(err)
	}
}
