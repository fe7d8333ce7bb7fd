package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
)

// rawBackend is a raw-TCP backend on loopback for the black-box tests of
// "mxguard serve": for each command it reads, it writes what its script
// gives, well-formed replies by default. Unlike the built-in sink it can
// break the protocol as a broken or hostile mail server could, and it
// records every command line it reads, as sent, for assertions on what
// mxguard tells the backend.
type rawBackend struct {
	addr string
	// script returns the raw bytes to answer verb (a command's verb,
	// "GREETING", or "END" for the end of data), or "" for the default.
	script func(verb string) string
	// ext are extra EHLO keywords of the default EHLO reply.
	ext []string

	mu     sync.Mutex
	lines  []string // command lines of every connection, without CRLF
	stored []string // contents received up to their end-of-data line
}

func startRawBackend(t *testing.T, configure func(*rawBackend)) *rawBackend {
	t.Helper()
	b := &rawBackend{script: func(string) string { return "" }}
	if configure != nil {
		configure(b)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.addr = l.Addr().String()
	var (
		wg    sync.WaitGroup
		cmu   sync.Mutex
		conns []net.Conn
	)
	t.Cleanup(func() {
		l.Close()
		cmu.Lock()
		for _, c := range conns {
			c.Close()
		}
		cmu.Unlock()
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
			cmu.Lock()
			conns = append(conns, c)
			cmu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				b.serve(c)
			}()
		}
	}()
	return b
}

func (b *rawBackend) defaultReply(verb string) string {
	switch verb {
	case "GREETING", "XCLIENT":
		return "220 raw.test ESMTP\r\n"
	case "EHLO":
		var s strings.Builder
		s.WriteString("250-raw.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n")
		for _, e := range b.ext {
			s.WriteString("250-" + e + "\r\n")
		}
		s.WriteString("250 SIZE 10000000\r\n")
		return s.String()
	case "MAIL", "RCPT", "RSET", "XFORWARD", "NOOP":
		return "250 2.0.0 Ok\r\n"
	case "DATA":
		return "354 End data with <CR><LF>.<CR><LF>\r\n"
	case "END":
		return "250 2.0.0 Ok: queued as RAW1\r\n"
	case "QUIT":
		return "221 2.0.0 Bye\r\n"
	}
	return "502 5.5.2 Error: command not recognized\r\n"
}

func (b *rawBackend) answer(w io.Writer, verb string) (string, error) {
	out := b.script(verb)
	if out == "" {
		out = b.defaultReply(verb)
	}
	_, err := io.WriteString(w, out)
	return out, err
}

func (b *rawBackend) serve(c net.Conn) {
	if _, err := b.answer(c, "GREETING"); err != nil {
		return
	}
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\r\n")
		b.mu.Lock()
		b.lines = append(b.lines, line)
		b.mu.Unlock()
		verb, _, _ := strings.Cut(line, " ")
		verb = strings.ToUpper(verb)
		out, err := b.answer(c, verb)
		if err != nil || verb == "QUIT" {
			return
		}
		if verb == "DATA" && strings.HasPrefix(out, "354") {
			var msg strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				msg.WriteString(l)
			}
			b.mu.Lock()
			b.stored = append(b.stored, msg.String())
			b.mu.Unlock()
			if _, err := b.answer(c, "END"); err != nil {
				return
			}
		}
	}
}

// seen returns the command lines and the messages received so far.
func (b *rawBackend) seen() (lines, stored []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.lines...), append([]string(nil), b.stored...)
}

// linesWith returns the command lines that start with verb.
func (b *rawBackend) linesWith(verb string) []string {
	lines, _ := b.seen()
	var out []string
	for _, l := range lines {
		if len(l) >= len(verb) && strings.EqualFold(l[:len(verb)], verb) {
			out = append(out, l)
		}
	}
	return out
}

// rawBackendMxguard starts mxguard for example.org in front of b, with
// backendKeys added to its backend section (each line indented by two
// spaces) and extra appended to its config.
func rawBackendMxguard(t *testing.T, b *rawBackend, backendKeys, extra string) (*daemon, string) {
	t.Helper()
	return startMxguard(t, fmt.Sprintf(`
hostname: mx.example.org
listen:
  - address: LISTEN
backend:
  address: %s
  command_timeout: 5s
  data_timeout: 5s
%sdomains: [example.org]
`, b.addr, backendKeys)+extra)
}
