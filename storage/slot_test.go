package storage_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wingmanha/wingman/storage"
)

func TestAcquireRenewRelease(t *testing.T) {
	ctx := testCtx(t)
	path := lunFile(t, storage.FormatOptions{})
	a, b := openLUN(t, path), openLUN(t, path)

	var progress []string
	hb, err := a.AcquireSlot(ctx, storage.AcquireOptions{HostName: "kvm1", Progress: func(m string) { progress = append(progress, m) }})
	if err != nil {
		t.Fatal(err)
	}
	if hb.HostID() != 1 || hb.Generation() != 1 || hb.Record().State != storage.SlotJoining {
		t.Fatalf("first acquisition: id %d %+v", hb.HostID(), hb.Record())
	}
	if len(progress) != 0 {
		t.Errorf("a free slot made us wait: %q", progress)
	}
	// Host id 0 takes the first free slot.
	hb2, err := b.AcquireSlot(ctx, storage.AcquireOptions{HostName: "kvm2"})
	if err != nil || hb2.HostID() != 2 {
		t.Fatalf("second host: %v, %v", hb2, err)
	}
	// A slot held by another name is refused at once.
	_, err = b.AcquireSlot(ctx, storage.AcquireOptions{HostName: "kvm9", HostID: 1})
	wantBlockErr(t, err, storage.ErrSlotHeld, path, slotBlock(1))

	hb.SetState(storage.SlotAlive)
	var view storage.HostSet
	view.Add(1)
	view.Add(2)
	view.Add(200)
	hb.SetSerfView(view)
	seq := hb.Record().Sequence
	for i := range 3 {
		views, err := hb.Renew(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := views[0].Record.Sequence; got != seq+uint64(i)+1 {
			t.Fatalf("renew %d: sequence %d", i, got)
		}
	}
	v, err := b.ReadSlot(ctx, 1)
	if err != nil || v.Err != nil {
		t.Fatal(err, v.Err)
	}
	r := v.Record
	if r.State != storage.SlotAlive || r.HostName != "kvm1" || r.Sequence != seq+3 || r.SerfView != view || r.HostID != 1 {
		t.Errorf("peer reads %+v", r)
	}
	if got := r.SerfView.IDs(); fmt.Sprint(got) != "[1 2 200]" || r.SerfView.Len() != 3 || r.SerfView.Has(3) || r.SerfView.Has(0) || r.SerfView.Has(256) {
		t.Errorf("serf view %v", got)
	}

	// Leaving frees the slot at once for anyone; the next owner bumps the generation.
	if err := hb.Release(ctx, storage.SlotLeft); err != nil {
		t.Fatal(err)
	}
	views, err := b.ReadSlots(ctx)
	if err != nil || views[0].Record.State != storage.SlotLeft || !views[0].Used() {
		t.Fatalf("after release: %+v %v", views[0], err)
	}
	if !views[3].Empty || views[3].Used() {
		t.Errorf("untouched slot 4: %+v", views[3])
	}
	hb3, err := b.AcquireSlot(ctx, storage.AcquireOptions{HostName: "kvm3", HostID: 1})
	if err != nil {
		t.Fatal(err)
	}
	if hb3.Generation() != 2 {
		t.Errorf("generation after re-acquisition: %d", hb3.Generation())
	}
	// The old holder finds out at its next beat.
	if _, err := hb.Renew(ctx); !errors.Is(err, storage.ErrSlotLost) {
		t.Fatalf("renew of a taken-over slot: %v", err)
	}
}

// Observe is a read of every slot that writes nothing: a peer's renewal
// shows in it, our own slot on the LUN keeps its sequence, and a takeover of
// our slot is ErrSlotLost as in Renew.
func TestObserveReadsWithoutWriting(t *testing.T) {
	ctx := testCtx(t)
	path := lunFile(t, storage.FormatOptions{})
	a, b := openLUN(t, path), openLUN(t, path)
	hb, peer := acquire(t, a, 1, "kvm1"), acquire(t, b, 2, "kvm2")
	own := func() uint64 {
		v, err := b.ReadSlot(ctx, 1)
		if err != nil || v.Err != nil {
			t.Fatal(err, v.Err)
		}
		return v.Record.Sequence
	}
	seq := own()
	for i := range 3 {
		if _, err := peer.Renew(ctx); err != nil {
			t.Fatal(err)
		}
		views, err := hb.Observe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := views[1].Record.Sequence, peer.Record().Sequence; got != want {
			t.Errorf("observe %d: peer sequence %d, want %d", i, got, want)
		}
		if got := views[0].Record.Sequence; got != seq {
			t.Errorf("observe %d: own sequence %d, want %d", i, got, seq)
		}
	}
	if got := own(); got != seq || hb.Record().Sequence != seq {
		t.Errorf("own slot after observing: sequence %d on the LUN, %d held; want %d", got, hb.Record().Sequence, seq)
	}
	// Observing does not break the next renewal.
	if _, err := hb.Renew(ctx); err != nil || own() != seq+1 {
		t.Fatalf("renew after observing: %v, sequence %d", err, own())
	}

	// Another host takes the slot after we left it: observing finds out.
	if err := hb.Release(ctx, storage.SlotLeft); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AcquireSlot(ctx, storage.AcquireOptions{HostName: "kvm3", HostID: 1}); err != nil {
		t.Fatal(err)
	}
	views, err := hb.Observe(ctx)
	if !errors.Is(err, storage.ErrSlotLost) || views == nil {
		t.Fatalf("observe of a taken-over slot: %v (views %v)", err, views != nil)
	}
}

func TestAcquireRejectsBadInput(t *testing.T) {
	l := openLUN(t, lunFile(t, storage.FormatOptions{}))
	for _, o := range []storage.AcquireOptions{{}, {HostName: strings.Repeat("h", 64)}, {HostName: "h", HostID: 9}, {HostName: "h", HostID: -1}} {
		if _, err := l.AcquireSlot(testCtx(t), o); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("%+v: %v", o, err)
		}
	}
}

// A second daemon with the same host name must not take a slot that is
// still being heartbeated: it watches the slot for D and sees it change.
func TestAcquireWaitsForLiveSameName(t *testing.T) {
	ctx := testCtx(t)
	path := lunFile(t, storage.FormatOptions{})
	a, b := openLUN(t, path), openLUN(t, path)
	hb := acquire(t, a, 1, "kvm1")
	// The live daemon beats while the newcomer waits (Progress is called
	// when the wait starts, before its first look).
	var beatErr error
	_, err := b.AcquireSlot(ctx, storage.AcquireOptions{HostName: "kvm1", HostID: 1,
		Progress: func(string) { _, beatErr = hb.Renew(ctx) }})
	if beatErr != nil {
		t.Fatal(beatErr)
	}
	wantBlockErr(t, err, storage.ErrSlotHeld, path, slotBlock(1))
	if _, err := hb.Renew(ctx); err != nil {
		t.Fatalf("live daemon displaced: %v", err)
	}
}

// A slot whose owner stopped beating (a crashed daemon of this host) is
// taken back after D without the old record changing.
func TestAcquireTakesOverStaleSameName(t *testing.T) {
	ctx := testCtx(t)
	path := lunFile(t, storage.FormatOptions{})
	a, b := openLUN(t, path), openLUN(t, path)
	old := acquire(t, a, 1, "kvm1")
	var waited bool
	hb, err := b.AcquireSlot(ctx, storage.AcquireOptions{HostName: "kvm1", Progress: func(string) { waited = true }})
	if err != nil {
		t.Fatal(err)
	}
	if !waited || hb.HostID() != 1 || hb.Generation() != old.Generation()+1 {
		t.Fatalf("waited %v, id %d, generation %d", waited, hb.HostID(), hb.Generation())
	}
	if _, err := old.Renew(ctx); !errors.Is(err, storage.ErrSlotLost) {
		t.Fatalf("old daemon: %v", err)
	}
}

// raceSlot makes n acquirers, each with its own FileDevice (as separate
// hosts have), race for slot id of path. It returns the winners and the
// number of acquirers that failed for a reason other than losing.
func raceSlot(t *testing.T, path string, luns []*storage.LUN, id int, round int) (winners []*storage.Heartbeat, other []error) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	start := make(chan struct{})
	for i, l := range luns {
		wg.Go(func() {
			<-start
			hb, err := l.AcquireSlot(testCtx(t), storage.AcquireOptions{HostName: fmt.Sprintf("r%d-h%d", round, i), HostID: id})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				winners = append(winners, hb)
			case errors.Is(err, storage.ErrSlotHeld):
			default:
				other = append(other, err)
			}
		})
	}
	close(start)
	wg.Wait()
	return winners, other
}

// TestSlotRace: of several writers racing for one slot, exactly one wins,
// 100 times over. The winner frees the slot for the next round. A round
// that an I/O overrun leaves without a winner is retried on a fresh slot, so
// that a late write of that round cannot land in the next one.
func TestSlotRace(t *testing.T) {
	const rounds, racers, maxInconclusive = 100, 4, 10
	path := lunFile(t, storage.FormatOptions{Timings: raceTimings(),
		Geometry: storage.Geometry{MaxHosts: maxInconclusive + 1, MaxVMs: 1, EventBlocks: 1, ConfigBlks: 2}})
	luns := make([]*storage.LUN, racers)
	for i := range luns {
		luns[i] = openLUN(t, path)
	}
	observer := openLUN(t, path)
	id, inconclusive := 1, 0
	var gen uint64
	retry := func(round int, why any) {
		t.Helper()
		if inconclusive++; inconclusive > maxInconclusive {
			t.Fatalf("round %d: too many inconclusive rounds, last: %v", round, why)
		}
		t.Logf("round %d inconclusive on slot %d (storage too slow), retrying on slot %d: %v", round, id, id+1, why)
		id, gen = id+1, 0
	}
	for round := 0; round < rounds; {
		winners, other := raceSlot(t, path, luns, id, round)
		if len(winners) > 1 {
			t.Fatalf("round %d: %d winners: %+v and %+v", round, len(winners), winners[0].Record(), winners[1].Record())
		}
		if len(winners) == 0 {
			// Only an I/O that overran io_timeout may leave a round without winner.
			if len(other) == 0 {
				t.Fatalf("round %d: nobody won and nobody failed", round)
			}
			retry(round, other)
			continue
		}
		w := winners[0]
		if w.Generation() <= gen {
			t.Fatalf("round %d: generation %d not above %d", round, w.Generation(), gen)
		}
		gen = w.Generation()
		v, err := observer.ReadSlot(testCtx(t), id)
		if err != nil {
			retry(round, err)
			continue
		}
		if v.Record.Incarnation != w.Record().Incarnation {
			t.Fatalf("round %d: slot holds %+v, winner %+v", round, v.Record, w.Record())
		}
		if err := w.Release(testCtx(t), storage.SlotFree); err != nil {
			retry(round, err)
			continue
		}
		round++
	}
}

// TestSlotRaceProcesses races separate OS processes for one slot, 5 times.
func TestSlotRaceProcesses(t *testing.T) {
	const rounds, racers = 5, 3
	path := lunFile(t, storage.FormatOptions{})
	for round := range rounds {
		outs := runRacers(t, racers, func(i int) []string {
			return []string{"slot", path, strconv.Itoa(round + 1), fmt.Sprintf("p%d-%d", round, i)}
		})
		won := 0
		for i, out := range outs {
			switch {
			case out == "won":
				won++
			case strings.HasPrefix(out, "held"):
			default:
				t.Errorf("round %d racer %d: %s", round, i, out)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d winners: %q", round, won, outs)
		}
	}
}

// runRacers starts n helper processes, lets them open the LUN, then starts
// them all at once by closing their stdin, and returns each one's result line.
func runRacers(t *testing.T, n int, args func(i int) []string) []string {
	t.Helper()
	type proc struct {
		stdin io.WriteCloser
		out   *bufio.Scanner
		wait  func() error
	}
	procs := make([]proc, n)
	for i := range procs {
		cmd := helperCmd(t, "race", args(i)...)
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs[i] = proc{in, bufio.NewScanner(out), cmd.Wait}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	}
	for i, p := range procs { // each says "ready" once its LUN is open
		if !p.out.Scan() || p.out.Text() != "ready" {
			t.Fatalf("racer %d did not get ready: %q %v", i, p.out.Text(), p.out.Err())
		}
	}
	for _, p := range procs {
		p.stdin.Close()
	}
	res := make([]string, n)
	for i, p := range procs {
		if p.out.Scan() {
			res[i] = p.out.Text()
		}
		if err := p.wait(); err != nil {
			t.Fatalf("racer %d: %v (%s)", i, err, res[i])
		}
	}
	return res
}

// TestHeartbeatTwoProcesses: two OS processes heartbeat one LUN file and
// each sees the other's sequence advance.
func TestHeartbeatTwoProcesses(t *testing.T) {
	const advances = 5
	path := lunFile(t, storage.FormatOptions{})
	type proc struct {
		stdin io.WriteCloser
		out   *bufio.Scanner
		cmd   func() error
	}
	var procs []proc
	for host := 1; host <= 2; host++ {
		cmd := helperCmd(t, "heartbeat", path, strconv.Itoa(host), strconv.Itoa(3-host), strconv.Itoa(advances))
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		procs = append(procs, proc{in, bufio.NewScanner(out), cmd.Wait})
	}
	// Each prints the peer sequences it saw change, then "done", and keeps
	// beating until its stdin closes, so the other can finish too.
	for i, p := range procs {
		var seqs []uint64
		for p.out.Scan() && p.out.Text() != "done" {
			s, err := strconv.ParseUint(strings.TrimPrefix(p.out.Text(), "peer "), 10, 64)
			if err != nil {
				t.Fatalf("host %d: %q", i+1, p.out.Text())
			}
			seqs = append(seqs, s)
		}
		if len(seqs) < advances {
			t.Fatalf("host %d saw peer sequences %v", i+1, seqs)
		}
		for j := 1; j < len(seqs); j++ {
			if seqs[j] <= seqs[j-1] {
				t.Fatalf("host %d saw the peer sequence go %v", i+1, seqs)
			}
		}
		t.Logf("host %d saw peer sequences %v", i+1, seqs)
	}
	for _, p := range procs {
		p.stdin.Close()
	}
	for i, p := range procs {
		if err := p.cmd(); err != nil {
			t.Fatalf("host %d: %v", i+1, err)
		}
	}
	views, err := openLUN(t, path).ReadSlots(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range views[:2] {
		if v.Record.State != storage.SlotLeft {
			t.Errorf("slot %d after exit: %+v", v.HostID, v.Record)
		}
	}
}

// TestHelperProcess is not a test: it is the body of the helper processes
// started by the tests above (see helperCmd).
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("helper process body; runs only when re-executed by another test")
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	var err error
	switch mode {
	case "heartbeat":
		err = helperHeartbeat(args)
	case "race":
		err = helperRace(args)
	default:
		err = fmt.Errorf("unknown helper mode %q", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func helperHeartbeat(args []string) error {
	path := args[0]
	host, _ := strconv.Atoi(args[1])
	peer, _ := strconv.Atoi(args[2])
	want, _ := strconv.Atoi(args[3])
	ctx := context.Background()
	l, err := storage.OpenPath(ctx, path, storage.OpenOptions{})
	if err != nil {
		return err
	}
	defer l.Close()
	var hb *storage.Heartbeat
	for {
		hb, err = l.AcquireSlot(ctx, storage.AcquireOptions{HostName: fmt.Sprintf("proc%d", host), HostID: host})
		if err == nil {
			break
		}
		if !errors.Is(err, storage.ErrIOTimeout) && !errors.Is(err, storage.ErrIOPending) {
			return err
		}
		fmt.Fprintln(os.Stderr, "helper: retrying:", err) // storage too slow under load
	}
	hb.SetState(storage.SlotAlive)
	stop := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(stop) }()
	var last uint64
	seen := 0
	for {
		select {
		case <-stop:
			return hb.Release(ctx, storage.SlotLeft)
		default:
		}
		views, err := hb.Renew(ctx)
		if errors.Is(err, storage.ErrSlotLost) {
			return err
		}
		if err != nil {
			continue // a slow I/O; the next beat retries
		}
		if p := views[peer-1]; p.Used() && p.Record.Sequence != last {
			last = p.Record.Sequence
			if seen++; seen <= want {
				fmt.Printf("peer %d\n", last)
				if seen == want {
					fmt.Println("done")
				}
			}
		}
		if err := sleep(ctx, l.Header().Timings.Renew); err != nil {
			return err
		}
	}
}

func helperRace(args []string) error {
	kind, path := args[0], args[1]
	ctx := context.Background()
	l, err := storage.OpenPath(ctx, path, storage.OpenOptions{})
	if err != nil {
		return err
	}
	defer l.Close()
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin) // the start signal: stdin closed
	switch kind {
	case "slot":
		id, _ := strconv.Atoi(args[2])
		_, err = l.AcquireSlot(ctx, storage.AcquireOptions{HostName: args[3], HostID: id})
		switch {
		case err == nil:
			fmt.Println("won")
		case errors.Is(err, storage.ErrSlotHeld):
			fmt.Println("held")
		default:
			fmt.Println("error:", err)
		}
	case "lease":
		idx, _ := strconv.Atoi(args[2])
		expect, _ := strconv.ParseUint(args[3], 10, 64)
		host, _ := strconv.Atoi(args[4])
		me := storage.Owner{Host: host, Gen: 1, Nonce: uint64(host)*1000 + expect + 1}
		st, err := l.AcquireLease(ctx, idx, expect, me)
		var held *storage.LeaseHeldError
		switch {
		case err == nil:
			fmt.Printf("won %d %d\n", st.Epoch, st.Owner.Host)
		case errors.As(err, &held):
			fmt.Printf("held %d %d\n", held.State.Epoch, held.State.Owner.Host)
		default:
			fmt.Println("error:", err)
		}
	}
	return nil
}

func TestAcquireResumesOwnIncarnationAtOnce(t *testing.T) {
	ctx := testCtx(t)
	path := lunFile(t, storage.FormatOptions{})
	a, b := openLUN(t, path), openLUN(t, path)
	hb, err := a.AcquireSlot(ctx, storage.AcquireOptions{HostName: "kvm1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hb.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	rec := hb.Record()
	// A restarted daemon that names the incarnation gets the slot back at
	// once, same generation, and its next renewal continues the sequence.
	start := time.Now()
	again, err := b.AcquireSlot(ctx, storage.AcquireOptions{HostName: "kvm1", Resume: rec.Incarnation})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > testTimings().Dead {
		t.Errorf("resume waited %v", took)
	}
	if again.Generation() != rec.Generation || again.Record().Sequence != rec.Sequence {
		t.Errorf("resumed %+v, had %+v", again.Record(), rec)
	}
	if _, err := again.Renew(ctx); err != nil {
		t.Fatalf("renew after resume: %v", err)
	}
	// A wrong incarnation gets the ordinary acquisition: a new generation.
	c := openLUN(t, path)
	other, err := c.AcquireSlot(ctx, storage.AcquireOptions{HostName: "kvm1", Resume: rec.Incarnation + 1})
	if err != nil {
		t.Fatal(err)
	}
	if other.Generation() != rec.Generation+1 {
		t.Errorf("wrong incarnation: generation %d, want %d", other.Generation(), rec.Generation+1)
	}
}
