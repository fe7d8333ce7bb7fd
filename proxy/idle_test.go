package proxy

import (
	"bytes"
	"net"
	"runtime"
	"testing"
	"time"
)

// idleSessions is how many sessions TestIdleSessionHeap holds: enough that
// a few kilobytes per session stand well above the noise of the heap.
const idleSessions = 1000

// idleHeapPerSession is the most heap an idle session may hold, server
// and test client together (each side's socket, the session and its
// policy view). Two 4 KiB buffers alone, which an idle session has no use
// for, would take it over.
const idleHeapPerSession = 6 << 10

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
		name string
		ehlo bool
	}{{"after banner", false}, {"after EHLO", true}} {
		t.Run(tc.name, func(t *testing.T) {
			be := startBackend(t, nil)
			h := startProxy(t, be.addr, func(o *Options, _ *BackendOptions) {
				o.MaxConnections, o.MaxConnectionsPerIP = 2*idleSessions, 2*idleSessions
			})
			// One session first, so that what every session shares (the
			// pools, the policy's state) is in the baseline.
			openIdle(t, h.addr, tc.ehlo).Close()
			before := heapInUse()
			conns := make([]net.Conn, 0, idleSessions)
			for range idleSessions {
				conns = append(conns, openIdle(t, h.addr, tc.ehlo))
			}
			after := heapInUse()
			per := (int64(after) - int64(before)) / idleSessions
			t.Logf("%d sessions idle %s: %d bytes of heap each", idleSessions, tc.name, per)
			if per > idleHeapPerSession {
				t.Errorf("an idle session holds %d bytes of heap, want at most %d", per, idleHeapPerSession)
			}
			for _, c := range conns {
				c.Close()
			}
		})
	}
}
