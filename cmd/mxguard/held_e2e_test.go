package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"mxguard/checks/resolver/dnstest"
	"mxguard/held"
	"mxguard/policy"
)

// holdRules holds every message from held.test.
const holdRules = `rules:
  - name: hold-suspect
    when: mail_from.domain == "held.test"
    action: hold
`

// heldSetup is a mxguard in front of a raw backend, with a hold rule, a
// verdict log and its own hold.dir, and the config file the admin's
// commands are given.
type heldSetup struct {
	t        *testing.T
	b        *rawBackend
	d        *daemon
	listen   string
	cfg      string
	dir      string
	verdicts string
}

// startHeld writes the config (holdKeys are more keys of the hold
// section, indented by two spaces) and starts mxguard serve with it.
func startHeld(t *testing.T, b *rawBackend, holdKeys string) *heldSetup {
	t.Helper()
	return startHeldIn(t, b, t.TempDir(), holdKeys)
}

// startHeldIn is startHeld with its files (hold.dir is tmp/held) in tmp.
func startHeldIn(t *testing.T, b *rawBackend, tmp, holdKeys string) *heldSetup {
	t.Helper()
	s := &heldSetup{t: t, b: b, listen: freePort(t), dir: filepath.Join(tmp, "held"), verdicts: filepath.Join(tmp, "verdicts.jsonl"),
		cfg: filepath.Join(tmp, "mxguard.yaml")}
	rules := filepath.Join(tmp, "rules.yaml")
	if err := os.WriteFile(rules, []byte(holdRules), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := dnstest.StartFiles(t, corpusPath("zones/e2e.zone"))
	cfg := fmt.Sprintf(`hostname: mx.example.org
listen:
  - address: %s
backend:
  address: %s
  command_timeout: 5s
  data_timeout: 30s
domains: [example.org]
rules: [%s]
verdict_log: %s
hold:
  dir: %s
%sdns:
  servers: [%s]
`, s.listen, b.addr, rules, s.verdicts, s.dir, holdKeys, srv.Addr())
	if err := os.WriteFile(s.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s.start()
	return s
}

// start runs mxguard serve on the setup's config.
func (s *heldSetup) start() {
	s.t.Helper()
	s.d = startDaemon(s.t, binary, "serve", "--config", s.cfg)
	waitListening(s.t, s.listen)
}

// send sends one message from alice@held.test to two recipients with the
// SMTPUTF8 and BODY=8BITMIME parameters, and returns the reply to its end.
func (s *heldSetup) send(subject string) string {
	s.t.Helper()
	c := dialConv(s.t, "", s.listen)
	c.say("", "220 ")
	c.say("EHLO client.example.net", "250")
	c.say("MAIL FROM:<alice@held.test> SMTPUTF8 BODY=8BITMIME", "250 ")
	c.say("RCPT TO:<u1@example.org>", "250 ")
	c.say("RCPT TO:<u2@example.org>", "250 ")
	c.say("DATA", "354 ")
	fmt.Fprintf(c.c, "From: alice@held.test\r\nTo: u1@example.org\r\nSubject: %s\r\nMessage-ID: <%s@held.test>\r\n\r\nheld body\r\n..hidden dot line\r\n.\r\n", subject, strings.ReplaceAll(subject, " ", "-"))
	return c.say("", "")
}

// held runs "mxguard held" with the setup's config.
func (s *heldSetup) held(args ...string) (int, string, string) {
	s.t.Helper()
	return runBinary(s.t, append(append([]string{"held"}, args...), "--config", s.cfg)...)
}

// heldIDOf returns the held id of the verdict line of a held message.
func (s *heldSetup) heldIDOf(n int) string {
	s.t.Helper()
	recs := waitVerdicts(s.t, s.verdicts, n)
	r := recs[n-1]
	if r.Action != "hold" || r.HeldID == "" || r.Reason != "hold-suspect" {
		s.t.Fatalf("verdict line %d: action %q reason %q held_id %q, want a hold by hold-suspect", n, r.Action, r.Reason, r.HeldID)
	}
	return r.HeldID
}

var heldOK = regexp.MustCompile(`^250 2\.0\.0 Ok: held \(session [A-Z2-7]+\)`)

// A hold rule holds the message: the client hears 250, the backend gets
// nothing, "held list" and "held show" show it. A release delivers it once
// with its original envelope and the release header, and the verdict log
// records who released it; a second release sends nothing.
func TestHoldAndReleaseOnce(t *testing.T) {
	b := startRawBackend(t, func(b *rawBackend) { b.ext = []string{"SMTPUTF8"} })
	s := startHeld(t, b, "")
	if got := s.send("quarterly invoice"); !heldOK.MatchString(got) {
		t.Fatalf("reply to the held message %q, want 250 2.0.0 ... held (session ...)", got)
	}
	id := s.heldIDOf(1)
	if mail := b.linesWith("MAIL"); len(mail) != 0 {
		t.Fatalf("the backend got a transaction for a held message: %q", mail)
	}

	code, out, errOut := s.held("list")
	if code != 0 || !regexp.MustCompile(`(?m)^`+id+`\s.*\sheld\s+alice@held\.test\s+u1@example\.org \+1\s.*hold-suspect`).MatchString(out) {
		t.Fatalf("held list: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := s.held("list", "--rule", "other"); code != 0 || strings.Contains(out, id) {
		t.Errorf("held list --rule other lists it:\n%s", out)
	}
	code, out, errOut = s.held("show", id)
	for _, want := range []string{"mail from:  <alice@held.test> SMTPUTF8 BODY=8BITMIME", "rcpt to:    <u2@example.org>", "state:      held",
		"  Subject: quarterly invoice", "  Received: from client.example.net"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("held show lacks %q: exit %d\n%s%s", want, code, out, errOut)
		}
	}
	if strings.Contains(out, "held body") {
		t.Errorf("held show prints the body:\n%s", out)
	}

	code, out, errOut = s.held("release", id, "--by", "tester")
	if code != 0 || !strings.Contains(out, "released "+id+" to 2 recipients: 250 2.0.0 Ok: queued as RAW1") {
		t.Fatalf("held release: exit %d\n%s%s", code, out, errOut)
	}
	mail, rcpts := b.linesWith("MAIL"), b.linesWith("RCPT")
	if len(mail) != 1 || !strings.HasPrefix(mail[0], "MAIL FROM:<alice@held.test>") || !strings.Contains(mail[0], " BODY=8BITMIME") || !strings.Contains(mail[0], " SMTPUTF8") ||
		strings.Join(rcpts, ",") != "RCPT TO:<u1@example.org>,RCPT TO:<u2@example.org>" {
		t.Fatalf("the backend's envelope: %q %q", mail, rcpts)
	}
	_, stored := b.seen()
	if len(stored) != 1 || !strings.HasPrefix(stored[0], "X-Mxguard-Release-Id: "+id+"\r\nReceived: from client.example.net") ||
		!strings.Contains(stored[0], "\r\nSubject: quarterly invoice\r\n") || !strings.Contains(stored[0], "\r\n..hidden dot line\r\n") {
		t.Fatalf("the backend got:\n%q", stored)
	}
	recs := waitVerdicts(t, s.verdicts, 2)
	if r := recs[1]; r.Action != policy.ActionRelease || r.By != "tester" || r.HeldID != id || r.BackendReply != "250 2.0.0 Ok: queued as RAW1" || r.Session != recs[0].Session {
		t.Errorf("release line: %+v", r)
	}

	code, out, errOut = s.held("release", id, "--by", "tester")
	if code != 1 || !strings.Contains(errOut, "was released already, by tester") || !strings.Contains(errOut, "nothing was sent") {
		t.Errorf("second release: exit %d\n%s%s", code, out, errOut)
	}
	if _, stored := b.seen(); len(stored) != 1 {
		t.Errorf("the backend has %d messages after a second release, want 1", len(stored))
	}
	if code, out, _ := s.held("list", "--state", "released"); code != 0 || !strings.Contains(out, id) {
		t.Errorf("held list --state released:\n%s", out)
	}
	// Deleted through the server, and audited.
	if code, out, errOut := s.held("delete", id, "--by", "tester"); code != 0 || !strings.Contains(out, "deleted "+id) {
		t.Fatalf("held delete: exit %d\n%s%s", code, out, errOut)
	}
	recs = waitVerdicts(t, s.verdicts, 3)
	if r := recs[2]; r.Action != policy.ActionDelete || r.By != "tester" || r.HeldID != id {
		t.Errorf("delete line: %+v", r)
	}
	if code, _, errOut := s.held("show", id); code != 1 || !strings.Contains(errOut, "no such held message") {
		t.Errorf("show after delete: exit %d %s", code, errOut)
	}
}

// A backend that refuses the release leaves the message held, with the
// backend's reply recorded; without a running server, release says so.
func TestHeldReleaseRefusedAndNoServer(t *testing.T) {
	var mu sync.Mutex
	refuse := true
	b := startRawBackend(t, func(b *rawBackend) {
		b.ext = []string{"SMTPUTF8"}
		b.script = func(verb string) string {
			mu.Lock()
			defer mu.Unlock()
			if verb == "END" && refuse {
				return "452 4.2.2 mailbox full\r\n"
			}
			return ""
		}
	})
	s := startHeld(t, b, "")
	s.send("refused release")
	id := s.heldIDOf(1)
	code, out, errOut := s.held("release", id, "--by", "tester")
	if code != 1 || !strings.Contains(errOut, "the backend refused "+id+": 452 4.2.2 mailbox full; it stays held") {
		t.Fatalf("refused release: exit %d\n%s%s", code, out, errOut)
	}
	if _, out, _ := s.held("show", id); !strings.Contains(out, "state:      held") || !strings.Contains(out, "delivered false: 452 4.2.2 mailbox full") {
		t.Errorf("held show after a refused release:\n%s", out)
	}
	s.d.stop()
	mu.Lock()
	refuse = false
	mu.Unlock()
	code, _, errOut = s.held("release", id, "--by", "tester")
	if code != 1 || !strings.Contains(errOut, "no mxguard serve answers on "+filepath.Join(s.dir, "control.sock")) {
		t.Fatalf("release without a server: exit %d %s", code, errOut)
	}
	if _, stored := b.seen(); len(stored) != 1 {
		t.Errorf("the backend got %d messages, want only the refused one", len(stored))
	}
	// list and show read the directory: they work without a server.
	if code, out, _ := s.held("list"); code != 0 || !strings.Contains(out, id) {
		t.Errorf("held list without a server:\n%s", out)
	}
}

// A backend whose reply to the released message is out of step (two
// replies to one end of data) may or may not have taken it: the message
// is possibly delivered, and a plain release sends nothing more.
func TestHeldReleaseLostReplyIsPossiblyDelivered(t *testing.T) {
	b := startRawBackend(t, func(b *rawBackend) {
		b.ext = []string{"SMTPUTF8"}
		b.script = func(verb string) string {
			if verb == "END" {
				return "250 2.0.0 Ok: queued as RAW1\r\n250 2.0.0 Ok: queued as RAW2\r\n"
			}
			return ""
		}
	})
	s := startHeld(t, b, "")
	s.send("lost reply")
	id := s.heldIDOf(1)
	code, out, errOut := s.held("release", id, "--by", "tester")
	if code != 1 || !strings.Contains(errOut, "but mxguard did not get its reply") || !strings.Contains(errOut, "possibly delivered") {
		t.Fatalf("release with a reply out of step: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := s.held("release", id, "--by", "tester"); code != 1 || !strings.Contains(errOut, "is possibly delivered") {
		t.Fatalf("second release: exit %d\n%s%s", code, out, errOut)
	}
	if _, stored := b.seen(); len(stored) != 1 {
		t.Errorf("the backend got %d copies, want 1", len(stored))
	}
}

// kill9 kills mxguard as a crash would: no drain, no cleanup.
func (s *heldSetup) kill9() {
	s.t.Helper()
	if err := s.d.cmd.Process.Kill(); err != nil {
		s.t.Fatal(err)
	}
	_ = s.d.cmd.Wait()
}

// mxguard killed while the backend holds back its reply to the released
// message (it has the whole message): at the next start the message is
// "possibly delivered", a plain release sends nothing, and --force sends
// it again with the same release id for the backend to drop.
func TestHeldCrashDuringReleaseIsPossiblyDelivered(t *testing.T) {
	var stall sync.Once
	gotEnd, resume := make(chan struct{}), make(chan struct{})
	b := startRawBackend(t, func(b *rawBackend) {
		b.ext = []string{"SMTPUTF8"}
		b.script = func(verb string) string {
			if verb == "END" {
				first := false
				stall.Do(func() { first = true })
				if first {
					close(gotEnd)
					<-resume
				}
			}
			return ""
		}
	})
	var resumed sync.Once
	t.Cleanup(func() { resumed.Do(func() { close(resume) }) })
	s := startHeld(t, b, "")
	s.send("crash during release")
	id := s.heldIDOf(1)

	rel := exec.Command(binary, "held", "release", id, "--by", "tester", "--config", s.cfg)
	relOut := &syncBuffer{}
	rel.Stdout, rel.Stderr = relOut, relOut
	if err := rel.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gotEnd:
	case <-time.After(30 * time.Second):
		t.Fatalf("the backend never got the released message; release says:\n%s", relOut)
	}
	s.kill9()
	resumed.Do(func() { close(resume) })
	if err := rel.Wait(); err == nil {
		t.Fatalf("release reported success although mxguard died before the backend's reply:\n%s", relOut)
	}
	// On disk, before any restart: the intent without an outcome.
	if code, out, _ := s.held("list", "--state", "releasing"); code != 0 || !strings.Contains(out, id) {
		t.Fatalf("held list --state releasing after the crash:\n%s", out)
	}
	s.start()
	if code, out, _ := s.held("list"); code != 0 || !regexp.MustCompile(`(?m)^`+id+`\s.*\spossibly-delivered\s`).MatchString(out) {
		t.Fatalf("held list after the restart:\n%s", out)
	}
	code, out, errOut := s.held("release", id, "--by", "tester")
	if code != 1 || !strings.Contains(errOut, "is possibly delivered") || !strings.Contains(errOut, "--force") {
		t.Fatalf("release of a possibly delivered message: exit %d\n%s%s", code, out, errOut)
	}
	if _, stored := b.seen(); len(stored) != 1 {
		t.Fatalf("the backend has %d messages, want the one from before the crash", len(stored))
	}
	code, out, errOut = s.held("release", id, "--by", "tester", "--force")
	if code != 0 || !strings.Contains(out, "released "+id) {
		t.Fatalf("forced release: exit %d\n%s%s", code, out, errOut)
	}
	_, stored := b.seen()
	if len(stored) != 2 || stored[0] != stored[1] || !strings.HasPrefix(stored[1], "X-Mxguard-Release-Id: "+id+"\r\n") {
		t.Fatalf("the backend's two copies differ or lack the same release id:\n%q", stored)
	}
	if _, out, _ := s.held("show", id); !strings.Contains(out, "state:      released") || !strings.Contains(out, "forced") {
		t.Errorf("held show after the forced release:\n%s", out)
	}
}

// A store that cannot take the message (hold.max_bytes) answers 451 4.3.0
// with the session id: the message is neither held nor delivered, and the
// sender retries.
func TestHoldFullStoreAnswers451(t *testing.T) {
	b := startRawBackend(t, nil)
	s := startHeld(t, b, "  max_bytes: 100\n")
	got := s.send("too big to hold")
	if !regexp.MustCompile(`^451 4\.3\.0 cannot hold the message now, try again later \(session [A-Z2-7]+\)`).MatchString(got) {
		t.Fatalf("reply %q, want 451 4.3.0 with the session", got)
	}
	if mail := b.linesWith("MAIL"); len(mail) != 0 {
		t.Fatalf("the backend got %q", mail)
	}
	if code, out, _ := s.held("list"); code != 0 || strings.Count(out, "\n") != 1 {
		t.Fatalf("held list after a refused hold:\n%s", out)
	}
	recs := waitVerdicts(t, s.verdicts, 1)
	if r := recs[0]; r.Action != "tempfail" || r.Reason != "hold-store" || !strings.HasPrefix(r.Reply, "451 4.3.0") || r.HeldID != "" {
		t.Errorf("verdict line %+v", r)
	}
	files, _ := filepath.Glob(filepath.Join(s.dir, "*"))
	for _, f := range files {
		if strings.HasSuffix(f, ".eml") || strings.HasSuffix(f, ".json") || strings.Contains(f, ".tmp-") {
			t.Errorf("left in hold.dir: %s", f)
		}
	}
}

// serve deletes, at start, held mail older than hold.keep, and records it
// in the verdict log; younger mail stays.
func TestHeldExpiryAtStart(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "held")
	then := time.Now().Add(-40 * 24 * time.Hour)
	st, err := held.Open(held.Options{Dir: dir, MaxBytes: 1 << 20, Keep: time.Hour, Now: func() time.Time { return then }})
	if err != nil {
		t.Fatal(err)
	}
	write := func(w io.Writer) error { _, err := io.WriteString(w, "Subject: old\r\n\r\nold\r\n"); return err }
	old, err := st.Hold(held.Meta{Session: "OLD", Tx: "OLD.1", MailFrom: "a@held.test", Rcpts: []string{"u@example.org"}}, write)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	st, err = held.Open(held.Options{Dir: dir, MaxBytes: 1 << 20, Keep: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	young, err := st.Hold(held.Meta{Session: "NEW", Tx: "NEW.1", MailFrom: "a@held.test", Rcpts: []string{"u@example.org"}}, write)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()

	b := startRawBackend(t, nil)
	s := startHeldIn(t, b, tmp, "  keep: 30d\n")
	recs := waitVerdicts(t, s.verdicts, 1)
	if r := recs[0]; r.Action != policy.ActionDelete || r.By != "expiry" || r.HeldID != old.ID {
		t.Fatalf("verdict line %+v, want the expiry of %s", r, old.ID)
	}
	if _, err := os.Stat(filepath.Join(dir, old.ID+".eml")); !os.IsNotExist(err) {
		t.Errorf("the old message is still there: %v", err)
	}
	if code, out, _ := s.held("list"); code != 0 || !strings.Contains(out, young.ID) || strings.Contains(out, old.ID) {
		t.Errorf("held list after expiry:\n%s", out)
	}
}

// A hold.dir that serve cannot create is the configuration's to fix:
// exit 2, naming the key.
func TestHeldDirUnusableExits2(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mxguard.yaml")
	cfg := "hostname: mx.example.org\nlisten:\n  - address: " + freePort(t) + "\nbackend:\n  address: 127.0.0.1:2526\ndomains: [example.org]\ndns:\n  servers: [127.0.0.1:1]\nhold:\n  dir: " + path + "/held\n"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runBinary(t, "serve", "--config", path)
	if code != 2 || !strings.Contains(errOut, "hold.dir: ") {
		t.Fatalf("serve with an unusable hold.dir: exit %d\n%s", code, errOut)
	}
}
