package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"mxguard/checks/resolver/dnstest"
	"mxguard/internal/testrspamd"
)

// rspamdMessage is a message from alice@sender.test with the subject
// given (where the test rspamd's markers go).
func rspamdMessage(id, subject string) string {
	return "From: Alice <alice@sender.test>\r\nTo: user@example.org\r\nSubject: " + subject + "\r\n" +
		"Date: Mon, 30 Nov 2026 10:00:00 +0000\r\nMessage-ID: <" + id + "@sender.test>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\nThe figures for November are attached to the shared folder.\r\n" +
		"..a line that starts with a dot, and one with trailing space \r\n"
}

// unstuff undoes the dot-stuffing of a message as sent after DATA.
func unstuff(wire string) string { return strings.ReplaceAll(wire, "\r\n..", "\r\n.") }

// Spam through serve, with the default rules and a real rspamd: its
// reject refused with 554 5.7.1 naming the score, its soft reject
// answered 451 4.7.1, its add header delivered marked for the junk folder,
// a clean message delivered byte for byte. rspamd is told the envelope
// (both recipients), and the verdict log has its answer, from which
// replay decides as serve did.
func TestRspamdThroughServe(t *testing.T) {
	rspamd := testrspamd.Shared(t)
	vlog := filepath.Join(t.TempDir(), "verdicts.jsonl")
	listen, dir := sinkMxguard(t, "verdict_log: "+vlog+"\nrspamd:\n  url: "+rspamd.URL()+"\n")

	conn := openTx(t, "127.0.0.1", listen)
	got := conn.data(rspamdMessage("reject", "offer "+testrspamd.RejectMarker), "554 5.7.1 ")
	if !strings.Contains(got, "message refused by content scanner (score 20.5 / 15)") {
		t.Errorf("reject: reply %q does not give rspamd's score", got)
	}
	conn.say("QUIT", "221 ")

	conn = openTx(t, "127.0.0.1", listen)
	conn.data(rspamdMessage("soft", "offer "+testrspamd.SoftMarker), "451 4.7.1 ")
	conn.say("QUIT", "221 ")

	conn = openTx(t, "127.0.0.1", listen)
	conn.say("RCPT TO:<other@example.org>", "250 ")
	spam := rspamdMessage("spam", "offer "+testrspamd.SpamMarker+" "+testrspamd.EnvelopeMarker)
	conn.data(spam, "250 ")
	conn.say("QUIT", "221 ")

	clean := rspamdMessage("clean", "November figures")
	conn = openTx(t, "127.0.0.1", listen)
	conn.data(clean, "250 ")
	conn.say("QUIT", "221 ")

	recs := waitVerdicts(t, vlog, 4)
	for i, want := range []struct{ action, reason, rspamdAction string }{
		{"reject", "rspamd-reject", "reject"},
		{"tempfail", "rspamd-soft-reject", "soft reject"},
		{"quarantine", "rspamd-spam", "add header"},
		{"accept", "", "no action"},
	} {
		r := recs[i]
		if r.Action != want.action || r.Reason != want.reason || r.Checks["rspamd"].Result != "scanned" ||
			r.Facts == nil || r.Facts.Rspamd.Action != want.rspamdAction {
			t.Errorf("message %d: logged as %s by %q, rspamd %+v, want %s by %q (rspamd %s)",
				i, r.Action, r.Reason, r.Checks["rspamd"], want.action, want.reason, want.rspamdAction)
		}
	}
	// No PTR is known for 127.0.0.1 here (no rule reads rdns): no
	// Hostname; every other part of the envelope reached rspamd.
	wantSyms := []string{"MXGUARD_ENV_FROM", "MXGUARD_ENV_HELO", "MXGUARD_ENV_IP", "MXGUARD_ENV_QUEUE_ID", "MXGUARD_ENV_RCPTS", testrspamd.SpamSymbol}
	if r := recs[2]; r.Facts == nil || !slices.Equal(r.Facts.Rspamd.Symbols, wantSyms) {
		t.Errorf("the envelope as rspamd saw it: symbols %v, want %v", r.Facts.Rspamd.Symbols, wantSyms)
	}
	out, err := exec.Command(binary, "rules", "replay", "--log", vlog, "../../rules/default.yaml").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "0 would change") {
		t.Errorf("replay: %v\n%s", err, out)
	}

	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	if len(files) != 2 {
		t.Fatalf("the sink holds %d messages, want the spam (marked) and the clean one", len(files))
	}
	// The line that starts with a dot went dot-stuffed on the wire
	// (RFC 5321 §4.5.2); the backend gets it as it was written.
	spam, clean = unstuff(spam), unstuff(clean)
	var sawSpam, sawClean bool
	for _, f := range files {
		stored, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		header := stored[:bytes.Index(stored, []byte("\r\n\r\n"))]
		switch {
		case bytes.HasSuffix(stored, []byte(spam)):
			sawSpam = true
			if !bytes.Contains(header, []byte("X-Mxguard-Quarantine: yes")) {
				t.Errorf("rspamd's add header was delivered without X-Mxguard-Quarantine:\n%s", header)
			}
		case bytes.HasSuffix(stored, []byte(clean)):
			// The sink and mxguard add header fields above the message:
			// the message itself follows, unchanged.
			sawClean = true
			if bytes.Contains(header, []byte("X-Mxguard-Quarantine")) {
				t.Errorf("the clean message is marked:\n%s", header)
			}
		}
	}
	if !sawSpam || !sawClean {
		t.Errorf("delivered byte for byte: spam %v, clean %v", sawSpam, sawClean)
	}
}

// rspamd goes away: the message is held with 451 (the default rules'
// check-temperror), never passed unscanned; once rspamd is back, the same
// message is delivered.
func TestRspamdDownTempfails(t *testing.T) {
	rspamd := testrspamd.Start(t)
	vlog := filepath.Join(t.TempDir(), "verdicts.jsonl")
	listen, dir := sinkMxguard(t, "verdict_log: "+vlog+"\nrspamd:\n  url: "+rspamd.URL()+"\n  timeout: 5s\n")
	msg := rspamdMessage("retry", "hello")

	rspamd.Stop()
	conn := openTx(t, "127.0.0.1", listen)
	conn.data(msg, "451 4.7.5 ")
	conn.say("QUIT", "221 ")
	if files, _ := filepath.Glob(filepath.Join(dir, "*.eml")); len(files) != 0 {
		t.Fatalf("a message was delivered while rspamd was down")
	}

	rspamd.Restart(t)
	conn = openTx(t, "127.0.0.1", listen)
	conn.data(msg, "250 ")
	conn.say("QUIT", "221 ")

	recs := waitVerdicts(t, vlog, 2)
	if r := recs[0]; r.Reason != "check-temperror" || r.Checks["rspamd"].Result != "temperror" || !strings.Contains(r.Checks["rspamd"].Detail, rspamd.URL()) {
		t.Errorf("rspamd down: logged as %s by %s, rspamd %+v", r.Action, r.Reason, r.Checks["rspamd"])
	}
	if r := recs[1]; r.Action != "accept" || r.Checks["rspamd"].Result != "scanned" {
		t.Errorf("rspamd back: logged as %s by %s, rspamd %+v", r.Action, r.Reason, r.Checks["rspamd"])
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*.eml")); len(files) != 1 {
		t.Errorf("the sink holds %d messages, want 1", len(files))
	}
}

// "mxguard check" with a config that names rspamd shows its answer:
// action, score and symbols, and the verdict serve would give.
func TestCheckShowsRspamd(t *testing.T) {
	rspamd := testrspamd.Shared(t)
	dns := dnstest.StartFiles(t, corpusPath("zones/e2e.zone"))
	dir := t.TempDir()
	cfg := filepath.Join(dir, "mxguard.yaml")
	if err := os.WriteFile(cfg, []byte(`hostname: mx.example.org
listen:
  - address: 127.0.0.1:2525
backend:
  address: 127.0.0.1:2526
domains: [example.org]
dns:
  servers: [`+dns.Addr()+`]
rspamd:
  url: `+rspamd.URL()+`
`), 0o600); err != nil {
		t.Fatal(err)
	}
	eml := filepath.Join(dir, "m.eml")
	if err := os.WriteFile(eml, []byte(rspamdMessage("check", "offer "+testrspamd.RejectMarker)), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errb := runBinary(t, "check", "--config", cfg, "--client-ip", "127.0.0.1", "--helo", "c.sender.test",
		"--mail-from", "alice@sender.test", "--rcpt", "user@example.org", eml)
	if code != 0 {
		t.Fatalf("exit %d:\n%s\n%s", code, out, errb)
	}
	for _, want := range []string{"rspamd:\n", "  action   reject\n", "  score    20.5 / 15\n", "  symbols  " + testrspamd.RejectSymbol + "\n",
		"final: reject at data (rspamd-reject): 554 5.7.1 message refused by content scanner (score 20.5 / 15)"} {
		if !strings.Contains(out, want) {
			t.Errorf("check does not show %q:\n%s", want, out)
		}
	}
}
