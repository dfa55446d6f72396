package api

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

// TLSFiles are the PEM files of one side of a mutual-TLS connection: its own
// certificate and key, and the CA that signs the other side's certificates.
type TLSFiles struct {
	Cert, Key, CA string
}

// ClientTLS loads a client's mutual-TLS configuration.
func ClientTLS(f TLSFiles) (*tls.Config, error) {
	cert, pool, err := load(f)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS13}, nil
}

// ServerTLS loads a server's mutual-TLS configuration: clients must present
// a certificate signed by f.CA.
func ServerTLS(f TLSFiles) (*tls.Config, error) {
	cert, pool, err := load(f)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13}, nil
}

func load(f TLSFiles) (tls.Certificate, *x509.CertPool, error) {
	if f.Cert == "" || f.Key == "" || f.CA == "" {
		return tls.Certificate{}, nil, fmt.Errorf("mutual TLS needs a certificate, its key and the CA certificate (got cert %q, key %q, ca %q)", f.Cert, f.Key, f.CA)
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("load certificate %s and key %s: %w", f.Cert, f.Key, err)
	}
	pool, err := CAPool(f.CA)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return cert, pool, nil
}

// CAPool reads the PEM certificates of the CA file at path.
func CAPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// NewTLSClient returns a client for a daemon's mutual-TLS listener at
// addr (host:port).
func NewTLSClient(addr string, cfg *tls.Config) *Client {
	tr := &http.Transport{TLSClientConfig: cfg, DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		ForceAttemptHTTP2: false}
	return &Client{base: "https://" + addr, hc: &http.Client{Transport: tr}, what: "https://" + addr}
}
