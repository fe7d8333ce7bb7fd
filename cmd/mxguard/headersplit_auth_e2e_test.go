package main

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
)

// TestFieldsAfterNonFieldLineAreBody puts a From and a DKIM-Signature
// (a real one, by bank.test, whose DMARC policy is reject) after a line
// that is not a header field, with no empty line before it. mxguard's
// header section ends at that line: DMARC, DKIM and the header checks do
// not read the later fields, and the backend gets an empty line inserted
// before it, so every reader downstream splits the message where mxguard
// did. The same signed fields as a message of their own pass DKIM and
// DMARC: what is shown is where the section ends, not a bad signature.
func TestFieldsAfterNonFieldLineAreBody(t *testing.T) {
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte(monitorRules), 0o600); err != nil {
		t.Fatal(err)
	}
	h := startAuthWith(t, "rules: ["+rules+"]\n")
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	h.dns.AddZone("sel._domainkey.bank.test. 300 IN TXT \"v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub) + "\"")
	var forged bytes.Buffer
	if err := dkim.Sign(&forged, strings.NewReader("From: CEO <ceo@bank.test>\r\nSubject: wire\r\n\r\npay now\r\n"),
		&dkim.SignOptions{Domain: "bank.test", Selector: "sel", Signer: priv, Hash: crypto.SHA256}); err != nil {
		t.Fatal(err)
	}
	forgedHead, _, _ := strings.Cut(forged.String(), "\r\n\r\n")
	forgedHead += "\r\n"

	// The control: the forged fields as a message's header pass DKIM and
	// DMARC for bank.test.
	h.send(t, "alice@bank.test", forged.String(), "250 ")
	ctl := waitVerdicts(t, h.vlog, 1)[0].Facts
	if ctl.DKIM.Result != "pass" || ctl.DMARC.Result != "pass" || ctl.From.Domain != "bank.test" {
		t.Fatalf("the forged fields as a header should pass DKIM and DMARC for bank.test: dkim %+v dmarc %+v from %+v", ctl.DKIM, ctl.DMARC, ctl.From)
	}

	const nonField = "this line is not a field\r\n"
	head := "From: alice@sender.test\r\nTo: user@example.org\r\nSubject: split\r\nMessage-ID: <split-auth@sender.test>\r\n"
	h.send(t, "alice@sender.test", head+nonField+forgedHead+"\r\npay now\r\n", "250 ")
	rec := waitVerdicts(t, h.vlog, 2)[1]
	f := rec.Facts
	if f.Headers.Malformed == 0 {
		t.Errorf("headers.malformed is 0: the line without a colon was not seen")
	}
	if f.DKIM.Result != "none" || len(f.DKIM.Signatures) != 0 {
		t.Errorf("DKIM read a signature after the end of the header section: %+v", f.DKIM)
	}
	if f.DMARC.Result != "pass" || f.From.Domain != "sender.test" {
		t.Errorf("DMARC read a From after the end of the header section: dmarc %+v from %+v", f.DMARC, f.From)
	}
	if f.Headers.FromCount != 1 || f.Headers.FromAddresses != 1 || slices.Contains(f.Headers.Duplicates, "From") {
		t.Errorf("the header checks read a From after the end of the header section: %+v", f.Headers)
	}
	if f.Headers.FromDisplay != "" {
		t.Errorf("the header checks read the later From's display name %q", f.Headers.FromDisplay)
	}

	var msg string
	for _, m := range h.stored(t) {
		if strings.Contains(m, "<split-auth@sender.test>") {
			msg = m
		}
	}
	if msg == "" {
		t.Fatal("the backend does not hold the message")
	}
	delivered, body, _ := strings.Cut(msg, "\r\n\r\n")
	if !strings.HasSuffix(delivered, "Message-ID: <split-auth@sender.test>") {
		t.Errorf("the backend's header section does not end before the line that is not a field:\n%s", delivered)
	}
	if !strings.HasPrefix(body, nonField+forgedHead) {
		t.Errorf("the backend's body should start with the line that is not a field and the forged fields, got:\n%.500s", body)
	}
	for _, name := range []string{"DKIM-Signature:", "From: CEO"} {
		if strings.Contains(delivered, name) {
			t.Errorf("%s is in the header section the backend gets:\n%s", name, delivered)
		}
	}
}
