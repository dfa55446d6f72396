package watchdog

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// device is /dev/watchdog, armed from open until the magic close. The
// ioctl numbers and flags come from golang.org/x/sys/unix (linux/watchdog.h).
type device struct {
	path     string
	identity string
	timeout  time.Duration

	mu     sync.Mutex
	fd     int // -1 once closed
	byPing bool
}

// openDevice opens and arms path with the given timeout and checks that the
// driver took it. On any failure after the open it disarms the device again.
func openDevice(path string, timeout time.Duration) (_ *device, warnings []string, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("watchdog device %s: %w", path, err)
	}
	if fi.Mode()&os.ModeCharDevice == 0 {
		// Never write a magic 'V' into an ordinary file by mistake.
		return nil, nil, fmt.Errorf("watchdog device %s is not a character device: point device at the kernel's watchdog (/dev/watchdog or /dev/watchdogN)", path)
	}
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.EBUSY) {
		return nil, nil, fmt.Errorf("open %s: another process holds it (systemd's RuntimeWatchdogSec, wdmd, sbd or the watchdog daemon?): stop that user or give wingman another device: %w", path, err)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: run wingmand as root, or check the device's permissions: %w", path, err)
	}
	// From here the device is armed: every error path disarms it.
	d := &device{path: path, fd: fd, timeout: timeout}
	defer func() {
		if err != nil {
			_ = d.Close()
		}
	}()

	info, err := unix.IoctlGetWatchdogInfo(fd)
	if err != nil {
		return nil, nil, fmt.Errorf("%s does not answer WDIOC_GETSUPPORT, so it is no watchdog: point device at the kernel's watchdog: %w", path, err)
	}
	d.identity = unix.ByteSliceToString(info.Identity[:])
	d.byPing = info.Options&unix.WDIOF_KEEPALIVEPING != 0
	want := int(timeout / time.Second)
	if info.Options&unix.WDIOF_SETTIMEOUT != 0 {
		// The driver writes back the timeout it chose; read it below.
		if err := unix.IoctlSetPointerInt(fd, unix.WDIOC_SETTIMEOUT, want); err != nil {
			return nil, nil, fmt.Errorf("%s (%s) refused a timeout of %d s: pick a watchdog timeout W the hardware supports and update the cluster's timing: %w", path, d.identity, want, err)
		}
	}
	got, err := unix.IoctlGetInt(fd, unix.WDIOC_GETTIMEOUT)
	if err != nil {
		return nil, nil, fmt.Errorf("%s (%s): cannot read its timeout back (WDIOC_GETTIMEOUT): %w", path, d.identity, err)
	}
	switch {
	case got <= 0:
		return nil, nil, fmt.Errorf("%s (%s) reports a timeout of %d s: use another watchdog device", path, d.identity, got)
	case got > want:
		// A longer timeout would let a stuck host run past D.
		return nil, nil, fmt.Errorf("%s (%s) runs with a timeout of %d s, above W = %d s, which would break the timing rule: raise W to %d s in the cluster's timing (and D with it), or use another watchdog", path, d.identity, got, want, got)
	case got < want:
		warnings = append(warnings, fmt.Sprintf("%s (%s) chose a timeout of %d s instead of %d s: the daemon must pet it more often", path, d.identity, got, want))
		d.timeout = time.Duration(got) * time.Second
	}
	if info.Options&unix.WDIOF_MAGICCLOSE == 0 {
		warnings = append(warnings, fmt.Sprintf("%s (%s) does not support the magic close: stopping wingmand will reset this host unless something else keeps petting it", path, d.identity))
	}
	if err := d.Pet(); err != nil {
		return nil, nil, err
	}
	return d, warnings, nil
}

func (d *device) Kind() string           { return KindDevice }
func (d *device) Timeout() time.Duration { return d.timeout }

// Pet restarts the device's countdown.
func (d *device) Pet() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fd < 0 {
		return fmt.Errorf("pet %s: %w", d.path, ErrClosed)
	}
	err := unix.IoctlWatchdogKeepalive(d.fd)
	if err != nil && !d.byPing {
		// Drivers without WDIOC_KEEPALIVE are pinged by any write that
		// is not the magic 'V'.
		_, err = unix.Write(d.fd, []byte{0})
	}
	if err != nil {
		return fmt.Errorf("pet %s (%s): the host will be reset within %v unless a pet succeeds: %w", d.path, d.identity, d.timeout, err)
	}
	return nil
}

// Close disarms the device: the magic 'V', then close. A driver built with
// nowayout stays armed anyway and resets the host after Timeout. Closing
// twice is harmless.
func (d *device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fd < 0 {
		return nil
	}
	_, werr := unix.Write(d.fd, []byte("V"))
	cerr := unix.Close(d.fd)
	d.fd = -1
	if err := errors.Join(werr, cerr); err != nil {
		return fmt.Errorf("disarm %s: the host may be reset within %v: %w", d.path, d.timeout, err)
	}
	return nil
}
