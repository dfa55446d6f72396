package notify

import (
	"fmt"
	"strings"
	"time"

	"github.com/wingmanha/wingman/storage"
)

// Schema names the webhook body's format (docs/NOTIFICATIONS.md). Fields
// are only ever added to it; a change that removes or redefines one gets a
// new schema name.
const Schema = "wingman.notification/v1"

// Notification is one message to every target: the webhook body as is,
// the exec hook's stdin, and the source of the mail.
type Notification struct {
	Schema   string           `json:"schema"`
	ID       string           `json:"id"`   // stable: the same for every retry and every target
	Kind     string           `json:"kind"` // KindIncident, KindResolved, KindTest
	Severity string           `json:"severity"`
	Cluster  string           `json:"cluster"`
	Sender   string           `json:"sender"` // the host that sent it
	Time     time.Time        `json:"time"`   // when the event it reports happened
	Summary  string           `json:"summary"`
	Text     string           `json:"text"` // the mail's body; chat tools show "text" as is
	Incident *IncidentPayload `json:"incident,omitempty"`
	Warning  *WarningPayload  `json:"warning,omitempty"` // for KindWarning and KindCleared

	sev      storage.Severity
	hostName string // the lost host, for the target rules
}

// IncidentPayload is the incident part of a notification.
type IncidentPayload struct {
	ID         string      `json:"id"`
	Host       string      `json:"host"`
	Lost       time.Time   `json:"lost"`
	Declared   time.Time   `json:"declared"`
	How        string      `json:"how"`
	Reason     string      `json:"reason"`
	Settled    time.Time   `json:"settled,omitzero"`
	Resolved   time.Time   `json:"resolved,omitzero"`
	VMs        []VMPayload `json:"vms"`
	DurationMS int64       `json:"duration_ms"` // from the loss to the last VM started
}

// VMPayload is one VM of an incident.
type VMPayload struct {
	Name    string    `json:"name"`
	UUID    string    `json:"uuid"`
	State   string    `json:"state"`
	Host    string    `json:"host,omitempty"`
	Started time.Time `json:"started,omitzero"`
	TookMS  int64     `json:"took_ms"`
	Message string    `json:"message,omitempty"`
}

// WarningPayload is the warning part of a notification.
type WarningPayload struct {
	Key    string    `json:"key"`            // capacity, latency, watchdog
	Host   string    `json:"host,omitempty"` // the host it is about; absent for the cluster
	Title  string    `json:"title"`
	Text   string    `json:"text,omitempty"` // what is wrong and what to do (absent once cleared)
	Since  time.Time `json:"since"`          // when it appeared (or cleared)
	Repeat bool      `json:"repeat,omitempty"`
}

// SeverityLevel returns the notification's severity.
func (n Notification) SeverityLevel() storage.Severity { return n.sev }

// HostName is the host the notification is about ("" for a test).
func (n Notification) HostName() string { return n.hostName }

var howText = map[string]string{
	DeclaredHeartbeat: "its disk heartbeat stayed unchanged for the dead time D",
	DeclaredFenced:    "a fence agent confirmed it powered off",
	DeclaredIsolated:  "it was isolated and acknowledged the poison pill (destroyed its VMs)",
	DeclaredLeft:      "it left the cluster",
	DeclaredConfirmed: "an operator confirmed it powered off (wingman host confirm-off)",
	DeclaredDiskLoss:  "it lost the paths to its guests' disks: they stayed paused on I/O errors past failover.disk_loss_grace, and it destroyed them for other hosts to restart",
}

// ForIncident returns the notification of kind (KindIncident or
// KindResolved) for inc, sent by sender in cluster.
func ForIncident(inc Incident, kind, cluster, sender string) Notification {
	n := Notification{Schema: Schema, ID: inc.ID, Kind: kind, Cluster: cluster, Sender: sender, sev: inc.Severity, hostName: inc.Host}
	p := &IncidentPayload{ID: inc.ID, Host: inc.Host, Lost: inc.Lost.UTC(), Declared: inc.Declared.UTC(), How: inc.How,
		Reason: inc.Reason, VMs: []VMPayload{}}
	if inc.Settled {
		p.Settled = inc.SettledAt.UTC()
	}
	if inc.Resolved {
		p.Resolved = inc.ResolvedAt.UTC()
	}
	var b strings.Builder
	started, last := 0, inc.Declared
	for _, vm := range inc.VMs {
		v := VMPayload{Name: vm.Name, UUID: vm.UUID.String(), State: vm.State, Host: vm.Host, TookMS: vm.Took.Milliseconds(), Message: vm.Message}
		if vm.State == VMStarted {
			started++
			v.Started = vm.At.UTC()
			if vm.At.After(last) {
				last = vm.At
			}
		}
		p.VMs = append(p.VMs, v)
	}
	p.DurationMS = last.Sub(inc.Lost).Milliseconds()
	n.Incident = p
	switch kind {
	case KindResolved:
		n.ID, n.sev, n.Time = inc.ID+"-resolved", storage.SevInfo, inc.ResolvedAt.UTC()
		n.Summary = fmt.Sprintf("[%s] resolved: host %s is back", cluster, inc.Host)
		fmt.Fprintf(&b, "Host %s is back in cluster %s at %s.\n", inc.Host, cluster, stamp(inc.ResolvedAt))
		fmt.Fprintf(&b, "It was lost at %s (incident %s).\n", stamp(inc.Lost), inc.ID)
	default:
		n.Time = inc.Declared.UTC()
		if inc.How == DeclaredDiskLoss {
			n.Summary = fmt.Sprintf("[%s] host %s lost its disk paths: %d of %d VMs restarted elsewhere", cluster, inc.Host, started, len(inc.VMs))
			fmt.Fprintf(&b, "Host %s of cluster %s stays up, but %s", inc.Host, cluster, howText[inc.How])
		} else {
			n.Summary = fmt.Sprintf("[%s] host %s lost: %d of %d VMs restarted", cluster, inc.Host, started, len(inc.VMs))
			fmt.Fprintf(&b, "Host %s of cluster %s was lost at %s.\n", inc.Host, cluster, stamp(inc.Lost))
			fmt.Fprintf(&b, "Declared dead at %s: %s", stamp(inc.Declared), howText[inc.How])
		}
		if inc.Reason != "" {
			fmt.Fprintf(&b, " (%s)", inc.Reason)
		}
		b.WriteString(".\n\n")
		if len(inc.VMs) == 0 {
			b.WriteString("It ran no protected VM.\n")
		}
		for _, vm := range inc.VMs {
			switch vm.State {
			case VMStarted:
				fmt.Fprintf(&b, "  %-20s started on %s at %s, %s after the declaration\n", vm.Name, vm.Host, stamp(vm.At), vm.Took.Round(time.Millisecond))
			case VMFailed:
				fmt.Fprintf(&b, "  %-20s FAILED on %s at %s: %s\n", vm.Name, vm.Host, stamp(vm.At), vm.Message)
			default:
				fmt.Fprintf(&b, "  %-20s NOT STARTED yet\n", vm.Name)
			}
		}
		fmt.Fprintf(&b, "\nFrom the loss to the last VM started: %s.\n", last.Sub(inc.Lost).Round(time.Millisecond))
		fmt.Fprintf(&b, "Incident %s; `wingman events` shows the whole timeline.\n", inc.ID)
	}
	n.Severity, n.Text = n.sev.String(), b.String()
	return n
}

// TestNotification is what `wingman notify test` sends.
func TestNotification(cluster, sender, id string, now time.Time) Notification {
	return Notification{Schema: Schema, ID: id, Kind: KindTest, Severity: storage.SevInfo.String(), Cluster: cluster,
		Sender: sender, Time: now.UTC(), Summary: fmt.Sprintf("[%s] test notification from %s", cluster, sender),
		Text: fmt.Sprintf("This is a test notification from host %s of cluster %s, sent at %s.\n", sender, cluster, stamp(now))}
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000 MST") }
