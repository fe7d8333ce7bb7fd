package testpostfix

import (
	"bytes"
	"io"
	"net"
	"net/mail"
	"net/textproto"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// received is one message as the sink got it from Postfix.
type received struct {
	From string
	To   []string
	Data []byte
}

// sink is a go-smtp backend that records every message, standing in for the
// next hop behind the backend Postfix so the test can see what Postfix
// actually delivered (and the Received header it added).
type sink struct {
	mu   sync.Mutex
	msgs []received
	got  chan struct{} // signalled (non-blocking) on every message
}

func (s *sink) NewSession(*smtp.Conn) (smtp.Session, error) { return &sinkSession{s: s}, nil }

func (s *sink) messages() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.msgs...)
}

type sinkSession struct {
	s   *sink
	cur received
}

func (ss *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	ss.cur = received{From: from}
	return nil
}

func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.cur.To = append(ss.cur.To, to)
	return nil
}

func (ss *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.cur.Data = b
	ss.s.mu.Lock()
	ss.s.msgs = append(ss.s.msgs, ss.cur)
	ss.s.mu.Unlock()
	select {
	case ss.s.got <- struct{}{}:
	default:
	}
	ss.cur = received{}
	return nil
}

func (ss *sinkSession) Reset()        { ss.cur = received{} }
func (ss *sinkSession) Logout() error { return nil }

// startSink runs the recording SMTP server on a loopback port. Its cleanup is
// registered before the Postfix instance's, so it runs after Postfix has
// stopped and Postfix never sees its relay target vanish mid-delivery.
func startSink(t *testing.T) (*sink, string) {
	t.Helper()
	be := &sink{got: make(chan struct{}, 1)}
	srv := smtp.NewServer(be)
	srv.Domain = "sink.test"
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return be, ln.Addr().String()
}

// expect sends cmd (unless empty) and reads a possibly multi-line reply
// that must carry code.
func expect(t *testing.T, c *textproto.Conn, code int, cmd string) string {
	t.Helper()
	if cmd != "" {
		if _, err := c.Cmd("%s", cmd); err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
	}
	_, msg, err := c.ReadResponse(code)
	if err != nil {
		t.Fatalf("%q: want %d, got %v", cmd, code, err)
	}
	return msg
}

var queuedAs = regexp.MustCompile(`^2\.0\.0 Ok: queued as ([0-9A-Za-z]+)$`)

// TestXClientRelay is the end-to-end check the package exists for: a client
// hands Postfix another client's identity with XCLIENT, Postfix accepts and
// relays the message to the sink, and the Received header it adds names the
// forwarded address, not 127.0.0.1.
func TestXClientRelay(t *testing.T) {
	t.Parallel()
	start := time.Now()
	defer func() { t.Logf("TestXClientRelay took %v", time.Since(start)) }()

	snk, sinkAddr := startSink(t)
	pf := Start(t, Options{
		Domains:      []string{"example.org"},
		RelayTo:      sinkAddr,
		XClientHosts: "127.0.0.0/8",
	})
	t.Logf("postfix up at %s after %v", pf.Addr, time.Since(start))
	if pids := pf.Processes(); len(pids) == 0 {
		t.Fatal("Processes() finds no Postfix processes while the instance runs; Stop could not verify cleanup")
	}

	c, err := textproto.Dial("tcp4", pf.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	expect(t, c, 220, "")
	ehlo := expect(t, c, 250, "EHLO proxy.test")
	if !regexp.MustCompile(`(?m)^XCLIENT\b`).MatchString(ehlo) {
		t.Fatalf("XCLIENT not advertised in EHLO reply:\n%s", ehlo)
	}
	// Postfix answers a successful XCLIENT with a fresh greeting.
	expect(t, c, 220, "XCLIENT ADDR=203.0.113.7 NAME=client.example.net HELO=client.example.net PROTO=ESMTP")
	expect(t, c, 250, "EHLO client.example.net")
	expect(t, c, 250, "MAIL FROM:<alice@client.example.net>")
	expect(t, c, 250, "RCPT TO:<user@example.org>")
	expect(t, c, 354, "DATA")
	w := c.DotWriter()
	io.WriteString(w, "From: alice@client.example.net\r\nTo: user@example.org\r\nSubject: testpostfix\r\nMessage-ID: <testpostfix-1@client.example.net>\r\n\r\nhello through postfix\r\n")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	reply := expect(t, c, 250, "")
	m := queuedAs.FindStringSubmatch(reply)
	if m == nil {
		t.Fatalf("DATA reply %q carries no queue id", reply)
	}
	queueID := m[1]
	expect(t, c, 221, "QUIT")

	var got received
	deadline := time.After(30 * time.Second)
wait:
	for {
		for _, msg := range snk.messages() {
			if bytes.Contains(msg.Data, []byte("testpostfix-1@client.example.net")) {
				got = msg
				break wait
			}
		}
		select {
		case <-snk.got:
		case <-deadline:
			t.Fatalf("sink got no message within 30s; postfix log:\n%s", pf.Log())
		}
	}
	if got.From != "alice@client.example.net" || len(got.To) != 1 || got.To[0] != "user@example.org" {
		t.Errorf("sink envelope = %q -> %q", got.From, got.To)
	}
	parsed, err := mail.ReadMessage(bytes.NewReader(got.Data))
	if err != nil {
		t.Fatal(err)
	}
	// The topmost Received header is the one the backend Postfix added.
	rcvd := parsed.Header["Received"]
	if len(rcvd) == 0 {
		t.Fatalf("no Received header in:\n%s", got.Data)
	}
	top := rcvd[0]
	t.Logf("Received: %s", top)
	for _, want := range []string{"from client.example.net", "[203.0.113.7]", "by backend.test", "id " + queueID} {
		if !strings.Contains(top, want) {
			t.Errorf("Received header %q lacks %q", top, want)
		}
	}
	if strings.Contains(top, "127.0.0.1") {
		t.Errorf("Received header names the proxy address, XCLIENT was ignored: %q", top)
	}
	pf.WaitLog(t, queueID+": client=client.example.net[203.0.113.7]", 10*time.Second)
	pf.WaitLog(t, queueID+": to=<user@example.org>, relay=127.0.0.1[127.0.0.1]", 10*time.Second)

	pf.Stop()
	if pids := pf.Processes(); len(pids) != 0 {
		t.Errorf("processes left after Stop: %v", pids)
	}
	if _, err := os.Stat(pf.Dir); !os.IsNotExist(err) {
		t.Errorf("instance dir %s still exists (err=%v)", pf.Dir, err)
	}
	if !strings.Contains(pf.Log(), "stopping the Postfix mail system") {
		t.Errorf("Log() after Stop lacks the stop message:\n%s", pf.Log())
	}
}

// TestParallelInstances checks that instances are independent: several can
// run at once (distinct ports, directories and instance names), and
// without XClientHosts XCLIENT is not offered.
func TestParallelInstances(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"a", "b"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pf := Start(t, Options{})
			c, err := textproto.Dial("tcp4", pf.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			expect(t, c, 220, "")
			ehlo := expect(t, c, 250, "EHLO proxy.test")
			if strings.Contains(ehlo, "XCLIENT") {
				t.Errorf("XCLIENT advertised without XClientHosts:\n%s", ehlo)
			}
			// Without RelayTo accepted mail is discarded, never sent out.
			expect(t, c, 250, "MAIL FROM:<a@client.test>")
			expect(t, c, 250, "RCPT TO:<b@elsewhere.test>")
			expect(t, c, 354, "DATA")
			w := c.DotWriter()
			io.WriteString(w, "Subject: x\r\n\r\nx\r\n")
			w.Close()
			id := queuedAs.FindStringSubmatch(expect(t, c, 250, ""))
			if id == nil {
				t.Fatal("no queue id")
			}
			pf.WaitLog(t, id[1]+": to=<b@elsewhere.test>, relay=none", 10*time.Second)
			pf.WaitLog(t, "status=sent (testpostfix-no-RelayTo)", 10*time.Second)
		})
	}
}

// TestValidate guards the loopback-only rule: a RelayTo that would send
// mail off the machine (or need DNS) is refused before Postfix starts.
func TestValidate(t *testing.T) {
	for _, bad := range []string{"192.0.2.1:25", "localhost:25", "[::1]:25", "127.0.0.1"} {
		if validate(Options{RelayTo: bad}) == nil {
			t.Errorf("RelayTo %q accepted", bad)
		}
	}
	if err := validate(Options{RelayTo: "127.0.0.1:2525", Domains: []string{"example.org"}}); err != nil {
		t.Error(err)
	}
	if validate(Options{Extra: map[string]string{"a": "b\nc = d"}}) == nil {
		t.Error("newline in Extra accepted")
	}
}
