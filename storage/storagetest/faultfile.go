package storagetest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/wingmanha/wingman/storage"
)

// ParseFault parses a fault written as text, the form a test harness puts
// in a fault file for a daemon in another process:
//
//	""                  no fault (healthy)
//	"eio"               every I/O fails with EIO
//	"latency 300ms"     every I/O is delayed by 300 ms
//	"hang"              every I/O blocks until the fault is cleared
//
// Each may end with "reads" or "writes" to break only that kind of I/O
// (default: both), e.g. "latency 1.5s writes".
func ParseFault(spec string) (Fault, error) {
	words := strings.Fields(spec)
	if len(words) == 0 {
		return Fault{}, nil
	}
	f := Fault{Op: AllIO}
	switch last := words[len(words)-1]; last {
	case "reads", "writes":
		f.Op = Reads
		if last == "writes" {
			f.Op = Writes
		}
		words = words[:len(words)-1]
	}
	bad := func(why string) (Fault, error) {
		return Fault{}, fmt.Errorf("lun fault %q: %s; write one of: eio, latency DURATION, hang (optionally followed by reads or writes), or nothing to clear", spec, why)
	}
	if len(words) == 0 {
		return bad("no fault kind before the reads/writes qualifier")
	}
	switch words[0] {
	case "eio", "hang":
		if len(words) != 1 {
			return bad(fmt.Sprintf("%s takes no argument", words[0]))
		}
		f.EIO, f.Hang = words[0] == "eio", words[0] == "hang"
	case "latency":
		if len(words) != 2 {
			return bad("latency needs one duration, e.g. latency 300ms")
		}
		d, err := time.ParseDuration(words[1])
		if err != nil || d <= 0 {
			return bad(fmt.Sprintf("latency %q is not a positive duration", words[1]))
		}
		f.Latency = d
	default:
		return bad(fmt.Sprintf("unknown fault kind %q", words[0]))
	}
	return f, nil
}

// FaultText is the canonical text of a fault that ParseFault accepts ("" for
// none): how a fault file's reader acknowledges what it applied.
func FaultText(f Fault) string {
	var s string
	switch {
	case f.EIO:
		s = "eio"
	case f.Hang:
		s = "hang"
	case f.Latency > 0:
		s = "latency " + f.Latency.String()
	default:
		return ""
	}
	switch f.Op {
	case Reads:
		s += " reads"
	case Writes:
		s += " writes"
	}
	return s
}

// StateFile is the name of the fault file in the state directory of a
// wingmand built with -tags wingman_faults (cmd/wingmand/faults_on.go); the
// test cluster writes it (test/cluster SetLUNFault).
const StateFile = "lun-fault"

// AckPath is where a FileControlled device acknowledges the fault of the
// fault file at path: the canonical text of the fault it applied, or a line
// starting "error: " when the file held no valid fault.
func AckPath(path string) string { return path + ".active" }

// FileControlled is a device whose fault is set by another process through a
// file: a daemon under test reads it, the test harness writes it. When the
// file changes (see ControlFromFile) and its text differs, it replaces the fault
// (releasing hung I/Os) and writes AckPath(path). A missing or empty file
// means healthy; a file that does not parse leaves the fault as it was and
// says why in the acknowledgement.
type FileControlled struct {
	*Device
	path string
	log  func(msg string)

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

const fileHost = "self"

// ControlFromFile wraps dev in a fault device controlled by the file at path.
// The file is read once before it returns, so a fault present at start
// applies to the first I/O; afterwards it is read again whenever inotify
// says the file changed, or, where inotify is not available, every
// interval. log (may be nil) is told about every change.
//
// Watching costs nothing at rest: the test cluster's wingmand, whose CPU
// the benchmarks measure at rest, used to read the file 50 times a second,
// about a tenth of its CPU time.
func ControlFromFile(dev storage.Device, path string, interval time.Duration, log func(msg string)) *FileControlled {
	if log == nil {
		log = func(string) {}
	}
	c := NewController()
	fc := &FileControlled{Device: c.Device(fileHost, dev), path: path, log: log,
		stop: make(chan struct{}), done: make(chan struct{})}
	changed, closeWatch := watchFile(path)
	last := fc.poll("", true)
	go func() {
		defer close(fc.done)
		defer closeWatch()
		var tick <-chan time.Time
		if changed == nil {
			t := time.NewTicker(interval)
			defer t.Stop()
			tick = t.C
		}
		for {
			select {
			case <-fc.stop:
				return
			case <-changed:
			case <-tick:
			}
			last = fc.poll(last, false)
		}
	}()
	return fc
}

// watchFile reports on the channel each time inotify sees the file at path
// written, created, renamed into place or removed. It returns a nil
// channel when inotify cannot watch the file's directory.
func watchFile(path string) (<-chan struct{}, func()) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, func() {}
	}
	const mask = unix.IN_CLOSE_WRITE | unix.IN_MOVED_TO | unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM
	if _, err := unix.InotifyAddWatch(fd, filepath.Dir(path), mask); err != nil {
		unix.Close(fd)
		return nil, func() {}
	}
	f := os.NewFile(uintptr(fd), "inotify") // non-blocking: reads wait in the runtime's poller
	ch := make(chan struct{}, 1)
	go func() {
		buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
		for {
			n, err := f.Read(buf)
			if err != nil {
				return // closed
			}
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
				name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)]), "\x00")
				off += unix.SizeofInotifyEvent + int(ev.Len)
				if name == filepath.Base(path) || ev.Mask&unix.IN_Q_OVERFLOW != 0 {
					select {
					case ch <- struct{}{}:
					default:
					}
				}
			}
		}
	}()
	return ch, func() { f.Close() }
}

// poll applies the file's fault if its text differs from last, and returns
// the text it saw.
func (fc *FileControlled) poll(last string, first bool) string {
	b, err := os.ReadFile(fc.path)
	if err != nil && !os.IsNotExist(err) {
		fc.log(fmt.Sprintf("lun fault file %s: %v", fc.path, err))
		return last
	}
	text := strings.TrimSpace(string(b))
	if text == last && !first {
		return last
	}
	f, err := ParseFault(text)
	ack := FaultText(f)
	if err != nil {
		ack = "error: " + err.Error()
		fc.log(err.Error())
	} else {
		fc.c.Clear(fileHost)
		if ack != "" {
			fc.c.Inject(fileHost, f)
		}
		if ack != "" || !first {
			fc.log(fmt.Sprintf("lun fault from %s: %q", fc.path, ack))
		}
	}
	if err := writeAtomic(AckPath(fc.path), ack+"\n"); err != nil {
		fc.log(fmt.Sprintf("lun fault acknowledgement: %v", err))
	}
	return text
}

func writeAtomic(path, text string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Grow grows the wrapped device when it can: the test cluster's file LUN
// grows to hold the cluster-records area, as a file LUN does in
// production. (A Device from a Controller has no Grow: the storage tests
// use it to stand for a block device, which cannot grow.) The caller
// checks Size afterwards.
func (fc *FileControlled) Grow(size int64) error {
	if g, ok := fc.Device.Device.(interface{ Grow(int64) error }); ok {
		return g.Grow(size)
	}
	return nil
}

// Stats are the device's counters.
func (fc *FileControlled) Stats() Stats { return fc.c.Stats(fileHost) }

// Close stops watching the file, ends hung I/Os and closes the device.
func (fc *FileControlled) Close() error {
	fc.stopOnce.Do(func() { close(fc.stop) })
	<-fc.done
	return fc.Device.Close()
}
