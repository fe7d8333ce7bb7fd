package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Greylisting through serve with the default rules: a new triplet is told
// to retry with the time to wait; a retry after the delay passes, from
// another address of the client's /24 too; once a network passed, its
// other triplets pass; a client whose SPF passes is not delayed. Replay of
// the log decides the same from the logged answers, without a store.
func TestGreylistThroughServe(t *testing.T) {
	vlog := filepath.Join(t.TempDir(), "verdicts.jsonl")
	listen, dir := sinkMxguard(t, "verdict_log: "+vlog+`
limits:
  exempt: []
greylist:
  enabled: true
  delay: 1s
`)
	send := func(src, from, rcpt, want string) string {
		t.Helper()
		c := dialConv(t, src, listen)
		c.say("", "220 ")
		c.say("EHLO client.example.net", "250 ")
		c.say("MAIL FROM:<"+from+">", "250 ")
		got := c.say("RCPT TO:<"+rcpt+">", want)
		if strings.HasPrefix(got, "250") {
			c.data("Subject: t\r\nFrom: <"+from+">\r\nMessage-ID: <"+src+rcpt+"@t>\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n\r\nhi\r\n", "250 ")
		}
		c.say("QUIT", "221 ")
		return got
	}
	// sender.test's SPF passes for 127.0.0.0/8: not delayed.
	send("127.0.0.2", "alice@sender.test", "user@example.org", "250 ")
	// nospf.test has no SPF record: its first attempt is greylisted.
	got := send("127.0.0.2", "bob@nospf.test", "user@example.org", "451 4.7.1 ")
	if !strings.Contains(got, "try again in 1 seconds") {
		t.Errorf("greylist reply %q does not say how long to wait", got)
	}
	// Once the delay has passed, the sender's retry comes from another
	// address of its pool, with a new BATV tag.
	time.Sleep(1100 * time.Millisecond)
	send("127.0.0.3", "prvs=1234abcdef=bob@nospf.test", "user@example.org", "250 ")
	// The network passed: another triplet from it is not delayed.
	send("127.0.0.4", "carol@nospf.test", "other@example.org", "250 ")

	recs := waitVerdicts(t, vlog, 4)
	if r := recs[1].Checks["greylist <user@example.org>"]; r.Result != "new" || recs[1].Action != "tempfail" || recs[1].Reason != "greylist" {
		t.Errorf("first attempt logged as %+v, %s by %s", r, recs[1].Action, recs[1].Reason)
	}
	if r := recs[2].Checks["greylist <user@example.org>"]; r.Result != "passed" || recs[2].Action != "accept" {
		t.Errorf("retry logged as %+v, %s", r, recs[2].Action)
	}
	if r := recs[3].Checks["greylist <other@example.org>"]; r.Result != "known" {
		t.Errorf("known network logged as %+v", r)
	}
	if msgs, _ := storedMessages(t, dir); len(msgs) != 3 {
		t.Errorf("the sink holds %d messages, want 3", len(msgs))
	}
	// Replay decides from the log: nothing would change.
	out, err := exec.Command(binary, "rules", "replay", "--log", vlog, "../../rules/default.yaml").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "0 would change") {
		t.Errorf("replay: %v\n%s", err, out)
	}
}
