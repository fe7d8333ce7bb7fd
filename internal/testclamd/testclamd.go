// Package testclamd starts a real, throw-away clamd (ClamAV's scanning
// daemon) for tests, with a signature database the package writes itself.
//
// What matters of clamd (its INSTREAM protocol, its replies, what it
// unpacks, its size limit, what a client sees when it is gone) can only be
// tested against the real daemon. This package runs the Debian
// "clamav-daemon" package's binary in a temporary folder, listening on a
// unix socket and a free loopback TCP port, with a database of two
// signatures: EICAR's test file and a string of mxguard's own (TestString).
// No signature is downloaded: freshclam never runs. Tests call t.Fatal,
// never t.Skip, when the binary is missing: no test skips itself on CI
// (test.sh installs the package).
//
// Loading even this database takes clamd a moment, so a test package
// shares one daemon (Shared, stopped by StopShared from TestMain); a test
// that stops and starts clamd has its own (Start).
package testclamd

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"mxguard/internal/testshared"
)

// Binary is the Debian package's daemon.
const Binary = "/usr/sbin/clamd"

// The signatures of the database, as clamd names them in its replies (an
// unsigned database's signatures get the ".UNOFFICIAL" suffix).
const (
	EICARName = "Eicar-Test-Signature.UNOFFICIAL"
	TestName  = "Mxguard-Test-Signature.UNOFFICIAL"
)

// TestString is the body of mxguard's own test signature: a message
// that holds it is infected as far as this clamd knows.
const TestString = "MXGUARD-TEST-MALWARE-SIGNATURE-5d41402abc4b2a76"

// EICAR is the EICAR anti-virus test file (eicar.org), which every
// scanner detects. It is assembled here so that this source file is not
// itself flagged by the scanners that read source trees.
func EICAR() []byte {
	return []byte(`X5O!P%@AP[4\PZX54(P^)7CC)7}$` + `EICAR-STANDARD-ANTIVIRUS` + `-TEST-FILE!$H+H*`)
}

// TB is the part of testing.TB the package uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	TempDir() string
	Cleanup(func())
}

var _ TB = (testing.TB)(nil)

// Options change the daemon's configuration.
type Options struct {
	// StreamMaxLength is clamd.conf's StreamMaxLength (default "30M"):
	// the longest stream INSTREAM accepts.
	StreamMaxLength string
}

// Server is one running clamd.
type Server struct {
	// Socket is its unix socket's path, and TCPAddr its loopback TCP
	// address (127.0.0.1:PORT).
	Socket, TCPAddr string
	dir             string

	mu  sync.Mutex
	cmd *exec.Cmd
	// exited is closed when cmd has exited (its Wait returned).
	exited chan struct{}
}

// Address is the unix socket as mxguard's config writes it
// (clamav.address).
func (s *Server) Address() string { return "unix:" + s.Socket }

// Start starts a clamd of the test's own; it is stopped when the test
// ends.
func Start(t TB, opts Options) *Server {
	t.Helper()
	s, err := New(t.TempDir(), opts)
	if err != nil {
		t.Fatalf("testclamd: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

var shared = testshared.Daemon[*Server]{
	Name:  "testclamd",
	Start: func(dir string) (*Server, error) { return New(dir, Options{}) },
	Stop:  (*Server).Stop,
}

// Shared is the test package's one clamd, started at its first call;
// TestMain stops it with StopShared.
func Shared(t TB) *Server {
	t.Helper()
	return shared.Get(t)
}

// StopShared stops the shared clamd, if one was started, and removes its
// folder. TestMain calls it after the tests.
func StopShared() { shared.Close() }

// New writes a database and a clamd.conf in dir and starts clamd on them;
// the caller stops it.
func New(dir string, opts Options) (*Server, error) {
	if _, err := os.Stat(Binary); err != nil {
		return nil, fmt.Errorf("%w (install the clamav-daemon package: ./test.sh does)", err)
	}
	if opts.StreamMaxLength == "" {
		opts.StreamMaxLength = "30M"
	}
	db, tmp := filepath.Join(dir, "db"), filepath.Join(dir, "tmp")
	for _, d := range []string{db, tmp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	// An .ndb line is Name:TargetType:Offset:HexBody; target 0 is any
	// file, offset * anywhere in it. clamd scans the raw message and
	// every part and archive member it unpacks.
	ndb := fmt.Sprintf("Eicar-Test-Signature:0:*:%s\nMxguard-Test-Signature:0:*:%s\n",
		hex.EncodeToString(EICAR()), hex.EncodeToString([]byte(TestString)))
	if err := os.WriteFile(filepath.Join(db, "mxguard-test.ndb"), []byte(ndb), 0o644); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &Server{Socket: filepath.Join(dir, "clamd.sock"), TCPAddr: "127.0.0.1:" + strconv.Itoa(port), dir: dir}
	conf := fmt.Sprintf("Foreground yes\nDatabaseDirectory %s\nTemporaryDirectory %s\nLocalSocket %s\nTCPSocket %d\nTCPAddr 127.0.0.1\n"+
		"StreamMaxLength %s\nLogFile %s\nLogTime yes\nMaxThreads 8\n",
		db, tmp, s.Socket, port, opts.StreamMaxLength, filepath.Join(dir, "clamd.log"))
	if err := os.WriteFile(filepath.Join(dir, "clamd.conf"), []byte(conf), 0o644); err != nil {
		return nil, err
	}
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

// start runs clamd and waits until it answers PING on both sockets.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = os.Remove(s.Socket)
	out, err := os.OpenFile(filepath.Join(s.dir, "clamd.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command(Binary, "--config-file="+filepath.Join(s.dir, "clamd.conf"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd = cmd
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			s.cmd = nil
			return fmt.Errorf("clamd exited:\n%s", s.logs())
		default:
		}
		if Ping("unix", s.Socket) == nil && Ping("tcp", s.TCPAddr) == nil {
			s.exited = exited
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	<-exited
	s.cmd = nil
	return fmt.Errorf("clamd did not answer PING within 60s:\n%s", s.logs())
}

func (s *Server) logs() []byte {
	a, _ := os.ReadFile(filepath.Join(s.dir, "clamd.out"))
	b, _ := os.ReadFile(filepath.Join(s.dir, "clamd.log"))
	return append(a, b...)
}

// Stop kills clamd (as a crash would). It may be called more than once.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Restart starts a stopped clamd again, on the same sockets.
func (s *Server) Restart(t TB) {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatalf("testclamd: %v", err)
	}
}

// Ping sends PING to the clamd at network, addr and reports whether it
// answered PONG.
func Ping(network, addr string) error {
	c, err := net.DialTimeout(network, addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("zPING\x00")); err != nil {
		return err
	}
	b, err := io.ReadAll(io.LimitReader(c, 64))
	if err != nil {
		return err
	}
	if got := string(bytes.TrimRight(b, "\x00\n")); got != "PONG" {
		return fmt.Errorf("PING answered %q", got)
	}
	return nil
}
