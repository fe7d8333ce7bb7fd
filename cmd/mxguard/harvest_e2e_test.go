package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Harvesting over time through serve, with the default rules: a client
// that tries four unknown recipients per session (under the per-session
// limit of five) is counted across its sessions in the state store; once
// it has tried 20, its next session's recipients, the known one too, get
// 451. Each verdict line carries the count its transaction began with.
// mxguard check with the same config decides without touching the count,
// and replay of the log decides the same from the logged values.
func TestHarvestAcrossSessionsThroughServe(t *testing.T) {
	tmp := t.TempDir()
	vlog := filepath.Join(tmp, "verdicts.jsonl")
	rcpts := filepath.Join(tmp, "recipients")
	if err := os.WriteFile(rcpts, []byte("user@example.org\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stateDir := filepath.Join(tmp, "state")
	d, listen := startMxguard(t, `
hostname: mx.example.org
listen:
  - address: LISTEN
backend:
  address: builtin:`+t.TempDir()+`
domains: [example.org]
verdict_log: `+vlog+`
state:
  dir: `+stateDir+`
limits:
  exempt: []
recipients:
  verify: file
  file: `+rcpts+`
harvest:
  window: 1h
`)
	cfgPath := d.cmd.Args[len(d.cmd.Args)-1]
	guess := 0
	session := func(unknown int, knownWant string) {
		t.Helper()
		c := dialConv(t, "127.0.0.9", listen)
		c.say("", "220 ")
		c.say("EHLO client.sender.test", "250 ")
		c.say("MAIL FROM:<alice@sender.test>", "250 ")
		for range unknown {
			guess++
			c.say(fmt.Sprintf("RCPT TO:<guess%d@example.org>", guess), "550 5.1.1 ")
		}
		got := c.say("RCPT TO:<user@example.org>", knownWant)
		if strings.HasPrefix(got, "250") {
			c.data("From: alice@sender.test\r\nSubject: hi\r\nMessage-ID: <h"+fmt.Sprint(guess)+"@sender.test>\r\n\r\nhello\r\n", "250 ")
		} else {
			c.say("RSET", "250 ")
		}
		c.say("QUIT", "221 ")
	}
	for range 5 {
		session(4, "250 ")
	}
	// mxguard check, same config, same client, four more unknown
	// recipients: it decides without a store and counts nothing.
	msg := filepath.Join(tmp, "m.eml")
	if err := os.WriteFile(msg, []byte("From: alice@sender.test\r\nSubject: hi\r\n\r\nhello\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"check", "--config", cfgPath, "--client-ip", "127.0.0.9", "--helo", "client.sender.test", "--mail-from", "alice@sender.test"}
	for i := range 4 {
		args = append(args, "--rcpt", fmt.Sprintf("checked%d@example.org", i))
	}
	if out, err := exec.Command(binary, append(args, msg)...).CombinedOutput(); err != nil && !strings.Contains(string(out), "550 5.1.1") {
		t.Fatalf("mxguard check: %v\n%s", err, out)
	}
	// 20 unknown recipients now: the next session is refused, its known
	// recipient too.
	session(0, "451 4.7.1 too many unknown recipients from 127.0.0.9")
	// Another client is not concerned.
	c := dialConv(t, "127.0.0.10", listen)
	c.say("", "220 ")
	c.say("EHLO other.sender.test", "250 ")
	c.say("MAIL FROM:<bob@sender.test>", "250 ")
	c.say("RCPT TO:<user@example.org>", "250 ")
	c.say("QUIT", "221 ")

	recs := waitVerdicts(t, vlog, 7)
	for i, want := range []int{0, 4, 8, 12, 16, 20} {
		if got := recs[i].Facts.Harvest.UnknownRcpts; got != want {
			t.Errorf("session %d's line: harvest.unknown_rcpts %d, want %d (check must not count)", i+1, got, want)
		}
	}
	if r := recs[5]; r.Action != "tempfail" || r.Reason != "harvesting-window" || r.Checks["harvest"].Result != "seen" {
		t.Errorf("the sixth session's line: %s by %s, harvest %+v", r.Action, r.Reason, r.Checks["harvest"])
	}
	out, err := exec.Command(binary, "state", "list", "--config", cfgPath, "--prefix", "harvest:").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "harvest:127.0.0.9\t20\t") {
		t.Errorf("mxguard state list: %v\n%s", err, out)
	}
	out, err = exec.Command(binary, "rules", "replay", "--log", vlog, "../../rules/default.yaml").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "0 would change") {
		t.Errorf("replay: %v\n%s", err, out)
	}
}
