package notify

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/storage/storagetest"
)

func TestDueAndClaim(t *testing.T) {
	inc := Incident{ID: "inc-a", Settled: true, SettledAt: base.Add(20 * time.Second)}
	var led storage.IncidentLedger
	if d := Due([]Incident{{ID: "inc-open"}}, led, base, 0); len(d) != 0 {
		t.Fatalf("an unsettled incident is due: %+v", d)
	}
	d := Due([]Incident{inc}, led, base.Add(time.Minute), 0)
	if len(d) != 1 || d[0].Kind != KindIncident {
		t.Fatalf("due %+v, want the incident", d)
	}
	if d := Due([]Incident{inc}, led, base.Add(2*time.Hour), 0); len(d) != 0 {
		t.Fatalf("an incident older than the horizon is due: %+v", d)
	}
	led, ok := Claim(led, "inc-a", storage.IncidentOpened, 2, base)
	if !ok {
		t.Fatal("first claim refused")
	}
	if _, again := Claim(led, "inc-a", storage.IncidentOpened, 3, base); again {
		t.Fatal("second claim of the same stage accepted")
	}
	if d := Due([]Incident{inc}, led, base.Add(time.Minute), 0); len(d) != 0 {
		t.Fatalf("a claimed incident is due again: %+v", d)
	}
	back := inc
	back.Resolved, back.ResolvedAt = true, base.Add(5*time.Minute)
	if d := Due([]Incident{back}, led, base.Add(6*time.Minute), 0); len(d) != 1 || d[0].Kind != KindResolved {
		t.Fatalf("due %+v, want the resolved message", d)
	}
	// A "resolved" whose incident was never claimed (it was too old) stays silent.
	old := back
	old.ID = "inc-old"
	if d := Due([]Incident{old}, storage.IncidentLedger{}, base.Add(3*time.Hour), 0); len(d) != 0 {
		t.Fatalf("due %+v for an incident nobody was told about", d)
	}
}

// testLUN formats a small LUN file as a host would see it.
func testLUN(t *testing.T) string {
	t.Helper()
	tm := storage.Timings{Renew: 10 * time.Millisecond, IOTimeout: 200 * time.Millisecond,
		SelfFence: 210 * time.Millisecond, Watchdog: 10 * time.Millisecond}
	tm.Dead = tm.MinDead()
	g := storage.Geometry{MaxHosts: 4, MaxVMs: 2, EventBlocks: 4, ConfigBlks: 2} // 64 events a host: the service test writes 22
	return storagetest.LUNFile(t, storage.FormatOptions{ClusterName: "lab", Geometry: g, Timings: tm})
}

func openRecords(t *testing.T, path string) *storage.ClusterRecords {
	t.Helper()
	l, err := storage.OpenPath(context.Background(), path, storage.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return storage.NewClusterRecords(l)
}

// receiver counts webhook deliveries by notification id.
type receiver struct {
	mu  sync.Mutex
	ids map[string]int
	srv *httptest.Server
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{ids: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.ids[req.Header.Get("X-Wingman-Id")]++
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) count() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for k, v := range r.ids {
		out[k] = v
	}
	return out
}

// roundAs runs one coordinator round with a fresh sender (as after a
// daemon start) and waits until what it queued was delivered.
func roundAs(t *testing.T, led Ledger, me int, f Facts, targets []storage.NotifyTarget) []Notification {
	t.Helper()
	r := newResults()
	s, err := NewSender(Config{Attempts: 1, Backoff: time.Millisecond, OnResult: r.on})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sent, err := Round(context.Background(), led, me, f, 0, "lab", "kvm", targets, s)
	if err != nil {
		t.Fatal(err)
	}
	for range sent {
		if res := r.wait(t); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	return sent
}

// The coordinator claims on the LUN before it sends: a restart, another
// coordinator, or two coordinators at once never send an incident twice.
func TestRoundSendsEachIncidentOnce(t *testing.T) {
	path := testLUN(t)
	recv := newReceiver(t)
	targets := []storage.NotifyTarget{{Name: "chat", Kind: TargetWebhook, Address: recv.srv.URL}}
	src, err := os.ReadFile("testdata/isolated-back.txt")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := parseScenario(t, string(src))

	settled := at(f, base.Add(20*time.Second))
	if sent := roundAs(t, openRecords(t, path), 1, settled, targets); len(sent) != 1 || sent[0].Kind != KindIncident {
		t.Fatalf("first round sent %+v, want the incident", sent)
	}
	id := Summarize(settled)[0].ID
	if sent := roundAs(t, openRecords(t, path), 1, settled, targets); len(sent) != 0 {
		t.Fatalf("after a restart the coordinator sent %+v again", sent)
	}
	if sent := roundAs(t, openRecords(t, path), 3, settled, targets); len(sent) != 0 {
		t.Fatalf("a new coordinator sent %+v again", sent)
	}

	back := at(f, base.Add(301*time.Second))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var total []Notification
	for _, me := range []int{1, 3} { // an old and a new coordinator in the same moment
		led := openRecords(t, path)
		wg.Go(func() {
			sent := roundAs(t, led, me, back, targets)
			mu.Lock()
			total = append(total, sent...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(total) != 1 || total[0].Kind != KindResolved {
		t.Fatalf("two coordinators at once sent %+v, want one resolved message", total)
	}
	got := recv.count()
	if len(got) != 2 || got[id] != 1 || got[id+"-resolved"] != 1 {
		t.Fatalf("the receiver got %v, want %s and its resolved message once each", got, id)
	}
	led, err := openRecords(t, path).Incidents(context.Background())
	if err != nil || len(led.Entries) != 2 || led.Entries[0].By != 1 {
		t.Fatalf("ledger %+v, %v", led, err)
	}
}
