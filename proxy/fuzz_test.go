package proxy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"mxguard/internal/smtpreply"
	"mxguard/policy"
)

// checkingDeliverer stands where the backend forwarder stands and holds the
// line the backend relies on: every message it is handed is canonical.
type checkingDeliverer struct {
	t testing.TB
	n int
}

func (c *checkingDeliverer) Deliver(_ context.Context, tx *policy.Transaction, msg *Message) Delivery {
	c.n++
	r, err := msg.Reader()
	if err != nil {
		c.t.Fatal(err)
	}
	data, _ := io.ReadAll(r)
	for i, b := range data {
		if b == '\r' && (i+1 == len(data) || data[i+1] != '\n') || b == '\n' && (i == 0 || data[i-1] != '\r') {
			c.t.Fatalf("message with a bare line ending handed to the backend: %q", data)
		}
	}
	if tx.Protocol.Ambiguous() {
		c.t.Fatalf("ambiguous message accepted: %+v", tx.Protocol)
	}
	for _, rc := range tx.Rcpts {
		if policy.Domain(rc) != "example.org" && !strings.EqualFold(rc, "postmaster") {
			c.t.Fatalf("relayed to %q", rc)
		}
	}
	return Delivery{Reply: smtpreply.Reply{Code: 250, Enhanced: smtpreply.Enhanced{2, 0, 0}, Text: "Ok"}}
}

// FuzzSession feeds arbitrary client bytes to a session. It must never
// panic, never hang past its deadlines, and never hand the backend an
// ambiguous message or a foreign recipient.
func FuzzSession(f *testing.F) {
	seeds := []string{
		"EHLO a.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@example.org>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n",
		"EHLO a.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@example.org>\r\nDATA\r\nhi\n.\nMAIL FROM:<x@y>\r\n.\r\n",
		"EHLO a.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@example.org>\r\nBDAT 4 LAST\r\nhi\r\n",
		"HELO a\r\nMAIL FROM:<>\r\nRCPT TO:<\"q u\"@example.org>\r\nRCPT TO:<x@evil.test>\r\nDATA\r\n..\r\n.\r\n",
		"EHLO a\nMAIL FROM:<a@b> SIZE=1 BODY=8BITMIME SMTPUTF8\r\nRCPT TO:<@r1,@r2:u@example.org>\r\nBDAT 0\r\nBDAT 2 LAST\r\n\r\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		del := &checkingDeliverer{t: t}
		o := testOptions(t.TempDir())
		o.MaxMessageBytes, o.MaxRecipients = 4096, 5
		o.CommandTimeout, o.DataTimeout = time.Second, time.Second
		o.Spool.Threshold = 64
		o.Policy = policy.NewEngine(policy.Options{Domains: []string{"example.org"}})
		o.Backend = del
		srv := NewServer(o)
		client, server := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			newSession(srv, srv.cur.Load(), server, Listener{}, netip.MustParseAddrPort("192.0.2.7:4000")).serve()
			server.Close()
		}()
		go io.Copy(io.Discard, bufio.NewReader(client))
		_ = client.SetWriteDeadline(time.Now().Add(3 * time.Second))
		_, _ = io.Copy(client, bytes.NewReader(in))
		client.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("session did not end after the client went away")
		}
	})
}

// FuzzBackendReply reads arbitrary backend replies: no panic, and a parsed
// reply always has a valid code and an enhanced code of the same class, and
// came from well-formed lines only: each CRLF-terminated, at most 512
// octets, all with the reply's code, with no control character in the text.
func FuzzBackendReply(f *testing.F) {
	for _, s := range []string{"250 2.0.0 Ok: queued as X\r\n", "250-a\r\n250-XCLIENT ADDR\r\n250 SIZE\r\n", "451 5.0.0 mismatched\r\n", "99\r\n", "250-\n250 x\r\n",
		"451-4.3.0 wait\r\n250 2.0.0 Ok\r\n", "250 2.0.0 Ok\rX\r\n", "250\r\n", "250 " + strings.Repeat("x", 600) + "\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		c1, c2 := net.Pipe()
		defer c1.Close()
		go func() { c2.Write(in); c2.Close() }()
		b := &bconn{c: c1, r: bufio.NewReader(c1), w: bufio.NewWriter(c1), opts: &BackendOptions{}}
		r, lines, err := b.readLines(time.Second)
		if err != nil {
			return
		}
		if r.Code < 200 || r.Code > 599 || len(lines) == 0 {
			t.Fatalf("bad reply parsed: %+v", r)
		}
		if r.Enhanced[0] != 0 && r.Enhanced[0] != r.Code/100 {
			t.Fatalf("enhanced class %d under code %d", r.Enhanced[0], r.Code)
		}
		raw := bytes.SplitAfter(in, []byte("\n"))
		if len(raw) < len(lines) {
			t.Fatalf("%d lines parsed from %d", len(lines), len(raw))
		}
		for _, l := range raw[:len(lines)] {
			if len(l) > 512 || !bytes.HasSuffix(l, []byte("\r\n")) || bytes.IndexByte(l, '\r') != len(l)-2 || string(l[:3]) != fmt.Sprint(r.Code) {
				t.Fatalf("malformed line %q accepted in a %d reply", l, r.Code)
			}
		}
		for _, text := range append(lines, r.Text) {
			if strings.ContainsFunc(text, func(c rune) bool { return c < ' ' && c != '\t' || c == 0x7f }) {
				t.Fatalf("control character accepted in %q", text)
			}
		}
	})
}

// FuzzParsePath: no panic, and an accepted path is within RFC 5321 limits
// and free of anything that could break a header or a command line.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"<a@b.test>", "<>", "<@x,@y:a@b>", `<"a b"@c.test> SIZE=5`, "<a@[1.2.3.4]>", "<a@b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		addr, _, err := parsePath(s)
		if err != nil {
			return
		}
		if len(addr) > maxPath || strings.ContainsAny(addr, "\r\n\x00<>") && !strings.HasPrefix(addr, "\"") {
			t.Fatalf("accepted %q from %q", addr, s)
		}
		if strings.ContainsAny(addr, "\r\n\x00") {
			t.Fatalf("control character accepted in %q", addr)
		}
	})
}
