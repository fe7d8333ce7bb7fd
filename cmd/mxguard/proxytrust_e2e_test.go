package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestProxyProtocolNeedsTrustedPeers runs "mxguard serve" with a listener
// that takes a PROXY protocol header but names no proxy_trusted peers:
// any peer could then claim any client address, so it is a configuration
// error, exit 2 with the position of the listener's proxy_protocol key,
// naming proxy_trusted, before anything listens. The same listener with
// proxy_trusted serves.
func TestProxyProtocolNeedsTrustedPeers(t *testing.T) {
	listen := freePort(t)
	path := filepath.Join(t.TempDir(), "mxguard.yaml")
	cfg := "hostname: mx.example.org\nlisten:\n  - address: " + listen + "\n    proxy_protocol: true\nbackend:\n  address: 127.0.0.1:2526\ndomains: [example.org]\n"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runBinary(t, "serve", "--config", path)
	if code != 2 {
		t.Fatalf("exit %d, want 2:\n%s%s", code, stdout, stderr)
	}
	if want := path + ":4:21: listen[0].proxy_trusted: "; !strings.HasPrefix(stderr, want) || !strings.Contains(stderr, "0.0.0.0/0 and ::/0 for any peer") {
		t.Errorf("stderr %q, want it to start with %q and say how to trust any peer", stderr, want)
	}
	if c, err := net.DialTimeout("tcp", listen, time.Second); err == nil {
		c.Close()
		t.Errorf("something listens on %s after a refused configuration", listen)
	}

	d, _ := startMxguard(t, "hostname: mx.example.org\nlisten:\n  - address: LISTEN\n    proxy_protocol: true\n    proxy_trusted: [127.0.0.1/32]\nbackend:\n  address: 127.0.0.1:2526\ndomains: [example.org]\n")
	d.stop()
	if code := d.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("with proxy_trusted, serve exited %d after SIGTERM, want 0", code)
	}
}
