package proxy

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"mxguard/internal/state"
)

const simpleMsg = "From: a@sender.test\r\nTo: user@example.org\r\nSubject: hi\r\n\r\nhello\r\n.leading dot\r\n"

// sendMail runs one transaction on an open dialog and returns the reply to
// the end of data.
func (d *dialog) sendMail(from string, rcpts []string, body string) string {
	d.t.Helper()
	d.expect("MAIL FROM:<"+from+">", "250 ")
	for _, r := range rcpts {
		d.expect("RCPT TO:<"+r+">", "250 ")
	}
	d.expect("DATA", "354 ")
	d.send(dotStuff(body) + ".\r\n")
	return d.reply()
}

// dotStuff doubles leading dots as RFC 5321 §4.5.2 asks of a client.
func dotStuff(body string) string {
	if strings.HasPrefix(body, ".") {
		body = "." + body
	}
	return strings.ReplaceAll(body, "\r\n.", "\r\n..")
}

func hello(t *testing.T, addr string) *dialog {
	t.Helper()
	d := dial(t, addr)
	d.expect("", "220 mx.example.org ")
	d.expect("EHLO client.example.net", "250 ")
	return d
}

func TestRelayCarriesBackendQueueID(t *testing.T) {
	be := startBackend(t, nil)
	px := startProxy(t, be.addr, nil)
	d := hello(t, px.addr)
	got := d.sendMail("a@sender.test", []string{"user@example.org"}, simpleMsg)
	m := regexp.MustCompile(`^250 2\.0\.0 Ok: queued as (Q\d+) \(session [A-Z2-7]+\)$`).FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("reply %q does not relay the backend's queue id", got)
	}
	msgs := be.messages()
	if len(msgs) != 1 || msgs[0].Queue != m[1] {
		t.Fatalf("backend holds %+v, want one message %s", msgs, m[1])
	}
	data := msgs[0].Data
	if !strings.HasPrefix(data, "Received: from client.example.net ([127.0.0.1])\r\n\tby mx.example.org (mxguard) with ESMTP id ") {
		t.Errorf("Received header missing or malformed:\n%s", data)
	}
	if !strings.Contains(data, "\tfor <user@example.org>;") {
		t.Errorf("Received header lacks the for clause:\n%s", data)
	}
	if !strings.HasSuffix(data, simpleMsg) {
		t.Errorf("content changed on the way: got\n%q\nwant suffix\n%q", data, simpleMsg)
	}
	if msgs[0].From != "a@sender.test" || len(msgs[0].Rcpts) != 1 || msgs[0].Rcpts[0] != "user@example.org" {
		t.Errorf("envelope: %+v", msgs[0])
	}
	// A second message on the same session reuses the backend connection.
	d.sendMail("b@sender.test", []string{"user@example.org"}, simpleMsg)
	d.expect("QUIT", "221 2.0.0")
	if be.connections() != 1 {
		t.Errorf("backend saw %d connections for two messages, want 1 (connection reuse)", be.connections())
	}
}

func TestRefusals(t *testing.T) {
	be := startBackend(t, nil)
	px := startProxy(t, be.addr, func(o *Options, _ *BackendOptions) { o.MaxRecipients = 2 })
	d := hello(t, px.addr)
	cases := []struct{ cmd, want string }{
		{"RCPT TO:<user@example.org>", "503 5.5.1"},
		{"MAIL FROM:<a@sender.test> SIZE=99999999", "552 5.3.4"},
		{"MAIL FROM:a@sender.test", "501 5.1.7"},
		{"MAIL FROM:<a@sender.test> RET=FULL", "555 5.5.4"},
		{"MAIL FROM:<a@sender.test>", "250 2.1.0"},
		{"MAIL FROM:<a@sender.test>", "503 5.5.1"},
		{"RCPT TO:<victim@elsewhere.test>", "550 5.7.1"},
		{"RCPT TO:<user@EXAMPLE.ORG>", "250 2.1.5"},
		{"RCPT TO:<user2@example.org>", "250 2.1.5"},
		{"RCPT TO:<user3@example.org>", "452 4.5.3"},
		{"DATA x", "501 5.5.4"},
		{"VRFY user", "252 2.5.0"},
		{"AUTH PLAIN", "502 5.5.1"},
		{"RSET", "250 2.0.0"},
		{"DATA", "503 5.5.1"},
		{"MAIL FROM:<>", "250 2.1.0"},
		{"RCPT TO:<victim@elsewhere.test>", "550 5.7.1"},
		{"DATA", "554 5.5.1"},
		{"STARTTLS", "502 5.5.1"},
		{"FOO", "500 5.5.2"},
		{"NOOP", "250 2.0.0"},
	}
	for _, c := range cases {
		d.expect(c.cmd, c.want)
	}
	if n := len(be.messages()); n != 0 {
		t.Fatalf("backend got %d messages", n)
	}
}

func TestOversizedMessage(t *testing.T) {
	be := startBackend(t, nil)
	px := startProxy(t, be.addr, func(o *Options, _ *BackendOptions) { o.MaxMessageBytes = 10000 })
	d := hello(t, px.addr)
	big := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("x", 98)+"\r\n", 200)
	got := d.sendMail("a@sender.test", []string{"user@example.org"}, big)
	if !strings.HasPrefix(got, "552 5.3.4") {
		t.Fatalf("got %q, want 552 5.3.4", got)
	}
	// The session is still in step and the next message goes through.
	if got := d.sendMail("a@sender.test", []string{"user@example.org"}, simpleMsg); !strings.HasPrefix(got, "250 ") {
		t.Fatalf("next message: %q", got)
	}
	if n := len(be.messages()); n != 1 {
		t.Fatalf("backend holds %d messages, want 1", n)
	}
}

func TestSpoolFileRemoved(t *testing.T) {
	be := startBackend(t, nil)
	px := startProxy(t, be.addr, nil) // threshold 4096
	d := hello(t, px.addr)
	body := "Subject: spill\r\n\r\n" + strings.Repeat(strings.Repeat("y", 70)+"\r\n", 1000)
	if got := d.sendMail("a@sender.test", []string{"user@example.org"}, body); !strings.HasPrefix(got, "250 ") {
		t.Fatalf("got %q", got)
	}
	if got := be.messages()[0].Data; !strings.HasSuffix(got, body) {
		t.Fatalf("spooled message changed: %d bytes, want suffix of %d", len(got), len(body))
	}
	// A refused and an aborted transaction leave nothing either.
	d.expect("MAIL FROM:<a@sender.test>", "250 ")
	d.expect("RCPT TO:<user@example.org>", "250 ")
	d.expect("DATA", "354 ")
	d.send(body + "bare\nLF\r\n.\r\n")
	d.expect("", "554 5.6.0")
	d.expect("QUIT", "221 ")
	waitFor(t, "session end", func() bool { return px.srv.Active() == 0 })
	entries, err := os.ReadDir(px.dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Fatalf("spool folder still holds %d files: %v", len(entries), entries)
	}
}

func TestConnectionLimits(t *testing.T) {
	be := startBackend(t, nil)
	px := startProxy(t, be.addr, func(o *Options, _ *BackendOptions) {
		o.MaxConnectionsPerIP = 2
		o.MaxConnections = 3
	})
	a := dial(t, px.addr)
	a.expect("", "220 ")
	b := dial(t, px.addr)
	b.expect("", "220 ")
	c := dial(t, px.addr)
	c.expect("", "421 4.7.0 mx.example.org too many connections from your address")
	// Another address is counted against the total only: 127.0.0.2 is
	// still loopback.
	other := dialFrom(t, "127.0.0.2", px.addr)
	other.expect("", "220 ")
	fourth := dialFrom(t, "127.0.0.3", px.addr)
	fourth.expect("", "421 4.7.0 mx.example.org too many connections")
	a.expect("QUIT", "221 ")
	waitFor(t, "slot freed", func() bool { return px.srv.Active() == 2 })
	again := dial(t, px.addr)
	again.expect("", "220 ")
}

func TestTooManyErrors(t *testing.T) {
	be := startBackend(t, nil)
	px := startProxy(t, be.addr, func(o *Options, _ *BackendOptions) { o.MaxErrors = 3 })
	d := hello(t, px.addr)
	for i := 0; i < 3; i++ {
		d.expect("BOGUS", "500 5.5.2")
	}
	d.send("BOGUS\r\n")
	d.expect("", "500 5.5.2")
	d.expect("", "421 4.7.0 too many errors")
}

func TestCommandTimeout(t *testing.T) {
	be := startBackend(t, nil)
	px := startProxy(t, be.addr, func(o *Options, _ *BackendOptions) { o.CommandTimeout = 200 * time.Millisecond })
	d := hello(t, px.addr)
	d.expect("", "421 4.4.2 mx.example.org timeout")
}

func TestPipelinedTransaction(t *testing.T) {
	be := startBackend(t, nil)
	px := startProxy(t, be.addr, nil)
	d := dial(t, px.addr)
	d.expect("", "220 ")
	d.expect("EHLO client.example.net", "250 ")
	// RFC 2920: the whole envelope in one packet, then the content.
	d.send("MAIL FROM:<a@sender.test>\r\nRCPT TO:<user@example.org>\r\nRCPT TO:<nobody@elsewhere.test>\r\nDATA\r\n")
	for _, want := range []string{"250 2.1.0", "250 2.1.5", "550 5.7.1", "354 "} {
		d.expect("", want)
	}
	d.send(simpleMsg + ".\r\nQUIT\r\n")
	d.expect("", "250 2.0.0 Ok: queued")
	d.expect("", "221 ")
	if msgs := be.messages(); len(msgs) != 1 || len(msgs[0].Rcpts) != 1 {
		t.Fatalf("backend: %+v", msgs)
	}
}

func TestEHLOAdvertises(t *testing.T) {
	be := startBackend(t, nil)
	px := startProxy(t, be.addr, nil)
	d := dial(t, px.addr)
	d.expect("", "220 ")
	d.send("EHLO client.example.net\r\n")
	var lines []string
	for {
		l, err := d.r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, strings.TrimSpace(l[4:]))
		if l[3] == ' ' {
			break
		}
	}
	got := strings.Join(lines, ",")
	want := "mx.example.org,PIPELINING,SIZE 1048576,8BITMIME,SMTPUTF8,ENHANCEDSTATUSCODES,CHUNKING"
	if got != want {
		t.Fatalf("EHLO reply %q, want %q (no AUTH, no STARTTLS without a certificate)", got, want)
	}
}

func TestCommandLineEndings(t *testing.T) {
	be := startBackend(t, nil)
	px := startProxy(t, be.addr, nil)
	d := dial(t, px.addr)
	d.expect("", "220 ")
	// A bare LF is taken as a line end and noted; the rules refuse the
	// session's mail (smtp-conduct).
	d.send("EHLO client.example.net\n")
	d.expect("", "250 ")
	d.expect("MAIL FROM:<a@sender.test>", "550 5.5.1 protocol error")
	d.send("EHLO a\rb\r\n")
	d.expect("", "500 5.5.2 control character")
	d.send("EHLO " + strings.Repeat("a", 3000) + "\r\n")
	d.expect("", "500 5.5.2 line too long")
	d.expect("EHLO client.example.net", "250 ")
}

func TestRateLimits(t *testing.T) {
	forKinds(t, func(t *testing.T, kind string) {
		be := startBackend(t, nil)
		px := startProxy(t, be.addr, func(o *Options, _ *BackendOptions) {
			o.Rate = withRate(RateLimits{ConnectionsPerMinute: 3, MessagesPerMinute: 2, RecipientsPerMinute: 3})
			if kind == "store" {
				o.State = state.NewMemory(state.MemoryOptions{})
			}
		})
		d := hello(t, px.addr)
		d.expect("MAIL FROM:<a@sender.test>", "250 ")
		d.expect("RCPT TO:<a@example.org>", "250 ")
		d.expect("RCPT TO:<b@example.org>", "250 ")
		d.expect("RCPT TO:<c@example.org>", "250 ")
		d.expect("RCPT TO:<d@example.org>", "451 4.7.1 too many recipients per minute from 127.0.0.1")
		d.expect("RSET", "250 ")
		d.expect("MAIL FROM:<a@sender.test>", "250 ")
		d.expect("RSET", "250 ")
		d.expect("MAIL FROM:<a@sender.test>", "451 4.7.1 too many messages per minute from 127.0.0.1")
		hello(t, px.addr)
		hello(t, px.addr)
		over := dial(t, px.addr)
		over.expect("", "421 4.7.0 mx.example.org too many connections per minute from 127.0.0.1")
	})
}
