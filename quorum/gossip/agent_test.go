package gossip

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/serf/serf"
)

func TestEncryptedClusterConverges(t *testing.T) {
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d agents", n), func(t *testing.T) {
			t.Parallel()
			agents := startCluster(t, n, newKey(t), nil)
			for _, a := range agents {
				if err := a.WaitJoined(context.Background()); err != nil {
					t.Fatalf("%s: %v", a.Name(), err)
				}
			}
			waitConverged(t, agents)
			for _, a := range agents {
				if !a.serf.EncryptionEnabled() {
					t.Errorf("%s: encryption off", a.Name())
				}
			}
		})
	}
}

func TestKilledAgentFails(t *testing.T) {
	t.Parallel()
	agents := startCluster(t, 3, newKey(t), nil)
	waitConverged(t, agents)
	dead := agents[2]
	if err := dead.Shutdown(); err != nil {
		t.Fatal(err)
	}
	for _, a := range agents[:2] {
		waitFor(t, a.Name()+" marking host3 failed", func() bool { return statusOf(a, dead.Name()) == StatusFailed })
		if a.AliveSet()[dead.cfg.HostID] {
			t.Errorf("%s: failed host still in the alive set", a.Name())
		}
	}
	if err := dead.Shutdown(); err != nil {
		t.Errorf("second shutdown: %v", err)
	}
}

func TestLeftAgentIsLeft(t *testing.T) {
	t.Parallel()
	agents := startCluster(t, 3, newKey(t), nil)
	waitConverged(t, agents)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := agents[1].Leave(ctx); err != nil {
		t.Fatal(err)
	}
	if err := agents[1].Shutdown(); err != nil {
		t.Fatal(err)
	}
	for _, a := range []*Agent{agents[0], agents[2]} {
		waitFor(t, a.Name()+" marking host2 left", func() bool { return statusOf(a, "host2") == StatusLeft })
	}
}

// A host with another key, or none, never becomes a member.
func TestForeignKeyCannotJoin(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	agents := startCluster(t, 2, key, nil)
	waitConverged(t, agents)
	for _, tc := range []struct{ name, key string }{{"otherkey", newKey(t)}, {"nokey", ""}} {
		cfg := testConfig(tc.name, 9, tc.key)
		cfg.Join = []string{agents[0].Addr().String(), agents[1].Addr().String()}
		cfg.JoinRetryMax = 3
		cfg.Timing.TCPTimeout = 500 * time.Millisecond
		intruder := startAgent(t, cfg)
		err := intruder.WaitJoined(context.Background())
		if err == nil {
			t.Fatalf("%s: joined an encrypted cluster", tc.name)
		}
		t.Logf("%s: %v", tc.name, err)
		// The join attempts are over: had any got through, the members would know.
		for _, a := range agents {
			if s := statusOf(a, tc.name); s != StatusUnknown {
				t.Errorf("%s sees %s as %v", a.Name(), tc.name, s)
			}
		}
		if n := len(intruder.Members()); n != 1 {
			t.Errorf("%s sees %d members", tc.name, n)
		}
	}
	// And an encrypted host does not join a plaintext cluster either.
	plain := startAgent(t, testConfig("plain", 20, ""))
	cfg := testConfig("secret", 21, key)
	cfg.Join, cfg.JoinRetryMax = []string{plain.Addr().String()}, 2
	if err := startAgent(t, cfg).WaitJoined(context.Background()); err == nil {
		t.Error("encrypted host joined a plaintext one")
	}
}

func TestJoinRetriesUntilPeerComesUp(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	// Learn a free port by starting and stopping an agent on it.
	probe := startAgent(t, testConfig("probe", 1, key))
	addr := probe.Addr()
	if err := probe.Shutdown(); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig("late", 2, key)
	cfg.Join = []string{addr.String()}
	late := startAgent(t, cfg)
	waitFor(t, "a second join attempt", func() bool { return late.joinAttempts.Load() >= 2 })
	first := testConfig("first", 1, key)
	first.BindPort = int(addr.Port())
	agents := []*Agent{startAgent(t, first), late}
	ctx, cancel := context.WithTimeout(context.Background(), waitDeadline)
	defer cancel()
	if err := late.WaitJoined(ctx); err != nil {
		t.Fatal(err)
	}
	waitConverged(t, agents)
}

func TestJoinStopsWithContext(t *testing.T) {
	t.Parallel()
	cfg := testConfig("lonely", 2, newKey(t))
	cfg.Join = []string{"127.0.0.1:1"}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown()
	cancel()
	if err := a.WaitJoined(context.Background()); !errors.Is(err, context.Canceled) {
		t.Errorf("join after cancel: %v, want context.Canceled", err)
	}
}

func TestTagsPropagate(t *testing.T) {
	t.Parallel()
	agents := startCluster(t, 3, newKey(t), func(c *Config) {
		c.Tags = Tags{MemoryTotalMiB: 1024, MemoryFreeMiB: 512, CPUs: 8, APIAddr: "127.0.0.1:7947", Version: "test"}
	})
	waitConverged(t, agents)
	for _, m := range agents[0].Members() {
		if m.Tags.CPUs != 8 || m.Tags.HostID != m.HostID || m.Tags.APIAddr != "127.0.0.1:7947" {
			t.Errorf("member %s tags %+v", m.Name, m.Tags)
		}
	}
	tags := agents[1].Tags()
	tags.Maintenance = true
	tags.HostID = 99 // ignored: the host id is the configured one
	if err := agents[1].SetTags(tags); err != nil {
		t.Fatal(err)
	}
	for _, a := range agents {
		waitFor(t, a.Name()+" seeing host2 in maintenance", func() bool {
			for _, m := range a.Members() {
				if m.Name == "host2" {
					return m.Tags.Maintenance && m.HostID == 2
				}
			}
			return false
		})
	}
	tags.Version = string(make([]byte, 600))
	if err := agents[1].SetTags(tags); !errors.Is(err, ErrTagsTooLarge) {
		t.Errorf("oversize SetTags: %v, want ErrTagsTooLarge", err)
	}
	if got := agents[1].Tags(); got.Version != "test" || !got.Maintenance {
		t.Errorf("tags after refused update: %+v", got)
	}
}

// A peer with malformed tags (another serf speaking our key) or a second
// host claiming a host id is reported per member, and never trusted.
func TestBadPeerTags(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	agents := startCluster(t, 2, key, nil)
	waitConverged(t, agents)

	cfg := testConfig("rogue", 7, key)
	keys, err := cfg.loadKeys()
	if err != nil {
		t.Fatal(err)
	}
	sc, err := serfConfig(cfg, keys, map[string]string{tagKeySchema: tagSchema, tagKeyHostID: "many"}, nil, newStdLogger(testLogger()))
	if err != nil {
		t.Fatal(err)
	}
	rogue, err := serf.Create(sc)
	if err != nil {
		t.Fatal(err)
	}
	defer rogue.Shutdown()
	if _, err := rogue.Join([]string{agents[0].Addr().String()}, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "rogue member reported with a tag error", func() bool {
		for _, m := range agents[1].Members() {
			if m.Name == "rogue" {
				return m.Status == StatusAlive && errors.Is(m.TagsErr, ErrBadTags) && m.HostID == 0
			}
		}
		return false
	})
	if alive := agents[1].AliveSet(); len(alive) != 2 {
		t.Errorf("alive set %v, want hosts 1 and 2 only", alive)
	}

	dup := testConfig("impostor", 2, key)
	dup.Join = []string{agents[0].Addr().String()}
	startAgent(t, dup)
	waitFor(t, "duplicate host id 2 flagged", func() bool {
		flagged := 0
		for _, m := range agents[0].Members() {
			if errors.Is(m.TagsErr, ErrDuplicateHostID) {
				flagged++
			}
		}
		return flagged == 2 && !agents[0].AliveSet()[2]
	})
}

func TestQueryRoundTrip(t *testing.T) {
	t.Parallel()
	agents := startCluster(t, 3, newKey(t), nil)
	waitConverged(t, agents)
	for _, a := range agents[:2] {
		name := a.Name()
		if err := a.HandleQuery("echo", func(from string, p []byte) ([]byte, error) {
			return fmt.Appendf(nil, "%s->%s:%s", from, name, p), nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := agents[2].HandleQuery("echo", func(string, []byte) ([]byte, error) {
		return nil, errors.New("not today")
	}); err != nil {
		t.Fatal(err)
	}
	if err := agents[0].HandleQuery("_serf_ping", nil); err == nil {
		t.Error("serf's reserved name accepted")
	}

	start := time.Now()
	resps, err := agents[1].Query(context.Background(), "echo", []byte("hi"), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("query took %v: it should return once every member answered", elapsed)
	}
	got := map[string]Response{}
	for _, r := range resps {
		got[r.From] = r
	}
	if len(got) != 3 {
		t.Fatalf("%d responses: %+v", len(got), resps)
	}
	for _, n := range []string{"host1", "host2"} {
		if want := "host2->" + n + ":hi"; string(got[n].Payload) != want || got[n].Err != nil {
			t.Errorf("%s answered %q, %v; want %q", n, got[n].Payload, got[n].Err, want)
		}
	}
	var re *RemoteError
	if !errors.As(got["host3"].Err, &re) || re.Message != "not today" || re.Node != "host3" {
		t.Errorf("host3 answered %v", got["host3"].Err)
	}

	resps, err = agents[0].Query(context.Background(), "nobody-handles-this", nil, 10*time.Second)
	if err != nil || len(resps) != 3 {
		t.Fatalf("unhandled query: %d responses, %v", len(resps), err)
	}
	for _, r := range resps {
		if !errors.Is(r.Err, ErrNoHandler) {
			t.Errorf("%s: %v, want ErrNoHandler", r.From, r.Err)
		}
	}

	// A handler that panics answers an error instead of crashing.
	if err := agents[2].HandleQuery("boom", func(string, []byte) ([]byte, error) { panic("bad input") }); err != nil {
		t.Fatal(err)
	}
	resps, _ = agents[0].Query(context.Background(), "boom", nil, 10*time.Second)
	for _, r := range resps {
		if r.From == "host3" && (r.Err == nil || errors.Is(r.Err, ErrNoHandler)) {
			t.Errorf("panicking handler answered %v", r.Err)
		}
	}

	// A cancelled context ends the query with what was collected.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := agents[0].Query(ctx, "echo", nil, 10*time.Second); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled query: %v", err)
	}
}

// Nobody reads the change notifications, handlers hang, thousands of events
// arrive: serf must keep working.
func TestDrainNeverBlocksSerf(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	agents := startCluster(t, 2, key, nil)
	waitConverged(t, agents)
	hub := agents[0]
	_, cancelSub := hub.Subscribe() // never read
	defer cancelSub()

	// Every user event this agent sends lands on its own EventCh: far more
	// than its buffer. Without a drain, serf.UserEvent would block.
	const userEvents = 3 * eventBuffer
	done := make(chan error, 1)
	go func() {
		for i := range userEvents {
			if err := hub.serf.UserEvent("noise", []byte{byte(i)}, false); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitDeadline):
		t.Fatal("serf blocked sending user events")
	}
	waitFor(t, "all user events drained", func() bool { return hub.Stats().OtherEvents >= userEvents })

	// Hang every handler slot, then some.
	release := make(chan struct{})
	var releaseOnce sync.Once
	defer releaseOnce.Do(func() { close(release) })
	if err := hub.HandleQuery("hang", func(string, []byte) ([]byte, error) { <-release; return nil, nil }); err != nil {
		t.Fatal(err)
	}
	for range maxQueryHandlers + 4 {
		if _, err := agents[1].serf.Query("hang", nil, &serf.QueryParam{Timeout: time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "queries dropped with every handler busy", func() bool { return hub.Stats().QueriesDropped > 0 })

	// Membership churn: hosts come and die.
	before := hub.Stats().MemberEvents
	for i := range 8 {
		cfg := testConfig(fmt.Sprintf("churn%d", i), 100+i, key)
		cfg.Join = []string{hub.Addr().String()}
		c := startAgent(t, cfg)
		waitFor(t, hub.Name()+" seeing "+c.Name(), func() bool { return statusOf(hub, c.Name()) == StatusAlive })
		if err := c.Shutdown(); err != nil {
			t.Fatal(err)
		}
	}
	st := hub.Stats()
	if st.MemberEvents < before+8 || st.NotificationsCoalesced == 0 {
		t.Errorf("stats after churn %+v (member events before %d)", st, before)
	}

	// Serf still works: a new host converges and queries are answered.
	releaseOnce.Do(func() { close(release) })
	cfg := testConfig("newcomer", 50, key)
	cfg.Join = []string{agents[1].Addr().String()}
	all := append(agents, startAgent(t, cfg))
	waitFor(t, "newcomer alive everywhere", func() bool {
		for _, a := range all {
			if statusOf(a, "newcomer") != StatusAlive {
				return false
			}
		}
		return true
	})
	waitFor(t, "hub answering queries again", func() bool {
		resps, _ := all[2].Query(context.Background(), "hang", nil, 2*time.Second)
		for _, r := range resps {
			if r.From == hub.Name() && r.Err == nil {
				return true
			}
		}
		return false
	})
}

// A host restarted after a crash finds the cluster again through its
// snapshot alone: no Join list, and the others do not try to reach it.
func TestSnapshotRejoin(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	// The survivors neither reconnect to failed hosts nor gossip to them
	// for long, so only the snapshot can bring the host back.
	agents := startCluster(t, 2, key, func(c *Config) {
		c.Timing.ReconnectInterval = time.Hour
		c.Timing.PushPullInterval = 200 * time.Millisecond
	})
	cfg := testConfig("phoenix", 3, key)
	cfg.SnapshotPath = t.TempDir() + "/serf.snapshot"
	cfg.Join = []string{agents[0].Addr().String()}
	first := startAgent(t, cfg)
	waitConverged(t, append(agents, first))
	if err := first.Shutdown(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "phoenix failed", func() bool { return statusOf(agents[0], "phoenix") == StatusFailed })
	time.Sleep(500 * time.Millisecond) // past the survivors' gossip to the dead (scenario set-up, not a verdict)

	cfg.Join = nil
	cfg.BindPort = int(first.Addr().Port())
	again := startAgent(t, cfg)
	waitConverged(t, append(agents, again))
}

// Ask reaches the one host it names: no other member runs its handler.
// Asks sent at once each get their own answer. serf stamps each query with
// its query clock and advanced the clock only inside Query: two queries
// sent at once shared a time, and the first one's answer was dropped
// ("query reply ID mismatch") until its timeout. Seen as a forwarded live
// migration that never answered while another ran.
func TestConcurrentAsksAllAnswered(t *testing.T) {
	t.Parallel()
	agents := startCluster(t, 2, newKey(t), nil)
	waitConverged(t, agents)
	const n = 8
	arrived, release := make(chan struct{}, n), make(chan struct{})
	if err := agents[1].HandleQuery("work", func(from string, p []byte) ([]byte, error) {
		arrived <- struct{}{}
		<-release // every ask is in flight before any answers
		return p, nil
	}); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, n)
	for i := range n {
		go func() {
			want := fmt.Sprint("ask ", i)
			got, err := agents[0].Ask(context.Background(), 2, "work", []byte(want), 5*time.Second)
			if err == nil && string(got) != want {
				err = fmt.Errorf("answer %q, want %q", got, want)
			}
			errs <- err
		}()
	}
	for range n {
		<-arrived
	}
	close(release)
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestAskRunsOnlyTheNamedHost(t *testing.T) {
	t.Parallel()
	agents := startCluster(t, 3, newKey(t), nil)
	waitConverged(t, agents)
	var mu sync.Mutex
	ran := map[string]int{}
	for _, a := range agents {
		name := a.Name()
		if err := a.HandleQuery("one", func(from string, p []byte) ([]byte, error) {
			mu.Lock()
			ran[name]++
			mu.Unlock()
			return fmt.Appendf(nil, "%s->%s:%s", from, name, p), nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := agents[0].Ask(context.Background(), 3, "one", []byte("hi"), 10*time.Second)
	if err != nil || string(got) != "host1->host3:hi" {
		t.Fatalf("ask host 3 = %q, %v", got, err)
	}
	// A query to everyone after it: by its end, a stray copy would have run.
	if _, err := agents[0].Query(context.Background(), "one", []byte("all"), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if ran["host3"] != 2 || ran["host1"] != 1 || ran["host2"] != 1 {
		t.Errorf("handlers ran %v times: want the ask on host3 only", ran)
	}
	if _, err := agents[0].Ask(context.Background(), 9, "one", nil, time.Second); !errors.Is(err, ErrNotMember) {
		t.Errorf("ask host 9 = %v, want ErrNotMember", err)
	}
}
