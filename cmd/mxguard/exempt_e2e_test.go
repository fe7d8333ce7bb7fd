package main

import (
	"fmt"
	"testing"
)

// TestLimitsExempt: the per-client rate limits and max_connections_per_ip
// do not apply to limits.exempt (loopback by default, as Postfix exempts
// $mynetworks from its client limits), so a load test or a local
// submission service is not throttled; they apply to everyone else.
func TestLimitsExempt(t *testing.T) {
	const limits = `
limits:
  max_connections_per_ip: 2
  rate:
    messages_per_minute: 3
    connections_per_minute: 4
`
	burst := func(t *testing.T, listen, src string) (mails, conns int) {
		t.Helper()
		c := dialConv(t, src, listen)
		c.say("", "220 ")
		c.say("EHLO client.sender.test", "250 ")
		for i := 0; i < 6; i++ {
			if got := c.say("MAIL FROM:<alice@sender.test>", ""); got[:3] != "250" {
				break
			}
			mails++
			c.say("RSET", "250 ")
		}
		// Two more connections held open with the first: over
		// max_connections_per_ip (2) and connections_per_minute (4, with
		// the ones before).
		conns = 1
		for i := 0; i < 3; i++ {
			d := dialConv(t, src, listen)
			if got := d.say("", ""); got[:3] != "220" {
				break
			}
			conns++
		}
		return mails, conns
	}
	t.Run("loopback exempt by default", func(t *testing.T) {
		listen, _ := sinkMxguard(t, limits)
		if mails, conns := burst(t, listen, "127.0.0.1"); mails != 6 || conns != 4 {
			t.Errorf("from 127.0.0.1: %d of 6 MAIL taken, %d of 4 connections, want all", mails, conns)
		}
	})
	t.Run("exempt list", func(t *testing.T) {
		listen, _ := sinkMxguard(t, limits+"  exempt: [127.0.0.2/32]\n")
		if mails, conns := burst(t, listen, "127.0.0.2"); mails != 6 || conns != 4 {
			t.Errorf("from exempt 127.0.0.2: %d of 6 MAIL taken, %d of 4 connections, want all", mails, conns)
		}
		mails, conns := burst(t, listen, "127.0.0.3")
		if got := fmt.Sprint(mails, conns); got != "3 2" {
			t.Errorf("from 127.0.0.3, not exempt: %d MAIL taken, %d connections, want 3 and 2", mails, conns)
		}
	})
}
