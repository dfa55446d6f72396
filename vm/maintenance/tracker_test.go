package maintenance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/hypervisor"
	"github.com/wingmanha/wingman/vm"
)

// answerLimit is the daemon's budget for a forwarded evacuation answer.
const answerLimit = 640

func TestEvacTrackerCounts(t *testing.T) {
	var tr Tracker
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	tr.start("kvm1", 2, t0)
	moves := []vm.Move{{Name: "db", UUID: "u1", To: 2, ToName: "kvm2"}, {Name: "web", UUID: "u2", To: 3, ToName: "kvm3"}, {Name: "app", UUID: "u3", To: 2, ToName: "kvm2"}}
	tr.planned(moves)
	tr.progress(moves[0], hypervisor.MigrationProgress{Elapsed: time.Second, Percent: 25, DataProcessed: 16 << 20, DataRemaining: 48 << 20, DataTotal: 64 << 20})
	tr.progress(moves[1], hypervisor.MigrationProgress{Elapsed: 100 * time.Millisecond})
	e := tr.Snapshot(answerLimit)
	if !e.Running || e.Planned != 3 || len(e.Active) != 2 || e.Queued() != 1 {
		t.Fatalf("while migrating: %+v (queued %d)", e, e.Queued())
	}
	if a := e.Active[0]; a.VM != "db" || a.To != "kvm2" || a.ETA != 3*time.Second || a.Processed != 16<<20 {
		t.Errorf("db's progress: %+v, want 16 MiB done and ETA 3s (48 MiB at 16 MiB/s)", a)
	}
	if e.Active[1].ETA != 0 {
		t.Errorf("web has moved no byte yet, so no ETA: %v", e.Active[1].ETA)
	}
	tr.done(moves[0], nil)
	tr.done(moves[1], errors.New("unable to connect to kvm3"))
	tr.progress(moves[2], hypervisor.MigrationProgress{Elapsed: time.Second})
	tr.done(moves[2], nil)
	tr.end(errors.New("evacuate host 1: web: unable to connect to kvm3"), t0.Add(5*time.Second))
	e = tr.Snapshot(answerLimit)
	if e.Running || e.Done != 2 || e.Failed != 1 || len(e.Active) != 0 || e.Queued() != 0 || !e.Ended.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("after the end: %+v", e)
	}
	if len(e.Errors) != 1 || !strings.HasPrefix(e.Errors[0], "web: unable to connect") || e.Error == "" {
		t.Errorf("errors: %q / %q", e.Errors, e.Error)
	}
	// A late progress sample of a migration that ended is not shown.
	tr.progress(moves[2], hypervisor.MigrationProgress{Elapsed: 2 * time.Second})
	if e := tr.Snapshot(answerLimit); len(e.Active) != 0 {
		t.Errorf("a sample after the end shows: %+v", e.Active)
	}
}

func TestEvacTrackerAbortSaysSo(t *testing.T) {
	var tr Tracker
	tr.start("kvm1", 2, time.Now())
	tr.end(fmt.Errorf("evacuate host 1: %w", context.Canceled), time.Now())
	if e := tr.Snapshot(answerLimit); !strings.HasPrefix(e.Error, "aborted") {
		t.Errorf("an aborted evacuation says %q", e.Error)
	}
}

// The answer must fit one serf response however many migrations run and
// fail: it keeps the counts and drops list entries, saying how many.
func TestEvacuationAnswerFitsOneSerfMessage(t *testing.T) {
	var tr Tracker
	tr.start("kvm1", 16, time.Now())
	var moves []vm.Move
	for i := range 40 {
		moves = append(moves, vm.Move{Name: fmt.Sprintf("a-rather-long-vm-name-%02d", i), UUID: fmt.Sprint(i), To: 2, ToName: "hypervisor-02.example"})
	}
	tr.planned(moves)
	for _, mv := range moves[:16] {
		tr.progress(mv, hypervisor.MigrationProgress{Elapsed: time.Second, Percent: 50, DataProcessed: 1 << 30, DataRemaining: 1 << 30, DataTotal: 2 << 30})
	}
	for _, mv := range moves[16:30] {
		tr.done(mv, errors.New(strings.Repeat("operation failed: migration out job: unexpectedly failed ", 4)))
	}
	e := tr.Snapshot(answerLimit)
	b, _ := json.Marshal(e)
	if len(b) > answerLimit {
		t.Fatalf("answer is %d bytes, over %d", len(b), answerLimit)
	}
	if len(e.Active)+e.Hidden != 16 || e.Failed != 14 || e.Queued() != 10 || len(e.Errors) == 0 {
		t.Errorf("trimmed answer lost counts: %d shown + %d hidden active, %d failed, %d queued, %d errors", len(e.Active), e.Hidden, e.Failed, e.Queued(), len(e.Errors))
	}
}
