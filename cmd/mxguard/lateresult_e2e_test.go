package main

import (
	"strings"
	"testing"
	"time"

	"mxguard/checks/resolver/dnstest"
)

// TestLateCheckResultIsDropped runs mxguard serve (built with -race) with a
// DNS zone whose answers for the sender's domain come after the check
// timeout. The SPF check is then temperror, and its goroutine, which goes
// on until its DNS answer comes, must have nothing to write: the session
// reads the transaction's facts meanwhile (for the next stages, DMARC and
// the verdict line). Any data race the detector sees fails the test.
// slowDNSMxguard starts mxguard in front of the built-in sink, with a
// loopback DNS server whose answers for sender.test come after delay, the
// given check and DNS timeouts, and extra configuration.
func slowDNSMxguard(t *testing.T, delay time.Duration, checkTimeout, dnsTimeout, extra string) (*daemon, string, *dnstest.Server) {
	t.Helper()
	dns := dnstest.StartFiles(t, corpusPath("zones/e2e.zone"))
	dns.Delay("sender.test", delay)
	d, listen := startMxguard(t, `
hostname: mx.example.org
listen:
  - address: LISTEN
backend:
  address: builtin:`+t.TempDir()+`
domains: [example.org]
limits:
  check_timeout: `+checkTimeout+`
dns:
  servers: [`+dns.Addr()+`]
  timeout: `+dnsTimeout+`
`+extra)
	return d, listen, dns
}

func TestLateCheckResultIsDropped(t *testing.T) {
	d, listen, _ := slowDNSMxguard(t, time.Second, "200ms", "3s", "")
	for i := 0; i < 3; i++ {
		c := openTx(t, "", listen)
		c.say("RCPT TO:<other@example.org>", "250 ")
		c.say("DATA", "354 ")
		c.c.Write([]byte("From: alice@sender.test\r\nSubject: slow DNS\r\n\r\nhello\r\n.\r\n"))
		c.say("", "")
		// Let the late lookups finish while the session is still open.
		time.Sleep(1200 * time.Millisecond)
		c.say("QUIT", "221 ")
	}
	time.Sleep(500 * time.Millisecond)
	if out := d.out.String(); strings.Contains(out, "DATA RACE") {
		t.Fatalf("the race detector fired:\n%s", out)
	}
}
