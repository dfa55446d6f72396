package realguest

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Port is the TCP port of guestinit's ledger service.
const Port = 7070

// DialFunc opens a TCP connection to addr ("ip:port") from where the guest's users are (the test
// cluster's switch, cluster.Cluster.DialSwitch).
type DialFunc func(ctx context.Context, addr string, timeout time.Duration) (net.Conn, error)

// WriterConfig configures a Writer.
type WriterConfig struct {
	Addr string   // the service, "ip:port"
	Dial DialFunc // required
	// AckTimeout bounds the wait for one acknowledgement; past it the request has failed and the
	// connection is dropped and dialled again. Default 5 s.
	AckTimeout time.Duration
	// DialTimeout bounds one connection attempt, and so how soon after the service is back the
	// writer finds out. Default 300 ms.
	DialTimeout time.Duration
	// Retry is the pause between failed connection attempts. Default 20 ms.
	Retry time.Duration
	// Interval is the pause between an acknowledgement and the next write. Default 10 ms.
	Interval time.Duration
}

// Ack is one acknowledged record.
type Ack struct {
	Seq uint64
	At  time.Time
}

// Failure is a failed request or connection: a reset, a refused or timed-out dial, an
// acknowledgement that did not come within AckTimeout, or an error answer.
type Failure struct {
	At   time.Time
	What string
}

// Writer writes numbered records to the guest's service one after another, each after the
// previous one was acknowledged, over one connection for as long as that connection works.
type Writer struct {
	cfg    WriterConfig
	run    string // this writer's id in the ledger: records are "<run>:<seq>"
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	acks     []Ack
	failures []Failure
	conns    []time.Time // when each connection was established
}

// StartWriter starts writing; Stop ends it and returns what it saw.
func StartWriter(ctx context.Context, cfg WriterConfig) *Writer {
	if cfg.AckTimeout == 0 {
		cfg.AckTimeout = 5 * time.Second
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 300 * time.Millisecond
	}
	if cfg.Retry == 0 {
		cfg.Retry = 20 * time.Millisecond
	}
	if cfg.Interval == 0 {
		cfg.Interval = 10 * time.Millisecond
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	ctx, cancel := context.WithCancel(ctx)
	w := &Writer{cfg: cfg, run: hex.EncodeToString(b), cancel: cancel, done: make(chan struct{})}
	go w.loop(ctx)
	return w
}

// Run is the writer's id in the ledger.
func (w *Writer) Run() string { return w.run }

// Payload is the content of record seq of run: a checksum that the ledger check verifies, so that
// a record damaged on the disk does not pass as intact.
func Payload(run string, seq uint64) string {
	s := sha256.Sum256([]byte(run + ":" + strconv.FormatUint(seq, 10)))
	return hex.EncodeToString(s[:8])
}

func (w *Writer) loop(ctx context.Context) {
	defer close(w.done)
	var seq uint64
	for ctx.Err() == nil {
		conn, err := w.cfg.Dial(ctx, w.cfg.Addr, w.cfg.DialTimeout)
		if err != nil {
			if ctx.Err() == nil {
				w.fail("dial: " + err.Error())
				sleep(ctx, w.cfg.Retry)
			}
			continue
		}
		w.mu.Lock()
		w.conns = append(w.conns, time.Now())
		w.mu.Unlock()
		r := bufio.NewReader(conn)
		stop := context.AfterFunc(ctx, func() { conn.Close() })
		for ctx.Err() == nil {
			seq++
			_ = conn.SetDeadline(time.Now().Add(w.cfg.AckTimeout))
			if _, err = fmt.Fprintf(conn, "W %s:%d %s\n", w.run, seq, Payload(w.run, seq)); err != nil {
				break
			}
			var line string
			if line, err = r.ReadString('\n'); err != nil {
				break
			}
			if want := fmt.Sprintf("A %s:%d\n", w.run, seq); line != want {
				err = fmt.Errorf("answer %q to record %d", strings.TrimSpace(line), seq)
				break
			}
			w.mu.Lock()
			w.acks = append(w.acks, Ack{Seq: seq, At: time.Now()})
			w.mu.Unlock()
			sleep(ctx, w.cfg.Interval)
		}
		stop()
		conn.Close()
		if err != nil && ctx.Err() == nil {
			w.fail(fmt.Sprintf("record %d: %v", seq, err))
			sleep(ctx, w.cfg.Retry)
		}
	}
}

func (w *Writer) fail(what string) {
	w.mu.Lock()
	w.failures = append(w.failures, Failure{At: time.Now(), What: what})
	w.mu.Unlock()
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// Stop ends the writer and returns what it saw.
func (w *Writer) Stop() Log {
	w.cancel()
	<-w.done
	return w.Log()
}

// Log is what the writer saw so far.
func (w *Writer) Log() Log {
	w.mu.Lock()
	defer w.mu.Unlock()
	return Log{Run: w.run, Acks: append([]Ack(nil), w.acks...), Failures: append([]Failure(nil), w.failures...),
		Connects: append([]time.Time(nil), w.conns...)}
}

// Log is a writer's history.
type Log struct {
	Run      string
	Acks     []Ack
	Failures []Failure
	Connects []time.Time
}

// AnsweredAgain is how long after t the service acknowledged a record again following the first
// failure after t (a failover: the old connection fails, a new one to the restarted guest
// succeeds). ok is false if no failure followed t, or no acknowledgement followed the failure.
func (l Log) AnsweredAgain(t time.Time) (d time.Duration, ok bool) {
	var failAt time.Time
	for _, f := range l.Failures {
		if !f.At.Before(t) {
			failAt = f.At
			break
		}
	}
	if failAt.IsZero() {
		return 0, false
	}
	for _, a := range l.Acks {
		if a.At.After(failAt) {
			return a.At.Sub(t), true
		}
	}
	return 0, false
}

// FirstAckAfter is how long after t the first acknowledgement came.
func (l Log) FirstAckAfter(t time.Time) (time.Duration, bool) {
	for _, a := range l.Acks {
		if a.At.After(t) {
			return a.At.Sub(t), true
		}
	}
	return 0, false
}

// LongestGap is the longest time between two consecutive acknowledgements in [from, to] (the
// window's ends count as acknowledgements' bounds), and when it began.
func (l Log) LongestGap(from, to time.Time) (gap time.Duration, at time.Time) {
	prev := from
	for _, a := range l.Acks {
		if a.At.Before(from) {
			continue
		}
		if a.At.After(to) {
			break
		}
		if d := a.At.Sub(prev); d > gap {
			gap, at = d, prev
		}
		prev = a.At
	}
	if d := to.Sub(prev); d > gap {
		gap, at = d, prev
	}
	return gap, at
}

// FailuresIn are the failures in [from, to].
func (l Log) FailuresIn(from, to time.Time) []Failure {
	var out []Failure
	for _, f := range l.Failures {
		if !f.At.Before(from) && !f.At.After(to) {
			out = append(out, f)
		}
	}
	return out
}

// AcksIn counts the acknowledgements in [from, to].
func (l Log) AcksIn(from, to time.Time) int {
	n := 0
	for _, a := range l.Acks {
		if !a.At.Before(from) && !a.At.After(to) {
			n++
		}
	}
	return n
}

// Ledger is the guest's ledger as read back from the service.
type Ledger struct {
	// Records maps "<run>:<seq>" to its payload.
	Records map[string]string
	// Lines is the number of complete records; Torn the bytes of an incomplete last record (a
	// write cut by a power loss before it was acknowledged).
	Lines, Torn int
	// Duplicates counts records present more than once (a write retried after a lost answer).
	Duplicates int
}

// ReadLedger reads the ledger back from the service at addr.
func ReadLedger(ctx context.Context, dial DialFunc, addr string) (Ledger, error) {
	conn, err := dial(ctx, addr, 2*time.Second)
	if err != nil {
		return Ledger{}, fmt.Errorf("read ledger from %s: %w", addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := fmt.Fprintf(conn, "R\n"); err != nil {
		return Ledger{}, fmt.Errorf("read ledger from %s: %w", addr, err)
	}
	l := Ledger{Records: map[string]string{}}
	r := bufio.NewReaderSize(conn, 1<<20)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return l, fmt.Errorf("read ledger from %s after %d records: %w", addr, l.Lines, err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case strings.HasPrefix(line, "L "):
			id, payload, _ := strings.Cut(line[2:], " ")
			if _, dup := l.Records[id]; dup {
				l.Duplicates++
			}
			l.Records[id] = payload
		case strings.HasPrefix(line, "END "):
			var n int
			if _, err := fmt.Sscanf(line, "END %d %d", &n, &l.Torn); err != nil {
				return l, fmt.Errorf("read ledger from %s: bad end %q", addr, line)
			}
			l.Lines = n
			return l, nil
		default:
			return l, fmt.Errorf("read ledger from %s: unexpected %q", addr, line)
		}
	}
}

// Verdict is the ledger check of one writer's acknowledged records.
type Verdict struct {
	Acked   int      // records the writer saw acknowledged
	Lost    []uint64 // acknowledged but missing from the ledger
	Damaged []uint64 // present with a wrong payload
}

// OK reports whether every acknowledged record is intact.
func (v Verdict) OK() bool { return len(v.Lost) == 0 && len(v.Damaged) == 0 }

func (v Verdict) String() string {
	return fmt.Sprintf("%d acknowledged records checked, %d lost, %d damaged", v.Acked, len(v.Lost), len(v.Damaged))
}

// Check verifies that every record l saw acknowledged is in the ledger, intact.
func (g Ledger) Check(l Log) Verdict {
	v := Verdict{Acked: len(l.Acks)}
	for _, a := range l.Acks {
		p, ok := g.Records[fmt.Sprintf("%s:%d", l.Run, a.Seq)]
		switch {
		case !ok:
			v.Lost = append(v.Lost, a.Seq)
		case p != Payload(l.Run, a.Seq):
			v.Damaged = append(v.Damaged, a.Seq)
		}
	}
	return v
}

// Command sends one control command (PING, HANG-AGENT, PANIC, HALT) to the service and returns
// its answer line.
func Command(ctx context.Context, dial DialFunc, addr, cmd string) (string, error) {
	return command(ctx, dial, addr, cmd, 2*time.Second)
}

func command(ctx context.Context, dial DialFunc, addr, cmd string, dialTimeout time.Duration) (string, error) {
	conn, err := dial(ctx, addr, dialTimeout)
	if err != nil {
		return "", fmt.Errorf("%s to %s: %w", cmd, addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(conn, "%s\n", cmd); err != nil {
		return "", fmt.Errorf("%s to %s: %w", cmd, addr, err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("%s to %s: %w", cmd, addr, err)
	}
	line = strings.TrimSpace(line)
	if strings.HasPrefix(line, "E ") {
		return line, fmt.Errorf("%s to %s: %s", cmd, addr, line[2:])
	}
	return line, nil
}

// WaitAnswering polls the service with PING until it answers, at most timeout, and returns its
// boot id.
func WaitAnswering(ctx context.Context, dial DialFunc, addr string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) && ctx.Err() == nil {
		// A short dial timeout: while the address is nowhere, a connection attempt hangs (ARP
		// gets no answer), and the attempt's timeout is how late the answer is seen.
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		line, err := command(cctx, dial, addr, "PING", 300*time.Millisecond)
		cancel()
		if err == nil && strings.HasPrefix(line, "PONG ") {
			return strings.TrimPrefix(line, "PONG "), nil
		}
		last = err
		sleep(ctx, 20*time.Millisecond)
	}
	return "", fmt.Errorf("service at %s did not answer within %v: %w", addr, timeout, errors.Join(last, ctx.Err()))
}

// TCPDial dials from this network namespace (for a guest reachable from here).
func TCPDial(ctx context.Context, addr string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	return d.DialContext(ctx, "tcp", addr)
}
