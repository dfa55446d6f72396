package realguest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// CreateDataDisk creates the guest's data disk at path: a raw image of sizeMiB holding an empty
// ext4 file system (fully initialised, so the guest's kernel does no lazy initialisation behind
// the test's back). It fails if path exists.
func CreateDataDisk(ctx context.Context, path string, sizeMiB int) error {
	if sizeMiB < 16 {
		return fmt.Errorf("create data disk %s: %d MiB: use at least 16", path, sizeMiB)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("create data disk: %w", err)
	}
	err = f.Truncate(int64(sizeMiB) << 20)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("create data disk %s: %w", path, err)
	}
	out, err := exec.CommandContext(ctx, "mkfs.ext4", "-q", "-F", "-L", "ledger",
		"-E", "lazy_itable_init=0,lazy_journal_init=0", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("mkfs.ext4 %s: %w: %s", path, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// CheckFilesystem runs e2fsck -fn on a data disk that no guest uses (after a clean shutdown) and
// returns an error with its report unless the file system is clean.
func CheckFilesystem(ctx context.Context, path string) error {
	out, err := exec.CommandContext(ctx, "e2fsck", "-fn", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("e2fsck -fn %s: %w:\n%s", path, err, out)
	}
	return nil
}

// Tail is the last n lines of the file at path (a guest's console log), joined by " | ", or the
// error reading it: for a message.
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
