package gossip

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"strings"
	"time"
)

// DefaultPort is the TCP and UDP port serf listens on unless told otherwise
// (serf's own default, so firewalls written for serf apply).
const DefaultPort = 7946

// MaxHostID is the largest host id: one heartbeat slot per host on the LUN.
const MaxHostID = 255

// ErrInvalidConfig is wrapped by every error Validate returns.
var ErrInvalidConfig = errors.New("invalid gossip config")

// Config configures one host's serf agent. Build it from DefaultConfig (a
// production LAN) or TestConfig (loopback tests), change what differs, and
// pass it to Start, which validates it first.
type Config struct {
	// NodeName is this host's name in serf: unique in the cluster and stable
	// across restarts (the hostname is a good choice). Letters, digits, '-',
	// '.' and '_', at most 128 characters. Required.
	NodeName string

	// HostID is this host's number, 1..255: its heartbeat slot on the LUN. It
	// is advertised in the tags (Tags.HostID is overwritten with it) so that
	// peers can map a serf member to a LUN slot. Required.
	HostID int

	// BindAddr is the IP address serf listens on, TCP and UDP alike.
	// Default "0.0.0.0"; prefer the management network's address.
	BindAddr string

	// BindPort is the TCP and UDP port serf listens on. Default DefaultPort.
	// 0 lets the system pick a free port (tests only: peers cannot guess it;
	// read it back with Agent.Addr).
	BindPort int

	// AdvertiseAddr is the IP address peers use to reach this host, when it
	// differs from BindAddr (NAT, or BindAddr 0.0.0.0 on a multi-homed host).
	// Empty: BindAddr, or the first private address when BindAddr is 0.0.0.0.
	AdvertiseAddr string

	// AdvertisePort is the port peers use to reach this host. 0: BindPort.
	AdvertisePort int

	// Join lists peers to join at start, "host:port" or "host" (port BindPort).
	// Listing this host's own address is harmless: it is skipped. Empty: this
	// host starts a cluster of its own and waits for others to join it.
	Join []string

	// JoinRetryInterval is the pause between two join attempts. Joining goes
	// on in the background until one peer answers, JoinRetryMax attempts
	// failed, or the context given to Start ends. Default 5 s.
	JoinRetryInterval time.Duration

	// JoinRetryMax bounds the join attempts; 0 retries until success or until
	// the context given to Start ends (what a daemon wants: the first host
	// of a cluster keeps trying until another one comes up).
	JoinRetryMax int

	// KeyringFile is the path of serf's keyring file: a JSON array of base64
	// keys, the first one the primary (the one used to encrypt), the others
	// still accepted for decryption (key rotation). `wingman keygen` prints
	// one key. Serf rewrites this file when the keyring changes at run time,
	// so it must be writable; keep it mode 0600.
	KeyringFile string

	// Key is a base64 key of 16, 24 or 32 bytes (AES-128/192/256-GCM), as
	// printed by `wingman keygen`, given directly instead of, or on top of,
	// KeyringFile. With both, Key is the primary key and the file's keys stay
	// accepted.
	Key string

	// Insecure allows running without encryption when neither Key nor
	// KeyringFile is set. For tests only: without a key anyone on the
	// network can join the cluster, forge tags and answer lease queries.
	Insecure bool

	// SnapshotPath is a file where serf records the members it has seen, so
	// that after a restart it rejoins them even when Join is stale. Empty: no
	// snapshot. Use a path on local disk, e.g. /var/lib/wingman/serf.snapshot.
	SnapshotPath string

	// Tags are the facts this host advertises at start; change them later
	// with Agent.SetTags. Their encoding must fit serf's 512 bytes.
	Tags Tags

	// Timing tunes how fast a silent host is marked failed. DefaultTiming
	// for a LAN, FastTiming for loopback tests.
	Timing Timing

	// Logger receives serf's and memberlist's log lines at their levels.
	// Nil: slog.Default().
	Logger *slog.Logger
}

// Timing holds the memberlist and serf intervals that decide how fast a
// silent host is suspected and marked failed, and how fast partitions heal.
//
// How detection works: every ProbeInterval each host pings one peer (round
// robin) and waits ProbeTimeout for the answer; on silence it asks
// other peers to ping it indirectly, then declares it suspect. A suspect that
// does not refute within the suspicion timeout is marked failed. That
// timeout starts at SuspicionTimeout's max and shrinks towards its min as
// other hosts independently confirm the suspicion (memberlist's Lifeguard).
// So a dead host is marked failed after roughly one probe interval plus the
// suspicion timeout.
type Timing struct {
	// ProbeInterval is how often this host pings one peer.
	ProbeInterval time.Duration
	// ProbeTimeout is how long to wait for a direct ping's answer before
	// asking others to ping indirectly; above the network's round trip time,
	// below ProbeInterval.
	ProbeTimeout time.Duration
	// SuspicionMult scales the suspicion timeout: its minimum is
	// SuspicionMult × max(1, log10(hosts)) × ProbeInterval.
	SuspicionMult int
	// SuspicionMaxTimeoutMult is the ratio of the longest suspicion timeout
	// (no peer confirms the suspicion) to the shortest.
	SuspicionMaxTimeoutMult int
	// GossipInterval is how often gossip (state changes, tags) is sent.
	GossipInterval time.Duration
	// PushPullInterval is how often two hosts exchange their full state,
	// which heals whatever gossip missed.
	PushPullInterval time.Duration
	// TCPTimeout bounds a TCP connection: joins, push-pull, fallback pings.
	TCPTimeout time.Duration
	// ReconnectInterval is how often serf tries to reconnect to a failed
	// host, which is how the two sides of a healed partition find each other.
	ReconnectInterval time.Duration
	// ReconnectTimeout is how long a failed host stays in the member list
	// before serf forgets it.
	ReconnectTimeout time.Duration
	// LeavePropagateDelay is how long Leave waits for the leave message to
	// spread before stopping.
	LeavePropagateDelay time.Duration
}

// DefaultTiming is tuned for a LAN management network so that a dead host is
// marked failed in about 6 s (DESIGN.md): probe every 1 s with a 500 ms
// timeout, suspicion between 3 s (a peer confirms) and 6 s (nobody does) up to
// 10 hosts, growing with log10(hosts) beyond (5.4 to 10.8 s at 64 hosts).
// Full state is exchanged every 30 s and failed hosts are retried every 10 s,
// so a healed partition merges within seconds.
func DefaultTiming() Timing {
	return Timing{
		ProbeInterval:           1 * time.Second,
		ProbeTimeout:            500 * time.Millisecond,
		SuspicionMult:           3,
		SuspicionMaxTimeoutMult: 2,
		GossipInterval:          200 * time.Millisecond,
		PushPullInterval:        30 * time.Second,
		TCPTimeout:              5 * time.Second,
		ReconnectInterval:       10 * time.Second,
		ReconnectTimeout:        24 * time.Hour,
		LeavePropagateDelay:     1 * time.Second,
	}
}

// FastTiming is DefaultTiming scaled down ten times for loopback tests: a
// dead agent is marked failed in well under a second.
func FastTiming() Timing {
	return Timing{
		ProbeInterval:           100 * time.Millisecond,
		ProbeTimeout:            50 * time.Millisecond,
		SuspicionMult:           3,
		SuspicionMaxTimeoutMult: 2,
		GossipInterval:          20 * time.Millisecond,
		PushPullInterval:        2 * time.Second,
		TCPTimeout:              1 * time.Second,
		ReconnectInterval:       500 * time.Millisecond,
		ReconnectTimeout:        1 * time.Hour,
		LeavePropagateDelay:     100 * time.Millisecond,
	}
}

// SuspicionTimeout returns the shortest and longest time memberlist waits
// between suspecting a host and marking it failed, in a cluster of n hosts.
func (t Timing) SuspicionTimeout(n int) (lo, hi time.Duration) {
	scale := math.Max(1, math.Log10(math.Max(1, float64(n))))
	lo = time.Duration(float64(t.SuspicionMult) * scale * float64(t.ProbeInterval))
	return lo, lo * time.Duration(t.SuspicionMaxTimeoutMult)
}

// DefaultConfig returns the production configuration for a LAN. The caller
// must still set NodeName, HostID, a key (Key or KeyringFile), Join and Tags.
func DefaultConfig() Config {
	return Config{
		BindAddr:          "0.0.0.0",
		BindPort:          DefaultPort,
		JoinRetryInterval: 5 * time.Second,
		Timing:            DefaultTiming(),
	}
}

// TestConfig returns a configuration for tests on loopback: 127.0.0.1, a free
// port picked at start, FastTiming, fast join retries, and key as the
// encryption key (empty key: Insecure).
func TestConfig(nodeName string, hostID int, key string) Config {
	return Config{
		NodeName:          nodeName,
		HostID:            hostID,
		BindAddr:          "127.0.0.1",
		BindPort:          0,
		JoinRetryInterval: 100 * time.Millisecond,
		Key:               key,
		Insecure:          key == "",
		Timing:            FastTiming(),
	}
}

// configError is one invalid field: which one, and what to do about it.
type configError struct {
	field, problem string
}

func (e *configError) Error() string {
	return fmt.Sprintf("gossip config: %s: %s", e.field, e.problem)
}

func (e *configError) Is(target error) bool { return target == ErrInvalidConfig }

// Validate reports every invalid field, each error naming the field and
// what to change; all of them match ErrInvalidConfig with errors.Is. It does
// not read KeyringFile (Start does).
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &configError{field, fmt.Sprintf(format, args...)})
	}

	switch {
	case c.NodeName == "":
		bad("NodeName", "empty; set it to a name unique in the cluster, e.g. the hostname")
	case len(c.NodeName) > 128:
		bad("NodeName", "%d characters; use at most 128", len(c.NodeName))
	case strings.IndexFunc(c.NodeName, notNameRune) >= 0:
		bad("NodeName", "%q has characters other than letters, digits, '-', '.' and '_'", c.NodeName)
	}
	if c.HostID < 1 || c.HostID > MaxHostID {
		bad("HostID", "%d is not in 1..%d; set it to this host's slot number on the heartbeat LUN", c.HostID, MaxHostID)
	}
	if net.ParseIP(c.BindAddr) == nil {
		bad("BindAddr", "%q is not an IP address; use the management network's address or 0.0.0.0", c.BindAddr)
	}
	if c.BindPort < 0 || c.BindPort > 65535 {
		bad("BindPort", "%d is not a port; use %d unless it is taken", c.BindPort, DefaultPort)
	}
	if c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr) == nil {
		bad("AdvertiseAddr", "%q is not an IP address; leave it empty to advertise BindAddr", c.AdvertiseAddr)
	}
	if c.AdvertisePort < 0 || c.AdvertisePort > 65535 {
		bad("AdvertisePort", "%d is not a port; use 0 to advertise BindPort", c.AdvertisePort)
	}
	for i, j := range c.Join {
		if strings.TrimSpace(j) == "" {
			bad(fmt.Sprintf("Join[%d]", i), "empty; list peers as host:port or host")
		}
	}
	if len(c.Join) > 0 && c.JoinRetryInterval <= 0 {
		bad("JoinRetryInterval", "%v; set a pause between join attempts, e.g. 5s", c.JoinRetryInterval)
	}
	if c.JoinRetryMax < 0 {
		bad("JoinRetryMax", "%d; use 0 to retry until the start context ends", c.JoinRetryMax)
	}
	if c.Key != "" {
		if _, err := decodeKey(c.Key); err != nil {
			bad("Key", "%v", err)
		}
	}
	if c.Key == "" && c.KeyringFile == "" && !c.Insecure {
		bad("Key", "no Key and no KeyringFile: gossip must be encrypted; generate a key with `wingman keygen`")
	}
	if err := c.Timing.validate(); err != nil {
		errs = append(errs, err)
	}
	tags := c.Tags
	tags.HostID = c.HostID
	if c.HostID >= 1 && c.HostID <= MaxHostID {
		if _, err := tags.Encode(); err != nil {
			bad("Tags", "%v", err)
		}
	}
	return errors.Join(errs...)
}

func (t Timing) validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &configError{"Timing." + field, fmt.Sprintf(format, args...)})
	}
	positive := []struct {
		name string
		d    time.Duration
	}{
		{"ProbeInterval", t.ProbeInterval}, {"ProbeTimeout", t.ProbeTimeout},
		{"GossipInterval", t.GossipInterval}, {"PushPullInterval", t.PushPullInterval},
		{"TCPTimeout", t.TCPTimeout}, {"ReconnectInterval", t.ReconnectInterval},
		{"ReconnectTimeout", t.ReconnectTimeout},
	}
	for _, p := range positive {
		if p.d <= 0 {
			bad(p.name, "%v; must be positive (start from DefaultTiming)", p.d)
		}
	}
	if t.LeavePropagateDelay < 0 {
		bad("LeavePropagateDelay", "%v; must not be negative", t.LeavePropagateDelay)
	}
	if t.ProbeTimeout > 0 && t.ProbeInterval > 0 && t.ProbeTimeout >= t.ProbeInterval {
		bad("ProbeTimeout", "%v is not below ProbeInterval %v; lower it or raise ProbeInterval", t.ProbeTimeout, t.ProbeInterval)
	}
	if t.SuspicionMult < 1 {
		bad("SuspicionMult", "%d; use at least 1 (DefaultTiming uses 3)", t.SuspicionMult)
	}
	if t.SuspicionMaxTimeoutMult < 1 {
		bad("SuspicionMaxTimeoutMult", "%d; use at least 1 (DefaultTiming uses 2)", t.SuspicionMaxTimeoutMult)
	}
	return errors.Join(errs...)
}

func notNameRune(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_')
}

// decodeKey decodes one base64 key and checks it is an AES key length.
func decodeKey(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("not base64 (use a key printed by `wingman keygen`): %w", err)
	}
	switch len(k) {
	case 16, 24, 32:
		return k, nil
	}
	return nil, fmt.Errorf("%d bytes; a key must be 16, 24 or 32 bytes (`wingman keygen` prints 32)", len(k))
}

// loadKeys returns the keys to install, primary first: Key, then the keyring
// file's keys (first one primary when Key is empty). It returns nil when
// there is no key at all (Insecure).
func (c *Config) loadKeys() ([][]byte, error) {
	var keys [][]byte
	if c.Key != "" {
		k, err := decodeKey(c.Key)
		if err != nil {
			return nil, fmt.Errorf("gossip key: %w", err)
		}
		keys = append(keys, k)
	}
	if c.KeyringFile != "" {
		b, err := os.ReadFile(c.KeyringFile)
		if err != nil {
			return nil, fmt.Errorf("read keyring file: %w", err)
		}
		var encoded []string
		if err := json.Unmarshal(b, &encoded); err != nil {
			return nil, fmt.Errorf("keyring file %s: want a JSON array of base64 keys: %w", c.KeyringFile, err)
		}
		if len(encoded) == 0 {
			return nil, fmt.Errorf("keyring file %s: no key; add one printed by `wingman keygen`", c.KeyringFile)
		}
		for i, e := range encoded {
			k, err := decodeKey(e)
			if err != nil {
				return nil, fmt.Errorf("keyring file %s: key %d: %w", c.KeyringFile, i+1, err)
			}
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// WriteKeyringFile writes keys (base64, primary first) as a serf keyring file
// readable only by its owner.
func WriteKeyringFile(path string, keys ...string) error {
	for i, k := range keys {
		if _, err := decodeKey(k); err != nil {
			return fmt.Errorf("keyring key %d: %w", i+1, err)
		}
	}
	b, err := json.MarshalIndent(keys, "", "  ")
	if err != nil {
		return fmt.Errorf("encode keyring: %w", err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("write keyring file: %w", err)
	}
	return nil
}
