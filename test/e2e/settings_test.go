package e2e

import (
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/test/cluster"
)

// TestClusterSettingsSetOnOneHostAppliesOnAll: a cluster-wide key set through one host's CLI is
// read back through another host's API and CLI, is an event with the old and the new value, and
// overrides the wingman.toml of a third host, whose status says its file disagrees. Bad keys and
// values are refused with the reason.
func TestClusterSettingsSetOnOneHostAppliesOnAll(t *testing.T) {
	e := startEnv(t, Options{Profile: "fast"})
	ctx := ctxFor(t, 4*time.Minute)
	h1, h2, h3 := e.Hosts()[0], e.Hosts()[1], e.Hosts()[2]
	const key = "failover.guest_agent_wait"

	// h3's wingman.toml sets the key itself.
	o := e.WingmandOptions()
	o.GuestAgentWait = time.Minute
	if err := e.C.StopWingmand(h3, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := e.C.StartWingmand(ctx, h3, o); err != nil {
		t.Fatal(err)
	}
	if err := e.WaitHealthy(ctx, e.Hosts()...); err != nil {
		t.Fatal(err)
	}
	warnsOn := func(h *cluster.Host, want string) {
		t.Helper()
		var last []string
		err := Poll(ctx, 30*time.Second, 500*time.Millisecond, func() (bool, error) {
			st, err := e.Client(h).Status(ctx)
			last = st.Warnings
			return err == nil && slices.ContainsFunc(st.Warnings, func(w string) bool { return strings.Contains(w, want) }), nil
		})
		if err != nil {
			t.Fatalf("%s's status warns %q, want %q: %v", h.Name(), last, want, err)
		}
	}
	warnsOn(h3, "wingman.toml sets "+key+" = 1m where the cluster uses the default 5m, so this host alone uses 1m")

	cli, err := cluster.BuildBinary(ctx, "./cmd/wingman", true)
	if err != nil {
		t.Fatal(err)
	}
	wingman := func(h *cluster.Host, args ...string) (string, string, error) {
		var out, errOut strings.Builder
		cmd := exec.CommandContext(ctx, cli, append([]string{"-c", h.APISocket()}, args...)...)
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		return out.String(), errOut.String(), err
	}

	// Set on h1, through the CLI.
	out, errOut, err := wingman(h1, "config", "set", key, "120s")
	if err != nil || !strings.Contains(out, key+" = 2m: cluster-wide, set by "+h1.Name()) {
		t.Fatalf("wingman config set on %s: %v\n%s%s", h1.Name(), err, out, errOut)
	}
	t.Logf("wingman config set %s 120s: %s", key, out)

	// Read back on h2: its API and its CLI.
	cs, err := e.Client(h2).ClusterSetting(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs.Settings) != 1 || cs.Settings[0].Value != "2m" || cs.Settings[0].Source != "cluster" || cs.Settings[0].SetBy != h1.Name() || cs.Generation == 0 {
		t.Fatalf("%s's API answers %+v", h2.Name(), cs)
	}
	if out, errOut, err := wingman(h2, "config", "get", key); err != nil || out != "2m\n" {
		t.Fatalf("wingman config get on %s: %v: %q %q", h2.Name(), err, out, errOut)
	}

	// The change is an event with the old and the new value, seen from h2.
	evs, err := e.Client(h2).Events(ctx, time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := key + " = 2m, was 5m (default); by " + h1.Name()
	if !slices.ContainsFunc(evs, func(ev Event) bool {
		return ev.Kind == "config-changed" && ev.HostName == h1.Name() && strings.Contains(ev.Message, want)
	}) {
		t.Errorf("no config-changed event from %s saying %q among %d events", h1.Name(), want, len(evs))
	}

	// h3 applies the cluster's value over its file's, and its status says to remove the key.
	warnsOn(h3, "wingman.toml sets "+key+" = 1m, the cluster uses 2m; remove it from ")
	if out, errOut, err := wingman(h3, "config", "list"); err != nil || !regexp.MustCompile(key+`\s+2m\s+cluster\s+`+h1.Name()).MatchString(out) ||
		!strings.Contains(errOut, "the cluster uses 2m") {
		t.Errorf("wingman config list on %s: %v\n%s%s", h3.Name(), err, out, errOut)
	} else {
		t.Logf("wingman config list on %s:\n%s%s", h3.Name(), out, errOut)
	}
	if st, err := e.Client(h1).Status(ctx); err != nil || slices.ContainsFunc(st.Warnings, func(w string) bool { return strings.Contains(w, key) }) {
		t.Errorf("%s, whose file does not set the key, warns %q (%v)", h1.Name(), st.Warnings, err)
	}

	// Bad input is refused with the reason, and changes nothing.
	for _, c := range []struct{ args, says []string }{
		{[]string{"shutdown.policy", "keep"}, []string{"shutdown.policy is per-host and lives in wingman.toml"}},
		{[]string{key, "5s"}, []string{"use 10s to 1h"}},
		{[]string{"failover.guest_agent_wiat", "1m"}, []string{"did you mean " + key + "?"}},
	} {
		out, errOut, err := wingman(h2, append([]string{"config", "set"}, c.args...)...)
		for _, s := range c.says {
			if err == nil || !strings.Contains(errOut, s) {
				t.Errorf("wingman config set %v: %v, want a refusal saying %q:\n%s%s", c.args, err, s, out, errOut)
			}
		}
	}
	if now, err := e.Client(h3).ClusterSettings(ctx); err != nil || now.Generation != cs.Generation {
		t.Errorf("after the refusals the settings are at generation %d, want %d (%v)", now.Generation, cs.Generation, err)
	}

	// Back to the default, from h2: h3 uses its own file again.
	if out, errOut, err := wingman(h2, "config", "unset", key); err != nil || !strings.Contains(out, key+" = 5m: the default") {
		t.Fatalf("wingman config unset on %s: %v\n%s%s", h2.Name(), err, out, errOut)
	}
	warnsOn(h3, "so this host alone uses 1m")
}
