package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mxguard/checks/resolver/dnstest"
)

// uriblZone is a domain list answering as Spamhaus DBL does.
const uriblZone = `
$ORIGIN dbl.test.
bad.example   A   127.0.1.2
`

// uriblMxguard starts mxguard with the default rules, DNS from a dnstest
// server holding the e2e zones and dbl.test, and dbl.test as a uribl zone.
func uriblMxguard(t *testing.T) (listen, dir string) {
	t.Helper()
	e2e, err := os.ReadFile(corpusPath("zones/e2e.zone"))
	if err != nil {
		t.Fatal(err)
	}
	srv := dnstest.Start(t, string(e2e), uriblZone)
	return sinkMxguard(t, "dns:\n  servers: ["+srv.Addr()+"]\n"+
		"uribl:\n  zones:\n    - zone: dbl.test\n      weight: 10\n      codes: 127.0.1.2-127.0.1.99\n")
}

// TestListedURLRefused: a message linking to a listed domain, behind an
// HTML entity and inside a redirect-looking URL, is refused with 554 5.7.1
// naming the domain; a message whose links are not listed is delivered.
func TestListedURLRefused(t *testing.T) {
	listen, dir := uriblMxguard(t)
	hdr := "From: Alice <alice@sender.test>\r\nTo: user@example.org\r\nSubject: links\r\n" +
		"Date: Mon, 30 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
	listed := hdr + "Message-ID: <listed@sender.test>\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" +
		`<p><a href="https://good.example/redirect?u=https://www.bad&#x2e;example/login">your account</a></p>` + "\r\n"
	v := openTx(t, "", listen)
	got := v.data(listed, "554 ")
	if want := "554 5.7.1 message refused: listed URL domain: bad.example=dbl.test"; !strings.HasPrefix(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}

	clean := hdr + "Message-ID: <clean@sender.test>\r\nContent-Type: text/plain\r\n\r\nsee https://good.example/\r\n"
	v = openTx(t, "", listen)
	if got := v.data(clean, "250 "); !strings.HasPrefix(got, "250 ") {
		t.Errorf("clean message: got %q", got)
	}
	if msgs, _ := storedMessages(t, dir); len(msgs) != 1 {
		t.Errorf("the backend got %d messages, want the clean one", len(msgs))
	}
}

// uriblTempfailRule is the rule docs/rules.md gives a site that would
// rather have mail wait than pass while a URI list cannot answer.
const uriblTempfailRule = `
  - name: uribl-temperror
    stage: data
    when: 'any(uribl.errors, {# endsWith ": temperror"})'
    action: tempfail
    reply: "451 4.4.3 cannot check the message's links now, try again later"
`

// TestURIBLFailedLookup: a URI list that answers SERVFAIL for a listed
// domain is read as dnsbl reads a failed list: not a listing and not a
// temperror, so the default rules deliver the message (uribl.errors says
// what failed, in the verdict log); the rule docs/rules.md gives for
// failing closed answers 451 4.4.3 instead, and the sender retries.
func TestURIBLFailedLookup(t *testing.T) {
	e2e, err := os.ReadFile(corpusPath("zones/e2e.zone"))
	if err != nil {
		t.Fatal(err)
	}
	srv := dnstest.Start(t, string(e2e), uriblZone)
	srv.ServFail("bad.example.dbl.test")
	section := "dns:\n  servers: [" + srv.Addr() + "]\n" +
		"uribl:\n  zones:\n    - zone: dbl.test\n      weight: 10\n      codes: 127.0.1.2-127.0.1.99\n"
	msg := "From: Alice <alice@sender.test>\r\nTo: user@example.org\r\nSubject: links\r\n" +
		"Date: Mon, 30 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nMessage-ID: <failed@sender.test>\r\n" +
		"Content-Type: text/plain\r\n\r\nsee https://www.bad.example/login\r\n"

	listen, dir := sinkMxguard(t, section)
	v := openTx(t, "", listen)
	if got := v.data(msg, "250 "); !strings.HasPrefix(got, "250 ") {
		t.Errorf("default rules: got %q, want 250", got)
	}
	if msgs, _ := storedMessages(t, dir); len(msgs) != 1 {
		t.Errorf("default rules: the backend got %d messages, want 1", len(msgs))
	}

	code, def, errb := runBinary(t, "rules", "default")
	if code != 0 {
		t.Fatalf("rules default: exit %d: %s", code, errb)
	}
	site := strings.Replace(def, "\n  - name: check-temperror", uriblTempfailRule+"\n  - name: check-temperror", 1)
	rulesFile := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rulesFile, []byte(site), 0o600); err != nil {
		t.Fatal(err)
	}
	listen, dir = sinkMxguard(t, "rules: ["+rulesFile+"]\n"+section)
	v = openTx(t, "", listen)
	if got, want := v.data(msg, "451 "), "451 4.4.3 cannot check the message's links now"; !strings.HasPrefix(got, want) {
		t.Errorf("failing closed: got %q, want %q", got, want)
	}
	if msgs, _ := storedMessages(t, dir); len(msgs) != 0 {
		t.Errorf("failing closed: the backend got %d messages, want none", len(msgs))
	}
}
