package main

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"

	"mxguard/policy"
)

// TestCheckAgreesWithServe sends a corpus of messages through mxguard
// serve and puts the same messages, envelopes and client through mxguard
// check with the same configuration: both must reach the same action, by
// the same rules, with the same reply.
func TestCheckAgreesWithServe(t *testing.T) {
	h := startAuth(t)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	h.dns.AddZone("sel._domainkey.sender.test. 300 IN TXT \"v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub) + "\"")
	sign := func(msg string) string {
		var b bytes.Buffer
		if err := dkim.Sign(&b, strings.NewReader(msg), &dkim.SignOptions{Domain: "sender.test", Selector: "sel", Signer: priv, Hash: crypto.SHA256}); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	date := "Date: Mon, 30 Nov 2026 07:00:00 +0000\r\n"
	corpus := []struct{ name, from, msg string }{
		{"signed", "alice@sender.test", sign("From: Alice <alice@sender.test>\r\n" + date + "Message-ID: <a1@sender.test>\r\nSubject: signed\r\n\r\nsigned\r\n")},
		{"spoofed", "ceo@bank.test", "From: ceo@bank.test\r\n" + date + "Message-ID: <a2@bank.test>\r\nSubject: pay\r\n\r\npay\r\n"},
		{"own domain", "alice@sender.test", "From: boss@example.org\r\n" + date + "Message-ID: <a3@sender.test>\r\nSubject: own\r\n\r\nown\r\n"},
		{"quarantine policy", "x@soft.test", "From: x@soft.test\r\n" + date + "Message-ID: <a4@soft.test>\r\nSubject: soft\r\n\r\nsoft\r\n"},
		{"two From", "alice@sender.test", "From: alice@sender.test\r\nFrom: ceo@bank.test\r\n" + date + "Message-ID: <a5@sender.test>\r\n\r\ntwo\r\n"},
		{"display-name spoof", "alice@sender.test", "From: \"ceo@bank.test\" <alice@sender.test>\r\n" + date + "Message-ID: <a6@sender.test>\r\n\r\nspoof\r\n"},
		{"duplicated fields", "alice@sender.test", "From: alice@sender.test\r\n" + date + "Message-ID: <a7@sender.test>\r\nSubject: one\r\nSubject: two\r\n\r\ndup\r\n"},
		{"org-domain fallback", "x@mail.bank.test", "From: x@mail.bank.test\r\n" + date + "Message-ID: <a8@bank.test>\r\n\r\norg\r\n"},
		{"no Date, no Message-ID", "alice@sender.test", "From: alice@sender.test\r\n\r\nbare\r\n"},
		{"malformed header", "alice@sender.test", "From: alice@sender.test\r\n" + date + "Message-ID: <a10@sender.test>\r\nnot a field\r\n\r\nx\r\n"},
		{"bare LF", "alice@sender.test", "From: alice@sender.test\r\n" + date + "Message-ID: <a11@sender.test>\r\n\r\nbare\nLF\r\n"},
		{"pct 50", "x@pct50.test", "From: x@pct50.test\r\n" + date + "Message-ID: <a12@pct50.test>\r\n\r\nhalf\r\n"},
	}
	cfg := filepath.Join(t.TempDir(), "check.yaml")
	os.WriteFile(cfg, []byte("hostname: mx.example.org\nlisten: [{address: 127.0.0.1:2525}]\nbackend: {address: \"builtin:"+t.TempDir()+"\"}\n"+
		"domains: [example.org]\ndns: {servers: ["+h.dns.Addr()+"], timeout: 500ms}\n"), 0o600)
	for i, c := range corpus {
		h.send(t, c.from, c.msg, "")
		served := waitVerdicts(t, h.vlog, i+1)[i]
		eml := filepath.Join(t.TempDir(), "m.eml")
		os.WriteFile(eml, []byte(c.msg), 0o600)
		var out, errb strings.Builder
		if code := run([]string{"check", "--config", cfg, "--json", "--client-ip", "127.0.0.1", "--helo", "client.sender.test",
			"--mail-from", c.from, "--rcpt", "user@example.org", eml}, &out, &errb); code != 0 {
			t.Fatalf("%s: check exit %d: %s", c.name, code, errb.String())
		}
		var checked policy.Record
		if err := json.Unmarshal([]byte(out.String()), &checked); err != nil {
			t.Fatalf("%s: check output: %v: %q", c.name, err, out.String())
		}
		if got, want := summary(checked), summary(served); got != want {
			t.Errorf("%s: check and serve disagree\n check: %s\n serve: %s", c.name, got, want)
		}
	}
}

// summary is what check and serve must agree on: the action, the rules
// that matched, and the reply's code (serve's reply after a 2xx is the
// backend's; check has none).
func summary(r policy.Record) string {
	var rules []string
	for _, m := range r.Rules {
		rules = append(rules, m.Name+"/"+m.Mode)
	}
	code, _, _ := strings.Cut(r.Reply, " ")
	if strings.HasPrefix(code, "2") || strings.HasPrefix(r.Reply, "(") {
		code = "2xx"
	}
	return fmt.Sprintf("%s at %s (%s) %s rules %v", r.Action, r.Stage, r.Reason, code, rules)
}
