package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDataTimeoutBoundsWholeBDATMessage feeds a message in small BDAT
// chunks, each well within limits.data_timeout but together far past it:
// the timeout bounds the whole message, so the session is closed with 421
// before the last chunk and nothing is delivered.
func TestDataTimeoutBoundsWholeBDATMessage(t *testing.T) {
	listen, dir := sinkMxguard(t, `
limits:
  data_timeout: 1s
  command_timeout: 30s
`)
	c := dialConv(t, "", listen)
	c.say("", "220 ")
	c.say("EHLO client.sender.test", "250 ")
	c.say("MAIL FROM:<alice@sender.test>", "250 ")
	c.say("RCPT TO:<user@example.org>", "250 ")
	chunk := "From: alice@sender.test\r\n"
	start := time.Now()
	var got string
	for i := 0; i < 20 && got == ""; i++ {
		time.Sleep(250 * time.Millisecond)
		fmt.Fprintf(c.c, "BDAT %d\r\n%s", len(chunk), chunk)
		line, err := c.r.ReadString('\n')
		if err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
		if !strings.HasPrefix(line, "250 ") {
			got = strings.TrimSpace(line)
		}
		chunk = "X-Chunk: more\r\n"
	}
	if !strings.HasPrefix(got, "421 4.4.2 ") {
		t.Fatalf("20 chunks over %v with data_timeout 1s: got %q, want the session closed with 421 4.4.2", time.Since(start).Round(time.Millisecond), got)
	}
	if _, err := c.r.ReadString('\n'); err == nil {
		t.Error("the session went on after the 421")
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*.eml")); len(files) != 0 {
		t.Errorf("the backend holds %d messages, want none", len(files))
	}

	// A message sent in chunks within the limit goes through.
	c = dialConv(t, "", listen)
	c.say("", "220 ")
	c.say("EHLO client.sender.test", "250 ")
	c.say("MAIL FROM:<alice@sender.test>", "250 ")
	c.say("RCPT TO:<user@example.org>", "250 ")
	body := "From: alice@sender.test\r\nSubject: chunks\r\n\r\nhello\r\n"
	fmt.Fprintf(c.c, "BDAT 10\r\n%s", body[:10])
	c.say("", "250 ")
	fmt.Fprintf(c.c, "BDAT %d LAST\r\n%s", len(body)-10, body[10:])
	c.say("", "250 ")
	if files, _ := filepath.Glob(filepath.Join(dir, "*.eml")); len(files) != 1 {
		t.Errorf("the backend holds %d messages, want 1", len(files))
	}
}

// TestJunkCommandsEndTheSession sends commands that move nothing forward
// (RSET, NOOP, VRFY): past limits.max_junk_commands each counts as an
// error, so limits.max_errors then closes the session, as Postfix's
// smtpd_junk_command_limit does.
func TestJunkCommandsEndTheSession(t *testing.T) {
	listen, dir := sinkMxguard(t, `
limits:
  max_junk_commands: 6
  max_errors: 3
`)
	c := dialConv(t, "", listen)
	c.say("", "220 ")
	c.say("EHLO client.sender.test", "250 ")
	junk := []string{"NOOP", "RSET", "VRFY user", "NOOP", "HELP", "RSET"}
	for _, cmd := range junk {
		c.say(cmd, "2")
	}
	// A transaction is not junk, and does not reset the count.
	c.say("MAIL FROM:<alice@sender.test>", "250 ")
	c.say("RCPT TO:<user@example.org>", "250 ")
	c.data("From: alice@sender.test\r\n\r\nhello\r\n", "250 ")
	// Three more junk commands are three errors; the fourth passes
	// max_errors.
	for i := 0; i < 3; i++ {
		c.say("NOOP", "250 ")
	}
	c.say("NOOP", "250 ")
	c.say("", "421 4.7.0 ")
	if _, err := c.r.ReadString('\n'); err == nil {
		t.Error("the session went on after the 421")
	}
	// Other sessions are not affected.
	c = dialConv(t, "", listen)
	c.say("", "220 ")
	c.say("EHLO client.sender.test", "250 ")
	c.say("NOOP", "250 ")
	c.say("QUIT", "221 ")
	if files, _ := filepath.Glob(filepath.Join(dir, "*.eml")); len(files) != 1 {
		t.Errorf("the backend holds %d messages, want 1", len(files))
	}
}
