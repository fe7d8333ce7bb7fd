package main

import (
	"fmt"
	"strings"
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
	// burst sends six MAILs on one connection, then opens three more
	// connections beside it; it returns how many of each were taken, and
	// the first refusal of each ("" when none).
	burst := func(t *testing.T, listen, src string) (mails, conns int, mailRefused, connRefused string) {
		t.Helper()
		c := dialConv(t, src, listen)
		c.say("", "220 ")
		c.say("EHLO client.sender.test", "250 ")
		for i := 0; i < 6; i++ {
			if got := c.say("MAIL FROM:<alice@sender.test>", ""); got[:3] != "250" {
				mailRefused = got
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
				connRefused = got
				break
			}
			conns++
		}
		return mails, conns, mailRefused, connRefused
	}
	t.Run("loopback exempt by default", func(t *testing.T) {
		listen, _ := sinkMxguard(t, limits)
		if mails, conns, _, _ := burst(t, listen, "127.0.0.1"); mails != 6 || conns != 4 {
			t.Errorf("from 127.0.0.1: %d of 6 MAIL taken, %d of 4 connections, want all", mails, conns)
		}
	})
	t.Run("exempt list", func(t *testing.T) {
		listen, _ := sinkMxguard(t, limits+"  exempt: [127.0.0.2/32]\n")
		if mails, conns, _, _ := burst(t, listen, "127.0.0.2"); mails != 6 || conns != 4 {
			t.Errorf("from exempt 127.0.0.2: %d of 6 MAIL taken, %d of 4 connections, want all", mails, conns)
		}
		mails, conns, mailRefused, connRefused := burst(t, listen, "127.0.0.3")
		if got := fmt.Sprint(mails, conns); got != "3 2" {
			t.Errorf("from 127.0.0.3, not exempt: %d MAIL taken, %d connections, want 3 and 2", mails, conns)
		}
		// RFC 5321 §4.2.5: 451 asks the sender to come back later; 4.7.1
		// says it is policy. The session goes on.
		if want := "451 4.7.1 too many messages per minute from 127.0.0.3, try again later (session "; !strings.HasPrefix(mailRefused, want) {
			t.Errorf("MAIL over the rate from 127.0.0.3: %q, want %q…", mailRefused, want)
		}
		// RFC 5321 §3.8: 421 closes the connection.
		if want := "421 4.7.0 mx.example.org too many connections from your address, try again later"; connRefused != want {
			t.Errorf("connection over max_connections_per_ip from 127.0.0.3: %q, want %q", connRefused, want)
		}
	})
	t.Run("connection rate", func(t *testing.T) {
		// 127.0.0.1 stays exempt, so the harness's probe for the port
		// counts against nothing.
		listen, _ := sinkMxguard(t, limits+"  exempt: [127.0.0.1/32]\n")
		// One at a time, so that only connections_per_minute (4) counts:
		// the server has released each when it closes the connection.
		for i := 0; i < 4; i++ {
			c := dialConv(t, "127.0.0.4", listen)
			c.say("", "220 ")
			c.say("QUIT", "221 ")
			if _, err := c.r.ReadString('\n'); err == nil {
				t.Fatal("the session went on after QUIT")
			}
		}
		c := dialConv(t, "127.0.0.4", listen)
		want := "421 4.7.0 mx.example.org too many connections per minute from 127.0.0.4, try again later"
		if got := c.say("", ""); got != want {
			t.Errorf("the fifth connection in a minute from 127.0.0.4: %q, want %q", got, want)
		}
	})
}
