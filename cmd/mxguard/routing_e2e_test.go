package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"mxguard/internal/testpostfix"
)

// routedRecipients are local parts that ask the next MTA to relay
// elsewhere (RFC 5321 §3.6.1 and appendix C: the percent hack, bang paths
// and a quoted "@"). A backend that rewrites them, as Postfix does by
// default (allow_percent_hack, swap_bangpath), would relay the message to
// evil.test on our behalf.
var routedRecipients = []string{
	"user%evil.test@example.org",
	"USER%EVIL.TEST@EXAMPLE.ORG",
	`"user@evil.test"@example.org`,
	`"user\@evil.test"@example.org`,
	`"user%evil.test"@example.org`,
	"evil.test!user@example.org",
	`"evil.test!user"@example.org`,
	"a%b%evil.test@example.org",
	"@relay.test:user%evil.test@example.org",
}

// TestRoutingInLocalPartRefused sends each form of sender-specified routing
// to mxguard over a raw socket: each is refused with 550 5.7.1 and nothing
// reaches the backend, while a source route (RFC 5321 §4.1.1.3: stripped)
// and an ordinary recipient are delivered.
func TestRoutingInLocalPartRefused(t *testing.T) {
	listen, dir := sinkMxguard(t, "")
	c := dialConv(t, "", listen)
	c.say("", "220 ")
	c.say("EHLO client.sender.test", "250 ")
	c.say("MAIL FROM:<alice@sender.test>", "250 ")
	for _, r := range routedRecipients {
		got := c.say("RCPT TO:<"+r+">", "550 5.7.1 ")
		if !strings.Contains(got, "(session ") {
			t.Errorf("RCPT TO:<%s>: %q carries no session id", r, got)
		}
	}
	c.say("RCPT TO:<@relay.test:user@example.org>", "250 ")
	c.say("RCPT TO:<other@example.org>", "250 ")
	c.data("From: alice@sender.test\r\nSubject: routing\r\n\r\nhello\r\n", "250 ")
	c.say("QUIT", "221 ")

	m, _ := delivered(t, dir)
	if rcpts := m.Header["Delivered-To"]; fmt.Sprint(rcpts) != "[user@example.org other@example.org]" {
		t.Errorf("the backend got recipients %q, want user@example.org (source route dropped) and other@example.org", rcpts)
	}
}

// TestRoutingNotRelayedByPostfix puts a real Postfix behind mxguard with
// XFORWARD: Postfix trusts mxguard's address (mynetworks) and rewrites
// user%evil.test@example.org to user@evil.test, so whatever mxguard lets
// through is relayed to evil.test. Postfix's relay transport is a loopback
// sink, which stands for the whole internet here: nothing addressed to
// evil.test may reach it.
func TestRoutingNotRelayedByPostfix(t *testing.T) {
	sk, final := postfixSink(t)
	// example.org is Postfix's own destination, as on a mail store: its
	// percent hack and bang-path swap apply (the defaults), and what it
	// delivers "locally" goes to the sink too.
	pf := testpostfix.Start(t, testpostfix.Options{RelayTo: sk.Addr(), XForwardHosts: "127.0.0.0/8",
		Extra: map[string]string{"mydestination": "example.org", "local_transport": "relay:[" + strings.Replace(sk.Addr(), ":", "]:", 1)}})
	_, listen := startMxguard(t, `
hostname: mx.example.org
listen:
  - address: LISTEN
backend:
  address: `+pf.Addr+`
  forward_client: xforward
domains: [example.org]
`)
	for _, r := range routedRecipients {
		c := dialConv(t, "", listen)
		c.say("", "220 ")
		c.say("EHLO client.sender.test", "250 ")
		c.say("MAIL FROM:<alice@sender.test>", "250 ")
		c.say("RCPT TO:<"+r+">", "550 5.7.1 ")
		// A message for a legitimate recipient in the same transaction
		// is delivered; the refused one is not carried along.
		c.say("RCPT TO:<user@example.org>", "250 ")
		c.data("From: alice@sender.test\r\nSubject: routing "+r+"\r\n\r\nhello\r\n", "250 ")
		c.say("QUIT", "221 ")
	}
	want := len(routedRecipients)
	deadline := time.Now().Add(30 * time.Second)
	for sk.Count() < int64(want) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	msgs, _ := storedMessages(t, final)
	if len(msgs) != want {
		t.Fatalf("the sink behind Postfix holds %d messages, want %d\npostfix log:\n%s", len(msgs), want, pf.Log())
	}
	for _, m := range msgs {
		for _, r := range m.Header["Delivered-To"] {
			if r != "user@example.org" {
				t.Errorf("Postfix relayed to %q", r)
			}
		}
	}
	if log := pf.Log(); strings.Contains(strings.ToLower(log), "evil.test") {
		t.Errorf("Postfix saw evil.test:\n%s", log)
	}
}
