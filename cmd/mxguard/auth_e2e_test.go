package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mxguard/checks/resolver/dnstest"
)

// authHarness is mxguard serve with the default rules, the test zone and
// a built-in backend.
type authHarness struct {
	dns    *dnstest.Server
	listen string
	mail   string
	vlog   string
}

func startAuth(t *testing.T) *authHarness {
	t.Helper()
	return startAuthWith(t, "")
}

// startAuthWith is startAuth with more configuration text.
func startAuthWith(t *testing.T, extra string) *authHarness {
	t.Helper()
	h := &authHarness{dns: dnstest.StartFiles(t, corpusPath("zones/auth.zone"))}
	dir := t.TempDir()
	h.mail, h.vlog = filepath.Join(dir, "mail"), filepath.Join(dir, "verdicts.jsonl")
	_, h.listen = startMxguard(t, `
hostname: mx.example.org
listen:
  - address: LISTEN
backend:
  address: "builtin:`+h.mail+`"
domains: [example.org]
verdict_log: `+h.vlog+`
dns:
  servers: [`+h.dns.Addr()+`]
  timeout: 500ms
`+extra)
	return h
}

// send runs one transaction from 127.0.0.1 and returns the end-of-data reply.
func (h *authHarness) send(t *testing.T, from, body, want string) string {
	t.Helper()
	c := dialConv(t, "", h.listen)
	c.say("", "220 ")
	c.say("EHLO client.sender.test", "250 ")
	c.say("MAIL FROM:<"+from+">", "250 ")
	c.say("RCPT TO:<user@example.org>", "250 ")
	r := c.data(body, want)
	c.say("QUIT", "221 ")
	return r
}

func (h *authHarness) stored(t *testing.T) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(h.mail, "*.eml"))
	var out []string
	for _, f := range files {
		b, _ := os.ReadFile(f)
		out = append(out, string(b))
	}
	return out
}

// TestSignedAlignedMessageDelivered relays testdata/messages/signed.eml,
// signed by the corpus key that zones/auth.zone publishes.
func TestSignedAlignedMessageDelivered(t *testing.T) {
	h := startAuth(t)
	// A forged header claiming our authserv-id rides along; it must go.
	body := "Authentication-Results: mx.example.org; dkim=pass header.d=bank.test\r\n" + corpusFile(t, "messages/signed.eml")
	h.send(t, "alice@sender.test", body, "250 2.0.0 Ok: queued")
	got := h.stored(t)
	if len(got) != 1 {
		t.Fatalf("backend holds %d messages", len(got))
	}
	for _, want := range []string{"Authentication-Results: mx.example.org;\r\n\tspf=pass smtp.mailfrom=alice@sender.test;\r\n\tdkim=pass header.d=sender.test header.i=@sender.test;\r\n\tdmarc=pass header.from=sender.test\r\n", "Hello, signed world."} {
		if !strings.Contains(got[0], want) {
			t.Errorf("delivered message lacks %q:\n%s", want, got[0])
		}
	}
	if strings.Count(got[0], "Authentication-Results:") != 1 || strings.Contains(got[0], "bank.test") {
		t.Errorf("the forged Authentication-Results reached the backend:\n%s", got[0])
	}
	recs := waitVerdicts(t, h.vlog, 1)
	if c := recs[0].Checks; c["spf"].Result != "pass" || c["dkim"].Result != "pass" || c["dmarc"].Result != "pass" {
		t.Fatalf("checks in the verdict: %+v", c)
	}
	if f := recs[0].Facts; f.DKIM.Signatures[0].KeyBits != 256 || f.DMARC.Policy != "reject" || !f.DMARC.SPFAligned || !f.DMARC.DKIMAligned {
		t.Fatalf("facts in the verdict: %+v %+v", f.DKIM, f.DMARC)
	}
}

func TestSpoofingRefused(t *testing.T) {
	h := startAuth(t)
	cases := []struct{ file, from, want string }{
		// p=reject From domain, unauthorised IP, unsigned.
		{"spoofed-from.eml", "ceo@bank.test", "550 5.7.1 message refused: the DMARC policy of the From domain says reject"},
		// Our own domain, from outside, with an envelope that passes SPF.
		{"own-domain.eml", "alice@sender.test", "550 5.7.1 message refused: the From domain is ours"},
		{"two-from.eml", "alice@sender.test", "550 5.7.1 message refused: the From header must hold exactly one address"},
		{"two-from-addresses.eml", "alice@sender.test", "550 5.7.1 message refused: the From header must hold exactly one address"},
		{"no-from.eml", "alice@sender.test", "550 5.7.1 message refused: the From header must hold exactly one address"},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) { h.send(t, c.from, corpusFile(t, "messages/"+c.file), c.want) })
	}
	// p=quarantine: delivered, marked.
	h.send(t, "x@soft.test", corpusFile(t, "messages/dmarc-quarantine.eml"), "250 2.0.0 Ok: queued")
	got := h.stored(t)
	if len(got) != 1 || !strings.Contains(got[0], "X-Mxguard-Quarantine: yes") || !strings.Contains(got[0], "dmarc=fail header.from=soft.test") {
		t.Fatalf("backend holds %d messages, want only the quarantined one, marked:\n%s", len(got), strings.Join(got, "\n----\n"))
	}
}

// A SERVFAIL for the sender's domain is a temporary failure: 451, never a
// 5xx and never a pass.
func TestServfailIsTempfail(t *testing.T) {
	h := startAuth(t)
	h.dns.ServFail("broken.test")
	h.dns.ServFail("_dmarc.broken.test")
	h.send(t, "x@broken.test", "From: x@broken.test\r\nSubject: s\r\n\r\nbody\r\n", "451 4.7.5 temporary failure while checking the message")
	h.dns.Drop("_dmarc.sender.test")
	h.send(t, "alice@sender.test", "From: alice@sender.test\r\n\r\nbody\r\n", "451 4.7.5")
	if n := len(h.stored(t)); n != 0 {
		t.Fatalf("backend holds %d messages", n)
	}
	recs := waitVerdicts(t, h.vlog, 2)
	if recs[0].Checks["dmarc"].Result != "temperror" || recs[0].Reason != "check-temperror" {
		t.Fatalf("verdict %+v", recs[0])
	}
}
