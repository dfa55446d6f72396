package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/cmd/internal/luns"
	"github.com/wingmanha/wingman/storage"
)

var lunFormatCmd = command{
	name:    "lun format",
	args:    "PATH [PATH PATH]",
	summary: "format a heartbeat LUN, or three as one set (block devices or files on shared storage)",
	help: `Writes an empty Wingman LUN: header (cluster name and UUID, geometry,
timings), one heartbeat slot, mailbox and event ring per host, and the VM
records. PATH is a shared block device (/dev/disk/by-id/..., a multipath
device) or a regular file on a filesystem that supports O_DIRECT; a file that
does not exist yet is created.

Three PATHs format three heartbeat LUNs as one set, for storage that may
fail on its own (separate arrays, or at least separate paths): every host
writes its heartbeat to all three, and a host is alive when its heartbeat is
fresh on two. One failing LUN is a warning and moves nothing; two failing
are as losing the only LUN. Give the paths in the same order in every
host's wingman.toml. Two LUNs, or more than three, are refused: a majority
of two is two, so either one failing would stop the cluster.

Formatting destroys what PATH holds. It refuses a path that holds a Wingman
LUN, a filesystem, a partition table, an LVM or LUKS signature or any other
non-zero data unless --force is given. Never format a LUN that a running
wingmand uses: stop the daemon on every host first.`,
	nargs: [2]int{1, 4},
	bind: func(fs *pflag.FlagSet) func(context.Context, stdio, []string) error {
		cluster := fs.String("cluster", "", "cluster name, 1..63 bytes (required)")
		hosts := fs.Int("hosts", storage.DefaultHosts, fmt.Sprintf("number of host slots (1..%d)", storage.MaxHosts))
		vms := fs.Int("vms", storage.DefaultVMs, fmt.Sprintf("number of protected-VM records (1..%d)", storage.MaxVMs))
		profile := fs.String("profile", "default", "timing profile: default (R 1s, F 4s, D 12s) or fast (R 0.5s, F 3s, D 7.5s)")
		choices(fs, "profile", "default", "fast")
		pathFailover := fs.Duration("path-failover", 0, "the SAN's multipath failover time; F must be above it")
		ceiling := fs.Duration("lease-ceiling", storage.DefaultLeaseCeiling, "the longest a host without the LUN runs its VMs on network leases; at least max(F, path failover) + 10s")
		force := fs.Bool("force", false, "overwrite whatever PATH holds")
		asJSON := fs.Bool("json", false, "print the new header as JSON")
		return func(ctx context.Context, s stdio, args []string) error {
			if probs := luns.Paths(args).Problems(); len(probs) > 0 {
				return usagef("%s", strings.Join(probs, "; "))
			}
			if *cluster == "" {
				return usagef("--cluster is required: name the cluster this LUN belongs to")
			}
			if err := storage.CheckClusterName(*cluster); err != nil {
				return usagef("--cluster: %v", err)
			}
			t, err := storage.TimingsProfile(*profile)
			if err != nil {
				return usagef("--profile: %v", err)
			}
			t.PathFailover, t.LeaseCeiling = *pathFailover, *ceiling
			g := storage.DefaultGeometry()
			g.MaxHosts, g.MaxVMs = *hosts, *vms
			if err := g.Validate(); err != nil {
				return usagef("%v", err)
			}
			if err := t.Validate(); err != nil {
				return fmt.Errorf("%w; choose --profile default, fix --path-failover or raise --lease-ceiling", err)
			}
			hs, err := formatPaths(ctx, args, storage.FormatOptions{ClusterName: *cluster, Geometry: g, Timings: t, Force: *force})
			if err != nil {
				return err
			}
			if *asJSON && len(hs) == 1 {
				return writeJSON(s.out, headerJSON(args[0], *hs[0]))
			}
			if *asJSON {
				out := make([]hdrJSON, len(hs))
				for i, h := range hs {
					out[i] = headerJSON(args[i], *h)
				}
				return writeJSON(s.out, out)
			}
			for i, h := range hs {
				set := ""
				if len(hs) > 1 {
					set = fmt.Sprintf(" as heartbeat LUN %d of %d", i+1, len(hs))
				}
				fmt.Fprintf(s.out, "formatted %s%s: cluster %q %s, %d hosts, %d VMs, %.1f MiB, sector %d\n",
					args[i], set, h.ClusterName, h.ClusterUUID, g.MaxHosts, g.MaxVMs, float64(g.Size())/(1<<20), h.SectorSize)
			}
			fmt.Fprintf(s.out, "timings: %s\n", hs[0].Timings)
			return nil
		}
	},
}

// openOrCreate opens a LUN device, creating a regular file when nothing
// exists at path yet (created says so). It never creates anything under
// /dev, where a missing path means a mistyped device name.
func openOrCreate(path string) (dev *storage.FileDevice, created bool, err error) {
	_, err = os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		abs, _ := filepath.Abs(path)
		if strings.HasPrefix(abs, "/dev/") {
			return nil, false, fmt.Errorf("%s does not exist: check the device name (ls -l /dev/disk/by-id/)", path)
		}
		f, cerr := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if cerr != nil {
			return nil, false, fmt.Errorf("create LUN file %s: %w", path, cerr)
		}
		f.Close()
		dev, err = storage.OpenFile(path)
		if err != nil {
			os.Remove(path)
			return nil, false, err
		}
		return dev, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("lun %s: %w", path, err)
	}
	dev, err = storage.OpenFile(path)
	return dev, false, err
}

var lunDumpCmd = command{
	name:    "lun dump",
	args:    "PATH [PATH PATH]",
	summary: "show a heartbeat LUN: header, timings, host slots, mailboxes, VM records, events",
	help: `Reads the LUN and prints what it holds. It only reads (it opens the LUN
read-only); it is safe on a LUN that running hosts use. Sequences of live
hosts change between two dumps. In --json, durations are integer
nanoseconds in fields named *_ns, as everywhere in wingman's JSON.

Given the three PATHs of a set, in wingman.toml's order, it shows what the
hosts read (each record as a majority holds it), each host's heartbeat
sequence on every LUN, and which LUN fails.`,
	nargs: [2]int{1, 4},
	bind: func(fs *pflag.FlagSet) func(context.Context, stdio, []string) error {
		asJSON := fs.Bool("json", false, "print JSON (stable field names, for scripts)")
		events := fs.Int("events", 20, "show the newest N events (0: none, -1: all)")
		return func(ctx context.Context, s stdio, args []string) error {
			if probs := luns.Paths(args).Problems(); len(probs) > 0 {
				return usagef("%s", strings.Join(probs, "; "))
			}
			l, err := openPaths(ctx, args)
			if err != nil {
				return err
			}
			defer l.Close()
			d, err := readDump(ctx, l, *events)
			if err != nil {
				return err
			}
			if *asJSON {
				return writeJSON(s.out, d)
			}
			printDump(s.out, d)
			for _, p := range d.Problems {
				fmt.Fprintf(s.errOut, "warning: %s\n", p)
			}
			return nil
		}
	},
}

var lunVerifyCmd = command{
	name:    "lun verify",
	args:    "PATH [PATH PATH]",
	summary: "check every record of a heartbeat LUN and report damage (exit code 3)",
	help: `Reads the header, every heartbeat slot, mailbox, VM record (both config
copies and every host's lease block, of unused records too) and every event
of every ring (opening the LUN read-only) and checks magic, version and
CRC32C, and that nothing written reads as never written: a zeroed lease
block under a config written at a later epoch, a blank config copy beside a
newer one, a blank ring entry among the ring's last events. Prints one line
per damaged record with its block and what to do; exits 3 when it found
any, 0 when the LUN is sound. A damaged or zeroed header in front of intact
records is damage too (exit 3): write it back with 'wingman lun
restore-header' while a wingmand still runs.

Given the three PATHs of a set, in wingman.toml's order, it checks that they
are one set, every record as a majority holds it (what the hosts read), and
each LUN: its header, its I/O, and a copy of each heartbeat slot. It exits 3
when any of them is damaged (the hosts still work from the other two, but
repair it before another fails). One LUN of a set cannot be checked alone.`,
	nargs: [2]int{1, 4},
	bind: func(fs *pflag.FlagSet) func(context.Context, stdio, []string) error {
		asJSON := fs.Bool("json", false, "print JSON")
		return func(ctx context.Context, s stdio, args []string) error {
			if probs := luns.Paths(args).Problems(); len(probs) > 0 {
				return usagef("%s", strings.Join(probs, "; "))
			}
			r, err := verifyLUNs(ctx, args)
			if err != nil {
				return err
			}
			if *asJSON {
				if err := writeJSON(s.out, r); err != nil {
					return err
				}
			} else {
				printVerify(s.out, r)
			}
			if !r.OK {
				return &exitError{code: exitDamaged, err: fmt.Errorf("%d damaged records on %s", r.count(), r.Path)}
			}
			return nil
		}
	},
}

// verifyJSON is what `lun verify` found.
type verifyJSON struct {
	Path     string   `json:"path"` // of a set: the paths, in order, joined by ", "
	OK       bool     `json:"ok"`
	Problems []string `json:"problems"` // in what the hosts read (of a set: each record as a majority holds it)
	// Members are, for a set of three, what each LUN holds on its own.
	Members []memberJSON `json:"members,omitempty"`
	header  *hdrJSON     // nil: the header is damaged
}

// memberJSON is one LUN of a set of three, in `lun dump` and `lun verify`.
type memberJSON struct {
	Index    int      `json:"index"`
	Path     string   `json:"path"`
	OK       bool     `json:"ok"`
	Problems []string `json:"problems"`
}

func (r verifyJSON) count() int {
	n := len(r.Problems)
	for _, m := range r.Members {
		n += len(m.Problems)
	}
	return n
}

// verifyLUNs checks every record of the LUN at paths, or of the set of
// three, and what each of the three holds. A damaged header in front of
// heartbeat slots is damage; a device that holds no LUN at all is an error.
func verifyLUNs(ctx context.Context, paths []string) (verifyJSON, error) {
	joined := luns.Paths(paths).String()
	l, err := openPaths(ctx, paths)
	if err != nil {
		if len(paths) > 1 || !headerOverRecords(paths[0], err) {
			return verifyJSON{}, err
		}
		return verifyJSON{Path: joined, Problems: []string{err.Error(),
			joined + ": the header is damaged but heartbeat slots follow it: restore it from a running wingmand with 'wingman lun restore-header'"}}, nil
	}
	defer l.Close()
	d, err := readDump(ctx, l, 0)
	if err != nil {
		return verifyJSON{}, err
	}
	r := verifyJSON{Path: joined, Problems: nonNil(d.Problems), Members: d.Members, header: &d.Header}
	r.OK = r.count() == 0
	return r, nil
}

func printVerify(w io.Writer, r verifyJSON) {
	for _, p := range r.Problems {
		fmt.Fprintln(w, p)
	}
	for _, m := range r.Members {
		for _, p := range m.Problems {
			fmt.Fprintf(w, "LUN %d of %d (%s): %s\n", m.Index, len(r.Members), m.Path, p)
		}
	}
	if r.OK && r.header != nil {
		h := r.header
		what := "LUN"
		if len(r.Members) > 1 {
			what = fmt.Sprintf("set of %d LUNs", len(r.Members))
		}
		fmt.Fprintf(w, "%s: %s of cluster %q is sound: header, %d slots, %d mailboxes, %d VM records with their leases, %d event rings checked\n",
			r.Path, what, h.ClusterName, h.MaxHosts, h.MaxHosts, h.MaxVMs, h.MaxHosts)
	}
}

var lunRestoreHeaderCmd = command{
	name:    "lun restore-header",
	summary: "write the LUN header back from a running wingmand's copy",
	help: `Asks the wingmand this command talks to for the heartbeat LUN header it
read when it started, and to write it back to block 0 of the LUN. Use it
when 'wingman status' warns that the LUN header changed (zeroed by a
mistaken dd or wipefs, say): until the header is back, every host keeps its
heartbeat and its VMs, but declares no host dead and starts nothing. Prints
what block 0 held.

It refuses when block 0 holds another valid header (the LUN of another
cluster, or this cluster's formatted again): check the LUN path on every
host first; --force writes over it. Nothing is written when block 0 holds
this cluster's header already.`,
	nargs: [2]int{0, 0},
	bind: func(fs *pflag.FlagSet) func(context.Context, stdio, []string) error {
		force := fs.Bool("force", false, "write over another valid header in block 0")
		asJSON := jsonFlag(fs)
		return withDaemon(fs, func(ctx context.Context, s stdio, c *api.Client, _ []string) error {
			res, err := c.RestoreHeader(ctx, *force)
			if err != nil {
				return daemonErr(err, "", "")
			}
			if *asJSON {
				return writeJSON(s.out, res)
			}
			if !res.Wrote {
				fmt.Fprintf(s.out, "block 0 holds %s: nothing written\n", res.Found)
				return nil
			}
			fmt.Fprintf(s.out, "wrote %s's copy of the LUN header back; block 0 held %s\n", res.Host, res.Found)
			return nil
		})
	},
}

var lunReclaimLeaseCmd = command{
	name:    "lun reclaim-lease",
	args:    "RECORD",
	summary: "re-establish the damaged lease of a VM record, on the host that runs the VM",
	help: `Asks this host's wingmand to take the lease of VM record RECORD at a new
epoch, when the lease reads damaged ('wingman status', 'wingman lun verify':
"lease of VM record RECORD ... zeroed or lost") and the owner's wingmand has
no copy of its lease block left to write back (it restarted). While a record
reads damaged no host starts its VM, and the VM managers decide nothing.

Run it on the host whose libvirt runs the VM: the daemon refuses when the
guest the record names does not run here. Check the storage first (dmesg,
multipath -ll): damage that comes back needs the storage fixed.`,
	nargs: [2]int{1, 1},
	bind: func(fs *pflag.FlagSet) func(context.Context, stdio, []string) error {
		asJSON := jsonFlag(fs)
		return withDaemon(fs, func(ctx context.Context, s stdio, c *api.Client, args []string) error {
			idx, err := strconv.Atoi(args[0])
			if err != nil || idx < 0 {
				return usagef("RECORD %q: give the VM record's number, as 'wingman lun verify' shows it", args[0])
			}
			res, err := c.ReclaimLease(ctx, idx)
			if err != nil {
				return daemonErr(err, "", "")
			}
			if *asJSON {
				return writeJSON(s.out, res)
			}
			fmt.Fprintf(s.out, "VM record %d: lease reclaimed by %s at epoch %d\n", res.Record, res.Host, res.Epoch)
			return nil
		})
	},
}

// headerOverRecords reports whether err, from opening the LUN at path, is
// about its header (damaged, zeroed, of an unknown version) while the
// blocks after it hold heartbeat slots: a LUN whose header was lost, not a
// device that never held one. The slots are looked for with plain reads.
func headerOverRecords(path string, err error) bool {
	var be *storage.BlockError
	if !errors.As(err, &be) || be.Block != 0 || !(errors.Is(err, storage.ErrNotFormatted) || errors.Is(err, storage.ErrCorrupt) || errors.Is(err, storage.ErrVersion)) {
		return false
	}
	f, ferr := os.Open(path)
	if ferr != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, storage.BlockSize)
	for blk := int64(1); blk <= storage.MaxHosts; blk++ {
		if _, err := f.ReadAt(b, blk*storage.BlockSize); err != nil {
			return false
		}
		if string(b[0:4]) == "WGSL" {
			return true
		}
	}
	return false
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// The JSON shapes of `lun dump --json`. Field names are a stable interface.
type (
	dumpJSON struct {
		Header   hdrJSON    `json:"header"`
		Slots    []slotJSON `json:"slots"`
		Mailbox  []mailJSON `json:"mailboxes"`
		VMs      []vmJSON   `json:"vms"`
		Events   []evJSON   `json:"events"`
		Problems []string   `json:"problems"`
		// Members are, for a set of three, what each LUN holds on its own.
		Members []memberJSON `json:"members,omitempty"`
	}
	hdrJSON struct {
		Path        string      `json:"path"`
		Version     int         `json:"version"`
		ClusterName string      `json:"cluster_name"`
		ClusterUUID string      `json:"cluster_uuid"`
		Created     time.Time   `json:"created"`
		SectorSize  int         `json:"sector_size"`
		MaxHosts    int         `json:"max_hosts"`
		MaxVMs      int         `json:"max_vms"`
		EventBlocks int         `json:"event_blocks_per_host"`
		ConfigBlks  int         `json:"config_blocks_per_copy"`
		MaxXML      int         `json:"max_xml_bytes"`
		SizeBytes   int64       `json:"size_bytes"`
		Timings     timingsJSON `json:"timings"`
	}
	timingsJSON struct { // the API's timings, with the path failover the header holds too
		api.Timings
		PathFailover time.Duration `json:"path_failover_ns"`
	}
	slotJSON struct {
		Host        int       `json:"host"`
		Name        string    `json:"name"`
		State       string    `json:"state"`
		Generation  uint64    `json:"generation"`
		Incarnation uint64    `json:"incarnation"`
		Sequence    uint64    `json:"sequence"`
		Wall        time.Time `json:"wall"`
		SerfView    []int     `json:"serf_view"`
		AckNonce    uint64    `json:"ack_nonce,omitempty"`
		AckType     string    `json:"ack_type,omitempty"`
		AckResult   int       `json:"ack_result,omitempty"`
		// MemberSeqs are, for a set of three, the sequence on each LUN (0:
		// blank, damaged or unread there).
		MemberSeqs []uint64 `json:"member_sequences,omitempty"`
	}
	mailJSON struct {
		To      int       `json:"to"`
		ToGen   uint64    `json:"to_generation"`
		Type    string    `json:"type"`
		From    int       `json:"from"`
		FromGen uint64    `json:"from_generation"`
		Nonce   uint64    `json:"nonce"`
		Wall    time.Time `json:"wall"`
		Reason  string    `json:"reason,omitempty"`
	}
	vmJSON struct {
		Index     int       `json:"index"`
		UUID      string    `json:"uuid"`
		Name      string    `json:"name"`
		Owner     int       `json:"owner_host"`
		OwnerGen  uint64    `json:"owner_generation"`
		Epoch     uint64    `json:"lease_epoch"`
		Held      bool      `json:"lease_held"`
		GuestUp   bool      `json:"guest_up,omitempty"`
		Migration string    `json:"migration"`
		MigTarget int       `json:"migration_target,omitempty"`
		ConfigSeq uint64    `json:"config_seq"`
		XMLBytes  int       `json:"xml_bytes"`
		Policy    string    `json:"policy,omitempty"`
		Written   time.Time `json:"written"`
		Writer    int       `json:"writer_host"`
	}
	evJSON struct {
		Time     time.Time `json:"time"`
		Host     int       `json:"host"`
		Seq      uint64    `json:"seq"`
		Severity string    `json:"severity"`
		Kind     string    `json:"kind"`
		VM       string    `json:"vm,omitempty"`
		Subject  int       `json:"subject_host,omitempty"`
		Message  string    `json:"message"`
		// Damaged: the ring entry is damaged (Time is zero; Seq the
		// sequence it should hold, if known); Message says what is wrong.
		Damaged bool `json:"damaged,omitempty"`
	}
)

func headerJSON(path string, h storage.Header) hdrJSON {
	t := h.Timings
	return hdrJSON{Path: path, Version: h.Version, ClusterName: h.ClusterName, ClusterUUID: h.ClusterUUID.String(),
		Created: h.Created.UTC(), SectorSize: h.SectorSize, MaxHosts: h.Geometry.MaxHosts, MaxVMs: h.Geometry.MaxVMs,
		EventBlocks: h.Geometry.EventBlocks, ConfigBlks: h.Geometry.ConfigBlks, MaxXML: h.Geometry.MaxXML(0),
		SizeBytes: h.Geometry.Size(),
		Timings: timingsJSON{Timings: api.Timings{Renew: t.Renew, IOTimeout: t.IOTimeout, SelfFence: t.SelfFence,
			Watchdog: t.Watchdog, Dead: t.Dead, PowerFence: t.PowerFence, LeaseCeiling: t.Ceiling()}, PathFailover: t.PathFailover}}
}

// readDump reads everything `lun dump` shows. Damaged records become
// problems; an I/O failure or a bad header is an error.
func readDump(ctx context.Context, l *storage.LUN, maxEvents int) (*dumpJSON, error) {
	h := l.Header()
	d := &dumpJSON{Header: headerJSON(l.Path(), h), Slots: []slotJSON{}, Mailbox: []mailJSON{}, VMs: []vmJSON{}, Events: []evJSON{}, Problems: []string{}}
	slots, err := l.ReadSlots(ctx)
	if err != nil {
		return nil, err
	}
	for _, v := range slots {
		switch {
		case v.Err != nil:
			d.Problems = append(d.Problems, v.Err.Error())
		case v.Used():
			r := v.Record
			sj := slotJSON{Host: v.HostID, Name: r.HostName, State: r.State.String(), Generation: r.Generation,
				Incarnation: r.Incarnation, Sequence: r.Sequence, Wall: r.Wall.UTC(), SerfView: r.SerfView.IDs()}
			if sj.SerfView == nil {
				sj.SerfView = []int{}
			}
			if r.Ack.Nonce != 0 {
				sj.AckNonce, sj.AckType, sj.AckResult = r.Ack.Nonce, r.Ack.Type.String(), int(r.Ack.Result)
			}
			sj.MemberSeqs = memberSeqs(v)
			d.Slots = append(d.Slots, sj)
		}
	}
	for host := 1; host <= h.Geometry.MaxHosts; host++ {
		m, err := l.ReadMailbox(ctx, host)
		if err != nil {
			var be *storage.BlockError
			if errors.As(err, &be) {
				d.Problems = append(d.Problems, err.Error())
				continue
			}
			return nil, err
		}
		if m.Type != storage.MsgNone {
			d.Mailbox = append(d.Mailbox, mailJSON{To: m.To, ToGen: m.ToGen, Type: m.Type.String(), From: m.From,
				FromGen: m.FromGen, Nonce: m.Nonce, Wall: m.Wall.UTC(), Reason: m.Reason})
		}
	}
	recs, errs := l.ReadVMs(ctx)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	for _, e := range errs {
		d.Problems = append(d.Problems, e.Error())
	}
	for _, r := range recs {
		if r.Warning != nil {
			d.Problems = append(d.Problems, r.Warning.Error())
		}
		if r.Config == nil { // ReadVMs leaves the lease of a blank record unread
			var be *storage.BlockError
			if _, err := l.ReadLease(ctx, r.Index); errors.As(err, &be) {
				d.Problems = append(d.Problems, err.Error())
			} else if err != nil {
				return nil, err
			}
		}
		if !r.Protected() {
			continue
		}
		c := r.Config
		d.VMs = append(d.VMs, vmJSON{Index: r.Index, UUID: c.UUID.String(), Name: c.Name, Owner: r.Lease.Owner.Host,
			OwnerGen: r.Lease.Owner.Gen, Epoch: r.Lease.Epoch, Held: r.Lease.Held(), GuestUp: r.Lease.GuestUp, Migration: r.Lease.Migration.Phase.String(),
			MigTarget: r.Lease.Migration.Target, ConfigSeq: c.Seq, XMLBytes: len(c.XML), Policy: string(c.Policy),
			Written: c.Wall.UTC(), Writer: c.Writer})
	}
	bad, err := l.Integrity().CheckEvents(ctx)
	if err != nil {
		return nil, err
	}
	for _, b := range bad {
		d.Problems = append(d.Problems, b.Err.Error())
	}
	if maxEvents != 0 {
		evs, err := l.ReadEvents(ctx, time.Time{})
		if err != nil {
			return nil, err
		}
		if maxEvents > 0 && len(evs) > maxEvents {
			evs = evs[len(evs)-maxEvents:]
		}
		for _, e := range evs {
			ej := evJSON{Time: e.Time.UTC(), Host: e.Host, Seq: e.Seq, Severity: e.Severity.String(), Kind: e.Kind,
				Subject: e.Subject, Message: e.Message}
			if !e.VM.IsZero() {
				ej.VM = e.VM.String()
			}
			d.Events = append(d.Events, ej)
		}
		for _, b := range bad { // after the readable ones: they have no time
			msg := b.Err.Error()
			var be *storage.BlockError
			if errors.As(b.Err, &be) {
				msg = fmt.Sprintf("block %d (%s): %v", be.Block, be.What, be.Err)
			}
			d.Events = append(d.Events, evJSON{Host: b.Host, Seq: b.Seq, Severity: storage.SevError.String(), Kind: "damaged", Message: msg, Damaged: true})
		}
	}
	d.Members = memberReport(l, d)
	return d, nil
}

// printMembers shows each LUN of a set of three: its health and each
// host's heartbeat sequence on it.
func printMembers(w io.Writer, d *dumpJSON) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "LUN\tPATH\tHEALTH\tSEQUENCES (host:sequence)\n")
	for i, m := range d.Members {
		health := "ok"
		if !m.OK {
			health = strings.Join(m.Problems, "; ")
		}
		var seqs []string
		for _, s := range d.Slots {
			if i < len(s.MemberSeqs) {
				seqs = append(seqs, fmt.Sprintf("%d:%d", s.Host, s.MemberSeqs[i]))
			}
		}
		fmt.Fprintf(tw, "%d of %d\t%s\t%s\t%s\n", m.Index, len(d.Members), m.Path, health, orDash(strings.Join(seqs, " ")))
	}
	tw.Flush()
}

func printDump(w io.Writer, d *dumpJSON) {
	h := d.Header
	fmt.Fprintf(w, "LUN %s\n", h.Path)
	fmt.Fprintf(w, "  cluster     %s (%s)\n", h.ClusterName, h.ClusterUUID)
	fmt.Fprintf(w, "  format      v%d, created %s\n", h.Version, h.Created.Format(time.RFC3339))
	fmt.Fprintf(w, "  geometry    %d hosts, %d VMs (XML up to %d bytes), %d event blocks per host, %.1f MiB, sector %d\n",
		h.MaxHosts, h.MaxVMs, h.MaxXML, h.EventBlocks, float64(h.SizeBytes)/(1<<20), h.SectorSize)
	t := h.Timings
	fmt.Fprintf(w, "  timings     R %s, io_timeout %s, F %s, W %s, D %s, S %s, path failover %s, lease ceiling %s\n\n",
		t.Renew, t.IOTimeout, t.SelfFence, t.Watchdog, t.Dead, t.PowerFence, t.PathFailover, t.LeaseCeiling)

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "HOST\tNAME\tSTATE\tGEN\tSEQUENCE\tWRITTEN (its clock)\tSERF VIEW\tLAST ACK\n")
	for _, s := range d.Slots {
		ack := "-"
		if s.AckNonce != 0 {
			ack = fmt.Sprintf("%s %016x result %d", s.AckType, s.AckNonce, s.AckResult)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", s.Host, orDash(s.Name), s.State, s.Generation, s.Sequence,
			s.Wall.Format(time.RFC3339Nano), intsString(s.SerfView), ack)
	}
	tw.Flush()
	if len(d.Slots) == 0 {
		fmt.Fprintln(w, "(no host has joined)")
	}
	if len(d.Members) > 0 {
		printMembers(w, d)
	}

	fmt.Fprintln(w)
	if len(d.Mailbox) == 0 {
		fmt.Fprintln(w, "mailboxes: all empty")
	} else {
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "MAILBOX\tFOR GEN\tTYPE\tFROM\tNONCE\tSENT (sender's clock)\tREASON\n")
		for _, m := range d.Mailbox {
			fmt.Fprintf(tw, "%d\t%d\t%s\t%d (gen %d)\t%016x\t%s\t%s\n", m.To, m.ToGen, m.Type, m.From, m.FromGen, m.Nonce,
				m.Wall.Format(time.RFC3339Nano), orDash(m.Reason))
		}
		tw.Flush()
	}

	fmt.Fprintln(w)
	if len(d.VMs) == 0 {
		fmt.Fprintln(w, "protected VMs: none")
	} else {
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "RECORD\tNAME\tUUID\tOWNER\tEPOCH\tMIGRATION\tXML\tCONFIG SEQ\n")
		for _, v := range d.VMs {
			owner := "none"
			if v.Held {
				owner = fmt.Sprintf("host %d gen %d", v.Owner, v.OwnerGen)
			}
			if v.GuestUp {
				owner += ", guest up"
			}
			mig := v.Migration
			if v.MigTarget != 0 {
				mig += fmt.Sprintf(" -> host %d", v.MigTarget)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%d B\t%d\n", v.Index, v.Name, v.UUID, owner, v.Epoch, mig, v.XMLBytes, v.ConfigSeq)
		}
		tw.Flush()
	}

	if len(d.Events) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "TIME (writer's clock)\tHOST\tSEVERITY\tKIND\tMESSAGE\n")
		for _, e := range d.Events {
			at := e.Time.Format(time.RFC3339Nano)
			if e.Damaged {
				at = "(damaged entry)"
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", at, e.Host, e.Severity, e.Kind, e.Message)
		}
		tw.Flush()
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func intsString(ids []int) string {
	if len(ids) == 0 {
		return "-"
	}
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprint(id)
	}
	return strings.Join(parts, ",")
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
