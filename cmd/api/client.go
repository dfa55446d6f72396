package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultSocket is where wingmand listens.
const DefaultSocket = "/run/wingman/wingman.sock"

// Client talks to one wingmand.
type Client struct {
	base string // "http://wingmand"
	hc   *http.Client
	what string // for messages: the socket path
}

// ErrUnreachable: the daemon could not be reached.
var ErrUnreachable = errors.New("wingmand is not reachable")

// RemoteError is an error the daemon returned.
type RemoteError struct {
	Status int
	Err    Error
}

func (e *RemoteError) Error() string {
	if e.Err.Hint != "" {
		return e.Err.Error + ": " + e.Err.Hint
	}
	return e.Err.Error
}

// Is reports whether target is the class of the daemon's error, so that
// errors.Is(err, ErrNotFound) and the others work on the client.
func (e *RemoteError) Is(target error) bool {
	return target != nil && target == classOf(e.Err.Class, e.Status)
}

// IsNotFound reports whether err is the daemon's ErrNotFound (a 404).
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// NewClient returns a client for the daemon listening on a unix socket.
func NewClient(socket string) *Client {
	return &Client{base: "http://wingmand", hc: &http.Client{Transport: UnixTransport(socket)}, what: socket}
}

// UnixTransport is an HTTP transport that reaches the daemon's unix socket
// whatever the request's host (the client's, and `wingman ui`'s proxy).
func UnixTransport(socket string) *http.Transport {
	return &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}
}

// NewHTTPClient returns a client for a daemon at base (for tests).
func NewHTTPClient(base string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimRight(base, "/"), hc: hc, what: base}
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%w at %s: %w (is wingmand running? are you root or in group wingman?)", ErrUnreachable, c.what, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read answer from %s: %w", c.what, err)
	}
	if resp.StatusCode >= 300 {
		var e Error
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = fmt.Sprintf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
		}
		return &RemoteError{Status: resp.StatusCode, Err: e}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("decode answer to %s %s: %w", method, path, err)
		}
	}
	return nil
}

func esc(s string) string { return url.PathEscape(s) }

// Status returns the cluster status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	return s, c.do(ctx, http.MethodGet, "/v1/status", nil, &s)
}

// Hosts lists the hosts.
func (c *Client) Hosts(ctx context.Context) ([]Host, error) {
	var h []Host
	return h, c.do(ctx, http.MethodGet, "/v1/hosts", nil, &h)
}

// Host returns one host.
func (c *Client) Host(ctx context.Context, nameOrID string) (Host, error) {
	var h Host
	return h, c.do(ctx, http.MethodGet, "/v1/hosts/"+esc(nameOrID), nil, &h)
}

// VMs lists protected VMs and this host's unprotected domains.
func (c *Client) VMs(ctx context.Context) ([]VM, error) {
	var v []VM
	return v, c.do(ctx, http.MethodGet, "/v1/vms", nil, &v)
}

// VM returns one VM.
func (c *Client) VM(ctx context.Context, nameOrUUID string) (VM, error) {
	var v VM
	return v, c.do(ctx, http.MethodGet, "/v1/vms/"+esc(nameOrUUID), nil, &v)
}

// VMWithQMP returns one VM with QEMU's own view of it (VM.QMP), asked over
// QMP on the host that runs it. That marks the domain tainted in libvirt
// (custom-monitor): use it to diagnose, not to monitor.
func (c *Client) VMWithQMP(ctx context.Context, nameOrUUID string) (VM, error) {
	var v VM
	return v, c.do(ctx, http.MethodGet, "/v1/vms/"+esc(nameOrUUID)+"?qmp=1", nil, &v)
}

// Protect protects a VM with a policy.
func (c *Client) Protect(ctx context.Context, nameOrUUID string, r ProtectRequest) (ProtectResult, error) {
	var v ProtectResult
	return v, c.do(ctx, http.MethodPost, "/v1/vms/"+esc(nameOrUUID)+"/protect", r, &v)
}

// SetPolicy changes a protected VM's policy.
func (c *Client) SetPolicy(ctx context.Context, nameOrUUID string, r ProtectRequest) (VM, error) {
	var v VM
	return v, c.do(ctx, http.MethodPost, "/v1/vms/"+esc(nameOrUUID)+"/policy", r, &v)
}

// Unprotect removes a VM's record; the VM keeps running, unprotected.
func (c *Client) Unprotect(ctx context.Context, nameOrUUID string) error {
	return c.do(ctx, http.MethodPost, "/v1/vms/"+esc(nameOrUUID)+"/unprotect", nil, nil)
}

// Start starts a protected VM (and clears its stopped state).
func (c *Client) Start(ctx context.Context, nameOrUUID string) error {
	return c.do(ctx, http.MethodPost, "/v1/vms/"+esc(nameOrUUID)+"/start", nil, nil)
}

// Stop shuts a protected VM down; it stays stopped until Start.
func (c *Client) Stop(ctx context.Context, nameOrUUID string) error {
	return c.do(ctx, http.MethodPost, "/v1/vms/"+esc(nameOrUUID)+"/stop", nil, nil)
}

// Migrate live-migrates a VM and returns when it has moved.
func (c *Client) Migrate(ctx context.Context, nameOrUUID string, r MigrateRequest) (MigrateResult, error) {
	var m MigrateResult
	return m, c.do(ctx, http.MethodPost, "/v1/vms/"+esc(nameOrUUID)+"/migrate", r, &m)
}

// Maintenance enters or leaves maintenance mode on a host.
func (c *Client) Maintenance(ctx context.Context, nameOrID string, r MaintenanceRequest) (Host, error) {
	var h Host
	return h, c.do(ctx, http.MethodPost, "/v1/hosts/"+esc(nameOrID)+"/maintenance", r, &h)
}

// Fence fences a host, or tests the fence path.
func (c *Client) Fence(ctx context.Context, nameOrID string, r FenceRequest) (FenceResult, error) {
	var f FenceResult
	return f, c.do(ctx, http.MethodPost, "/v1/hosts/"+esc(nameOrID)+"/fence", r, &f)
}

// ConfirmOff records that the operator has checked that a host is
// powered off (`wingman host confirm-off`).
func (c *Client) ConfirmOff(ctx context.Context, nameOrID string) (ConfirmOffResult, error) {
	var r ConfirmOffResult
	return r, c.do(ctx, http.MethodPost, "/v1/hosts/"+esc(nameOrID)+"/confirm-off", struct{}{}, &r)
}

// Disarm disarms HA cluster-wide for r.For (`wingman ha disarm`).
func (c *Client) Disarm(ctx context.Context, r DisarmRequest) (HAState, error) {
	var s HAState
	return s, c.do(ctx, http.MethodPost, "/v1/ha/disarm", r, &s)
}

// Arm re-arms HA cluster-wide now (`wingman ha arm`).
func (c *Client) Arm(ctx context.Context) (HAState, error) {
	var s HAState
	return s, c.do(ctx, http.MethodPost, "/v1/ha/arm", nil, &s)
}

// Events returns events newer than since (zero: all), at most limit (0: all).
func (c *Client) Events(ctx context.Context, since time.Time, limit int) ([]Event, error) {
	q := url.Values{}
	if !since.IsZero() {
		q.Set("since", since.UTC().Format(time.RFC3339Nano))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var e []Event
	return e, c.do(ctx, http.MethodGet, "/v1/events?"+q.Encode(), nil, &e)
}

// Exec runs a command on a host in maintenance and returns how it ended.
func (c *Client) Exec(ctx context.Context, nameOrID string, r ExecRequest) (ExecResult, error) {
	var x ExecResult
	return x, c.do(ctx, http.MethodPost, "/v1/hosts/"+esc(nameOrID)+"/exec", r, &x)
}

// Reboot asks a host in maintenance to reboot; it answers before rebooting.
func (c *Client) Reboot(ctx context.Context, nameOrID string, r RebootRequest) (RebootResult, error) {
	var x RebootResult
	return x, c.do(ctx, http.MethodPost, "/v1/hosts/"+esc(nameOrID)+"/reboot", r, &x)
}

// EvacuationPlan returns what entering maintenance on a host would move
// where, without changing anything.
func (c *Client) EvacuationPlan(ctx context.Context, nameOrID string) (EvacuationPlan, error) {
	var p EvacuationPlan
	return p, c.do(ctx, http.MethodGet, "/v1/hosts/"+esc(nameOrID)+"/evacuation-plan", nil, &p)
}

// NotifyTargets returns the notification targets, with this host's counts.
func (c *Client) NotifyTargets(ctx context.Context) ([]NotifyTarget, error) {
	var t []NotifyTarget
	return t, c.do(ctx, http.MethodGet, "/v1/notify/targets", nil, &t)
}

// AddNotifyTarget adds a notification target; the daemon validates it.
func (c *Client) AddNotifyTarget(ctx context.Context, t NotifyTarget) (NotifyTarget, error) {
	var out NotifyTarget
	return out, c.do(ctx, http.MethodPost, "/v1/notify/targets", t, &out)
}

// RemoveNotifyTarget removes the notification target named name.
func (c *Client) RemoveNotifyTarget(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/notify/targets/"+esc(name), nil, nil)
}

// NotifyTest sends a test notification to one target, or to every target
// when target is "", and returns what happened at each.
func (c *Client) NotifyTest(ctx context.Context, target string) ([]NotifyTestResult, error) {
	var r []NotifyTestResult
	return r, c.do(ctx, http.MethodPost, "/v1/notify/test", NotifyTestRequest{Target: target}, &r)
}

// RestoreHeader asks the daemon to write back the LUN header it read at start.
func (c *Client) RestoreHeader(ctx context.Context, force bool) (RestoreHeaderResult, error) {
	var r RestoreHeaderResult
	return r, c.do(ctx, http.MethodPost, "/v1/lun/restore-header", RestoreHeaderRequest{Force: force}, &r)
}

// ReclaimLease asks the daemon, on the host that runs the VM, to
// re-establish the damaged lease of VM record record.
func (c *Client) ReclaimLease(ctx context.Context, record int) (ReclaimLeaseResult, error) {
	var r ReclaimLeaseResult
	return r, c.do(ctx, http.MethodPost, "/v1/lun/reclaim-lease", ReclaimLeaseRequest{Record: record}, &r)
}

// Incidents returns the failovers the LUN's events tell, oldest first.
func (c *Client) Incidents(ctx context.Context) ([]Incident, error) {
	var x []Incident
	return x, c.do(ctx, http.MethodGet, "/v1/incidents", nil, &x)
}

// ClusterSettings returns the cluster-wide keys.
func (c *Client) ClusterSettings(ctx context.Context) (ClusterSettings, error) {
	var s ClusterSettings
	return s, c.do(ctx, http.MethodGet, "/v1/config", nil, &s)
}

// ClusterSetting returns one cluster-wide key (the only entry of Settings).
func (c *Client) ClusterSetting(ctx context.Context, key string) (ClusterSettings, error) {
	var s ClusterSettings
	return s, c.do(ctx, http.MethodGet, "/v1/config/"+esc(key), nil, &s)
}

// SetClusterSetting sets a cluster-wide key for every host; the daemon
// checks the key and the value.
func (c *Client) SetClusterSetting(ctx context.Context, key, value string) (ClusterSettings, error) {
	var s ClusterSettings
	return s, c.do(ctx, http.MethodPut, "/v1/config/"+esc(key), ConfigSetRequest{Value: value}, &s)
}

// UnsetClusterSetting takes a cluster-wide key back to its default.
func (c *Client) UnsetClusterSetting(ctx context.Context, key string) (ClusterSettings, error) {
	var s ClusterSettings
	return s, c.do(ctx, http.MethodDelete, "/v1/config/"+esc(key), nil, &s)
}
