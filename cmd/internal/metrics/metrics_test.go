package metrics

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wingmanha/wingman/quorum"
	"github.com/wingmanha/wingman/storage"
)

func testMetrics() *Metrics {
	return New("1.2.3", func() Snapshot {
		return Snapshot{
			Decision: quorum.Decision{Quorate: true, Coordinator: 1, Hosts: []quorum.Host{{ID: 1, Name: "kvm1", State: quorum.StateAlive},
				{ID: 2, Name: "kvm2", State: quorum.StateDead}}},
			Input: quorum.Input{Now: 10 * time.Second, LastWrite: 9500 * time.Millisecond,
				Disarm: quorum.DisarmStatus{Disarmed: true, Until: 100 * time.Second}},
			Renew: 20 * time.Millisecond, RenewMax: 300 * time.Millisecond,
			Events:      map[string]uint64{"started": 2, "declared-dead": 1},
			LUN:         storage.IOStats{Reads: 40, Writes: 12, ReadErrors: 1},
			VMs:         []VMState{{Name: "web1", UUID: "u1", State: "running"}},
			Quarantined: quorum.SetOf(1),
		}
	})
}

// parse reads an exposition as Prometheus does.
func parse(t *testing.T, body string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("exposition does not parse: %v\n%s", err, body)
	}
	return fams
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func TestScrapeHasTheStateTheDurationsAndTheNotifications(t *testing.T) {
	m := testMetrics()
	m.FailedOver(14 * time.Second)
	m.Migrated(3*time.Second, 40*time.Millisecond)
	m.ObserveIO(true, 2*time.Millisecond, nil)
	m.ObserveIO(false, time.Second, errors.New("timeout"))
	m.Notified("ops-mail", "incident", nil)
	m.Notified("chat", "incident", errors.New("500"))
	m.Notified("chat", "incident", errors.New("500"))

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	fams := parse(t, rec.Body.String())
	one := func(name string) *dto.Metric {
		f := fams[name]
		if f == nil || len(f.Metric) == 0 {
			t.Fatalf("no %s in the scrape", name)
		}
		return f.Metric[0]
	}
	if b := one("wingman_build_info"); label(b, "version") != "1.2.3" || label(b, "goversion") != runtime.Version() || b.Gauge.GetValue() != 1 {
		t.Errorf("build info = %v", b)
	}
	if h := one("wingman_failover_duration_seconds").Histogram; h.GetSampleCount() != 1 || h.GetSampleSum() != 14 {
		t.Errorf("failover histogram = %v", h)
	}
	if h := one("wingman_migration_duration_seconds").Histogram; h.GetSampleCount() != 1 || h.GetSampleSum() != 3 {
		t.Errorf("migration histogram = %v", h)
	}
	if h := one("wingman_migration_downtime_seconds").Histogram; h.GetSampleSum() != 0.04 {
		t.Errorf("downtime histogram = %v", h)
	}
	for _, io := range fams["wingman_lun_io_duration_seconds"].Metric {
		if n := io.Histogram.GetSampleCount(); n != 1 {
			t.Errorf("LUN latency op=%s: %d samples, want 1", label(io, "op"), n)
		}
	}
	if c := one("wingman_notifications_sent_total"); label(c, "target") != "ops-mail" || label(c, "kind") != "incident" || c.Counter.GetValue() != 1 {
		t.Errorf("notifications sent = %v", c)
	}
	if c := one("wingman_notifications_failed_total"); label(c, "target") != "chat" || c.Counter.GetValue() != 2 {
		t.Errorf("notifications failed = %v", c)
	}
	for name, want := range map[string]float64{"wingman_quorate": 1, "wingman_may_run_vms": 0, "wingman_coordinator_host_id": 1,
		"wingman_heartbeat_renew_seconds": 0.02, "wingman_heartbeat_renew_max_seconds": 0.3, "wingman_heartbeat_age_seconds": 0.5,
		"wingman_ha_disarmed": 90} {
		if got := one(name).Gauge.GetValue(); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	states := map[string]string{}
	for _, h := range fams["wingman_host_state"].Metric {
		states[label(h, "host")] = label(h, "state")
	}
	if states["kvm1"] != "alive" || states["kvm2"] != "dead" {
		t.Errorf("host states = %v", states)
	}
	quarantined := map[string]float64{}
	for _, h := range fams["wingman_host_quarantined"].Metric {
		quarantined[label(h, "host")] = h.Gauge.GetValue()
	}
	if quarantined["kvm1"] != 1 || quarantined["kvm2"] != 0 || len(quarantined) != 2 {
		t.Errorf("host quarantined = %v, want kvm1 1, kvm2 0", quarantined)
	}
	if v := one("wingman_vm_state"); label(v, "vm") != "web1" || label(v, "uuid") != "u1" || label(v, "state") != "running" {
		t.Errorf("vm state = %v", v)
	}
	counts := map[string]float64{}
	for _, name := range []string{"wingman_lun_io_operations_total", "wingman_lun_io_errors_total", "wingman_events_total"} {
		for _, c := range fams[name].Metric {
			counts[name+"/"+label(c, "op")+label(c, "kind")] = c.Counter.GetValue()
		}
	}
	for k, want := range map[string]float64{"wingman_lun_io_operations_total/read": 40, "wingman_lun_io_operations_total/write": 12,
		"wingman_lun_io_errors_total/read": 1, "wingman_lun_io_errors_total/write": 0, "wingman_events_total/started": 2} {
		if counts[k] != want {
			t.Errorf("%s = %v, want %v", k, counts[k], want)
		}
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if fams[name] == nil {
			t.Errorf("no %s: the Go and process collectors are missing", name)
		}
	}
}

// The names follow Prometheus's conventions, as promlint checks them.
func TestMetricNamesPassPromlint(t *testing.T) {
	m := testMetrics()
	m.Notified("x", "test", nil)
	problems, err := testutil.GatherAndLint(m.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "wingman_") {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 and its key.
func writeCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "wingmand metrics"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "metrics.crt"), filepath.Join(dir, "metrics.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600)
	c, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return certFile, keyFile, pool
}

// Over TLS with basic auth, a scrape without the password is refused and
// one with it gets the exposition.
func TestListenerServesTLSWithBasicAuth(t *testing.T) {
	dir := t.TempDir()
	cert, key, pool := writeCert(t, dir)
	pwFile := filepath.Join(dir, "metrics.password")
	os.WriteFile(pwFile, []byte("s3cret\n"), 0o600)
	cfg := ListenerConfig{Listen: "127.0.0.1:0", TLSCert: cert, TLSKey: key, BasicAuthUser: "prometheus", BasicAuthPasswordFile: pwFile}
	if p := cfg.Problems(); len(p) != 0 {
		t.Fatalf("valid config refused: %v", p)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := testMetrics().Serve(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	get := func(user, pw string) (int, string) {
		req, _ := http.NewRequest("GET", "https://"+addr.String()+"/metrics", nil)
		if user != "" {
			req.SetBasicAuth(user, pw)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("", ""); code != 401 {
		t.Errorf("scrape without credentials: %d, want 401", code)
	}
	if code, _ := get("prometheus", "wrong"); code != 401 {
		t.Errorf("scrape with a wrong password: %d, want 401", code)
	}
	code, body := get("prometheus", "s3cret")
	if code != 200 || parse(t, body)["wingman_quorate"] == nil {
		t.Errorf("scrape with the password: %d\n%s", code, body)
	}
	// With tls_client_ca, a scraper without a certificate that CA signed
	// does not get through the handshake.
	mtls := cfg
	mtls.TLSClientCA, mtls.BasicAuthUser, mtls.BasicAuthPasswordFile = cert, "", ""
	maddr, err := testMetrics().Serve(ctx, mtls)
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := hc.Get("https://" + maddr.String() + "/metrics"); err == nil {
		resp.Body.Close()
		t.Errorf("a scraper without a client certificate got %d", resp.StatusCode)
	}
	plain := &http.Client{}
	if resp, err := plain.Get("http://" + addr.String() + "/metrics"); err == nil && resp.StatusCode == 200 {
		t.Errorf("plain HTTP scrape of a TLS listener answered 200")
	}
}

func TestListenerConfigProblemsSayWhatToChange(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\nsecond line\n"), 0o600)
	for _, tc := range []struct {
		cfg      ListenerConfig
		key, msg string
	}{
		{ListenerConfig{Listen: "9477"}, "listen", "use host:port"},
		{ListenerConfig{Listen: "127.0.0.1:9477", TLSCert: "/x.crt"}, "tls_cert", "set both, or neither"},
		{ListenerConfig{Listen: "127.0.0.1:9477", TLSCert: filepath.Join(dir, "no.crt"), TLSKey: filepath.Join(dir, "no.key")}, "tls_key", "no such file"},
		{ListenerConfig{Listen: "127.0.0.1:9477", TLSClientCA: empty}, "tls_client_ca", "needs tls_cert"},
		{ListenerConfig{Listen: "127.0.0.1:9477", BasicAuthUser: "p"}, "basic_auth_user", "set both, or neither"},
		{ListenerConfig{Listen: "127.0.0.1:9477", BasicAuthUser: "p", BasicAuthPasswordFile: filepath.Join(dir, "none")}, "basic_auth_password_file", "no such file"},
		{ListenerConfig{Listen: "127.0.0.1:9477", BasicAuthUser: "p", BasicAuthPasswordFile: empty}, "basic_auth_password_file", "first line is empty"},
		{ListenerConfig{BasicAuthUser: "p"}, "listen", "set listen"},
	} {
		found := false
		for _, p := range tc.cfg.Problems() {
			found = found || (p.Key == tc.key && strings.Contains(p.Msg, tc.msg))
		}
		if !found {
			t.Errorf("%+v: problems %v, want %s: %q", tc.cfg, tc.cfg.Problems(), tc.key, tc.msg)
		}
	}
}
