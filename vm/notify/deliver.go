package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/smtp"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/wingmanha/wingman/storage"
)

// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the webhook
// body, keyed with the target's secret file content.
const SignatureHeader = "X-Wingman-Signature"

// Sign returns the SignatureHeader value of body under key.
func Sign(key, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// deliver makes one attempt to deliver n (whose JSON is body) to t, within
// ctx's deadline.
func deliver(ctx context.Context, t storage.NotifyTarget, n Notification, body []byte, tlsConf *tls.Config) error {
	switch t.Kind {
	case TargetMail:
		return sendMail(ctx, t, n, tlsConf)
	case TargetWebhook:
		return postWebhook(ctx, t, n, body, tlsConf)
	case TargetExec:
		return runHook(ctx, t, n, body)
	}
	return fmt.Errorf("%w: unknown kind %q", ErrInvalidTarget, t.Kind)
}

func timeoutOf(t storage.NotifyTarget) time.Duration {
	switch {
	case t.Timeout > 0:
		return t.Timeout
	case t.Kind == TargetMail:
		return DefaultMailTimeout
	case t.Kind == TargetWebhook:
		return DefaultWebhookTimeout
	}
	return DefaultExecTimeout
}

// sendMail speaks SMTP with Go's net/smtp: in the standard library,
// frozen but complete for a client (STARTTLS, AUTH PLAIN), and bounded
// here by a deadline on the connection.
func sendMail(ctx context.Context, t storage.NotifyTarget, n Notification, tlsConf *tls.Config) error {
	host, _, _ := net.SplitHostPort(t.Address)
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", t.Address)
	if err != nil {
		return fmt.Errorf("connect to SMTP server %s: %w", t.Address, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return fmt.Errorf("SMTP server %s: %w", t.Address, err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		conf := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		if tlsConf != nil {
			conf = tlsConf.Clone()
			if conf.ServerName == "" {
				conf.ServerName = host
			}
		}
		if err := c.StartTLS(conf); err != nil {
			return fmt.Errorf("SMTP server %s: STARTTLS: %w", t.Address, err)
		}
	}
	if t.User != "" {
		if _, ok := c.TLSConnectionState(); !ok {
			return fmt.Errorf("SMTP server %s offers no STARTTLS: refusing to send the password of %q in clear text", t.Address, t.User)
		}
		pass, err := readSecret(t.SecretFile)
		if err != nil {
			return err
		}
		if err := c.Auth(smtp.PlainAuth("", t.User, string(pass), host)); err != nil {
			return fmt.Errorf("SMTP server %s: authenticate as %q: %w", t.Address, t.User, err)
		}
	}
	if err := c.Mail(bareAddr(t.From)); err != nil {
		return fmt.Errorf("SMTP server %s: MAIL FROM %s: %w", t.Address, t.From, err)
	}
	for _, to := range t.To {
		if err := c.Rcpt(bareAddr(to)); err != nil {
			return fmt.Errorf("SMTP server %s: RCPT TO %s: %w", t.Address, to, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("SMTP server %s: DATA: %w", t.Address, err)
	}
	if _, err := w.Write(mailMessage(t, n)); err != nil {
		return fmt.Errorf("SMTP server %s: message: %w", t.Address, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("SMTP server %s: message refused: %w", t.Address, err)
	}
	// The server has taken the message: a failed QUIT must not make us
	// send it again.
	c.Quit()
	return nil
}

func bareAddr(a string) string {
	if s := strings.LastIndexByte(a, '<'); s >= 0 && strings.HasSuffix(a, ">") {
		return a[s+1 : len(a)-1]
	}
	return a
}

// mailMessage is the plain-text mail of n. Its Message-ID carries the
// notification id, so a mail client shows a re-delivery as the same mail.
func mailMessage(t storage.NotifyTarget, n Notification) []byte {
	var b bytes.Buffer
	h := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	h("From", t.From)
	h("To", strings.Join(t.To, ", "))
	h("Subject", mime.QEncoding.Encode("utf-8", n.Summary))
	h("Date", n.Time.Format(time.RFC1123Z))
	h("Message-ID", "<"+n.ID+"@"+clusterDomain(n.Cluster)+".wingman>")
	h("X-Wingman-Id", n.ID)
	h("X-Wingman-Kind", n.Kind)
	h("X-Wingman-Severity", n.Severity)
	h("MIME-Version", "1.0")
	h("Content-Type", "text/plain; charset=utf-8")
	h("Content-Transfer-Encoding", "8bit")
	b.WriteString("\r\n")
	b.WriteString(strings.ReplaceAll(n.Text, "\n", "\r\n"))
	return b.Bytes()
}

func clusterDomain(c string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(c) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	if b.Len() == 0 {
		return "cluster"
	}
	return b.String()
}

// postWebhook POSTs the JSON body once; any answer but 2xx is a failure.
func postWebhook(ctx context.Context, t storage.NotifyTarget, n Notification, body []byte, tlsConf *tls.Config) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.Address, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook %s: %w", t.Address, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "wingman-notify/1")
	req.Header.Set("X-Wingman-Id", n.ID)
	req.Header.Set("X-Wingman-Kind", n.Kind)
	if t.SecretFile != "" {
		key, err := readSecret(t.SecretFile)
		if err != nil {
			return err
		}
		req.Header.Set(SignatureHeader, Sign(key, body))
	}
	tr := &http.Transport{TLSClientConfig: tlsConf, DisableKeepAlives: true, Proxy: http.ProxyFromEnvironment}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("webhook %s: %w", t.Address, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook %s answered %s: %s", t.Address, resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// runHook runs the program with the JSON on stdin and the key facts in
// WINGMAN_* variables. On timeout its whole process group is killed.
func runHook(ctx context.Context, t storage.NotifyTarget, n Notification, body []byte) error {
	cmd := exec.CommandContext(ctx, t.Address)
	cmd.Stdin = bytes.NewReader(body)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"WINGMAN_ID=" + n.ID, "WINGMAN_KIND=" + n.Kind, "WINGMAN_SEVERITY=" + n.Severity,
		"WINGMAN_CLUSTER=" + n.Cluster, "WINGMAN_SENDER=" + n.Sender, "WINGMAN_HOST=" + n.hostName,
		"WINGMAN_SUMMARY=" + n.Summary, "WINGMAN_TIME=" + n.Time.Format(time.RFC3339Nano), "WINGMAN_TARGET=" + t.Name}
	var out tailBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second // a grandchild holding the output open does not hold us
	err := cmd.Run()
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("hook killed after %v (%s): %w (output: %q)", timeoutOf(t), t.Address, ctx.Err(), out.String())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return fmt.Errorf("hook exited with %d (%s): %q", ee.ExitCode(), t.Address, out.String())
	}
	return fmt.Errorf("hook %s: %w", t.Address, err)
}

// tailBuffer keeps the last 512 bytes written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 512 {
		t.b = t.b[len(t.b)-512:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return strings.TrimSpace(string(t.b)) }

// DeliverNow makes one attempt to deliver n to t and waits for it, within
// t's timeout: for `wingman notify test`, which prints what happened.
// Everything else goes through a Sender, which never waits.
func DeliverNow(ctx context.Context, t storage.NotifyTarget, n Notification, tlsConf *tls.Config) error {
	body, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("encode notification %s: %w", n.ID, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeoutOf(t))
	defer cancel()
	return deliver(ctx, t, n, body, tlsConf)
}
