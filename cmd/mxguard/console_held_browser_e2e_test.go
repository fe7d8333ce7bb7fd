package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"mxguard/internal/testbrowser"
	"mxguard/policy"
)

// pwn retitles the page if it runs, as script or as markup.
const pwn = `<script>document.title='pwned'</script><img src=x onerror="document.title='pwned'">`

// heldHostile is a message whose Subject, From name, attachment name and
// HTML part all carry pwn.
var heldHostile = "From: \"" + strings.ReplaceAll(pwn, `"`, `'`) + "\" <alice@held.test>\r\n" +
	"To: u1@example.org\r\n" +
	"Subject: " + pwn + "\r\n" +
	"Message-ID: <pwn@held.test>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=b1\r\n" +
	"\r\n" +
	"--b1\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"\r\n" +
	"Hello, the invoice is attached. " + pwn + "\r\n" +
	"--b1\r\n" +
	"Content-Type: text/html; charset=utf-8\r\n" +
	"\r\n" +
	"<html><body><p id=fromhtml>html part</p>" + pwn + "</body></html>\r\n" +
	"--b1\r\n" +
	"Content-Type: application/pdf\r\n" +
	"Content-Disposition: attachment; filename=\"<img src=x onerror=document.title='pwned'>.pdf\"\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"JVBERi0xLjQKJcOkw7zDtsOfCg==\r\n" +
	"--b1--\r\n"

// TestConsoleInBrowserHeld drives the held-mail and rules pages in a real
// headless Chromium through mxguard serve: a hold rule holds a message
// whose every name carries script; the admin opens it (nothing of it
// runs or becomes an element), releases it, reads the backend's reply,
// and the backend has it with its X-Mxguard-Release-Id, audited as
// console:admin; then replays a pasted rules file on the rules page.
func TestConsoleInBrowserHeld(t *testing.T) {
	dir := t.TempDir()
	vlog := filepath.Join(dir, "verdicts.jsonl")
	rulesFile := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rulesFile, []byte(holdRules), 0o600); err != nil {
		t.Fatal(err)
	}
	users := consoleUsers(t, "correct horse battery")
	consoleAddr := freePort(t)
	listen, sinkDir := sinkMxguard(t, fmt.Sprintf("rules: [%s]\nverdict_log: %s\nhold:\n  dir: %s\nconsole:\n  address: %s\n  users_file: %s\n",
		rulesFile, vlog, filepath.Join(dir, "held"), consoleAddr, users))
	base := "http://" + consoleAddr

	c := dialConv(t, "", listen)
	c.say("", "220 ")
	c.say("EHLO client.example.net", "250")
	c.say("MAIL FROM:<alice@held.test>", "250 ")
	c.say("RCPT TO:<u1@example.org>", "250 ")
	c.say("DATA", "354 ")
	fmt.Fprint(c.c, heldHostile+".\r\n")
	if got := c.say("", "250 "); !heldOK.MatchString(got) {
		t.Fatalf("end of data: %q, want held", got)
	}
	c.say("QUIT", "221 ")
	rec := waitVerdicts(t, vlog, 1)[0]
	id := rec.HeldID
	if rec.Action != "hold" || id == "" {
		t.Fatalf("verdict %q, held id %q: want a hold", rec.Action, id)
	}

	tab := testbrowser.Tab(t)
	ctx, cancel := context.WithTimeout(tab, 90*time.Second)
	defer cancel()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	inert := func(page string) {
		t.Helper()
		title, err := chromedp.Run(ctx, chromedp.Title())
		must("title", err)
		if strings.Contains(title, "pwned") {
			t.Fatalf("%s: the message's markup ran: title %q", page, title)
		}
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('main img, main script, main svg, #fromhtml').length`))
		must("count elements", err)
		if n != 0 {
			t.Errorf("%s: %d elements from the message in the page, want 0", page, n)
		}
	}
	must("log in", chromedp.Do(ctx,
		chromedp.Navigate(base+"/held"),
		chromedp.WaitVisible(chromedp.CSS(`input[name="user"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="user"]`), "admin"),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), "correct horse battery"),
		chromedp.Submit(chromedp.CSS(`form.login`)),
		chromedp.WaitVisible(chromedp.CSS(`table.held`)),
	))
	list, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`table.held`)))
	must("held list", err)
	for _, want := range []string{"alice@held.test", "u1@example.org", "hold-suspect", "held", "pwn@held.test"} {
		if !strings.Contains(list, want) {
			t.Errorf("the held list does not say %q:\n%s", want, list)
		}
	}
	inert("/held")
	shot(t, ctx, "5-held")

	must("open the message", chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`a[href="/held/`+id+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`pre.header`)),
	))
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`main`)))
	must("message page", err)
	for _, want := range []string{"Subject: " + pwn, "onerror=document.title='pwned'>.pdf", "text/html", "application/pdf",
		"Hello, the invoice is attached.", "hold-suspect", "session " + rec.Session} {
		if !strings.Contains(text, want) {
			t.Errorf("the message page does not show %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "html part") {
		t.Error("the HTML part is rendered")
	}
	inert("/held/ID")
	shot(t, ctx, "6-held-message")

	must("release", chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`form.release button`)),
		chromedp.WaitVisible(chromedp.CSS(`p.outcome`)),
	))
	text, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`main`)))
	must("release page", err)
	if !strings.Contains(text, "Released: the backend took the message.") || !strings.Contains(text, "250 ") {
		t.Fatalf("the release page says:\n%s", text)
	}
	shot(t, ctx, "7-held-released")
	stored := sinkFiles(t, sinkDir)
	if len(stored) != 1 || strings.Count(stored[0], "\nX-Mxguard-Release-Id: "+id+"\r\n") != 1 || !strings.Contains(stored[0], "Subject: "+pwn) {
		t.Fatalf("the backend has %d messages, want the released one with its release id:\n%q", len(stored), stored)
	}
	recs := waitVerdicts(t, vlog, 2)
	if r := recs[1]; r.Action != policy.ActionRelease || r.By != "console:admin" || r.HeldID != id {
		t.Errorf("audit line: action %q by %q held_id %q, want a release by console:admin of %s", r.Action, r.By, r.HeldID, id)
	}

	// The rules page lists the hold rule with its match, and replays a
	// pasted file that would accept the message instead.
	must("rules", chromedp.Do(ctx,
		chromedp.Navigate(base+"/rules"),
		chromedp.WaitVisible(chromedp.CSS(`table.rules`)),
		chromedp.SetValue(chromedp.CSS(`textarea[name="rules"]`), "rules:\n  - name: trust-held\n    when: mail_from.domain == \"held.test\"\n    action: accept\n"),
		chromedp.Click(chromedp.CSS(`form.replay button`)),
		chromedp.WaitVisible(chromedp.CSS(`section.replay-result`)),
	))
	text, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`main`)))
	must("replay", err)
	if !strings.Contains(text, "would change") || !strings.Contains(text, "hold → accept: 1") {
		t.Errorf("the replay says:\n%s", text)
	}
	shot(t, ctx, "8-rules")
}

// sinkFiles returns the content of every message the built-in sink holds
// in dir.
func sinkFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}
