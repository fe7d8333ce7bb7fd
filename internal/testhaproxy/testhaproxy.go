// Package testhaproxy starts a real, throw-away HAProxy for tests.
//
// A fleet of mxguard instances stands behind a load balancer that passes
// each client's address with the PROXY protocol; HAProxy is the one sites
// use, and what it sends (PROXY v2 with send-proxy-v2, health checks,
// round robin) is what the fleet tests must meet. This package runs the
// Debian "haproxy" package's binary in the foreground with a
// configuration in a temporary folder, listening on a free loopback port.
// Tests call t.Fatal, never t.Skip, when it is missing (test.sh installs
// the package).
package testhaproxy

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Binary is the Debian package's HAProxy.
const Binary = "/usr/sbin/haproxy"

// TB is the part of testing.TB the package uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	TempDir() string
	Cleanup(func())
}

var _ TB = (testing.TB)(nil)

// Options configure the balancer.
type Options struct {
	// Backends are the servers' addresses (127.0.0.1:PORT), balanced
	// round robin.
	Backends []string
	// ProxyV2 sends the PROXY protocol v2 header to the servers
	// (send-proxy-v2).
	ProxyV2 bool
}

// Proxy is one running HAProxy.
type Proxy struct {
	// Addr is where clients connect, 127.0.0.1:PORT.
	Addr string
	cmd  *exec.Cmd
}

// Start starts HAProxy in front of o.Backends; it is stopped when the test
// ends.
func Start(t TB, o Options) *Proxy {
	t.Helper()
	if _, err := os.Stat(Binary); err != nil {
		t.Fatalf("testhaproxy: %v (install the haproxy package: ./test.sh does)", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testhaproxy: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "global\n  maxconn 4096\n\ndefaults\n  mode tcp\n  timeout connect 2s\n  timeout client 5m\n  timeout server 5m\n\n")
	fmt.Fprintf(&b, "frontend smtp\n  bind %s\n  default_backend mx\n\nbackend mx\n  balance roundrobin\n", addr)
	for i, s := range o.Backends {
		fmt.Fprintf(&b, "  server mx%d %s", i, s)
		if o.ProxyV2 {
			b.WriteString(" send-proxy-v2")
		}
		b.WriteString("\n")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatalf("testhaproxy: %v", err)
	}
	log, err := os.Create(filepath.Join(dir, "haproxy.log"))
	if err != nil {
		t.Fatalf("testhaproxy: %v", err)
	}
	// -db: foreground, no daemon; -f: our configuration only.
	cmd := exec.Command(Binary, "-db", "-f", cfg)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		t.Fatalf("testhaproxy: %v", err)
	}
	p := &Proxy{Addr: addr, cmd: cmd}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		log.Close()
	})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return p
		}
		time.Sleep(20 * time.Millisecond)
	}
	out, _ := os.ReadFile(filepath.Join(dir, "haproxy.log"))
	t.Fatalf("testhaproxy: not listening on %s within 10s:\n%s", addr, out)
	return nil
}

// Port returns the port of an address "host:port", for tests that need it.
func Port(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}
