package main

import (
	"bytes"
	"crypto/tls"
	"encoding/pem"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"mxguard/checks/resolver/dnstest"
	"mxguard/internal/testcert"
)

// reloadable is "mxguard serve" on a config file that a test rewrites and
// reloads with SIGHUP.
type reloadable struct {
	t      *testing.T
	d      *daemon
	path   string
	listen string
	dns    string
}

// startReloadable runs mxguard serve on cfg, in which LISTEN stands for
// the listening address and DNS for the test DNS server's.
func startReloadable(t *testing.T, cfg string) *reloadable {
	t.Helper()
	dns := dnstest.StartFiles(t, corpusPath("zones/reload.zone"))
	r := &reloadable{t: t, path: filepath.Join(t.TempDir(), "mxguard.yaml"), listen: freePort(t), dns: dns.Addr()}
	r.write(cfg)
	r.d = startDaemon(t, binary, "serve", "--config", r.path)
	waitListening(t, r.listen)
	return r
}

func (r *reloadable) write(cfg string) {
	r.t.Helper()
	cfg = strings.NewReplacer("LISTEN", r.listen, "DNS", r.dns).Replace(cfg)
	if err := os.WriteFile(r.path, []byte(cfg), 0o600); err != nil {
		r.t.Fatal(err)
	}
}

// reload writes cfg, sends SIGHUP, and returns what mxguard logged from
// then until it logged the reload's outcome ("reloaded", or its first
// "reload failed" line).
func (r *reloadable) reload(cfg string) string {
	r.t.Helper()
	mark := len(r.d.out.String())
	r.write(cfg)
	if err := r.d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		r.t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		out := r.d.out.String()[mark:]
		if strings.Contains(out, "msg=reloaded") || strings.Contains(out, "reload failed") {
			return out
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("no outcome logged for the reload:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ehlo sends EHLO and returns the lines of the reply.
func (v *conv) ehlo() []string {
	v.t.Helper()
	if _, err := v.c.Write([]byte("EHLO client.sender.test\r\n")); err != nil {
		v.t.Fatal(err)
	}
	var lines []string
	for {
		line, err := v.r.ReadString('\n')
		if err != nil {
			v.t.Fatalf("EHLO: %v", err)
		}
		lines = append(lines, strings.TrimSpace(line))
		if len(line) < 4 || line[3] != '-' {
			return lines
		}
	}
}

// hasLine reports whether one of lines, after its "250-" or "250 ", is s.
func hasLine(lines []string, s string) bool {
	for _, l := range lines {
		if len(l) > 4 && l[4:] == s {
			return true
		}
	}
	return false
}

const reloadBase = `
listen:
  - address: LISTEN
dns:
  servers: [DNS]
`

// TestReloadAppliesLimitsHostnameAndLogLevel: after SIGHUP a new session
// gets the new hostname in its banner and EHLO, the new SIZE, the new
// recipient limit, and the log takes the new level; a session opened
// before the reload keeps what it started with.
func TestReloadAppliesLimitsHostnameAndLogLevel(t *testing.T) {
	dir := t.TempDir()
	backend := "backend:\n  address: builtin:" + dir + "\ndomains: [example.org]\n"
	r := startReloadable(t, "hostname: mx.example.org\n"+reloadBase+backend+"limits:\n  max_message_bytes: 1MiB\n  max_recipients: 5\n")
	old := dialConv(t, "", r.listen)
	old.say("", "220 mx.example.org ESMTP")
	if lines := old.ehlo(); !hasLine(lines, "SIZE 1048576") {
		t.Fatalf("EHLO before the reload: %q, want SIZE 1048576", lines)
	}

	out := r.reload("hostname: mx2.example.org\n" + reloadBase + backend +
		"limits:\n  max_message_bytes: 2MiB\n  max_recipients: 1\nlog:\n  level: debug\n")
	if !strings.Contains(out, "msg=reloaded") {
		t.Fatalf("reload failed:\n%s", out)
	}
	c := dialConv(t, "", r.listen)
	c.say("", "220 mx2.example.org ESMTP")
	lines := c.ehlo()
	if lines[0] != "250-mx2.example.org" || !hasLine(lines, "SIZE 2097152") {
		t.Fatalf("EHLO after the reload: %q, want mx2.example.org and SIZE 2097152", lines)
	}
	c.say("MAIL FROM:<alice@sender.test>", "250 ")
	c.say("RCPT TO:<a@example.org>", "250 ")
	c.say("RCPT TO:<b@example.org>", "452 4.5.3 ")
	c.say("QUIT", "221 2.0.0 mx2.example.org ")
	waitLog(t, r.d, "level=DEBUG")

	// The session from before the reload finishes on its own settings.
	if lines := old.ehlo(); lines[0] != "250-mx.example.org" || !hasLine(lines, "SIZE 1048576") {
		t.Fatalf("EHLO of a session opened before the reload: %q, want the old hostname and SIZE", lines)
	}
	old.say("MAIL FROM:<alice@sender.test>", "250 ")
	old.say("RCPT TO:<a@example.org>", "250 ")
	old.say("RCPT TO:<b@example.org>", "250 ")
}

// TestReloadAppliesDNSBL: a new weight and a new list apply to the next
// connection.
func TestReloadAppliesDNSBL(t *testing.T) {
	dir := t.TempDir()
	head := "hostname: mx.example.org\n" + reloadBase + "backend:\n  address: builtin:" + dir + "\ndomains: [example.org]\n"
	r := startReloadable(t, head+"dnsbl:\n  - zone: bl.test\n    weight: 5\n")
	c := dialConv(t, "127.0.0.2", r.listen)
	c.say("", "220 ")
	c = dialConv(t, "127.0.0.3", r.listen)
	c.say("", "220 ")

	out := r.reload(head + "dnsbl:\n  - zone: bl.test\n    weight: 10\n  - zone: bl2.test\n    weight: 10\n")
	if !strings.Contains(out, "msg=reloaded") {
		t.Fatalf("reload failed:\n%s", out)
	}
	c = dialConv(t, "127.0.0.2", r.listen)
	c.say("", "554 5.7.1 client 127.0.0.2 is listed by bl.test ")
	c = dialConv(t, "127.0.0.3", r.listen)
	c.say("", "554 5.7.1 client 127.0.0.3 is listed by bl2.test ")
	c = dialConv(t, "127.0.0.4", r.listen)
	c.say("", "220 ")
}

// TestReloadTLSCertificate: a certificate renewed in place (same paths,
// new files) is what the next STARTTLS handshake presents.
func TestReloadTLSCertificate(t *testing.T) {
	first, second := testcert.New(t, "mx.example.org"), testcert.New(t, "mx.example.org")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	install := func(p testcert.Pair) {
		for src, dst := range map[string]string{p.CertFile: certFile, p.KeyFile: keyFile} {
			data, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst, data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	install(first)
	cfg := "hostname: mx.example.org\nlisten:\n  - address: LISTEN\n    tls: {cert: " + certFile + ", key: " + keyFile + "}\n" +
		"dns:\n  servers: [DNS]\nbackend:\n  address: builtin:" + dir + "/mail\ndomains: [example.org]\n"
	r := startReloadable(t, cfg)
	if got, want := presented(t, r.listen), leafDER(t, first.CertFile); !bytes.Equal(got, want) {
		t.Fatal("the first handshake did not present the configured certificate")
	}
	install(second)
	if out := r.reload(cfg); !strings.Contains(out, "msg=reloaded") {
		t.Fatalf("reload failed:\n%s", out)
	}
	if got, want := presented(t, r.listen), leafDER(t, second.CertFile); !bytes.Equal(got, want) {
		t.Fatal("after the reload the handshake still presents the old certificate")
	}
}

// presented does EHLO and STARTTLS at addr and returns the certificate the
// server presented.
func presented(t *testing.T, addr string) []byte {
	t.Helper()
	c := dialConv(t, "", addr)
	c.say("", "220 ")
	c.say("EHLO client.sender.test", "250 ")
	c.say("STARTTLS", "220 ")
	tc := tls.Client(c.c, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}) //nolint:gosec // the test compares the certificate itself
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	return tc.ConnectionState().PeerCertificates[0].Raw
}

func leafDER(t *testing.T, file string) []byte {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("%s: no PEM block", file)
	}
	return b.Bytes
}

// TestReloadListenAddressNeedsRestart: a changed listen address cannot be
// applied to a running socket: the reload says so, naming the key, the
// old address goes on serving, and the rest of the file is applied.
func TestReloadListenAddressNeedsRestart(t *testing.T) {
	dir := t.TempDir()
	tail := "dns:\n  servers: [DNS]\nbackend:\n  address: builtin:" + dir + "\ndomains: [example.org]\n"
	r := startReloadable(t, "hostname: mx.example.org\nlisten:\n  - address: LISTEN\n"+tail)
	other := freePort(t)
	out := r.reload("hostname: mx2.example.org\nlisten:\n  - address: " + other + "\n" + tail)
	if !strings.Contains(out, "msg=reloaded") {
		t.Fatalf("reload failed:\n%s", out)
	}
	if !strings.Contains(out, `level=WARN msg="listen[0].address changed; restart to apply"`) ||
		!strings.Contains(out, "running="+r.listen) || !strings.Contains(out, "configured="+other) {
		t.Fatalf("no warning naming listen[0].address with both addresses:\n%s", out)
	}
	c := dialConv(t, "", r.listen)
	c.say("", "220 mx2.example.org ESMTP")
	if conn, err := net.DialTimeout("tcp", other, time.Second); err == nil {
		conn.Close()
		t.Fatalf("mxguard listens on %s after a reload", other)
	}
}

// TestReloadBackendAndVerdictLog: a new backend and a new verdict log apply
// to the next message.
func TestReloadBackendAndVerdictLog(t *testing.T) {
	dir := t.TempDir()
	cfg := func(n string) string {
		return "hostname: mx.example.org\n" + reloadBase + "backend:\n  address: builtin:" + filepath.Join(dir, "mail"+n) +
			"\ndomains: [example.org]\nverdict_log: " + filepath.Join(dir, "v"+n+".jsonl") + "\n"
	}
	r := startReloadable(t, cfg("1"))
	send := func() {
		c := openTx(t, "", r.listen)
		c.data("From: alice@sender.test\r\nSubject: hi\r\n\r\nhello\r\n", "250 ")
		c.say("QUIT", "221 ")
	}
	send()
	if out := r.reload(cfg("2")); !strings.Contains(out, "msg=reloaded") {
		t.Fatalf("reload failed:\n%s", out)
	}
	send()
	for _, n := range []string{"1", "2"} {
		if msgs, _ := storedMessages(t, filepath.Join(dir, "mail"+n)); len(msgs) != 1 {
			t.Errorf("backend %s holds %d messages, want 1", n, len(msgs))
		}
		if recs := waitVerdicts(t, filepath.Join(dir, "v"+n+".jsonl"), 1); len(recs) != 1 {
			t.Errorf("verdict log %s holds %d lines, want 1", n, len(recs))
		}
	}
}

// TestReloadRefusesBrokenConfig: a config that fails validation, or that
// names a broken recipients file, changes nothing, is reported with the
// position of each problem, and is never reported as reloaded.
func TestReloadRefusesBrokenConfig(t *testing.T) {
	dir := t.TempDir()
	tail := reloadBase + "backend:\n  address: builtin:" + filepath.Join(dir, "mail") + "\ndomains: [example.org]\n"
	r := startReloadable(t, "hostname: mx.example.org\n"+tail)

	out := r.reload("hostname: mx2.example.org\n" + tail + "limits:\n  max_message_bytes: 10\n")
	if !strings.Contains(out, "reload failed, keeping the running configuration") {
		t.Fatalf("an invalid config was not refused:\n%s", out)
	}
	waitLog(t, r.d, r.path+":11:22: limits.max_message_bytes: expected a size in bytes >= 1024")
	dialConv(t, "", r.listen).say("", "220 mx.example.org ESMTP")

	rcpts := filepath.Join(dir, "recipients")
	if err := os.WriteFile(rcpts, []byte("user@example.org\nnot an address\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out = r.reload("hostname: mx2.example.org\n" + tail + "recipients:\n  verify: file\n  file: " + rcpts + "\n")
	if !strings.Contains(out, "reload failed, keeping the running configuration") {
		t.Fatalf("a broken recipients file was not refused:\n%s", out)
	}
	waitLog(t, r.d, rcpts+":2: ")
	c := dialConv(t, "", r.listen)
	c.say("", "220 mx.example.org ESMTP")
	c.say("EHLO client.sender.test", "250 ")
	c.say("MAIL FROM:<alice@sender.test>", "250 ")
	c.say("RCPT TO:<nobody@example.org>", "250 ")

	// A good file is applied, and it is the only reload reported.
	if out := r.reload("hostname: mx2.example.org\n" + tail); !strings.Contains(out, "msg=reloaded") {
		t.Fatalf("reload failed:\n%s", out)
	}
	dialConv(t, "", r.listen).say("", "220 mx2.example.org ESMTP")
	if n := strings.Count(r.d.out.String(), "msg=reloaded"); n != 1 {
		t.Fatalf("%d reloads reported, want 1:\n%s", n, r.d.out.String())
	}
}

// TestReloadKeepsRateLimitState: a reload that does not change the rate
// limits keeps what they remember, so a reload does not hand every client
// a fresh burst.
func TestReloadKeepsRateLimitState(t *testing.T) {
	dir := t.TempDir()
	tail := reloadBase + "backend:\n  address: builtin:" + dir + "\ndomains: [example.org]\n" +
		"limits:\n  exempt: [127.0.0.2/32]\n  rate:\n    connections_per_minute: 2\n"
	r := startReloadable(t, "hostname: mx.example.org\n"+tail)
	for i := 0; i < 2; i++ {
		dialConv(t, "127.0.0.5", r.listen).say("", "220 ")
	}
	if out := r.reload("hostname: mx2.example.org\n" + tail); !strings.Contains(out, "msg=reloaded") {
		t.Fatalf("reload failed:\n%s", out)
	}
	dialConv(t, "127.0.0.5", r.listen).say("", "421 4.7.0 mx2.example.org too many connections per minute")
	dialConv(t, "127.0.0.6", r.listen).say("", "220 mx2.example.org ")
}

// countingBackend is a real go-smtp backend that counts its sessions, the
// ones still open, and the messages it took.
type countingBackend struct {
	addr                 string
	mu                   sync.Mutex
	sessions, open, msgs int
}

func startCountingBackend(t *testing.T) *countingBackend {
	t.Helper()
	b := &countingBackend{}
	srv := smtp.NewServer(b)
	srv.Domain = "backend.test"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.addr = l.Addr().String()
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return b
}

func (b *countingBackend) NewSession(*smtp.Conn) (smtp.Session, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sessions++
	b.open++
	return &countingSession{b: b}, nil
}

// counts returns the sessions so far, those still open, and the messages.
func (b *countingBackend) counts() (sessions, open, msgs int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sessions, b.open, b.msgs
}

type countingSession struct{ b *countingBackend }

func (s *countingSession) Reset()                               {}
func (s *countingSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *countingSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *countingSession) Logout() error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.open--
	return nil
}
func (s *countingSession) Data(r io.Reader) error {
	_, _ = io.Copy(io.Discard, r)
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.msgs++
	return nil
}

// TestReloadBackendConnections: a reload that leaves the backend as it was
// keeps the kept-alive backend connection; one that changes the backend
// delivers the next message to the new one and closes the idle connection
// to the old one.
func TestReloadBackendConnections(t *testing.T) {
	a, b := startCountingBackend(t), startCountingBackend(t)
	cfg := func(backend, extra string) string {
		return "hostname: mx.example.org\n" + reloadBase + "backend:\n  address: " + backend + "\ndomains: [example.org]\n" + extra
	}
	r := startReloadable(t, cfg(a.addr, ""))
	send := func() {
		c := openTx(t, "", r.listen)
		c.data("From: alice@sender.test\r\nSubject: hi\r\n\r\nhello\r\n", "250 ")
		c.say("QUIT", "221 ")
	}
	send()
	if out := r.reload(cfg(a.addr, "limits:\n  max_errors: 5\n")); !strings.Contains(out, "msg=reloaded") {
		t.Fatalf("reload failed:\n%s", out)
	}
	send()
	if sessions, open, msgs := a.counts(); sessions != 1 || open != 1 || msgs != 2 {
		t.Fatalf("backend a: %d sessions (%d open), %d messages; want both messages over one kept connection", sessions, open, msgs)
	}
	if out := r.reload(cfg(b.addr, "")); !strings.Contains(out, "msg=reloaded") {
		t.Fatalf("reload failed:\n%s", out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, open, _ := a.counts(); open != 0; _, open, _ = a.counts() {
		if time.Now().After(deadline) {
			t.Fatal("the idle connection to the old backend was not closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	send()
	if _, _, msgs := b.counts(); msgs != 1 {
		t.Fatalf("backend b holds %d messages, want 1", msgs)
	}
	if _, _, msgs := a.counts(); msgs != 2 {
		t.Fatalf("backend a holds %d messages after the switch, want still 2", msgs)
	}
}
