package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"mxguard/policy"
)

// stored is one message a test backend accepted.
type stored struct {
	From  string
	Rcpts []string
	Data  string
	Queue string
	TLS   bool // the message came over a TLS connection
}

// fault is what the test backend does with one message.
type fault int

const (
	faultNone       fault = iota
	faultTemp             // 451 at end of data
	faultPerm             // 554 at end of data
	faultDropBefore       // close the connection before storing
	faultDropAfter        // store, then close without a reply
	faultStall            // store, then answer too late
	faultRcpt             // refuse the second recipient
)

// testBackend is a real go-smtp server on loopback that records messages.
type testBackend struct {
	t     testing.TB
	addr  string
	srv   *smtp.Server
	mu    sync.Mutex
	msgs  []stored
	seq   int
	fault func(seq int) fault
	stall time.Duration
	lmtp  bool
	conns int
	// tls, when set, makes the backend offer STARTTLS; unix listens on a
	// Unix socket instead of TCP.
	tls  *tls.Config
	unix bool
	// lmtpRefuse makes an LMTP backend refuse the message for this
	// recipient after DATA.
	lmtpRefuse string
	// idleTimeout makes the backend drop connections idle this long.
	idleTimeout time.Duration
}

func startBackend(t testing.TB, configure func(*testBackend)) *testBackend {
	t.Helper()
	b := &testBackend{t: t, fault: func(int) fault { return faultNone }}
	if configure != nil {
		configure(b)
	}
	b.srv = smtp.NewServer(b)
	b.srv.Domain = "backend.test"
	b.srv.LMTP = b.lmtp
	b.srv.Network = "tcp"
	b.srv.TLSConfig = b.tls
	b.srv.ErrorLog = discardLogger{}
	b.srv.ReadTimeout = 30 * time.Second
	if b.idleTimeout > 0 {
		b.srv.ReadTimeout = b.idleTimeout
	}
	network, addr := "tcp", "127.0.0.1:0"
	if b.unix {
		network, addr = "unix", t.TempDir()+"/lmtp.sock"
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	b.addr = l.Addr().String()
	go b.srv.Serve(l)
	t.Cleanup(func() { b.srv.Close() })
	return b
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...interface{}) {}
func (discardLogger) Println(...interface{})        {}

func (b *testBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	b.mu.Lock()
	b.conns++
	b.mu.Unlock()
	return &backendSession{b: b, c: c}, nil
}

// connections is how many SMTP sessions the backend has seen.
func (b *testBackend) connections() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.conns
}

func (b *testBackend) messages() []stored {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]stored(nil), b.msgs...)
}

type backendSession struct {
	b     *testBackend
	c     *smtp.Conn
	from  string
	rcpts []string
}

func (s *backendSession) Reset()        { s.from, s.rcpts = "", nil }
func (s *backendSession) Logout() error { return nil }
func (s *backendSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}
func (s *backendSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if len(s.rcpts) == 1 && s.b.nextFault(false) == faultRcpt {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}

// nextFault peeks (advance=false) or takes the fault for the next message.
func (b *testBackend) nextFault(advance bool) fault {
	b.mu.Lock()
	defer b.mu.Unlock()
	f := b.fault(b.seq)
	if advance {
		b.seq++
	}
	return f
}

func (s *backendSession) store(data []byte) string {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	q := fmt.Sprintf("Q%05d", len(s.b.msgs)+1)
	_, tls := s.c.TLSConnectionState()
	s.b.msgs = append(s.b.msgs, stored{From: s.from, Rcpts: append([]string(nil), s.rcpts...), Data: string(data), Queue: q, TLS: tls})
	return q
}

func (s *backendSession) Data(r io.Reader) error {
	f := s.b.nextFault(true)
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	switch f {
	case faultTemp:
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
	case faultPerm:
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "content rejected"}
	case faultDropBefore:
		s.c.Conn().Close()
		return nil
	case faultDropAfter:
		s.store(data)
		s.c.Conn().Close()
		return nil
	case faultStall:
		s.store(data)
		time.Sleep(s.b.stall)
	}
	q := s.store(data)
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "Ok: queued as " + q}
}

func (s *backendSession) LMTPData(r io.Reader, st smtp.StatusCollector) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	q := s.store(data)
	for _, rc := range s.rcpts {
		if rc == s.b.lmtpRefuse {
			st.SetStatus(rc, &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 2, 2}, Message: "mailbox full"})
			continue
		}
		st.SetStatus(rc, &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "Ok: delivered " + q})
	}
	return nil
}

// proxyHarness is an mxguard proxy in front of a test backend.
type proxyHarness struct {
	addr string
	srv  *Server
	fwd  *Forwarder
	dir  string
}

func startProxy(t testing.TB, backendAddr string, configure func(*Options, *BackendOptions)) *proxyHarness {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	dir := t.TempDir()
	bo := testBackendOptions(backendAddr)
	bo.MaxIdle, bo.Logger = 4, logger
	bo.CommandTimeout, bo.DataTimeout = 5*time.Second, 5*time.Second
	o := testOptions(dir)
	o.MaxMessageBytes = 1 << 20
	o.Spool.Threshold = 4096
	o.Policy = policy.NewEngine(policy.Options{Domains: []string{"example.org"}})
	o.Logger = logger
	if configure != nil {
		configure(&o, &bo)
	}
	fwd := NewForwarder(bo)
	o.Backend = fwd
	srv := NewServer(o)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l, Listener{})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		fwd.Close()
	})
	return &proxyHarness{addr: l.Addr().String(), srv: srv, fwd: fwd, dir: dir}
}

// dialog is a raw SMTP client for scripted conversations.
type dialog struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

func dial(t testing.TB, addr string) *dialog {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	return &dialog{t: t, c: c, r: bufio.NewReader(c)}
}

// send writes raw bytes.
func (d *dialog) send(s string) {
	d.t.Helper()
	if _, err := io.WriteString(d.c, s); err != nil {
		d.t.Fatalf("write: %v", err)
	}
}

// reply reads one full reply and returns its last line.
func (d *dialog) reply() string {
	d.t.Helper()
	for {
		line, err := d.r.ReadString('\n')
		if err != nil {
			d.t.Fatalf("read reply: %v (got %q)", err, line)
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) < 4 || line[3] != '-' {
			return line
		}
	}
}

// expect sends a command line (unless empty) and checks the reply's prefix.
func (d *dialog) expect(cmd, want string) string {
	d.t.Helper()
	if cmd != "" {
		d.send(cmd + "\r\n")
	}
	got := d.reply()
	if !strings.HasPrefix(got, want) {
		d.t.Fatalf("after %q: got %q, want prefix %q", cmd, got, want)
	}
	return got
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dialFrom connects from a chosen loopback source address, so a test can
// play several clients.
func dialFrom(t testing.TB, src, addr string) *dialog {
	t.Helper()
	dl := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := dl.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	return &dialog{t: t, c: c, r: bufio.NewReader(c)}
}

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }
