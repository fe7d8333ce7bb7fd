package proxy

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// TestESMTPParameterSyntax: RFC 6531 §3.4 gives SMTPUTF8 no value, and
// RFC 5321 §4.1.2 an esmtp-value at least one octet.
func TestESMTPParameterSyntax(t *testing.T) {
	be := startBackend(t, nil)
	px := startProxy(t, be.addr, nil)
	d := hello(t, px.addr)
	for _, c := range []struct{ cmd, want string }{
		{"MAIL FROM:<a@sender.test> SMTPUTF8=yes", "501 5.5.4 "},
		{"MAIL FROM:<a@sender.test> SIZE=", "501 5.5.4 "},
		{"MAIL FROM:<a@sender.test> BODY=", "501 5.5.4 "},
		{"MAIL FROM:<a@sender.test> SMTPUTF8", "250 "},
	} {
		d.expect(c.cmd, c.want)
	}
}

// TestSMTPUTF8AddressMustBeUTF8: with SMTPUTF8 an address is UTF-8 (RFC
// 6531 §3.3); octets that are not are a syntax error, not an address.
func TestSMTPUTF8AddressMustBeUTF8(t *testing.T) {
	be := startBackend(t, nil)
	px := startProxy(t, be.addr, nil)
	d := hello(t, px.addr)
	d.expect("MAIL FROM:<b\xfcr@sender.test> SMTPUTF8", "501 5.1.7 ")
	d.expect("MAIL FROM:<bür@sender.test> SMTPUTF8", "250 ")
	d.expect("RCPT TO:<\xff\xfe@example.org>", "501 5.1.3 ")
	d.expect("RCPT TO:<us\xe9r@example.org>", "501 5.1.3 ")
	d.expect("RCPT TO:<usér@example.org>", "250 ")
}

// TestSMTPUTF8WithoutBackendSupport: a backend that does not offer
// SMTPUTF8 cannot take such mail. The refusal after DATA uses a code RFC
// 5321 §4.3.2 allows there (554, not 553); once the backend is known not
// to offer it, the next such transaction is refused at MAIL, where 553
// 5.6.7 belongs (RFC 6531 §3.5), before the client sends the message.
func TestSMTPUTF8WithoutBackendSupport(t *testing.T) {
	be := startBackend(t, nil) // go-smtp without EnableSMTPUTF8
	px := startProxy(t, be.addr, nil)
	d := hello(t, px.addr)
	d.expect("MAIL FROM:<bür@sender.test> SMTPUTF8", "250 ")
	d.expect("RCPT TO:<user@example.org>", "250 ")
	d.expect("DATA", "354 ")
	d.send(dotStuff(simpleMsg) + ".\r\n")
	if got := d.reply(); !strings.HasPrefix(got, "554 5.6.7 ") {
		t.Fatalf("end of data: %q, want 554 5.6.7", got)
	}
	d.expect("MAIL FROM:<bür@sender.test> SMTPUTF8", "553 5.6.7 ")
	// Mail without SMTPUTF8 still goes through.
	d.expect("MAIL FROM:<a@sender.test>", "250 ")
	d.expect("RCPT TO:<user@example.org>", "250 ")
	d.expect("DATA", "354 ")
	d.send(dotStuff(simpleMsg) + ".\r\n")
	if got := d.reply(); !strings.HasPrefix(got, "250 ") {
		t.Fatalf("plain message: %q", got)
	}
}

// TestDeliveryFailureNotLoggedAsForwarded: the log says "message
// forwarded" only when the backend took the message; a refusal or an
// unreachable backend is logged as what it is.
func TestDeliveryFailureNotLoggedAsForwarded(t *testing.T) {
	var logs syncBuf
	px := startProxy(t, "127.0.0.1:1", func(o *Options, _ *BackendOptions) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	d := hello(t, px.addr)
	d.expect("MAIL FROM:<a@sender.test>", "250 ")
	d.expect("RCPT TO:<user@example.org>", "250 ")
	d.expect("DATA", "354 ")
	d.send(dotStuff(simpleMsg) + ".\r\n")
	if got := d.reply(); !strings.HasPrefix(got, "451 4.4.1 ") {
		t.Fatalf("end of data: %q", got)
	}
	d.expect("QUIT", "221 ")
	waitFor(t, "the delivery to be logged", func() bool { return strings.Contains(logs.String(), "message not delivered") })
	if strings.Contains(logs.String(), "message forwarded") {
		t.Fatalf("a failed delivery is logged as forwarded:\n%s", logs.String())
	}
}

// syncBuf is a bytes.Buffer safe for the proxy's goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestFixedRepliesKeepTheirClass: the class of each fixed reply's code and
// of its enhanced code agree (RFC 3463 §2: 5xx goes with 5.x.x), and each
// gets the session id once.
func TestFixedRepliesKeepTheirClass(t *testing.T) {
	for _, f := range fixedReplies {
		r := f.WithSession("S1")
		if r.Code/100 != r.Enhanced[0] || r.Code < 400 {
			t.Errorf("%s: code and enhanced code disagree", r)
		}
		if !strings.HasSuffix(r.Text, " (session S1)") || strings.Count(r.Text, "(session") != 1 {
			t.Errorf("%s: no session id, or more than one", r)
		}
	}
}
