package proxy

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
)

// scriptBackend is a raw-TCP backend on loopback that writes, for each
// command it reads, the bytes its script gives: well-formed replies by
// default, and whatever misbehaviour a test asks for. Unlike the go-smtp
// test backend it can break the protocol in any way a broken or hostile
// mail server could.
type scriptBackend struct {
	t    testing.TB
	addr string
	// script returns the raw bytes to send at step s, or "" for the
	// well-formed default (defaultReply).
	script func(s step) string
	lmtp   bool
	tls    *tls.Config // offered to a STARTTLS whose reply starts with 220

	mu    sync.Mutex
	conns []*scriptConn
}

// step is where a scripted backend is in its dialogue: connection Conn
// (from 1) in its Msg-th transaction (from 1, counted at MAIL), about to
// answer Verb: a command's verb, "GREETING", or "END" for the end of data.
type step struct {
	Conn, Msg int
	Verb      string
	Rcpts     int // recipients taken in this transaction so far
}

// scriptConn is what one connection to the scripted backend saw.
type scriptConn struct {
	c       net.Conn
	lines   []string // command lines, without CRLF
	stored  []string // message contents received up to their end-of-data line
	partial bool     // some content came, then the connection closed before its end
	closed  bool     // the peer closed the connection (or it broke)
}

// scriptState is a copy of a scriptConn for assertions.
type scriptState struct {
	Lines   []string
	Stored  []string
	Partial bool
	Closed  bool
}

func startScript(t testing.TB, configure func(*scriptBackend)) *scriptBackend {
	t.Helper()
	sb := &scriptBackend{t: t, script: func(step) string { return "" }}
	if configure != nil {
		configure(sb)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sb.addr = l.Addr().String()
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		sb.mu.Lock()
		for _, c := range sb.conns {
			c.c.Close()
		}
		sb.mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			sb.mu.Lock()
			sc := &scriptConn{c: c}
			sb.conns = append(sb.conns, sc)
			n := len(sb.conns)
			sb.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				sb.serve(sc, n)
			}()
		}
	}()
	return sb
}

// defaultReply is what a well-behaved backend answers at s.
func (sb *scriptBackend) defaultReply(s step) string {
	switch s.Verb {
	case "GREETING", "XCLIENT":
		return "220 script.test ESMTP\r\n"
	case "EHLO", "LHLO":
		return "250-script.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 10000000\r\n"
	case "MAIL":
		return "250 2.1.0 Ok\r\n"
	case "RCPT":
		return "250 2.1.5 Ok\r\n"
	case "DATA":
		return "354 End data with <CR><LF>.<CR><LF>\r\n"
	case "END":
		if sb.lmtp {
			// RFC 2033 §4.2: one reply per recipient.
			return strings.Repeat(fmt.Sprintf("250 2.0.0 Ok: delivered S%d-%d\r\n", s.Conn, s.Msg), s.Rcpts)
		}
		return fmt.Sprintf("250 2.0.0 Ok: queued as S%d-%d\r\n", s.Conn, s.Msg)
	case "RSET", "XFORWARD", "NOOP":
		return "250 2.0.0 Ok\r\n"
	case "STARTTLS":
		return "220 2.0.0 Ready to start TLS\r\n"
	case "QUIT":
		return "221 2.0.0 Bye\r\n"
	}
	return "502 5.5.2 Error: command not recognized\r\n"
}

func (sb *scriptBackend) answer(sc *scriptConn, s step) (string, error) {
	out := sb.script(s)
	if out == "" {
		out = sb.defaultReply(s)
	}
	_, err := io.WriteString(sc.c, out)
	return out, err
}

func (sb *scriptBackend) serve(sc *scriptConn, n int) {
	defer func() {
		sb.mu.Lock()
		sc.closed = true
		sb.mu.Unlock()
		sc.c.Close()
	}()
	st := step{Conn: n, Verb: "GREETING"}
	if _, err := sb.answer(sc, st); err != nil {
		return
	}
	r := bufio.NewReader(sc.c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\r\n")
		sb.mu.Lock()
		sc.lines = append(sc.lines, line)
		sb.mu.Unlock()
		verb, _, _ := strings.Cut(line, " ")
		st.Verb = strings.ToUpper(verb)
		switch st.Verb {
		case "MAIL":
			st.Msg++
			st.Rcpts = 0
		case "RSET":
			st.Rcpts = 0
		}
		out, err := sb.answer(sc, st)
		if err != nil {
			return
		}
		switch {
		case st.Verb == "RCPT" && strings.HasPrefix(out, "2"):
			st.Rcpts++
		case st.Verb == "QUIT":
			return
		case st.Verb == "STARTTLS" && sb.tls != nil && strings.HasPrefix(out, "220"):
			tc := tls.Server(sc.c, sb.tls)
			if tc.Handshake() != nil {
				return
			}
			sb.mu.Lock()
			sc.c = tc
			sb.mu.Unlock()
			r = bufio.NewReader(tc)
		case st.Verb == "DATA" && strings.HasPrefix(out, "354"):
			if !sb.content(sc, r, st) {
				return
			}
			st.Verb = "END"
			if _, err := sb.answer(sc, st); err != nil {
				return
			}
		}
	}
}

// content reads a message up to its end-of-data line and records it.
// After the first line it sends what the script gives for "CONTENT" (by
// default nothing): a reply in the middle of the content.
func (sb *scriptBackend) content(sc *scriptConn, r *bufio.Reader, st step) bool {
	var msg strings.Builder
	for first := true; ; first = false {
		if !first && msg.Len() > 0 && st.Verb != "CONTENT" {
			st.Verb = "CONTENT"
			if out := sb.script(st); out != "" {
				if _, err := io.WriteString(sc.c, out); err != nil {
					return false
				}
			}
		}
		line, err := r.ReadString('\n')
		if err != nil {
			sb.mu.Lock()
			sc.partial = msg.Len() > 0 || line != ""
			sb.mu.Unlock()
			return false
		}
		if line == ".\r\n" {
			sb.mu.Lock()
			sc.stored = append(sc.stored, msg.String())
			sb.mu.Unlock()
			return true
		}
		msg.WriteString(line)
	}
}

// conn returns what connection n (from 1) has seen so far; the zero state
// when it was never opened.
func (sb *scriptBackend) conn(n int) scriptState {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if n > len(sb.conns) {
		return scriptState{}
	}
	c := sb.conns[n-1]
	return scriptState{Lines: append([]string(nil), c.lines...), Stored: append([]string(nil), c.stored...), Partial: c.partial, Closed: c.closed}
}

// inject writes raw bytes on connection n out of turn, as a backend that
// speaks unasked.
func (sb *scriptBackend) inject(n int, raw string) {
	sb.t.Helper()
	sb.mu.Lock()
	c := sb.conns[n-1].c
	sb.mu.Unlock()
	if _, err := io.WriteString(c, raw); err != nil {
		sb.t.Fatalf("inject: %v", err)
	}
}
