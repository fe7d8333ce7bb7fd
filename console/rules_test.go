package console

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"mxguard/policy"
	"mxguard/rules"
)

// siteRules is the rule set the console's server runs in these tests.
const siteRules = `rules:
  - name: spoof
    stage: data
    when: dmarc.result == "fail"
    action: reject
    reply: "554 5.7.1 <b>spoofed</b>"
  - name: never-seen
    when: spf.result == "softfail"
    action: score
    score: 2
`

// accepted is a verdict no rule matched.
var accepted = &policy.Record{
	Time: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC), Session: "ACCEPT1", Tx: "ACCEPT1.1",
	ClientIP: "192.0.2.10", HELO: "mail.sender.test", MailFrom: "bob@sender.test", Rcpts: []string{"user@example.org"},
	Action: "accept", Stage: "data", Reply: "250 2.0.0 Ok", Rules: []policy.RuleMatch{},
	Checks: map[string]policy.CheckRecord{},
}

func rulesConsole(t *testing.T) *http.Client {
	t.Helper()
	set, err := rules.Parse("site.yaml", []byte(siteRules), policy.RulesOptions())
	if err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC) }
	srv, _ := testConsoleWith(t, func(o *Options) {
		o.Rules = func() *rules.Set { return set }
		o.Now = now
	}, hostile, accepted)
	c := client(t)
	if code, page := login(t, c, srv.URL, "correct horse"); code != http.StatusOK {
		t.Fatalf("login: %d\n%s", code, page)
	}
	rulesURL = srv.URL + "/rules"
	return c
}

var rulesURL string

// TestConsoleRulesPage: the loaded rules are listed with what they do and
// how many verdicts of the last week each matched; a reply with markup is
// shown as text.
func TestConsoleRulesPage(t *testing.T) {
	c := rulesConsole(t)
	code, page := get(t, c, rulesURL)
	if code != http.StatusOK {
		t.Fatalf("/rules: %d\n%s", code, page)
	}
	row := regexp.MustCompile(`(?s)<tr><td><span class="rule">([^<]+)</span>.*?<td class="num">(\d+)</td></tr>`)
	got := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(page, -1) {
		got[m[1]] = m[2]
	}
	if got["spoof"] != "1" || got["never-seen"] != "0" || len(got) != 2 {
		t.Errorf("match counts %v, want spoof 1, never-seen 0", got)
	}
	for _, want := range []string{`dmarc.result == &#34;fail&#34;`, "554 5.7.1 &lt;b&gt;spoofed&lt;/b&gt;", "site.yaml:2"} {
		if !strings.Contains(page, want) {
			t.Errorf("the rules page does not show %q:\n%s", want, page)
		}
	}
}

// TestConsoleRulesReplay: a pasted rules file is replayed on the newest
// verdicts: the page says how many would change and links each changed
// transaction; one that does not load shows every error at its
// file:line:col; the form needs the CSRF token, and is bounded.
func TestConsoleRulesReplay(t *testing.T) {
	c := rulesConsole(t)
	_, page := get(t, c, rulesURL)
	tok := csrfField.FindStringSubmatch(page)[1]

	const accepting = "rules:\n  - name: let-all\n    stage: connect\n    when: client.ip == \"192.0.2.66\"\n    action: accept\n"
	code, page := post(t, c, rulesURL, url.Values{"csrf": {tok}, "rules": {accepting}, "n": {"100"}})
	if code != http.StatusOK {
		t.Fatalf("replay: %d\n%s", code, page)
	}
	for _, want := range []string{"2 verdicts replayed: 1 would change", `href="/tx/HOSTILE1.1"`, "reject</span> → <span class=\"action-accept\">accept"} {
		if !strings.Contains(page, want) {
			t.Errorf("the replay does not show %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, "<script>alert") {
		t.Error("the replay carries the client's markup")
	}

	code, page = post(t, c, rulesURL, url.Values{"csrf": {tok}, "rules": {accepting}, "n": {"1"}})
	if code != http.StatusOK || !strings.Contains(page, "1 verdicts replayed: 1 would change") {
		t.Errorf("replay of the newest verdict only: %d, want 1 replayed (the refusal, newer)", code)
	}

	const broken = "rules:\n  - name: bad\n    when: spf.reslt == \"fail\"\n    action: reject\n  - name: worse\n    action: explode\n"
	code, page = post(t, c, rulesURL, url.Values{"csrf": {tok}, "rules": {broken}, "n": {"100"}})
	if code != http.StatusUnprocessableEntity {
		t.Fatalf("a broken file: %d, want 422\n%s", code, page)
	}
	for _, re := range []string{`pasted\.yaml:3:\d+: [^<]*reslt`, `pasted\.yaml:6:\d+: [^<]*explode`} {
		if !regexp.MustCompile(re).MatchString(page) {
			t.Errorf("the page has no error matching %s:\n%s", re, page)
		}
	}
	if !strings.Contains(page, "spf.reslt") {
		t.Error("the pasted file is not shown back in the form")
	}

	for name, form := range map[string]url.Values{
		"no token":     {"rules": {accepting}},
		"forged token": {"csrf": {"x" + tok[1:]}, "rules": {accepting}},
	} {
		if code, _ := post(t, c, rulesURL, form); code != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, code)
		}
	}
	if code, _ := post(t, c, rulesURL, url.Values{"csrf": {tok}, "rules": {accepting}, "n": {"10001"}}); code != http.StatusBadRequest {
		t.Errorf("n over the bound: %d, want 400", code)
	}
	big := "# " + strings.Repeat("x", maxPastedRules) + "\n" + accepting
	if code, _ := post(t, c, rulesURL, url.Values{"csrf": {tok}, "rules": {big}}); code != http.StatusRequestEntityTooLarge {
		t.Errorf("a file over %d KiB: %d, want 413", maxPastedRules>>10, code)
	}
	huge := strings.Repeat("<", maxRulesForm)
	if code, _ := post(t, c, rulesURL, url.Values{"csrf": {tok}, "rules": {huge}}); code != http.StatusRequestEntityTooLarge {
		t.Errorf("a form over %d octets: %d, want 413", maxRulesForm, code)
	}
}

// BenchmarkRulesReplay10k measures the rules page's replay at its bound:
// 10,000 verdicts read from the index and decided again, and the page.
func BenchmarkRulesReplay10k(b *testing.B) {
	recs := make([]*policy.Record, maxReplayed)
	for i := range recs {
		r := *hostile
		r.Session = fmt.Sprintf("S%08d", i)
		r.Tx = r.Session + ".1"
		r.Time = hostile.Time.Add(-time.Duration(i) * time.Second)
		recs[i] = &r
	}
	srv, _ := testConsoleWith(b, nil, recs...)
	c := client(b)
	login(b, c, srv.URL, "correct horse")
	_, page := get(b, c, srv.URL+"/rules")
	tok := csrfField.FindStringSubmatch(page)[1]
	const accepting = "rules:\n  - name: let-all\n    stage: connect\n    when: client.ip == \"192.0.2.66\"\n    action: accept\n"
	for b.Loop() {
		code, page := post(b, c, srv.URL+"/rules", url.Values{"csrf": {tok}, "rules": {accepting}, "n": {"10000"}})
		if code != http.StatusOK || !strings.Contains(page, "10000 verdicts replayed: 10000 would change") {
			b.Fatalf("replay: %d", code)
		}
	}
}
