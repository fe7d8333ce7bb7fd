package proxy

import (
	"bytes"
	"crypto/tls"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"mxguard/internal/testcert"
)

// idleSessions is how many sessions TestIdleSessionHeap holds: enough that
// a few kilobytes per session stand well above the noise of the heap.
const idleSessions = 1000

// idleHeapPerSession is the most heap an idle session may hold, server
// and test client together (each side's socket, the session and its
// policy view). Two 4 KiB buffers alone, which an idle session has no use
// for, would take it over.
const idleHeapPerSession = 6 << 10

// stalledHeapPerSession is the most heap a session stalled in the middle
// of a message may hold: its content so far (a 16 KiB chunk of the
// spool's, in the spool's memory account), its transaction and what the
// checks keep, but no read buffer: that is message-sized (32 KiB) while
// content flows, and a stalled client must not keep one.
const stalledHeapPerSession = 28 << 10

// behindHeapPerSession is the most heap a session may hold that received
// a message and, in the same read, part of a command: that part in a
// command-sized buffer, its replies in the write buffer, and what an idle
// session holds; not the message-sized buffer the content was read with.
const behindHeapPerSession = 16 << 10

// openIdle opens a session with no buffered reader on the client side
// (the heap measured is the server's), reads the banner and, with ehlo,
// says EHLO and reads the reply to its end.
func openIdle(t *testing.T, addr string, ehlo bool) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	var buf [1024]byte
	readReply := func(code string) {
		var got []byte
		for {
			n, err := c.Read(buf[:])
			if err != nil {
				t.Fatalf("reading the %s reply: %v (got %q)", code, err, got)
			}
			got = append(got, buf[:n]...)
			// The last line of a reply has a space after its code.
			if i := bytes.LastIndex(got[:len(got)-1], []byte("\n")); bytes.HasSuffix(got, []byte("\r\n")) &&
				bytes.HasPrefix(got[i+1:], []byte(code+" ")) {
				return
			}
		}
	}
	readReply("220")
	if ehlo {
		if _, err := c.Write([]byte("EHLO client.example\r\n")); err != nil {
			t.Fatal(err)
		}
		readReply("250")
	}
	return c
}

// openInData opens a session that stalls in the middle of a message's
// content: EHLO, MAIL, RCPT, DATA, then the header and part of the body.
func openInData(t *testing.T, addr string) net.Conn {
	t.Helper()
	c := openIdle(t, addr, true)
	if _, err := c.Write([]byte("MAIL FROM:<a@sender.test>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")); err != nil {
		t.Fatal(err)
	}
	var got []byte
	var buf [512]byte
	for !bytes.Contains(got, []byte("354 ")) {
		n, err := c.Read(buf[:])
		if err != nil {
			t.Fatalf("waiting for 354: %v (got %q)", err, got)
		}
		got = append(got, buf[:n]...)
	}
	if _, err := c.Write([]byte("Subject: stalled\r\nFrom: <a@sender.test>\r\n\r\nthe first line of the bo")); err != nil {
		t.Fatal(err)
	}
	return c
}

// openBehindMessage opens a session that sends a message and, in the
// same write, behind its final dot, the start of a command it never
// finishes. Its replies stay unsent (the session reads on first, as
// pipelining has it) until that command is whole.
func openBehindMessage(t *testing.T, addr string) net.Conn {
	t.Helper()
	c := openInData(t, addr)
	if _, err := c.Write([]byte("dy\r\n.\r\nNO")); err != nil {
		t.Fatal(err)
	}
	return c
}

// settledHeap is heapInUse once it has stopped shrinking: the sessions
// of the test before, closed at its end, may still be ending, and what
// they free must not count against the next measurement.
func settledHeap() uint64 {
	h := heapInUse()
	for range 40 {
		time.Sleep(25 * time.Millisecond)
		next := heapInUse()
		if next+64<<10 >= h {
			return next
		}
		h = next
	}
	return h
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestIdleSessionHeap holds sessions idle after the banner and after EHLO
// and checks what each one holds on the heap: an idle session waits for
// its next command with no read or write buffer, since most of an MX's
// sessions are idle at any time.
func TestIdleSessionHeap(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ehlo   bool
		inData bool
		max    int64
		behind bool
	}{{"after banner", false, false, idleHeapPerSession, false}, {"after EHLO", true, false, idleHeapPerSession, false},
		{"in DATA", true, true, stalledHeapPerSession, false},
		// The rest of the read that ended the message stays buffered; it
		// must not keep the message-sized buffer.
		{"a command begun behind a message", true, false, behindHeapPerSession, true}} {
		t.Run(tc.name, func(t *testing.T) {
			be := startBackend(t, nil)
			h := startProxy(t, be.addr, func(o *Options, _ *BackendOptions) {
				o.MaxConnections, o.MaxConnectionsPerIP = 2*idleSessions, 2*idleSessions
			})
			// One session first, so that what every session shares (the
			// pools, the policy's state) is in the baseline.
			open := func() net.Conn {
				if tc.behind {
					return openBehindMessage(t, h.addr)
				}
				if tc.inData {
					return openInData(t, h.addr)
				}
				return openIdle(t, h.addr, tc.ehlo)
			}
			open().Close()
			before := settledHeap()
			conns := make([]net.Conn, 0, idleSessions)
			for range idleSessions {
				conns = append(conns, open())
			}
			for tc.behind && len(be.messages()) < idleSessions+1 {
				// Each message delivered: its session is done with it.
				time.Sleep(10 * time.Millisecond)
			}
			if tc.inData || tc.behind {
				// The last octets sent must have been read before the heap
				// is looked at.
				time.Sleep(200 * time.Millisecond)
			}
			after := heapInUse()
			per := (int64(after) - int64(before)) / idleSessions
			t.Logf("%d sessions idle %s: %d bytes of heap each", idleSessions, tc.name, per)
			if per > tc.max {
				t.Errorf("an idle session holds %d bytes of heap, want at most %d", per, tc.max)
			}
			for _, c := range conns {
				c.Close()
			}
		})
	}
}

// A session that pipelines STARTTLS after a message's final dot goes on
// over TLS with a command-sized read buffer, not the message-sized one
// the content was read with: a TLS session keeps its buffer for good, and
// a client must not be able to make it eight times bigger.
func TestStartTLSAfterMessageHeap(t *testing.T) {
	be := startBackend(t, nil)
	const n = 300
	cert := testcert.New(t, "mx.example.org")
	px := startProxy(t, be.addr, func(o *Options, _ *BackendOptions) {
		o.MaxConnections, o.MaxConnectionsPerIP = 4*n, 4*n
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go px.srv.Serve(l, Listener{TLS: cert.Config})
	addr := l.Addr().String()
	open := func(afterMessage bool) net.Conn {
		d := dial(t, addr)
		d.expect("", "220 ")
		d.expect("EHLO client.example.net", "250 ")
		if afterMessage {
			d.expect("MAIL FROM:<a@sender.test>", "250 ")
			d.expect("RCPT TO:<user@example.org>", "250 ")
			d.expect("DATA", "354 ")
			d.send(strings.ReplaceAll(simpleMsg, "\r\n.", "\r\n..") + ".\r\nSTARTTLS\r\n")
			d.expect("", "250 ")
			d.expect("", "220 ")
		} else {
			d.expect("STARTTLS", "220 ")
		}
		tc := tls.Client(d.c, &tls.Config{RootCAs: cert.Pool, ServerName: "mx.example.org", MinVersion: tls.VersionTLS12})
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		d.c, d.r = tc, newReader(tc)
		d.expect("EHLO client.example.net", "250 ")
		return tc
	}
	per := func(afterMessage bool) int64 {
		open(afterMessage).Close()
		before := settledHeap()
		conns := make([]net.Conn, 0, n)
		for range n {
			conns = append(conns, open(afterMessage))
		}
		after := heapInUse()
		for _, c := range conns {
			c.Close()
		}
		return (int64(after) - int64(before)) / n
	}
	// A TLS session begun at once holds 14-24 KB here (crypto/tls's
	// buffers, the session, a 4 KiB reader); with the 32 KiB reader kept,
	// 48 KB.
	got := per(true)
	t.Logf("heap per TLS session begun behind a message: %d bytes", got)
	if got > 36<<10 {
		t.Errorf("a TLS session begun behind a message holds %d bytes of heap, want at most 36 KiB", got)
	}
}
