package testhaproxy

import (
	"bufio"
	"bytes"
	"net"
	"slices"
	"testing"
	"time"
)

// TestRoundRobinWithProxyV2: connections reach every server, each
// preceded by a PROXY v2 header. (Round robin's order is not exact from
// one connection to the next: tests tell the servers apart by what they
// answer, not by the order.)
func TestRoundRobinWithProxyV2(t *testing.T) {
	got := make(chan string, 4)
	var backends []string
	for i := range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		backends = append(backends, l.Addr().String())
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				sig := make([]byte, 12)
				if _, err := bufio.NewReader(c).Read(sig); err == nil && bytes.Equal(sig, []byte("\r\n\r\n\x00\r\nQUIT\n")) {
					got <- string(rune('0' + i))
				} else {
					got <- "no PROXY v2 header"
				}
				c.Close()
			}
		}()
	}
	p := Start(t, Options{Backends: backends, ProxyV2: true})
	var order []string
	for range 6 {
		c, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		// HAProxy connects to a server once the client has spoken or
		// at once: write a byte so that it must.
		_, _ = c.Write([]byte("x"))
		select {
		case s := <-got:
			order = append(order, s)
		case <-time.After(5 * time.Second):
			t.Fatal("no connection reached a server")
		}
		c.Close()
	}
	if !slices.Contains(order, "0") || !slices.Contains(order, "1") || slices.ContainsFunc(order, func(s string) bool { return len(s) != 1 }) {
		t.Fatalf("servers reached: %q, want both, each with a PROXY v2 header", order)
	}
}
