package proxy

import (
	"crypto/tls"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"mxguard/internal/smtpreply"
	"mxguard/internal/testcert"
)

// Contract 1 against a backend that breaks the protocol: a reply that does
// not answer the command it was read for is a broken connection, which is
// closed and answered 451, never relayed and never taken for a 250.

// rawReply reads one reply from mxguard and fails the test when a line is
// not CRLF-terminated, holds another CR, or is longer than 512 octets with
// its CRLF (RFC 5321 §4.5.3.1.5). It returns the last line without CRLF.
func rawReply(d *dialog) string {
	d.t.Helper()
	for {
		line, err := d.r.ReadString('\n')
		if err != nil {
			d.t.Fatalf("read reply: %v (got %q)", err, line)
		}
		if !strings.HasSuffix(line, "\r\n") || strings.Count(line, "\r") != 1 {
			d.t.Errorf("reply line %q has a bare CR or LF", line)
		}
		if len(line) > 512 {
			d.t.Errorf("reply line of %d octets, longer than 512: %q", len(line), line)
		}
		s := strings.TrimRight(line, "\r\n")
		if len(s) < 4 || s[3] != '-' {
			return s
		}
	}
}

// deliverRaw runs one transaction and returns mxguard's reply to the end
// of data, read by rawReply.
func deliverRaw(d *dialog, rcpts []string) string {
	d.t.Helper()
	d.expect("MAIL FROM:<a@sender.test>", "250 ")
	for _, r := range rcpts {
		d.expect("RCPT TO:<"+r+">", "250 ")
	}
	d.expect("DATA", "354 ")
	d.send(dotStuff(simpleMsg) + ".\r\n")
	return rawReply(d)
}

var sessionSuffix = regexp.MustCompile(` \(session [A-Z2-7]+\)$`)

// on returns a script that sends raw at verb on the first connection only,
// so that the next connection shows mxguard recovers with a fresh one.
func on(verb, raw string) func(step) string {
	return func(s step) string {
		if s.Conn == 1 && s.Verb == verb {
			return raw
		}
		return ""
	}
}

const (
	noPipelining = "250-script.test\r\n250-8BITMIME\r\n250 SIZE 10000000\r\n"
	failSetup    = "451 4.4.1 backend unavailable, try again later"
	failConn     = "451 4.4.2 backend connection failed, try again later"
)

func TestBackendOutOfStep(t *testing.T) {
	long := "250 2.0.0 Ok: queued as " + strings.Repeat("x", 600) + "\r\n"
	cases := []struct {
		name   string
		script func(step) string
		lmtp   bool
		rcpts  int    // recipients of the message (1 when 0)
		want   string // prefix of the client's reply
		stored bool   // the content reached the first connection
		opts   func(*BackendOptions)
		tls    bool
	}{
		{name: "DATA answered 250", script: on("DATA", "250 2.0.0 go ahead\r\n"), want: failConn},
		{name: "DATA answered 251", script: on("DATA", "251 2.1.5 will forward\r\n"), want: failConn},
		{name: "DATA answered 220", script: on("DATA", "220 script.test ESMTP\r\n"), want: failConn},
		{name: "DATA answered 250 without pipelining", script: func(s step) string {
			if s.Conn == 1 && s.Verb == "EHLO" {
				return noPipelining
			}
			return on("DATA", "250 2.0.0 go ahead\r\n")(s)
		}, want: failConn},
		{name: "extra line after EHLO", script: on("EHLO", "250-script.test\r\n250 PIPELINING\r\n250 2.0.0 extra\r\n"), want: failSetup},
		{name: "extra line after the greeting", script: on("GREETING", "220 script.test ESMTP\r\n250 2.0.0 extra\r\n"), want: failSetup},
		{name: "two replies to pipelined MAIL", script: on("MAIL", "250 2.1.0 Ok\r\n250 2.1.0 Ok\r\n"), want: failConn},
		{name: "two replies to MAIL without pipelining", script: func(s step) string {
			if s.Conn == 1 && s.Verb == "EHLO" {
				return noPipelining
			}
			return on("MAIL", "250 2.1.0 Ok\r\n250 2.1.0 Ok\r\n")(s)
		}, want: failConn},
		{name: "mixed codes in MAIL reply", script: on("MAIL", "451-4.3.0 not now\r\n250 2.1.0 Ok\r\n"), want: failConn},
		{name: "mixed codes in RCPT reply", script: on("RCPT", "451-4.3.0 not now\r\n250 2.1.5 Ok\r\n"), want: failConn},
		{name: "mixed codes in DATA reply", script: on("DATA", "451-4.3.0 not now\r\n354 go ahead\r\n"), want: failConn},
		{name: "mixed codes in final reply", script: on("END", "451-4.3.0 not stored\r\n250 2.0.0 Ok: queued as S1-1\r\n"), want: failConn, stored: true},
		{name: "extra line after final reply", script: on("END", "250 2.0.0 Ok: queued as S1-1\r\n250 2.0.0 extra\r\n"), want: failConn, stored: true},
		{name: "bare CR in final reply", script: on("END", "250 2.0.0 Ok\r451 4.3.0 not stored\r\n"), want: failConn, stored: true},
		{name: "bare CR in MAIL refusal", script: on("MAIL", "550 5.7.1 no\r250 2.1.0 Ok\r\n"), want: failConn},
		{name: "final reply longer than 512 octets", script: on("END", long), want: failConn, stored: true},
		{name: "final reply ends in bare LF", script: on("END", "250 2.0.0 Ok: queued as S1-1\n"), want: failConn, stored: true},
		{name: "final reply without separator", script: on("END", "250ok\r\n"), want: failConn, stored: true},
		{name: "final reply of four digits", script: on("END", "2500 ok\r\n"), want: failConn, stored: true},
		{name: "final reply not a code", script: on("END", "25O ok\r\n"), want: failConn, stored: true},
		{name: "final reply empty", script: on("END", "\r\n"), want: failConn, stored: true},
		{name: "final reply with NUL", script: on("END", "250 2.0.0 Ok\x00\r\n"), want: failConn, stored: true},
		{name: "final reply 354", script: on("END", "354 go on\r\n"), want: failConn, stored: true},
		{name: "final reply 221", script: on("END", "221 2.0.0 Bye\r\n"), want: failConn, stored: true},
		{name: "final reply 251", script: on("END", "251 2.0.0 Ok\r\n"), want: failConn, stored: true},
		{name: "early reply with the 354", script: func(s step) string {
			switch {
			case s.Conn == 1 && s.Verb == "DATA":
				return "354 go ahead\r\n250 2.0.0 early\r\n"
			case s.Conn == 1 && s.Verb == "END":
				return "451 4.3.0 not stored\r\n"
			}
			return ""
		}, want: failConn},
		{name: "early reply without pipelining", script: func(s step) string {
			switch {
			case s.Conn == 1 && s.Verb == "EHLO":
				return noPipelining
			case s.Conn == 1 && s.Verb == "DATA":
				return "354 go ahead\r\n250 2.0.0 early\r\n"
			case s.Conn == 1 && s.Verb == "END":
				return "451 4.3.0 not stored\r\n"
			}
			return ""
		}, want: failConn},
		{name: "extra line after XCLIENT", script: func(s step) string {
			switch {
			case s.Verb == "EHLO":
				return "250-script.test\r\n250-PIPELINING\r\n250 XCLIENT NAME ADDR PORT PROTO HELO\r\n"
			case s.Conn == 1 && s.Verb == "XCLIENT":
				return "220 script.test ESMTP\r\n250 2.0.0 extra\r\n"
			}
			return ""
		}, want: failConn},
		{name: "extra line after STARTTLS", tls: true, script: func(s step) string {
			switch {
			case s.Verb == "EHLO":
				return "250-script.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n"
			case s.Conn == 1 && s.Verb == "STARTTLS":
				return "220 2.0.0 Ready to start TLS\r\n250 2.0.0 injected\r\n"
			}
			return ""
		}, want: failSetup},
		{name: "LMTP extra reply after data", lmtp: true, rcpts: 2,
			script: on("END", "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n250 2.0.0 extra\r\n"), want: failConn, stored: true},
		{name: "LMTP mixed codes in a recipient's reply", lmtp: true, rcpts: 2,
			script: on("END", "451-4.2.0 not stored\r\n250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n"), want: failConn, stored: true},
		{name: "LMTP 354 as a recipient's reply", lmtp: true, rcpts: 2,
			script: on("END", "354 go on\r\n250 2.0.0 Ok\r\n"), want: failConn, stored: true},
		{name: "LMTP one reply short", lmtp: true, rcpts: 2,
			script: on("END", "250 2.0.0 Ok\r\n"), want: failConn, stored: true,
			opts: func(bo *BackendOptions) { bo.DataTimeout = 300 * time.Millisecond }},
		{name: "LMTP extra line after LHLO", lmtp: true, rcpts: 2,
			script: on("LHLO", "250-script.test\r\n250 PIPELINING\r\n250 2.0.0 extra\r\n"), want: failSetup},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var cert testcert.Pair
			if c.tls {
				cert = testcert.New(t, "backend.test")
			}
			sb := startScript(t, func(sb *scriptBackend) {
				sb.script, sb.lmtp = c.script, c.lmtp
				if c.tls {
					sb.tls = cert.Config
				}
			})
			px := startProxy(t, sb.addr, func(_ *Options, bo *BackendOptions) {
				bo.LMTP = c.lmtp
				if c.tls {
					bo.StartTLS = "required"
					bo.TLSConfig = &tls.Config{RootCAs: cert.Pool, ServerName: "backend.test", MinVersion: tls.VersionTLS12}
				}
				if c.opts != nil {
					c.opts(bo)
				}
			})
			rcpts := []string{"one@example.org", "two@example.org"}[:max(c.rcpts, 1)]
			got := deliverRaw(hello(t, px.addr), rcpts)
			if !strings.HasPrefix(got, c.want) || !sessionSuffix.MatchString(got) {
				t.Fatalf("client got %q, want %q ... (session ID)", got, c.want)
			}
			// The broken connection is closed, not kept for the next message.
			waitFor(t, "mxguard to close the broken backend connection", func() bool { return sb.conn(1).Closed })
			first := sb.conn(1)
			if stored := len(first.Stored) > 0 || first.Partial; stored != c.stored {
				t.Errorf("content reached the backend: %v, want %v (lines %q)", stored, c.stored, first.Lines)
			}
			// The next message, from a new client session, goes over a new
			// connection and gets that connection's own reply.
			got = deliverRaw(hello(t, px.addr), rcpts)
			want := "250 2.0.0 Ok: queued as S2-1 (session "
			if c.lmtp {
				want = "250 2.0.0 Ok: delivered S2-1 (session "
			}
			if !strings.HasPrefix(got, want) {
				t.Fatalf("next message: got %q, want %q", got, want)
			}
			if n := len(sb.conn(2).Stored); n != 1 {
				t.Fatalf("second connection stored %d messages, want 1", n)
			}
		})
	}
}

// TestBackendEarlyReplyDuringContent: a backend that answers while the
// content is still on its way, in a packet of its own, answers nothing we
// sent: read after the end of data it would be a 250 for content the
// backend has not taken whole. The content is large, so that by the time
// mxguard has written it all the early reply has long arrived.
func TestBackendEarlyReplyDuringContent(t *testing.T) {
	sb := startScript(t, func(sb *scriptBackend) {
		sb.script = on("CONTENT", "250 2.0.0 early\r\n")
	})
	px := startProxy(t, sb.addr, func(o *Options, _ *BackendOptions) { o.MaxMessageBytes = 64 << 20 })
	d := hello(t, px.addr)
	d.expect("MAIL FROM:<a@sender.test>", "250 ")
	d.expect("RCPT TO:<user@example.org>", "250 ")
	d.expect("DATA", "354 ")
	line := strings.Repeat("0123456789", 9) + "\r\n"
	d.send(dotStuff(simpleMsg) + strings.Repeat(line, (16<<20)/len(line)) + ".\r\n")
	if got := rawReply(d); !strings.HasPrefix(got, failConn) {
		t.Fatalf("client got %q, want %q", got, failConn)
	}
	waitFor(t, "mxguard to close the backend connection", func() bool { return sb.conn(1).Closed })
	if first := sb.conn(1); len(first.Stored) != 0 {
		t.Fatalf("the backend took the message whole: %d stored", len(first.Stored))
	}
}

// A line the backend sends unasked while its connection waits in the pool
// shifts every reply of the next transaction. mxguard must notice before
// any content goes out, drop the connection, and carry the message on a
// fresh one: nothing of it reached the first.
func TestBackendSpeaksWhileIdle(t *testing.T) {
	for _, pipelining := range []bool{true, false} {
		name := "pipelining"
		if !pipelining {
			name = "no pipelining"
		}
		t.Run(name, func(t *testing.T) {
			sb := startScript(t, func(sb *scriptBackend) {
				sb.script = func(s step) string {
					if s.Verb == "EHLO" && !pipelining {
						return noPipelining
					}
					return ""
				}
			})
			px := startProxy(t, sb.addr, nil)
			d := hello(t, px.addr)
			if got := deliverRaw(d, []string{"user@example.org"}); !strings.HasPrefix(got, "250 2.0.0 Ok: queued as S1-1 ") {
				t.Fatalf("first message: %q", got)
			}
			sb.inject(1, "250 2.0.0 unsolicited\r\n")
			got := deliverRaw(d, []string{"user@example.org"})
			if !strings.HasPrefix(got, "250 2.0.0 Ok: queued as S2-1 ") {
				t.Fatalf("second message: got %q, want the reply of a fresh connection", got)
			}
			waitFor(t, "mxguard to close the out-of-step connection", func() bool { return sb.conn(1).Closed })
			if first := sb.conn(1); len(first.Stored) != 1 || first.Partial {
				t.Fatalf("first connection stored %d messages (partial %v), want only the first", len(first.Stored), first.Partial)
			}
			if n := len(sb.conn(2).Stored); n != 1 {
				t.Fatalf("second connection stored %d messages, want 1", n)
			}
		})
	}
}

// A well-formed refusal is relayed, but never as a line longer than 512
// octets once mxguard adds its session id.
func TestBackendLongRefusalCapped(t *testing.T) {
	line := "550 5.7.1 " + strings.Repeat("r", 500-len("550 5.7.1 ")) + "END\r\n"
	if len(line) != 505 {
		t.Fatalf("line of %d octets", len(line))
	}
	for _, verb := range []string{"MAIL", "RCPT", "DATA", "END"} {
		t.Run(verb, func(t *testing.T) {
			sb := startScript(t, func(sb *scriptBackend) { sb.script = on(verb, line) })
			px := startProxy(t, sb.addr, nil)
			got := deliverRaw(hello(t, px.addr), []string{"user@example.org"})
			want := "550 5.7.1 rrrr"
			if verb == "RCPT" {
				// A refused recipient is a 451 for the whole message.
				want = "451 4.7.1 backend refused recipient <user@example.org>: 550 5.7.1 rrrr"
			}
			if !strings.HasPrefix(got, want) || !sessionSuffix.MatchString(got) {
				t.Fatalf("got %q, want %q... (session ID)", got, want)
			}
		})
	}
}

// A quote cut to fit 512 octets is cut between characters, and keeps the
// session id whole.
func TestWithSessionCutsAtCharacter(t *testing.T) {
	for _, enh := range []smtpreply.Enhanced{{5, 7, 1}, {4, 999, 999}} {
		line := smtpreply.Reply{Code: 451, Enhanced: enh, Text: strings.Repeat("é", 300)}.WithSession("SESSION").String() + "\r\n"
		if len(line) > 512 || len(line) < 510 || !utf8.ValidString(line) || !strings.HasSuffix(line, "é (session SESSION)\r\n") {
			t.Errorf("%v: %d octets, valid UTF-8 %v: %q", enh, len(line), utf8.ValidString(line), line)
		}
	}
}
