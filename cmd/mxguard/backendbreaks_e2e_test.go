package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestBrokenBackendNeverYields250 runs "mxguard serve" in front of a
// backend that breaks the protocol, each case one way: a reply that is not
// 354 to DATA, an unsolicited line after its EHLO reply (which would shift
// every pipelined reply by one, so that RCPT's 250 would pass for the
// final one), and multi-line replies whose lines disagree. RFC 5321 §4.2
// gives one code per reply; a reply that does not answer the command it
// was sent for means the backend cannot be trusted with this message, so
// the client is told to try again later (451), never 250, and mxguard does
// not report the message delivered.
func TestBrokenBackendNeverYields250(t *testing.T) {
	cases := []struct {
		name   string
		script func(verb string) string
		stored int // messages the backend takes in full
	}{
		{"250 to DATA", func(verb string) string {
			if verb == "DATA" {
				return "250 2.0.0 go ahead\r\n"
			}
			return ""
		}, 0},
		{"extra line after EHLO", func(verb string) string {
			if verb == "EHLO" {
				return "250-raw.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n250 2.0.0 surprise\r\n"
			}
			return ""
		}, 0},
		{"451-/250 to the end of data", func(verb string) string {
			if verb == "END" {
				return "451-4.3.0 trouble\r\n250 2.0.0 Ok: queued as RAW1\r\n"
			}
			return ""
		}, 1},
		{"451-/250 to MAIL", func(verb string) string {
			if verb == "MAIL" {
				return "451-4.3.0 trouble\r\n250 2.1.0 Ok\r\n"
			}
			return ""
		}, 0},
		{"250-/451 to RCPT", func(verb string) string {
			if verb == "RCPT" {
				return "250-2.1.5 Ok\r\n451 4.3.0 trouble\r\n"
			}
			return ""
		}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := startRawBackend(t, func(b *rawBackend) { b.script = c.script })
			vlog := filepath.Join(t.TempDir(), "verdicts.jsonl")
			d, listen := rawBackendMxguard(t, b, "  forward_client: none\n", "verdict_log: "+vlog+"\n")
			v := openTx(t, "", listen)
			reply := v.data("From: alice@sender.test\r\nTo: user@example.org\r\nSubject: broken\r\n\r\nbody\r\n", "451 4.")
			v.say("QUIT", "221 ")
			recs := waitVerdicts(t, vlog, 1)
			if r := recs[0]; !strings.HasPrefix(r.Reply, "451 4.") {
				t.Errorf("verdict log: reply %q, want the 451 the client got (%q)", r.Reply, reply)
			}
			d.stop()
			out := d.out.String()
			if strings.Contains(out, "message forwarded") || !strings.Contains(out, "message not delivered") {
				t.Errorf("mxguard's log should say the message was not delivered:\n%s", out)
			}
			if _, stored := b.seen(); len(stored) != c.stored {
				t.Errorf("the backend took %d messages in full, want %d", len(stored), c.stored)
			}
		})
	}
}
