package main

import (
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// monitorRules relax the header checks to monitor mode, as an admin who
// wants to see malformed mail before refusing it would: the message is then
// delivered, and what the backend gets shows where mxguard split it.
const monitorRules = `
rules:
  - name: watch-malformed
    stage: data
    when: headers.malformed > 0 || protocol.long_line || headers.too_big
    action: reject
    mode: monitor
`

// headerSplitMxguard starts mxguard with the default rules, or with
// monitorRules, in front of the built-in sink.
func headerSplitMxguard(t *testing.T, relaxed bool) (listen, dir string) {
	if !relaxed {
		return sinkMxguard(t, "")
	}
	path := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(path, []byte(monitorRules), 0o600); err != nil {
		t.Fatal(err)
	}
	return sinkMxguard(t, "rules: ["+path+"]\n")
}

// delivered reads the one message the sink holds.
func delivered(t *testing.T, dir string) (*mail.Message, string) {
	t.Helper()
	msgs, bodies := storedMessages(t, dir)
	if len(msgs) != 1 {
		t.Fatalf("the backend holds %d messages, want 1", len(msgs))
	}
	return msgs[0], bodies[0]
}

const goodFields = "From: alice@sender.test\r\nTo: user@example.org\r\nDate: Mon, 30 Nov 2026 07:00:00 +0000\r\nMessage-ID: <split@sender.test>\r\nSubject: split\r\n"

// forgedFields claim our authserv-id and our verdict headers.
const forgedFields = "Authentication-Results: mx.example.org; dmarc=pass header.from=bank.test\r\nX-Mxguard-Verdict: accept\r\n"

// TestHeaderSectionEndsAtFirstNonField sends a header section with a line
// that is not a field before forged fields. The default rules refuse it
// (headers.malformed); with them relaxed, the backend gets an empty line
// inserted before that line, so every reader downstream (Go's net/mail
// here) ends the header section where mxguard did, and the forged fields
// are body text, not fields.
func TestHeaderSectionEndsAtFirstNonField(t *testing.T) {
	for _, c := range []struct{ name, lines string }{
		{"no colon", "this line is not a field\r\n"},
		{"space in name", "Bad Name: value\r\n"},
		{"8-bit name", "N\xe4me: value\r\n"},
		{"empty name", ": value\r\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			listen, _ := headerSplitMxguard(t, false)
			v := openTx(t, "", listen)
			v.data(goodFields+c.lines+forgedFields+"\r\nbody\r\n", "554 5.6.0 ")

			listen, dir := headerSplitMxguard(t, true)
			v = openTx(t, "", listen)
			v.data(goodFields+c.lines+forgedFields+"\r\nbody\r\n", "250 ")
			m, body := delivered(t, dir)
			if got := m.Header["X-Mxguard-Verdict"]; len(got) != 0 {
				t.Errorf("a forged X-Mxguard-Verdict is a header field downstream: %q", got)
			}
			for _, ar := range m.Header["Authentication-Results"] {
				if strings.Contains(ar, "bank.test") {
					t.Errorf("a forged Authentication-Results is a header field downstream: %q", ar)
				}
			}
			if m.Header.Get("Subject") != "split" {
				t.Errorf("the fields before the malformed line are lost: %v", m.Header)
			}
			if !strings.HasPrefix(body, c.lines) || !strings.Contains(body, "X-Mxguard-Verdict: accept") {
				t.Errorf("the malformed line and what follows should be the body, got body %q", body)
			}
		})
	}
}

// TestForgedFieldsAfterLongLineRemoved puts forged fields after a header
// field of 40 KiB: they are removed all the same.
func TestForgedFieldsAfterLongLineRemoved(t *testing.T) {
	listen, dir := headerSplitMxguard(t, true)
	long := "X-Long: " + strings.Repeat("y", 40<<10) + "\r\n"
	v := openTx(t, "", listen)
	v.data(goodFields+long+forgedFields+"\r\nbody\r\n", "250 ")
	m, body := delivered(t, dir)
	if got := m.Header["X-Mxguard-Verdict"]; len(got) != 0 {
		t.Errorf("a forged X-Mxguard-Verdict survived: %q", got)
	}
	ars := m.Header["Authentication-Results"]
	if len(ars) != 1 || strings.Contains(ars[0], "bank.test") {
		t.Errorf("Authentication-Results downstream: %q, want only ours", ars)
	}
	if len(m.Header.Get("X-Long")) != 40<<10 {
		t.Errorf("the long field was changed: %d octets", len(m.Header.Get("X-Long")))
	}
	if body != "body\r\n" {
		t.Errorf("body %q", body)
	}
}

// TestHeaderSectionOverLimitRefused sends a header section longer than
// every reader's window (256 KiB): it is refused with 552 whatever the
// rules say, rather than checked in part.
func TestHeaderSectionOverLimitRefused(t *testing.T) {
	field := "X-Filler: " + strings.Repeat("z", 900) + "\r\n"
	head := strings.Repeat(field, (256<<10)/len(field)+1)
	for _, relaxed := range []bool{false, true} {
		listen, dir := headerSplitMxguard(t, relaxed)
		v := openTx(t, "", listen)
		v.data(goodFields+head+forgedFields+"\r\nbody\r\n", "552 5.3.4 ")
		if files, _ := filepath.Glob(filepath.Join(dir, "*.eml")); len(files) != 0 {
			t.Errorf("relaxed=%v: the backend holds %d messages, want none", relaxed, len(files))
		}
	}
}
