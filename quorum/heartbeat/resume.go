package heartbeat

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/wingmanha/wingman/storage"
)

// ResumeWindow is how old the last heartbeat write of the previous daemon
// may be for a restarted one to resume its slot and keep the guests: less
// than F - R, so that the first write of the new daemon lands before F, when
// the old one would have self-fenced. A restart (stop and start) of wingmand
// must fit in it.
func ResumeWindow(t storage.Timings) time.Duration { return t.SelfFence - t.Renew }

// ResumeFile is the path of the proof that lets a restarted daemon take
// its heartbeat slot back at once: when it can prove that the previous
// daemon of this host wrote the slot less than F ago, the host never looks
// dead to the others and its guests are never started twice. The file
// lives in the runtime directory (a tmpfs, gone with a reboot) and records
// the slot's incarnation and the boot time (BootTime) of the last
// completed write; the caller's own lock guarantees that no other daemon
// of this host still writes the slot.
type ResumeFile string

// Note records a completed heartbeat write of incarnation, issued at boot
// time issued. It writes a new file and renames it, so a crash leaves the
// old proof or the new one.
func (f ResumeFile) Note(incarnation uint64, issued time.Duration) {
	tmp := string(f) + ".tmp"
	body := fmt.Sprintf("%d %d\n", incarnation, int64(issued))
	if err := os.WriteFile(tmp, []byte(body), 0o600); err == nil {
		_ = os.Rename(tmp, string(f))
	}
}

// Take reads and removes the proof: the incarnation of the last write and
// how long ago it was issued. ok is false without a readable proof.
func (f ResumeFile) Take() (incarnation uint64, age time.Duration, ok bool) {
	b, err := os.ReadFile(string(f))
	if err != nil {
		return 0, 0, false
	}
	var at int64
	if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%d %d", &incarnation, &at); err != nil || incarnation == 0 {
		return 0, 0, false
	}
	f.Remove()
	now, _ := BootTime()
	return incarnation, now - time.Duration(at), true
}

// Remove deletes the proof.
func (f ResumeFile) Remove() { os.Remove(string(f)) }
