package main

import (
	"testing"
	"time"
)

// TestRestartKeepsState: with the embedded store (the default), a restart
// of serve keeps the greylist and the rate limits: a triplet first seen
// before the restart passes when retried after it, and a client that used
// its message allowance is still limited.
func TestRestartKeepsState(t *testing.T) {
	stateDir, sink := t.TempDir(), t.TempDir()
	cfg := `
hostname: mx.example.org
listen:
  - address: LISTEN
backend:
  address: builtin:` + sink + `
domains: [example.org]
limits:
  exempt: []
  rate:
    messages_per_minute: 2
greylist:
  enabled: true
  delay: 1s
state:
  dir: ` + stateDir + `
`
	d, listen := startMxguard(t, cfg)
	c := dialConv(t, "127.0.0.2", listen)
	c.say("", "220 ")
	c.say("EHLO client.example.net", "250 ")
	c.say("MAIL FROM:<bob@nospf.test>", "250 ")
	c.say("RCPT TO:<user@example.org>", "451 4.7.1 greylisted")
	c.say("RSET", "250 ")
	c.say("MAIL FROM:<bob@nospf.test>", "250 ")
	c.say("RSET", "250 ")
	c.say("MAIL FROM:<bob@nospf.test>", "451 4.7.1 too many messages per minute from 127.0.0.2")
	c.say("QUIT", "221 ")
	d.stop()
	if d.cmd.ProcessState == nil || !d.cmd.ProcessState.Success() {
		t.Fatalf("serve did not stop cleanly: %v", d.cmd.ProcessState)
	}

	time.Sleep(1100 * time.Millisecond)
	_, listen = startMxguard(t, cfg)
	c = dialConv(t, "127.0.0.2", listen)
	c.say("", "220 ")
	c.say("EHLO client.example.net", "250 ")
	// Still over its allowance: the limit outlived the process.
	c.say("MAIL FROM:<bob@nospf.test>", "451 4.7.1 too many messages per minute from 127.0.0.2")
	c.say("QUIT", "221 ")
	// Another address of the pool retries the greylisted triplet: the
	// first attempt, made before the restart, counts.
	c = dialConv(t, "127.0.0.3", listen)
	c.say("", "220 ")
	c.say("EHLO client.example.net", "250 ")
	c.say("MAIL FROM:<bob@nospf.test>", "250 ")
	c.say("RCPT TO:<user@example.org>", "250 ")
	c.say("QUIT", "221 ")
}
