package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wingmanha/wingman/cmd/api"
)

// writeCert makes a certificate for cn signed by parent (self-signed when
// parent is nil) and writes cert and key PEM files into dir.
func writeCert(t *testing.T, dir, name, cn string, isCA bool, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: isCA, BasicConstraintsValid: true}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(filepath.Join(dir, name+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(filepath.Join(dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	c, _ := x509.ParseCertificate(der)
	return c, key
}

func TestRemoteAPIRequiresMutualTLS(t *testing.T) {
	lun := formatLUN(t)
	td := startDaemon(t, testConfig(t, lun, "kvm1", 1, nil, freePort(t)))
	dir := t.TempDir()
	ca, caKey := writeCert(t, dir, "ca", "wingman test CA", true, nil, nil)
	writeCert(t, dir, "server", "kvm1", false, ca, caKey)
	writeCert(t, dir, "client", "admin", false, ca, caKey)
	writeCert(t, dir, "rogue", "mallory", false, nil, nil) // not signed by the CA
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := td.d.ServeTLS(ctx, "127.0.0.1:0", api.TLSFiles{Cert: dir + "/server.crt", Key: dir + "/server.key", CA: dir + "/ca.crt"})
	if err != nil {
		t.Fatal(err)
	}
	f := func(name string) string { return filepath.Join(dir, name) }

	good, err := api.ClientTLS(api.TLSFiles{Cert: f("client.crt"), Key: f("client.key"), CA: f("ca.crt")})
	if err != nil {
		t.Fatal(err)
	}
	if s, err := api.NewTLSClient(addr.String(), good).Status(ctx); err != nil || s.Host != "kvm1" {
		t.Fatalf("client with a valid certificate: %v", err)
	}

	rogue, _ := api.ClientTLS(api.TLSFiles{Cert: f("rogue.crt"), Key: f("rogue.key"), CA: f("ca.crt")})
	if _, err := api.NewTLSClient(addr.String(), rogue).Status(ctx); err == nil {
		t.Error("a client certificate the CA did not sign was accepted")
	}
	noCert := good.Clone()
	noCert.Certificates = nil
	if _, err := api.NewTLSClient(addr.String(), noCert).Status(ctx); err == nil {
		t.Error("a client without a certificate was accepted")
	}
	// The dashboard and the incidents it draws, for the certificate only;
	// a cross-origin browser request is refused.
	get := func(cfg *tls.Config, method, path string, header ...string) (int, string, error) {
		req, _ := http.NewRequestWithContext(ctx, method, "https://"+addr.String()+path, strings.NewReader(`{"enter": true}`))
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}).Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Security-Policy") + "\n" + string(b), nil
	}
	if code, body, err := get(good, "GET", "/ui/"); err != nil || code != 200 || !strings.Contains(body, `src="app.js"`) || !strings.Contains(body, "frame-ancestors 'none'") {
		t.Errorf("GET /ui/ with a certificate: %d %v\n%s", code, err, body)
	}
	if code, body, err := get(good, "GET", "/v1/incidents"); err != nil || code != 200 || strings.TrimSpace(body[strings.Index(body, "\n")+1:]) != "[]" {
		t.Errorf("GET /v1/incidents of a cluster that lost nothing: %d %v %q", code, err, body)
	}
	if code, _, err := get(good, "POST", "/v1/hosts/kvm1/maintenance", "Origin", "https://evil.example", "Content-Type", "application/json"); err != nil || code != 403 {
		t.Errorf("cross-origin POST with a certificate: %d %v, want 403", code, err)
	}
	if _, _, err := get(noCert, "GET", "/ui/"); err == nil {
		t.Error("the dashboard answered a client without a certificate")
	}
	// Plain HTTP on the TLS port gets nothing either.
	if _, err := api.NewHTTPClient("http://"+addr.String(), nil).Status(ctx); err == nil {
		t.Error("plain HTTP was accepted on the TLS listener")
	}
}

// TestHelperDial is run as another user by TestSocketRefusesOtherUsers.
func TestHelperDial(t *testing.T) {
	path := os.Getenv("WINGMAN_DIAL")
	if path == "" {
		t.Skip("helper for TestSocketRefusesOtherUsers")
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		os.Stdout.WriteString("DIAL-ERROR " + err.Error() + "\n")
		return
	}
	c.Close()
	os.Stdout.WriteString("DIAL-OK\n")
}

func TestSocketRefusesOtherUsers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a helper as another user")
	}
	lun := formatLUN(t)
	cfg := testConfig(t, lun, "kvm1", 1, nil, freePort(t))
	startDaemon(t, cfg)
	st, err := os.Stat(cfg.API.Socket)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm&0o007 != 0 {
		t.Errorf("socket mode %v lets other users in", perm)
	}
	// The test binary must be reachable by nobody: copy it next to nothing private.
	exe, _ := os.Executable()
	bin := filepath.Join(os.TempDir(), "wingmand-dial-helper-"+strings.ReplaceAll(t.Name(), "/", "_"))
	b, _ := os.ReadFile(exe)
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(bin)
	os.Chmod(filepath.Dir(cfg.API.Socket), 0o755) // let nobody reach the socket itself, not only the directory
	cmd := exec.Command(bin, "-test.run", "^TestHelperDial$", "-test.v")
	cmd.Env = append(os.Environ(), "WINGMAN_DIAL="+cfg.API.Socket)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out), "DIAL-ERROR") || !strings.Contains(string(out), "permission denied") {
		t.Errorf("user nobody could use the API socket, or the helper failed:\n%s", out)
	}
	// Root (this process) can.
	if _, err := api.NewClient(cfg.API.Socket).Status(context.Background()); err != nil {
		t.Errorf("root: %v", err)
	}
}
