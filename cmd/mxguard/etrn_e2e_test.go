package main

import "testing"

// TestETRNIsAnError sends ETRN, which mxguard does not implement (it has
// no queue to flush, RFC 1985): each one is answered 502 5.5.1 and counts
// as a protocol error at once, not as one of limits.max_junk_commands, so
// limits.max_errors ends a session that repeats it long before the junk
// limit would.
func TestETRNIsAnError(t *testing.T) {
	listen, _ := sinkMxguard(t, `
limits:
  max_junk_commands: 100
  max_errors: 3
`)
	c := dialConv(t, "", listen)
	c.say("", "220 ")
	c.say("EHLO client.sender.test", "250 ")
	for i := 0; i < 3; i++ {
		c.say("ETRN example.org", "502 5.5.1 ETRN not implemented")
	}
	c.say("ETRN example.org", "502 5.5.1 ")
	c.say("", "421 4.7.0 ")
	if _, err := c.r.ReadString('\n'); err == nil {
		t.Error("the session went on after the 421")
	}
}
