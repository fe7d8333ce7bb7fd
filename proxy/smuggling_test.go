package proxy

import (
	"strconv"
	"strings"
	"testing"
)

// Each variant carries a second, smuggled message after a sequence that some
// server might take for the end of data. mxguard must keep reading to the
// real <CRLF>.<CRLF>, refuse the message, and never let the backend see
// either message.
func TestSmugglingVariantsRefused(t *testing.T) {
	smuggled := "MAIL FROM:<evil@sender.test>\r\nRCPT TO:<user@example.org>\r\nDATA\r\nSubject: smuggled\r\n\r\nbad\r\n"
	variants := map[string]string{
		"LF.LF":       "\n.\n",
		"LF.CRLF":     "\n.\r\n",
		"CRLF.LF":     "\r\n.\n",
		"CR.CR":       "\r.\r",
		"CR.CRLF":     "\r.\r\n",
		"CRLF.CR":     "\r\n.\r",
		"CR.LF":       "\r.\n",
		"LF.CR":       "\n.\r",
		"CRLF.CRCRLF": "\r\n.\r\r\n",
		"bare LF":     "\nplain bare LF\n",
		"bare CR":     "\rplain bare CR\r\n",
		"NUL":         "\x00\r\n",
	}
	be := startBackend(t, nil)
	px := startProxy(t, be.addr, nil)
	for name, seq := range variants {
		t.Run(name, func(t *testing.T) {
			d := hello(t, px.addr)
			d.expect("MAIL FROM:<a@sender.test>", "250 ")
			d.expect("RCPT TO:<user@example.org>", "250 ")
			d.expect("DATA", "354 ")
			d.send("Subject: first\r\n\r\nbody" + seq + smuggled + ".\r\n")
			d.expect("", "554 5.6.0")
			// The session is still in step: the next command is answered
			// as a command, not as part of any message.
			d.expect("NOOP", "250 2.0.0")
			d.expect("QUIT", "221 ")
		})
	}
	if msgs := be.messages(); len(msgs) != 0 {
		t.Fatalf("backend received %d messages, want none: %+v", len(msgs), msgs)
	}
}

func TestBDAT(t *testing.T) {
	be := startBackend(t, nil)
	px := startProxy(t, be.addr, func(o *Options, _ *BackendOptions) { o.MaxMessageBytes = 2000 })
	d := hello(t, px.addr)

	// BDAT content is literal: a line holding a dot is content, and is
	// dot-stuffed on its way to the backend, which reads it back as ".".
	d.expect("MAIL FROM:<a@sender.test>", "250 ")
	d.expect("RCPT TO:<user@example.org>", "250 ")
	part1, part2 := "Subject: chunks\r\n\r\nline one\r\n", ".\r\nlast line\r\n"
	d.send("BDAT " + itoa(len(part1)) + "\r\n" + part1)
	d.expect("", "250 2.0.0")
	d.send("BDAT " + itoa(len(part2)) + " LAST\r\n" + part2)
	d.expect("", "250 2.0.0 Ok: queued as Q00001")
	msgs := be.messages()
	if len(msgs) != 1 || !strings.HasSuffix(msgs[0].Data, part1+part2) {
		t.Fatalf("backend holds %+v", msgs)
	}

	// Size limits count chunks like DATA.
	d.expect("MAIL FROM:<a@sender.test>", "250 ")
	d.expect("RCPT TO:<user@example.org>", "250 ")
	chunk := strings.Repeat("z", 1500)
	d.send("BDAT 1500\r\n" + chunk)
	d.expect("", "250 2.0.0")
	d.send("BDAT 1500 LAST\r\n" + chunk)
	d.expect("", "552 5.3.4")

	// Bare LF inside BDAT content is refused like in DATA.
	d.expect("MAIL FROM:<a@sender.test>", "250 ")
	d.expect("RCPT TO:<user@example.org>", "250 ")
	bad := "Subject: x\r\n\r\nbody\n.\nMAIL FROM:<e@x>\r\n"
	d.send("BDAT " + itoa(len(bad)) + " LAST\r\n" + bad)
	d.expect("", "554 5.6.0")

	// A chunk without a transaction is read and refused; the session goes on.
	d.send("BDAT 5 LAST\r\nhello")
	d.expect("", "503 5.5.1")
	d.expect("NOOP", "250 ")
	if n := len(be.messages()); n != 1 {
		t.Fatalf("backend holds %d messages, want 1", n)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
