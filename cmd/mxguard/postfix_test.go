package main

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"mxguard/internal/sink"
	"mxguard/internal/testpostfix"
)

// TestPostfixBackendGetsClient puts a real Postfix behind mxguard,
// authorised for XCLIENT (or XFORWARD), and sends two messages from two
// different clients, carried by the PROXY protocol. Postfix's own log and
// Received header must name each original client, not mxguard.
func TestPostfixBackendGetsClient(t *testing.T) {
	for _, mode := range []string{"xclient", "xforward"} {
		t.Run(mode, func(t *testing.T) { testPostfixBackend(t, mode) })
	}
}

// postfixSink checks that a real Postfix can run here and starts the sink
// it is to relay to, with the sink's folder.
func postfixSink(t *testing.T) (*sink.Sink, string) {
	t.Helper()
	if err := testpostfix.Available(); err != nil {
		t.Fatalf("postfix is not usable here (.ci/run installs it): %v", err)
	}
	dir := t.TempDir()
	sk, err := sink.Start(sink.Options{Listen: "127.0.0.1:0", Dir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sk.Close() })
	return sk, dir
}

func testPostfixBackend(t *testing.T, mode string) {
	sk, final := postfixSink(t)
	opts := testpostfix.Options{Domains: []string{"example.org"}, RelayTo: sk.Addr()}
	if mode == "xclient" {
		opts.XClientHosts = "127.0.0.0/8"
	} else {
		opts.XForwardHosts = "127.0.0.0/8"
	}
	pf := testpostfix.Start(t, opts)
	mx, listen := startMxguard(t, `
hostname: mx.example.org
listen:
  - address: LISTEN
    proxy_protocol: true
    proxy_trusted: [127.0.0.1]
backend:
  address: `+pf.Addr+`
  forward_client: `+mode+`
domains: [example.org]
`)
	clients := []string{"203.0.113.7", "198.51.100.9"}
	var queued []string
	for i, ip := range clients {
		c, err := net.Dial("tcp", listen)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(30 * time.Second))
		h := proxyproto.HeaderProxyFromAddrs(2, &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000}, &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 25})
		if _, err := h.WriteTo(c); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(c)
		last := ""
		step := func(cmd string) {
			if cmd != "" {
				fmt.Fprintf(c, "%s\r\n", cmd)
			}
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					t.Fatalf("client %s after %q: %v", ip, cmd, err)
				}
				if line[3] == ' ' {
					last = strings.TrimSpace(line)
					return
				}
			}
		}
		step("")
		step(fmt.Sprintf("EHLO client%d.example.net", i))
		step("MAIL FROM:<sender@sender.test>")
		step("RCPT TO:<user@example.org>")
		step("DATA")
		fmt.Fprintf(c, "From: sender@sender.test\r\nSubject: via postfix %d\r\n\r\nhello\r\n.\r\n", i)
		step("")
		m := regexp.MustCompile(`^250 2\.0\.0 Ok: queued as ([0-9A-Za-z]+) \(session`).FindStringSubmatch(last)
		if m == nil {
			t.Fatalf("client %s: end of data got %q, want Postfix's queue id relayed\npostfix log:\n%s", ip, last, pf.Log())
		}
		queued = append(queued, m[1])
		step("QUIT")
		c.Close()
	}
	// Postfix relays to the sink asynchronously.
	deadline := time.Now().Add(30 * time.Second)
	for sk.Count() < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	files, _ := filepath.Glob(filepath.Join(final, "*.eml"))
	if len(files) != 2 {
		t.Fatalf("sink holds %d messages, want 2\npostfix log:\n%s", len(files), pf.Log())
	}
	if mode == "xforward" {
		// XFORWARD informs Postfix's logs (orig_client, and our
		// transaction id as orig_queue_id); its restrictions and Received
		// header keep mxguard's address. The connection is kept: both
		// messages travel on one.
		for i, q := range queued {
			pf.WaitLog(t, fmt.Sprintf("%s: client=unknown[127.0.0.1], orig_queue_id=", q), 10*time.Second)
			pf.WaitLog(t, fmt.Sprintf("orig_client=unknown[%s]", clients[i]), 10*time.Second)
		}
		// mxguard closes its kept connection when it stops.
		mx.cmd.Process.Signal(syscall.SIGTERM)
		mx.cmd.Wait()
		pf.WaitLog(t, "xforward=2 mail=2 rcpt=2 data=2", 10*time.Second)
		return
	}
	seen := map[string]bool{}
	for _, f := range files {
		data, _ := os.ReadFile(f)
		// Postfix's Received header comes first, ours below it.
		m := regexp.MustCompile(`Received: from (client\d\.example\.net) \(\S+ \[([0-9.]+)\]\)\r?\n\s+by backend\.test \(Postfix\)`).FindSubmatch(data)
		if m == nil {
			t.Fatalf("no Postfix Received header naming the client in:\n%s", data)
		}
		seen[string(m[2])] = true
		if !strings.Contains(string(data), "by mx.example.org (mxguard) with ESMTP") {
			t.Errorf("mxguard's Received header is missing:\n%s", data)
		}
	}
	for _, ip := range clients {
		if !seen[ip] {
			t.Errorf("Postfix never saw client %s (saw %v); XCLIENT did not hand it over", ip, seen)
		}
	}
	for i, q := range queued {
		pf.WaitLog(t, fmt.Sprintf("%s: client=unknown[%s]", q, clients[i]), 10*time.Second)
	}
}
