// Package testredis starts a real, throw-away redis-server for tests.
//
// mxguard's shared state lives in Redis when several instances serve one
// site; what matters (Lua scripts, TTLs, the server's clock, what happens
// when it goes away) can only be tested against the real server. This
// package runs the Debian "redis-server" package's binary on a free
// loopback port, with its working directory in a temporary folder and no
// persistence, so that tests never touch the system instance. Tests call
// t.Fatal, never t.Skip, when it is missing: no test skips itself on CI
// (test.sh installs the package).
package testredis

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Binary is the Debian package's server.
const Binary = "/usr/bin/redis-server"

// TB is the part of testing.TB the package uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	TempDir() string
	Cleanup(func())
}

var _ TB = (testing.TB)(nil)

// Server is one running redis-server.
type Server struct {
	// Addr is its address, 127.0.0.1:PORT: the TLS port for a server
	// started with StartTLS, which has no plain one.
	Addr string
	dir  string
	port int
	tls  *TLS

	mu  sync.Mutex
	cmd *exec.Cmd
}

// TLS are the files of a server that speaks TLS only (redis-server's
// --tls-port; Debian's build has TLS). Clients are not asked for a
// certificate (--tls-auth-clients no): the server's certificate is what
// mxguard checks.
type TLS struct {
	// CertFile and KeyFile are the server's certificate and key (PEM).
	CertFile, KeyFile string
	// CAFile is the CA redis-server would check client certificates
	// against; it requires one even when it asks for none.
	CAFile string
	// ClientConfig is how Ping and the readiness check reach the server:
	// a configuration that trusts CertFile.
	ClientConfig *tls.Config
}

// Start starts a redis-server on a free loopback port; it is stopped when
// the test ends.
func Start(t TB) *Server {
	t.Helper()
	return start(t, nil)
}

// StartTLS is Start for a server that speaks TLS only, with the
// certificate in o, on its Addr.
func StartTLS(t TB, o TLS) *Server {
	t.Helper()
	return start(t, &o)
}

func start(t TB, o *TLS) *Server {
	t.Helper()
	if _, err := os.Stat(Binary); err != nil {
		t.Fatalf("testredis: %v (install the redis-server package: ./test.sh does)", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testredis: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(port), dir: t.TempDir(), port: port, tls: o}
	if err := s.start(); err != nil {
		t.Fatalf("testredis: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// start runs the server and waits until it answers PING.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	log, err := os.OpenFile(filepath.Join(s.dir, "redis.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	plain := strconv.Itoa(s.port)
	if s.tls != nil {
		plain = "0" // TLS only
	}
	args := []string{"--port", plain, "--bind", "127.0.0.1", "--dir", s.dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes"}
	if s.tls != nil {
		args = append(args, "--tls-port", strconv.Itoa(s.port),
			"--tls-cert-file", s.tls.CertFile, "--tls-key-file", s.tls.KeyFile,
			"--tls-ca-cert-file", s.tls.CAFile, "--tls-auth-clients", "no")
	}
	cmd := exec.Command(Binary, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd = cmd
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if err := s.Ping(); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	s.cmd = nil
	out, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	return fmt.Errorf("redis-server on %s did not answer PING within 10s:\n%s", s.Addr, out)
}

// Stop kills the server (as a crash would: nothing is saved). It may be
// called more than once.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart starts a stopped server again on the same address, empty.
func (s *Server) Restart(t TB) {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatalf("testredis: %v", err)
	}
}

// Ping sends PING to the server, over TLS when it speaks TLS.
func (s *Server) Ping() error {
	if s.tls == nil {
		return Ping(s.Addr)
	}
	d := &net.Dialer{Timeout: time.Second}
	c, err := tls.DialWithDialer(d, "tcp", s.Addr, s.tls.ClientConfig)
	if err != nil {
		return err
	}
	return ping(c)
}

// Ping sends PING to the server at addr and reports whether it answered.
func Ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	return ping(c)
}

// ping sends PING on c, which it closes.
func ping(c net.Conn) error {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}
