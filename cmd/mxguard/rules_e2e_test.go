package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mxguard/checks/resolver/dnstest"
	"mxguard/policy"
)

// conv is a scripted SMTP client for the black-box tests.
type conv struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialConv(t *testing.T, src, addr string) *conv {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return &conv{t: t, c: c, r: bufio.NewReader(c)}
}

// say sends cmd (unless empty) and checks that the reply starts with want.
func (v *conv) say(cmd, want string) string {
	v.t.Helper()
	if cmd != "" {
		fmt.Fprintf(v.c, "%s\r\n", cmd)
	}
	for {
		line, err := v.r.ReadString('\n')
		if err != nil {
			v.t.Fatalf("after %q: %v", cmd, err)
		}
		if len(line) < 4 || line[3] != '-' {
			line = strings.TrimSpace(line)
			if !strings.HasPrefix(line, want) {
				v.t.Fatalf("after %q: got %q, want %q", cmd, line, want)
			}
			return line
		}
	}
}

// openTx connects, greets and opens a transaction for user@example.org
// from alice@sender.test, ready for DATA.
func openTx(t *testing.T, src, listen string) *conv {
	t.Helper()
	c := dialConv(t, src, listen)
	c.say("", "220 ")
	c.say("EHLO client.sender.test", "250 ")
	c.say("MAIL FROM:<alice@sender.test>", "250 ")
	c.say("RCPT TO:<user@example.org>", "250 ")
	return c
}

// data sends a message body after DATA and checks the final reply.
func (v *conv) data(body, want string) string {
	v.t.Helper()
	v.say("DATA", "354 ")
	fmt.Fprintf(v.c, "%s.\r\n", body)
	return v.say("", want)
}

// readVerdicts reads every verdict line of a log file.
func readVerdicts(t *testing.T, path string) []policy.Record {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []policy.Record
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if line == "" {
			continue
		}
		var r policy.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("verdict line is not JSON: %v: %q", err, line)
		}
		out = append(out, r)
	}
	return out
}

// waitVerdicts waits until the log holds n lines.
func waitVerdicts(t *testing.T, path string, n int) []policy.Record {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, _ := os.ReadFile(path)
		if strings.Count(string(data), "\n") >= n {
			return readVerdicts(t, path)
		}
		if time.Now().After(deadline) {
			t.Fatalf("verdict log has %d lines, want %d:\n%s", strings.Count(string(data), "\n"), n, data)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const actionRules = `
rules:
  - name: connect-reject
    stage: connect
    when: client.ip == "127.0.0.2"
    action: reject
    reply: "554 5.7.1 not from you"
  - name: connect-tempfail
    stage: connect
    when: client.ip == "127.0.0.3"
    action: tempfail
  - name: connect-accept
    stage: connect
    when: client.ip == "127.0.0.4"
    action: accept
  - name: helo-reject
    stage: helo
    when: helo == "bad.helo.test"
    action: reject
    reply: "550 5.7.1 bad HELO"
  - name: helo-tempfail
    stage: helo
    when: helo == "slow.helo.test"
    action: tempfail
  - name: mail-reject
    stage: mail
    when: mail_from.domain == "spammer.test"
    action: reject
  - name: mail-tempfail
    stage: mail
    when: mail_from.domain == "later.test"
    action: tempfail
    reply: "451 4.7.1 come back later"
  - name: mail-accept
    stage: mail
    when: mail_from.domain == "friend.test"
    action: accept
  - name: rcpt-reject
    stage: rcpt
    when: rcpt.local == "nobody"
    action: reject
    reply: "550 5.1.1 no such user"
  - name: rcpt-tempfail
    stage: rcpt
    when: rcpt.local == "busy"
    action: tempfail
  - name: watch-everything
    stage: data
    mode: monitor
    when: size > 0
    action: reject
  - name: data-reject
    when: message_id == "reject@test"
    action: reject
    reply: "550 5.7.1 content refused"
  - name: data-tempfail
    when: message_id == "tempfail@test"
    action: tempfail
  - name: data-quarantine
    when: message_id == "quarantine@test"
    action: quarantine
  - name: data-tag
    when: message_id == "tag@test"
    action: tag
    headers: {X-Tagged: "yes"}
  - name: score-a
    when: message_id startsWith "score"
    action: score
    score: 6
  - name: score-b
    when: message_id == "score-high@test"
    action: score
    score: 6
  - name: bare-lf
    when: protocol.bare_lf
    action: reject
    reply: "554 5.6.0 bare LF"
thresholds: {reject: 10, quarantine: 5}
`

// TestEveryActionAtEveryStage drives mxguard serve with a real client
// through each action at each stage and checks the reply and the verdict
// line it produces.
func TestEveryActionAtEveryStage(t *testing.T) {
	dir := t.TempDir()
	rulesPath := filepath.Join(dir, "rules.yaml")
	os.WriteFile(rulesPath, []byte(actionRules), 0o600)
	vlog := filepath.Join(dir, "verdicts.jsonl")
	mail := filepath.Join(dir, "mail")
	_, listen := startMxguard(t, `
hostname: mx.example.org
listen:
  - address: LISTEN
backend:
  address: "builtin:`+mail+`"
domains: [example.org]
rules: [`+rulesPath+`]
verdict_log: `+vlog+`
`)
	msg := func(id string) string { return "Message-ID: <" + id + ">\r\nSubject: t\r\n\r\nbody\r\n" }
	n := 0 // verdict lines expected so far
	check := func(wantAction, wantStage, wantReason string, wantRules ...string) policy.Record {
		t.Helper()
		n++
		recs := waitVerdicts(t, vlog, n)
		r := recs[n-1]
		var names []string
		for _, m := range r.Rules {
			names = append(names, m.Name+"/"+m.Mode)
		}
		if r.Action != wantAction || r.Stage != wantStage || r.Reason != wantReason || strings.Join(names, ",") != strings.Join(wantRules, ",") {
			t.Fatalf("verdict %d: action=%s stage=%s reason=%s rules=%v; want %s %s %s %v\n%+v", n, r.Action, r.Stage, r.Reason, names, wantAction, wantStage, wantReason, wantRules, r)
		}
		if !strings.Contains(r.Reply, r.Session) && r.Action != "abandoned" && r.Action != "accept" && r.Action != "tag" && r.Action != "quarantine" {
			t.Errorf("reply %q does not carry the session id %s", r.Reply, r.Session)
		}
		return r
	}

	// connect
	dialConv(t, "127.0.0.2", listen).say("", "554 5.7.1 not from you (session ")
	check("reject", "connect", "connect-reject", "connect-reject/enforce")
	dialConv(t, "127.0.0.3", listen).say("", "421 4.7.1 temporarily refused by local policy")
	check("tempfail", "connect", "connect-tempfail", "connect-tempfail/enforce")
	// An accept at connect lets the whole session through the rules: even a
	// bare LF is taken (and forwarded with CRLF).
	c := dialConv(t, "127.0.0.4", listen)
	c.say("", "220 ")
	c.say("EHLO ok.test", "250 ")
	c.say("MAIL FROM:<a@spammer.test>", "250 ")
	c.say("RCPT TO:<nobody@example.org>", "250 ")
	c.data("Message-ID: <reject@test>\r\n\r\nbare\nLF\r\n", "250 2.0.0 Ok: queued")
	check("accept", "data", "", "connect-accept/enforce")

	// helo
	c = dialConv(t, "", listen)
	c.say("", "220 ")
	c.say("EHLO bad.helo.test", "550 5.7.1 bad HELO")
	check("reject", "helo", "helo-reject", "helo-reject/enforce")
	c.say("EHLO slow.helo.test", "451 4.7.1")
	check("tempfail", "helo", "helo-tempfail", "helo-tempfail/enforce")
	c.say("EHLO client.test", "250 ")

	// mail
	c.say("MAIL FROM:<x@spammer.test>", "550 5.7.1 refused by local policy")
	check("reject", "mail", "mail-reject", "mail-reject/enforce")
	c.say("MAIL FROM:<x@later.test>", "451 4.7.1 come back later")
	check("tempfail", "mail", "mail-tempfail", "mail-tempfail/enforce")
	c.say("MAIL FROM:<x@friend.test>", "250 ")
	c.say("RCPT TO:<user@example.org>", "250 ")
	c.data(msg("reject@test"), "250 2.0.0 Ok: queued")
	check("accept", "data", "", "mail-accept/enforce")

	// rcpt: refusals are per recipient; the transaction goes on.
	c.say("MAIL FROM:<x@sender.test>", "250 ")
	c.say("RCPT TO:<nobody@example.org>", "550 5.1.1 no such user")
	c.say("RCPT TO:<busy@example.org>", "451 4.7.1")
	c.say("RCPT TO:<user@example.org>", "250 ")
	r := c.data(msg("plain@test"), "250 2.0.0 Ok: queued")
	rec := check("accept", "data", "", "rcpt-reject/enforce", "rcpt-tempfail/enforce", "watch-everything/monitor")
	if len(rec.Refused) != 2 || rec.Refused[0].Rule != "rcpt-reject" || !strings.HasPrefix(rec.Refused[0].Reply, "550 5.1.1") || len(rec.Rcpts) != 1 {
		t.Fatalf("refused recipients not logged: %+v", rec)
	}
	if rec.Reply != r || !strings.HasPrefix(rec.BackendReply, "250 2.0.0 Ok: queued as ") || rec.MessageID != "plain@test" {
		t.Fatalf("reply %q / backend %q / message id %q", rec.Reply, rec.BackendReply, rec.MessageID)
	}
	// Every recipient refused: the transaction's verdict is that refusal.
	c.say("MAIL FROM:<x@sender.test>", "250 ")
	c.say("RCPT TO:<nobody@example.org>", "550 5.1.1")
	c.say("RSET", "250 ")
	check("reject", "rcpt", "rcpt-reject", "rcpt-reject/enforce")

	// data
	send := func(id, want string) {
		t.Helper()
		c.say("MAIL FROM:<x@sender.test>", "250 ")
		c.say("RCPT TO:<user@example.org>", "250 ")
		c.data(msg(id), want)
	}
	send("reject@test", "550 5.7.1 content refused")
	check("reject", "data", "data-reject", "watch-everything/monitor", "data-reject/enforce")
	send("tempfail@test", "451 4.7.1")
	check("tempfail", "data", "data-tempfail", "watch-everything/monitor", "data-tempfail/enforce")
	send("quarantine@test", "250 2.0.0 Ok: queued")
	check("quarantine", "data", "data-quarantine", "watch-everything/monitor", "data-quarantine/enforce")
	send("tag@test", "250 2.0.0 Ok: queued")
	check("tag", "data", "tag", "watch-everything/monitor", "data-tag/enforce")
	send("score-mid@test", "250 2.0.0 Ok: queued")
	check("quarantine", "data", "score", "watch-everything/monitor", "score-a/enforce")
	send("score-high@test", "550 5.7.1 message refused: score 12 reaches the limit of 10")
	check("reject", "data", "score", "watch-everything/monitor", "score-a/enforce", "score-b/enforce")
	c.say("MAIL FROM:<x@sender.test>", "250 ")
	c.say("RCPT TO:<user@example.org>", "250 ")
	c.data("Subject: lf\r\n\r\nbare\nLF\r\n", "554 5.6.0 bare LF")
	check("reject", "data", "bare-lf", "watch-everything/monitor", "bare-lf/enforce")
	// An abandoned transaction is logged too.
	c.say("MAIL FROM:<x@sender.test>", "250 ")
	c.say("RCPT TO:<user@example.org>", "250 ")
	c.say("QUIT", "221 ")
	check("abandoned", "data", "")

	// The backend got exactly the accepted, quarantined and tagged ones,
	// with the headers of the verdict.
	files, _ := filepath.Glob(filepath.Join(mail, "*.eml"))
	var all string
	for _, f := range files {
		b, _ := os.ReadFile(f)
		all += string(b) + "\n=====\n"
	}
	if len(files) != 6 {
		t.Fatalf("backend holds %d messages, want 6:\n%s", len(files), all)
	}
	for _, want := range []string{"X-Mxguard-Quarantine: yes (score 0", "X-Mxguard-Quarantine: yes (score 6", "X-Tagged: yes", "bare\r\nLF\r\n"} {
		if !strings.Contains(all, want) {
			t.Errorf("backend messages lack %q", want)
		}
	}
}

// TestReloadKeepsOldRulesOnError: SIGHUP with a broken rules file keeps the
// running rules and keeps serving; a good file then takes effect.
func TestReloadKeepsOldRulesOnError(t *testing.T) {
	dir := t.TempDir()
	rulesPath := filepath.Join(dir, "rules.yaml")
	write := func(s string) { os.WriteFile(rulesPath, []byte(s), 0o600) }
	write(corpusFile(t, "rules/no-spammer.yaml"))
	d, listen := startMxguard(t, `
hostname: mx.example.org
listen:
  - address: LISTEN
backend:
  address: "builtin:`+filepath.Join(dir, "mail")+`"
domains: [example.org]
rules: [`+rulesPath+`]
`)
	try := func(domain, want string) {
		t.Helper()
		c := dialConv(t, "", listen)
		c.say("", "220 ")
		c.say("EHLO client.test", "250 ")
		c.say("MAIL FROM:<x@"+domain+">", want)
		c.say("QUIT", "221 ")
	}
	try("spammer.test", "550 ")
	try("other.test", "250 ")
	// A session opened before the reload keeps the old rules to its end.
	old := dialConv(t, "", listen)
	old.say("", "220 ")
	old.say("EHLO client.test", "250 ")

	write(corpusFile(t, "rules/misspelt-fact.yaml"))
	d.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, d, "reload failed, keeping the running configuration")
	if !strings.Contains(d.out.String(), rulesPath+":6:21: rules[0].when: unknown fact mail_from.domian") {
		t.Fatalf("reload error lacks file:line:col:\n%s", d.out.String())
	}
	try("spammer.test", "550 ")

	write("rules:\n  - name: no-other\n    stage: mail\n    when: mail_from.domain == \"other.test\"\n    action: reject\n")
	d.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, d, "msg=reloaded")
	try("spammer.test", "250 ")
	try("other.test", "550 ")
	old.say("MAIL FROM:<x@spammer.test>", "550 ")
}

// waitLog waits until the daemon's output holds s.
func waitLog(t *testing.T, d *daemon, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(d.out.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log:\n%s", s, d.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReplayAndRotation: a log replayed with the rules that made it
// changes nothing; a stricter rule reports exactly the transactions it
// hits. SIGUSR1 starts a new log file after rotation.
func TestReplayAndRotation(t *testing.T) {
	dir := t.TempDir()
	rulesPath := filepath.Join(dir, "rules.yaml")
	base := corpusFile(t, "rules/no-spammer.yaml") +
		"  - name: big\n    when: size > 400\n    action: reject\n"
	os.WriteFile(rulesPath, []byte(base), 0o600)
	vlog := filepath.Join(dir, "verdicts.jsonl")
	d, listen := startMxguard(t, `
hostname: mx.example.org
listen:
  - address: LISTEN
backend:
  address: "builtin:`+filepath.Join(dir, "mail")+`"
domains: [example.org]
rules: [`+rulesPath+`]
verdict_log: `+vlog+`
`)
	c := dialConv(t, "", listen)
	c.say("", "220 ")
	c.say("EHLO client.test", "250 ")
	froms := []string{"a@good.test", "b@good.test", "c@suspect.test", "d@suspect.test", "e@spammer.test"}
	for i, f := range froms {
		if strings.HasSuffix(f, "spammer.test") {
			c.say("MAIL FROM:<"+f+">", "550 ")
			continue
		}
		c.say("MAIL FROM:<"+f+">", "250 ")
		c.say("RCPT TO:<user@example.org>", "250 ")
		body := "Subject: m" + fmt.Sprint(i) + "\r\n\r\nhello\r\n"
		if i == 1 {
			body += strings.Repeat("x", 500) + "\r\n"
		}
		want := "250 "
		if i == 1 {
			want = "550 "
		}
		c.data(body, want)
	}
	waitVerdicts(t, vlog, len(froms))

	out, err := exec.Command(binary, "rules", "replay", "--log", vlog, rulesPath).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "5 transactions replayed with "+rulesPath+": 0 would change\n") {
		t.Fatalf("replay with the same rules: %v\n%s", err, out)
	}
	strict := filepath.Join(dir, "strict.yaml")
	os.WriteFile(strict, []byte(base+"  - name: no-suspect\n    stage: mail\n    when: mail_from.domain == \"suspect.test\"\n    action: reject\n"), 0o600)
	out, err = exec.Command(binary, "rules", "replay", "--log", vlog, strict).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": 2 would change\n") || !strings.Contains(string(out), "accept → reject: 2") ||
		!strings.Contains(string(out), "<c@suspect.test>") || !strings.Contains(string(out), "<d@suspect.test>") || strings.Contains(string(out), "good.test") {
		t.Fatalf("replay with a stricter rule:\n%s", out)
	}

	// Rotation: move the file away, SIGUSR1, and the next line goes to a
	// new file under the configured name.
	os.Rename(vlog, vlog+".1")
	d.cmd.Process.Signal(syscall.SIGUSR1)
	waitLog(t, d, "verdict log reopened")
	c.say("MAIL FROM:<e@spammer.test>", "550 ")
	if recs := waitVerdicts(t, vlog, 1); len(recs) != 1 || recs[0].MailFrom != "e@spammer.test" {
		t.Fatalf("new log: %+v", recs)
	}
	if old := readVerdicts(t, vlog+".1"); len(old) != len(froms) {
		t.Fatalf("rotated log has %d lines, want %d", len(old), len(froms))
	}
}

func TestRulesLintCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "typo.yaml")
	os.WriteFile(path, []byte("rules:\n  - name: typo\n    stage: mail\n    when: mail_from.domian == \"x.test\"\n    action: reject\n"), 0o600)
	out, err := exec.Command(binary, "rules", "lint", path).CombinedOutput()
	var ee *exec.ExitError
	if !errorsAs(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("lint of a typo: %v, want exit 1\n%s", err, out)
	}
	if want := path + ":4:21: rules[0].when: unknown fact mail_from.domian"; !strings.HasPrefix(string(out), want) {
		t.Fatalf("lint output %q, want prefix %q", out, want)
	}
	out, err = exec.Command(binary, "rules", "lint", "../../rules/default.yaml").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), fmt.Sprintf("ok: %d rules", len(policy.DefaultRules().Rules))) {
		t.Fatalf("lint of the default rules: %v %s", err, out)
	}
	// A named pipe would hold lint for ever, a device never end: neither
	// is a rules file.
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fifo, "/dev/zero"} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err = exec.CommandContext(ctx, binary, "rules", "lint", p).CombinedOutput()
		cancel()
		if !errorsAs(err, &ee) || ee.ExitCode() != 1 || !strings.HasPrefix(string(out), p+":1:1: ") || !strings.Contains(string(out), "not a regular file") {
			t.Errorf("lint of %s: %v, want exit 1 and %q\n%s", p, err, p+":1:1: … not a regular file", out)
		}
	}
}

// TestRulesLintNeverMatchingValue: lint refuses a comparison with a value
// the fact never takes, at the literal's place, with the values it does
// take; `when: true` unquoted lints clean.
func TestRulesLintNeverMatchingValue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "values.yaml")
	os.WriteFile(path, []byte(`rules:
  - name: spf-fail
    stage: mail
    when: spf.result == "Fail"
    action: reject
  - name: dmarc-pass
    when: 'dmarc.result == "passed" && from.local'
    action: accept
  - name: always
    when: true
    action: tag
    headers: {X-Seen: "yes"}
`), 0o600)
	out, err := exec.Command(binary, "rules", "lint", path).CombinedOutput()
	var ee *exec.ExitError
	if !errorsAs(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("lint: %v, want exit 1\n%s", err, out)
	}
	want := path + `:4:25: rules[0].when: spf.result is never "Fail": expected one of pass, fail, softfail, neutral, none, temperror, permerror, "" (did you mean "fail"?)` + "\n" +
		path + `:7:28: rules[1].when: dmarc.result is never "passed": expected one of pass, fail, none, temperror, permerror, ""` + "\n"
	if string(out) != want {
		t.Fatalf("lint output:\n%s\nwant:\n%s", out, want)
	}
}

// TestRulesFactsShowValues: "mxguard rules facts" gives the values of the
// facts that have a fixed set, in both its forms.
func TestRulesFactsShowValues(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"rules", "facts"}, []string{
			`one of pass, fail, softfail, neutral, none, temperror, permerror, ""`,
			`one of "TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3", ""`,
		}},
		{[]string{"rules", "facts", "--markdown"}, []string{
			"| `stage` | string | the stage being decided; one of `connect`, `helo`, `mail`, `rcpt`, `data` |",
			"; one of `none`, `quarantine`, `reject`, `\"\"` |",
			"one of `TLS 1.0`, `TLS 1.1`, `TLS 1.2`, `TLS 1.3`, `\"\"` |",
		}},
	} {
		var out, errb strings.Builder
		if code := run(c.args, &out, &errb); code != exitOK {
			t.Fatalf("%v: exit %d: %s", c.args, code, errb.String())
		}
		for _, w := range c.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%v lacks %q:\n%s", c.args, w, out.String())
			}
		}
		for _, line := range strings.Split(out.String(), "\n") {
			if strings.Contains(line, "spf.result") && !strings.Contains(line, "one of ") {
				t.Errorf("%v: the spf.result line lacks its values: %q", c.args, line)
			}
		}
	}
}

func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	eml := filepath.Join(dir, "m.eml")
	os.WriteFile(eml, []byte("From: a@sender.test\r\nMessage-ID: <m1@sender.test>\r\nSubject: hi\r\n\r\nbare\nLF\r\n"), 0o600)
	var out, errb strings.Builder
	dns := dnstest.StartFiles(t, corpusPath("zones/e2e.zone"))
	code := run([]string{"check", "--dns", dns.Addr(), "--client-ip", "198.51.100.4", "--helo", "c.sender.test", "--mail-from", "a@sender.test", "--rcpt", "user@example.org", eml}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if want := "mxguard check: DNS from " + dns.Addr() + " (--dns)"; !strings.Contains(errb.String(), want) {
		t.Errorf("check does not say whom it asks: %q, want %q", errb.String(), want)
	}
	// Without a config, the authserv-id is this machine's name.
	host, _ := os.Hostname()
	os.WriteFile(eml, []byte("From: a@sender.test\r\nDate: Mon, 30 Nov 2026 07:00:00 +0000\r\nMessage-ID: <m3@sender.test>\r\nSubject: hi\r\n\r\nfine\r\n"), 0o600)
	var out2 strings.Builder
	if code := run([]string{"check", "--dns", dns.Addr(), "--client-ip", "127.0.0.1", "--mail-from", "a@sender.test", "--rcpt", "user@example.org", eml}, &out2, &errb); code != 0 ||
		!strings.Contains(out2.String(), "adds header: Authentication-Results: "+host+";") {
		t.Errorf("exit %d; check without a config should name this machine (%q) in Authentication-Results:\n%s", code, host, out2.String())
	}
	for _, want := range []string{"connect  198.51.100.4", "rcpt     <user@example.org>", "bare-line-endings        data   reject",
		"final: reject at data (bare-line-endings): 554 5.6.0 message refused: bare LF or CR line endings"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("check output lacks %q:\n%s", want, out.String())
		}
	}
	// With a config: its domains and rules; --json gives the verdict line.
	rulesPath := filepath.Join(dir, "r.yaml")
	os.WriteFile(rulesPath, []byte("rules:\n  - name: from-sender\n    stage: mail\n    when: mail_from.domain == \"sender.test\"\n    action: tempfail\n    mode: monitor\n  - name: tag-all\n    when: \"true\"\n    action: tag\n    headers: {X-Checked: \"yes\"}\n"), 0o600)
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte("hostname: mx.example.org\nlisten: [{address: 127.0.0.1:2525}]\nbackend: {address: 127.0.0.1:2526}\ndomains: [example.org]\nrules: [r.yaml]\n"), 0o600)
	os.WriteFile(eml, []byte("Message-ID: <m2@sender.test>\r\n\r\nclean\r\n"), 0o600)
	out.Reset()
	code = run([]string{"check", "--dns", dns.Addr(), "--config", cfg, "--json", "--mail-from", "a@sender.test", "--rcpt", "user@example.org", "--rcpt", "x@elsewhere.test", eml}, &out, &errb)
	var rec policy.Record
	if code != 0 || json.Unmarshal([]byte(out.String()), &rec) != nil {
		t.Fatalf("exit %d, output %q, stderr %q", code, out.String(), errb.String())
	}
	if rec.Action != "tag" || rec.MessageID != "m2@sender.test" || len(rec.Rcpts) != 1 || len(rec.Refused) != 1 || rec.Refused[0].Rule != "relay" ||
		len(rec.Rules) != 2 || rec.Rules[0].Mode != "monitor" {
		t.Fatalf("verdict line %+v", rec)
	}
}
