package rcpt

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Behaviours of the test backend at RCPT.
const (
	behaveNormal   int32 = iota
	behaveStall          // block until released
	behaveDrop           // close the connection without a reply
	behaveDropOnce       // drop, then go back to normal
)

// testBackend is a real go-smtp server on loopback, standing in for the
// mail server behind mxguard. Its Session.Rcpt accepts the local parts in
// known, refuses "busy" with 451 4.3.0, "full" with 552 5.2.2, "blocked"
// with 554 5.7.1, and everything else with 550 5.1.1, as Postfix words it.
type testBackend struct {
	t      testing.TB
	srv    *smtp.Server
	addr   string // "host:port" or "unix:/path"
	known  map[string]bool
	behave atomic.Int32

	release chan struct{} // closed to free stalled RCPTs
	stalled chan string   // receives the address of each stalled RCPT

	mu    sync.Mutex
	rcpts []string   // every RCPT TO argument, in order
	conns []net.Conn // every accepted connection
	wire  lockedBuffer
}

// startBackend starts an SMTP backend on 127.0.0.1, or an LMTP one on a
// Unix socket.
func startBackend(t testing.TB, lmtp bool) *testBackend {
	t.Helper()
	b := &testBackend{
		t:       t,
		known:   map[string]bool{"alice": true, "bob": true, "postmaster": true},
		release: make(chan struct{}),
		stalled: make(chan string, 100),
	}
	b.srv = smtp.NewServer(b)
	b.srv.Domain = "backend.test"
	b.srv.LMTP = lmtp
	b.srv.Debug = &b.wire
	var l net.Listener
	var err error
	if lmtp {
		// t.TempDir can exceed the 108-byte limit of a socket path.
		dir, derr := os.MkdirTemp("", "rcpt")
		if derr != nil {
			t.Fatal(derr)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		path := filepath.Join(dir, "lmtp.sock")
		l, err = net.Listen("unix", path)
		b.addr = "unix:" + path
	} else {
		l, err = net.Listen("tcp", "127.0.0.1:0")
		if l != nil {
			b.addr = l.Addr().String()
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	go b.srv.Serve(l)
	t.Cleanup(func() {
		b.releaseStalls()
		b.srv.Close()
		for _, cmd := range b.commands() {
			if cmd == "DATA" || cmd == "BDAT" {
				t.Errorf("the probe sent %s; it must never deliver anything", cmd)
			}
		}
	})
	return b
}

// releaseStalls frees every stalled and future RCPT.
func (b *testBackend) releaseStalls() {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-b.release:
	default:
		close(b.release)
	}
}

// NewSession implements smtp.Backend.
func (b *testBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	// A later EHLO (go-smtp's client sends one after RSET) resets the
	// session rather than making a new one, so this counts connections.
	b.conns = append(b.conns, c.Conn())
	return &testSession{b: b, c: c}, nil
}

// rcptCount is how many RCPT commands the backend has seen.
func (b *testBackend) rcptCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.rcpts)
}

// connCount is how many connections the backend has accepted.
func (b *testBackend) connCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.conns)
}

// dropAll closes every connection from the server side without a reply,
// as a backend restart would.
func (b *testBackend) dropAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.conns {
		c.Close()
	}
}

// commands returns the verbs the clients sent, in order, from the wire
// transcript (replies start with a digit and are left out).
func (b *testBackend) commands() []string {
	var verbs []string
	for line := range strings.SplitSeq(b.wire.String(), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] >= '0' && line[0] <= '9' {
			continue
		}
		verb, _, _ := strings.Cut(line, " ")
		verbs = append(verbs, strings.ToUpper(verb))
	}
	return verbs
}

type testSession struct {
	b *testBackend
	c *smtp.Conn
}

func (s *testSession) Mail(from string, _ *smtp.MailOptions) error {
	if from != "" {
		return &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 1, 7}, Message: "probe with a non-null sender"}
	}
	return nil
}

func (s *testSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	b := s.b
	b.mu.Lock()
	b.rcpts = append(b.rcpts, to)
	b.mu.Unlock()

	switch b.behave.Load() {
	case behaveStall:
		b.stalled <- to
		<-b.release
	case behaveDropOnce:
		b.behave.Store(behaveNormal)
		fallthrough
	case behaveDrop:
		s.c.Conn().Close()
		return errors.New("dropped")
	}

	local, _, _ := strings.Cut(strings.ToLower(to), "@")
	switch {
	case b.known[local]:
		return nil
	case local == "busy":
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Try again later"}
	case local == "full":
		return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 2, 2}, Message: "Mailbox full"}
	case local == "blocked":
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Access denied"}
	default:
		return &smtp.SMTPError{
			Code:         550,
			EnhancedCode: smtp.EnhancedCode{5, 1, 1},
			Message:      "<" + to + ">: Recipient address rejected: User unknown",
		}
	}
}

func (s *testSession) Data(io.Reader) error {
	return errors.New("no DATA expected")
}

func (s *testSession) Reset()        {}
func (s *testSession) Logout() error { return nil }

// lockedBuffer is a goroutine-safe bytes.Buffer for the server's Debug.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// newVerifier returns a Verifier for o, closed at the end of the test.
func newVerifier(t testing.TB, o Options) *Verifier {
	t.Helper()
	v, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

// writeFile writes text to name in a temporary directory and returns its
// path.
func writeFile(t testing.TB, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// eventually polls cond until it holds or a second has passed.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
