package main

import (
	"io"
	"log"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"

	"mxguard/checks/resolver/dnstest"
)

// TestDNSBL: a listed client is refused at connect with the list named;
// an unlisted one delivers; a SERVFAIL or an error code from the list is
// not a listing.
func TestDNSBL(t *testing.T) {
	dns := dnstest.StartFiles(t, corpusPath("zones/auth.zone"), corpusPath("zones/dnsbl.zone"))
	dns.ServFail("3.0.0.127.bl.test")
	dir := t.TempDir()
	vlog := filepath.Join(dir, "v.jsonl")
	_, listen := startMxguard(t, `
hostname: mx.example.org
listen:
  - address: LISTEN
backend:
  address: "builtin:`+filepath.Join(dir, "mail")+`"
domains: [example.org]
verdict_log: `+vlog+`
dnsbl:
  - zone: bl.test
    weight: 10
    codes: 127.0.0.2-127.0.0.11
dns:
  servers: [`+dns.Addr()+`]
  timeout: 500ms
`)
	listed := dialConv(t, "127.0.0.2", listen)
	got := listed.say("", "554 5.7.1 client 127.0.0.2 is listed by bl.test (session ")
	recs := waitVerdicts(t, vlog, 1)
	if r := recs[0]; r.Action != "reject" || r.Stage != "connect" || r.Reason != "dnsbl" || r.Checks["dnsbl"].Result != "listed" ||
		len(r.Facts.DNSBL.Reasons) != 1 || !strings.Contains(r.Facts.DNSBL.Reasons[0], "listed for spam") {
		t.Fatalf("verdict for a listed client: %+v (reply %q)", r, got)
	}
	for i, src := range []string{"127.0.0.1", "127.0.0.3", "127.0.0.4"} {
		c := openTx(t, src, listen)
		c.data("From: alice@sender.test\r\nSubject: hi\r\n\r\nhello\r\n", "250 2.0.0 Ok: queued")
		c.say("QUIT", "221 ")
		r := waitVerdicts(t, vlog, 2+i)[1+i]
		if r.Facts.DNSBL.Score != 0 || r.Checks["dnsbl"].Result != "none" {
			t.Errorf("%s: dnsbl facts %+v, check %+v", src, r.Facts.DNSBL, r.Checks["dnsbl"])
		}
		if src != "127.0.0.1" && len(r.Facts.DNSBL.Errors) != 1 {
			t.Errorf("%s: the list's failure is not recorded: %+v", src, r.Facts.DNSBL)
		}
	}
}

// TestScreeningRawClients drives mxguard serve with raw sockets that send
// exactly the bytes of each attack, and checks the answer and that the
// backend never receives a refused message or one smuggled inside it.
func TestScreeningRawClients(t *testing.T) {
	dir := t.TempDir()
	mail := filepath.Join(dir, "mail")
	_, listen := startMxguard(t, `
hostname: mx.example.org
listen:
  - address: LISTEN
backend:
  address: "builtin:`+mail+`"
domains: [example.org]
limits:
  greet_pause: 100ms
`)
	smuggled := "MAIL FROM:<ceo@example.org>\r\nRCPT TO:<user@example.org>\r\nDATA\r\nFrom: ceo@example.org\r\nSubject: smuggled\r\n\r\npay now\r\n"
	head := "From: alice@sender.test\r\nSubject: first\r\n\r\nbody"
	variants := []struct{ name, seq string }{
		{"LF.LF", "\n.\n"}, {"LF.CRLF", "\n.\r\n"}, {"CRLF.LF", "\r\n.\n"}, {"CR.CR", "\r.\r"},
		{"CR.CRLF", "\r.\r\n"}, {"CRLF.CR", "\r\n.\r"}, {"CR.LF", "\r.\n"}, {"LF.CR", "\n.\r"},
		{"CRLF.CRCRLF", "\r\n.\r\r\n"}, {"CRLF.NULCRLF", "\r\n.\x00\r\n"},
	}
	for _, v := range variants {
		t.Run("end-of-data "+v.name, func(t *testing.T) {
			c := openTx(t, "", listen)
			c.say("DATA", "354 ")
			c.c.Write([]byte(head + v.seq + smuggled + ".\r\n"))
			c.say("", "554 5.6.0 message refused")
			c.say("NOOP", "250 ") // still in step: no smuggled command ran
		})
	}
	body := func(name, msg, want string) {
		t.Run(name, func(t *testing.T) {
			c := openTx(t, "", listen)
			c.say("DATA", "354 ")
			c.c.Write([]byte(msg + ".\r\n"))
			c.say("", want)
		})
	}
	body("bare LF", corpusFile(t, "messages/bare-lf.eml"), "554 5.6.0 message refused: bare LF or CR")
	body("bare CR", corpusFile(t, "messages/bare-cr.eml"), "554 5.6.0 message refused: bare LF or CR")
	body("NUL", corpusFile(t, "messages/nul-byte.eml"), "554 5.6.0 message refused: NUL byte")
	body("text line over 1000", corpusFile(t, "messages/long-line.eml"), "554 5.6.0 message refused: a line is longer than 1000 octets")

	t.Run("pregreet", func(t *testing.T) {
		c := dialConv(t, "", listen)
		c.c.Write([]byte("EHLO early.sender.test\r\n"))
		c.say("", "554 5.5.1 protocol error: you talked before the greeting")
	})
	t.Run("HTTP", func(t *testing.T) {
		c := dialConv(t, "", listen)
		c.say("", "220 ")
		c.c.Write([]byte("GET / HTTP/1.1\r\nHost: mx.example.org\r\n\r\n"))
		c.say("", "554 5.5.1 this is an SMTP server")
	})
	t.Run("unauthorised pipelining before EHLO", func(t *testing.T) {
		c := dialConv(t, "", listen)
		c.say("", "220 ")
		c.c.Write([]byte("HELO client.sender.test\r\nMAIL FROM:<alice@sender.test>\r\n"))
		c.say("", "250 ")
		c.say("", "550 5.5.1 protocol error")
	})
	t.Run("message sent before 354", func(t *testing.T) {
		c := openTx(t, "", listen)
		c.c.Write([]byte("DATA\r\nFrom: alice@sender.test\r\n\r\nhi\r\n.\r\n"))
		c.say("", "354 ")
		c.say("", "554 5.5.1 protocol error")
	})
	t.Run("bare LF command", func(t *testing.T) {
		c := dialConv(t, "", listen)
		c.say("", "220 ")
		c.c.Write([]byte("EHLO client.sender.test\n"))
		c.say("", "250 ")
		c.say("MAIL FROM:<alice@sender.test>", "550 5.5.1 protocol error")
	})
	t.Run("command over 512 octets", func(t *testing.T) {
		c := dialConv(t, "", listen)
		c.say("", "220 ")
		c.say("EHLO client.sender.test", "250 ")
		c.say("MAIL FROM:<alice@sender.test> "+strings.Repeat("X-PAD=1 ", 70), "555 5.5.4")
		c.say("MAIL FROM:<alice@sender.test>", "550 5.5.1 protocol error")
	})
	t.Run("bad HELO", func(t *testing.T) {
		c := dialConv(t, "", listen)
		c.say("", "220 ")
		c.say("EHLO bad!name.test", "550 5.7.1 invalid HELO name")
		c.say("EHLO b\xfccher.test", "550 5.7.1 invalid HELO name") // 8-bit, Latin-1
		c.say("EHLO bücher.test", "550 5.7.1 invalid HELO name")    // 8-bit, UTF-8
		c.say("EHLO [300.1.2.3]", "550 5.7.1 invalid HELO name")    // no address
		c.say("EHLO localhost", "250 ")                             // short: scored only
		c.say("EHLO mx.example.org", "550 5.7.1 invalid HELO name")
		c.say("EHLO [127.0.0.1]", "550 5.7.1 invalid HELO name") // our own address
		c.say("EHLO client.sender.test", "250 ")
	})
	// A well-behaved client is still delivered, and nothing else was.
	c := openTx(t, "", listen)
	c.data("From: alice@sender.test\r\nSubject: good\r\n\r\nfine\r\n", "250 2.0.0 Ok: queued")
	files, _ := filepath.Glob(filepath.Join(mail, "*.eml"))
	if len(files) != 1 {
		t.Fatalf("backend holds %d messages, want only the good one", len(files))
	}
}

func TestHeaderChecks(t *testing.T) {
	h := startAuth(t)
	h.send(t, "alice@sender.test", corpusFile(t, "messages/duplicated-fields.eml"),
		"550 5.7.1 message refused: duplicated header fields: Subject")
	h.send(t, "alice@sender.test", corpusFile(t, "messages/display-name-own-domain.eml"),
		"250 2.0.0 Ok: queued")
	h.send(t, "alice@sender.test", corpusFile(t, "messages/display-name-encoded.eml"),
		"250 2.0.0 Ok: queued")
	recs := waitVerdicts(t, h.vlog, 3)
	if r := recs[0]; r.Reason != "duplicate-headers" || strings.Join(r.Facts.Headers.Duplicates, ",") != "Subject" {
		t.Fatalf("duplicate verdict: %+v", r.Facts.Headers)
	}
	for _, r := range recs[1:] {
		if r.Action != "quarantine" || r.Reason != "display-name-spoof" || !r.Facts.Headers.DisplayNameSpoof {
			t.Fatalf("display-name spoof verdict: action %s reason %s facts %+v", r.Action, r.Reason, r.Facts.Headers)
		}
	}
	for _, m := range h.stored(t) {
		if !strings.Contains(m, "X-Mxguard-Quarantine: yes") {
			t.Fatalf("spoofed message delivered without the quarantine mark:\n%s", m)
		}
	}
}

// knownUsers is a real go-smtp backend that knows some recipients and
// counts what it is asked.
type knownUsers struct {
	mu          sync.Mutex
	known       map[string]bool
	rcpts, data int
}

func (k *knownUsers) NewSession(*smtp.Conn) (smtp.Session, error) { return &knownSession{k: k}, nil }

type knownSession struct{ k *knownUsers }

func (s *knownSession) Reset()                               {}
func (s *knownSession) Logout() error                        { return nil }
func (s *knownSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *knownSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.k.mu.Lock()
	defer s.k.mu.Unlock()
	s.k.rcpts++
	if strings.HasPrefix(to, "busy@") {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 2, 0}, Message: "mailbox busy"}
	}
	if !s.k.known[strings.ToLower(to)] {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "<" + to + ">: Recipient address rejected: User unknown"}
	}
	return nil
}
func (s *knownSession) Data(r io.Reader) error {
	io.Copy(io.Discard, r)
	s.k.mu.Lock()
	s.k.data++
	s.k.mu.Unlock()
	return nil
}

func (k *knownUsers) counts() (int, int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.rcpts, k.data
}

// TestRecipientVerification: an unknown recipient is refused at RCPT and
// no DATA reaches the backend; the second probe is answered from the
// cache; after five unknown recipients the rest are refused.
func TestRecipientVerification(t *testing.T) {
	k := &knownUsers{known: map[string]bool{"user@example.org": true}}
	srv := smtp.NewServer(k)
	srv.Domain = "backend.test"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	dir := t.TempDir()
	vlog := filepath.Join(dir, "v.jsonl")
	_, listen := startMxguard(t, `
hostname: mx.example.org
listen:
  - address: LISTEN
backend:
  address: `+l.Addr().String()+`
domains: [example.org]
verdict_log: `+vlog+`
recipients:
  verify: backend
`)
	c := dialConv(t, "", listen)
	c.say("", "220 ")
	c.say("EHLO client.sender.test", "250 ")
	c.say("MAIL FROM:<alice@sender.test>", "250 ")
	c.say("RCPT TO:<nobody@example.org>", "550 5.1.1 <nobody@example.org>: no such user here")
	c.say("RCPT TO:<nobody@example.org>", "550 5.1.1")
	c.say("DATA", "554 5.5.1 no valid recipients")
	c.say("RSET", "250 ")
	rcpts, data := k.counts()
	if rcpts != 1 || data != 0 {
		t.Fatalf("backend saw %d RCPT probes and %d DATA; want 1 probe (the second from the cache) and no DATA", rcpts, data)
	}
	recs := waitVerdicts(t, vlog, 1)
	if r := recs[0]; r.Action != "reject" || r.Stage != "rcpt" || r.Reason != "unknown-recipient" ||
		!strings.Contains(r.Checks["rcpt <nobody@example.org>"].Detail, "(cached)") {
		t.Fatalf("verdict %+v", r)
	}
	// A known recipient still goes through, beside one the backend cannot
	// verify now: that one is deferred, the message is not.
	c.say("MAIL FROM:<alice@sender.test>", "250 ")
	c.say("RCPT TO:<busy@example.org>", "451 4.4.3 cannot verify the recipient now")
	c.say("RCPT TO:<user@example.org>", "250 ")
	c.data("From: alice@sender.test\r\nSubject: hi\r\n\r\nhello\r\n", "250 ")
	// Harvesting: five unknown recipients in the session, and the known one
	// is refused too.
	c.say("MAIL FROM:<alice@sender.test>", "250 ")
	for _, u := range []string{"a", "b", "c"} {
		c.say("RCPT TO:<"+u+"@example.org>", "550 5.1.1")
	}
	c.say("RCPT TO:<user@example.org>", "451 4.7.1 too many unknown recipients")
}
