package heartbeat

import (
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/quorum"
)

func TestMetricsText(t *testing.T) {
	m := Metrics{
		Decision: quorum.Decision{Quorate: true, Coordinator: 1, Hosts: []quorum.Host{{ID: 1, Name: "kvm1", State: quorum.StateAlive}}},
		Input:    quorum.Input{Now: 10 * time.Second, LastWrite: 9500 * time.Millisecond},
		Last:     20 * time.Millisecond, Worst: 300 * time.Millisecond,
		Events: map[string]uint64{"started": 2, "declared-dead": 1},
	}
	var b strings.Builder
	if err := m.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# TYPE wingman_quorate gauge\nwingman_quorate 1\n",
		"wingman_may_run_vms 0\n",
		"wingman_coordinator 1\n",
		`wingman_host_state{host="kvm1",state="alive"} 1` + "\n",
		"wingman_heartbeat_renew_seconds 0.02\n",
		"wingman_heartbeat_renew_max_seconds 0.3\n",
		"wingman_heartbeat_age_seconds 0.5\n",
		"# TYPE wingman_events_total counter\n" + `wingman_events_total{kind="declared-dead"} 1` + "\n" + `wingman_events_total{kind="started"} 2` + "\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, b.String())
		}
	}
}
