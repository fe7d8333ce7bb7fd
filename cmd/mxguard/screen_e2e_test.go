package main

import (
	"path/filepath"
	"strings"
	"testing"

	"mxguard/checks/resolver/dnstest"
)

const screenZone = authZone + `
2.0.0.127.bl.test.  IN A   127.0.0.2
2.0.0.127.bl.test.  IN TXT "listed for spam, see https://bl.test/127.0.0.2"
4.0.0.127.bl.test.  IN A   127.255.255.254
`

// TestDNSBL: a listed client is refused at connect with the list named;
// an unlisted one delivers; a SERVFAIL or an error code from the list is
// not a listing.
func TestDNSBL(t *testing.T) {
	dns := dnstest.Start(t, screenZone)
	dns.ServFail("3.0.0.127.bl.test")
	dir := t.TempDir()
	vlog := filepath.Join(dir, "v.jsonl")
	_, listen := startMxguard(t, `
hostname: mx.example.org
listen:
  - address: LISTEN
backend:
  address: "builtin:`+filepath.Join(dir, "mail")+`"
domains: [example.org]
verdict_log: `+vlog+`
dnsbl:
  - zone: bl.test
    weight: 10
    codes: 127.0.0.2-127.0.0.11
dns:
  servers: [`+dns.Addr()+`]
  timeout: 500ms
`)
	listed := dialConv(t, "127.0.0.2", listen)
	got := listed.say("", "554 5.7.1 client 127.0.0.2 is listed by bl.test (session ")
	recs := waitVerdicts(t, vlog, 1)
	if r := recs[0]; r.Action != "reject" || r.Stage != "connect" || r.Reason != "dnsbl" || r.Checks["dnsbl"].Result != "listed" ||
		len(r.Facts.DNSBL.Reasons) != 1 || !strings.Contains(r.Facts.DNSBL.Reasons[0], "listed for spam") {
		t.Fatalf("verdict for a listed client: %+v (reply %q)", r, got)
	}
	for i, src := range []string{"127.0.0.1", "127.0.0.3", "127.0.0.4"} {
		c := dialConv(t, src, listen)
		c.say("", "220 ")
		c.say("EHLO client.sender.test", "250 ")
		c.say("MAIL FROM:<alice@sender.test>", "250 ")
		c.say("RCPT TO:<user@example.org>", "250 ")
		c.data("From: alice@sender.test\r\nSubject: hi\r\n\r\nhello\r\n", "250 2.0.0 Ok: queued")
		c.say("QUIT", "221 ")
		r := waitVerdicts(t, vlog, 2+i)[1+i]
		if r.Facts.DNSBL.Score != 0 || r.Checks["dnsbl"].Result != "none" {
			t.Errorf("%s: dnsbl facts %+v, check %+v", src, r.Facts.DNSBL, r.Checks["dnsbl"])
		}
		if src != "127.0.0.1" && len(r.Facts.DNSBL.Errors) != 1 {
			t.Errorf("%s: the list's failure is not recorded: %+v", src, r.Facts.DNSBL)
		}
	}
}
