package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"mxguard/policy"
)

const (
	verdictsSample = "testdata/verdicts/sample.jsonl"
	verdictsBad    = "testdata/verdicts/bad.jsonl"
)

// verdictsNow is the tests' clock: the time of the last sample record, so
// that --until 1h style durations are exercised against known data.
var verdictsNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// runV runs the command on empty stdin and returns exit code and outputs.
func runV(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := runVerdicts(args, strings.NewReader(stdin), &stdout, &stderr, verdictsNow)
	return code, stdout.String(), stderr.String()
}

// sessionsOf returns the session of each JSON line in out.
func sessionsOf(t *testing.T, out string) []string {
	t.Helper()
	sessions := []string{}
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		var r struct{ Session string }
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("output line %q: %v", line, err)
		}
		sessions = append(sessions, r.Session)
	}
	return sessions
}

func TestVerdictsFilters(t *testing.T) {
	all := strings.Fields("aaa1 bbb2 ccc3 ddd4 eee5 fff6 ggg7 hhh8 iii9 jjj10 kkk11 lll12")
	tests := []struct {
		args []string
		want []string
	}{
		{nil, all},
		{[]string{"--action", "reject"}, strings.Fields("bbb2 ccc3 fff6 jjj10 lll12")},
		{[]string{"--action", "reject, TEMPFAIL"}, strings.Fields("bbb2 ccc3 fff6 ggg7 jjj10 lll12")},
		{[]string{"--action", "abandoned"}, []string{"hhh8"}},
		{[]string{"--action", "quarantine,tag"}, []string{"eee5", "kkk11"}},
		{[]string{"--rule", "no-ptr"}, strings.Fields("ddd4 eee5 iii9 jjj10")},
		{[]string{"--rule", "spf-fail"}, []string{"bbb2", "jjj10"}},
		{[]string{"--rule", "spf"}, []string{}}, // names are exact, not substrings
		{[]string{"--check", "spf=fail"}, strings.Fields("bbb2 fff6 jjj10")},
		{[]string{"--check", "dkim"}, []string{"eee5"}},
		{[]string{"--check", "dnsbl=listed"}, []string{"ccc3"}},
		{[]string{"--check", "spf=pass", "--check", "dkim=fail"}, []string{"eee5"}},
		{[]string{"--check", "spf=fail", "--check", "dkim=fail"}, []string{}},
		{[]string{"--from", "EXAMPLE.com"}, strings.Fields("aaa1 eee5 ggg7 iii9")},
		{[]string{"--from", "<>"}, []string{"ddd4"}}, // not the connection-level records
		{[]string{"--rcpt", "Carol"}, []string{"bbb2", "hhh8"}},
		{[]string{"--rcpt", "nobody@"}, []string{"fff6"}}, // refused at RCPT
		{[]string{"--client", "198.51.100.7"}, []string{"bbb2", "fff6"}},
		{[]string{"--client", "203.0.113.0/24"}, strings.Fields("aaa1 ddd4 ggg7 iii9 kkk11")},
		{[]string{"--client", "203.0.113.7/24"}, strings.Fields("aaa1 ddd4 ggg7 iii9 kkk11")},
		{[]string{"--client", "198.51.100.0/29"}, []string{"bbb2", "fff6"}},
		{[]string{"--client", "2001:DB8:0::25"}, []string{"eee5"}},
		{[]string{"--client", "2001:db8::/32"}, []string{"eee5"}},
		{[]string{"--client", "::ffff:192.0.2.10"}, []string{"hhh8"}},
		{[]string{"--session", "iii"}, []string{"iii9"}},
		{[]string{"--session", "jjj10.1"}, []string{"jjj10"}},
		{[]string{"--session", "iii9.1"}, []string{}},
		{[]string{"--since", "2026-11-25"}, strings.Fields("ggg7 hhh8 iii9 jjj10 kkk11 lll12")},
		{[]string{"--until", "2026-11-25"}, strings.Fields("aaa1 bbb2 ccc3 ddd4 eee5 fff6")},
		{[]string{"--since", "2026-11-24T10:02:00Z", "--until", "2026-11-24T15:00:00Z"}, strings.Fields("bbb2 ccc3 ddd4")},
		{[]string{"--since", "2026-11-24T23:00:00+01:00"}, strings.Fields("fff6 ggg7 hhh8 iii9 jjj10 kkk11 lll12")},
		{[]string{"--since", "1h"}, []string{"kkk11", "lll12"}},
		{[]string{"--since", "1s"}, []string{"kkk11", "lll12"}},
		{[]string{"--since", "0s"}, []string{"lll12"}},
		{[]string{"--since", "30m", "--until", "2026-11-25T11:59:59Z"}, []string{}},
		{[]string{"--until", "1s"}, all[:10]},
		{[]string{"--since", "1d"}, strings.Fields("ddd4 eee5 fff6 ggg7 hhh8 iii9 jjj10 kkk11 lll12")},
		{[]string{"--since", "1d12h"}, all},
		{[]string{"--action", "reject", "--client", "198.51.100.0/24", "--check", "spf=fail"}, strings.Fields("bbb2 fff6 jjj10")},
		{[]string{"--from", "spammer", "--rule", "unknown-rcpt"}, []string{"fff6"}},
		{[]string{"--action", "accept", "--rule", "no-ptr", "--since", "2026-11-25"}, []string{"iii9"}},
		{[]string{"--rcpt", "bob", "--action", "tempfail,tag", "--until", "2026-11-25T06:00:00Z"}, []string{"ggg7"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			args := append(append([]string{"--json"}, tt.args...), verdictsSample)
			code, out, errOut := runV(t, "", args...)
			if code != exitOK || errOut != "" {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			if got := sessionsOf(t, out); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestVerdictsJSONVerbatim checks that --json copies the lines byte for
// byte, selecting them independently of the decoder.
func TestVerdictsJSONVerbatim(t *testing.T) {
	raw, err := os.ReadFile(verdictsSample)
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for _, line := range strings.SplitAfter(string(raw), "\n") {
		if strings.Contains(line, `"action":"reject"`) {
			want.WriteString(line)
		}
	}
	code, out, _ := runV(t, "", "--json", "--action", "reject", verdictsSample)
	if code != exitOK || out != want.String() {
		t.Errorf("exit %d, output:\n%s\nwant:\n%s", code, out, want.String())
	}
}

func TestVerdictsTable(t *testing.T) {
	code, out, errOut := runV(t, "", "--client", "203.0.113.0/24", "--since", "2026-11-24T12:00:00Z", verdictsSample)
	want := `TIME                 SESSION  CLIENT_IP      MAIL_FROM              RCPTS                 ACTION    RULES        REPLY
2026-11-24 13:45:10  ddd4.1   203.0.113.99   <>                     postmaster@corp.test  accept    no-ptr*      250 2.0.0 Ok: queued as ddd4.1
2026-11-25 00:00:00  ggg7.1   203.0.113.5    alice@example.com      bob@corp.test         tempfail  greylist     451 4.7.1 try again later (session ggg7)
2026-11-25 08:00:00  iii9.2   203.0.113.5    alice@example.com      eve@corp.test +2      accept    no-ptr*      250 2.0.0 Ok: queued as iii9.2 by the backend at mx1.corp.t…
2026-11-25 11:59:59  kkk11.1  203.0.113.200  ceo@corp.test\x1b[31m  bob@corp.test         tag       spoofed-ceo  250 2.0.0 Ok:\tqueued as kkk11.1
4 of 12 verdicts
`
	if code != exitOK || errOut != "" || out != want {
		t.Errorf("exit %d, stderr %q, output:\n%s\nwant:\n%s", code, errOut, out, want)
	}

	// A connection refused before MAIL has no sender ("-"), no
	// recipients and no transaction id; refused recipients are listed.
	code, out, _ = runV(t, "", "--session", "ccc3", verdictsSample)
	if code != exitOK || !strings.Contains(out, "ccc3     192.0.2.66  -          -      reject  dnsbl-zen") {
		t.Errorf("exit %d, output:\n%s", code, out)
	}
	_, out, _ = runV(t, "", "--session", "fff6", verdictsSample)
	if !strings.Contains(out, "spam@spammer.test  nobody@corp.test") {
		t.Errorf("refused recipient not shown:\n%s", out)
	}
	// Nothing matched: no header, only the count.
	code, out, _ = runV(t, "", "--action", "tag", "--from", "nobody", verdictsSample)
	if code != exitOK || out != "0 of 12 verdicts\n" {
		t.Errorf("exit %d, output %q", code, out)
	}
}

func TestVerdictsSummary(t *testing.T) {
	code, out, errOut := runV(t, "", "--summary", "--action", "reject,tempfail", verdictsSample)
	want := `by action:
  reject    5
  tempfail  1

by rule:
  spf-fail (enforce)      2
  bad-helo (enforce)      1
  dnsbl-zen (enforce)     1
  greylist (enforce)      1
  no-ptr (monitor)        1
  unknown-rcpt (enforce)  1

by check:
  spf=fail       3
  dnsbl=listed   1
  spf=temperror  1

top 10 sending domains:
  spammer.test  3
  -             2
  example.com   1

top 10 client IPs:
  192.0.2.66    2
  198.51.100.7  2
  198.51.100.8  1
  203.0.113.5   1

6 of 12 verdicts
`
	if code != exitOK || errOut != "" || out != want {
		t.Errorf("exit %d, stderr %q, output:\n%s\nwant:\n%s", code, errOut, out, want)
	}

	// --top cuts the domain and client lists, not the others; the null
	// sender is "<>" and domains are lower-cased.
	_, out, _ = runV(t, "", "--summary", "--top", "1", "--action", "accept,quarantine", verdictsSample)
	for _, s := range []string{"top 1 sending domains:\n  example.com  3\n\n", "top 1 client IPs:\n  203.0.113.5  2\n\n", "  accept      3\n  quarantine  1\n"} {
		if !strings.Contains(out, s) {
			t.Errorf("summary lacks %q:\n%s", s, out)
		}
	}
	_, out, _ = runV(t, "", "--summary", "--top", "0", "--from", "<>", verdictsSample)
	if !strings.Contains(out, "sending domains:\n  <>  1\n") {
		t.Errorf("null sender not counted as <>:\n%s", out)
	}
	_, out, _ = runV(t, "", "--summary", "--action", "tag", "--rule", "none", verdictsSample)
	if !strings.Contains(out, "by action:\n  (none)\n") || !strings.HasSuffix(out, "0 of 12 verdicts\n") {
		t.Errorf("empty summary:\n%s", out)
	}
}

func TestVerdictsBadLines(t *testing.T) {
	code, out, errOut := runV(t, "", "--json", verdictsSample, verdictsBad)
	if code != exitFailed {
		t.Errorf("exit %d, want %d", code, exitFailed)
	}
	// Line 2 is blank and skipped; 3 is cut short; 5 is "null".
	for _, s := range []string{"bad.jsonl:3: not a verdict line: ", "bad.jsonl:5: not a verdict line: not a JSON object", "bad lines: 2"} {
		if !strings.Contains(errOut, s) {
			t.Errorf("stderr lacks %q:\n%s", s, errOut)
		}
	}
	if strings.Contains(errOut, ":2:") || strings.Contains(errOut, ":4:") {
		t.Errorf("good or blank line reported:\n%s", errOut)
	}
	if got := sessionsOf(t, out); len(got) != 14 || got[13] != "bad3" {
		t.Errorf("reading did not go on after the bad line: %v", got)
	}

	// A missing file fails the run, but the other files are still read.
	code, out, errOut = runV(t, "", filepath.Join(t.TempDir(), "missing.jsonl"), verdictsSample)
	if code != exitFailed || !strings.Contains(errOut, "missing.jsonl") || !strings.HasSuffix(out, "12 of 12 verdicts\n") {
		t.Errorf("exit %d, stderr %q, output:\n%s", code, errOut, out)
	}
}

// TestVerdictsLongLine checks that a line over the 1 MiB limit is reported
// and skipped, and that the lines after it are still read.
func TestVerdictsLongLine(t *testing.T) {
	sample, err := os.ReadFile(verdictsSample)
	if err != nil {
		t.Fatal(err)
	}
	long := `{"session":"long","reply":"` + strings.Repeat("x", 3<<20) + "\"}\n"
	path := filepath.Join(t.TempDir(), "long.jsonl")
	if err := os.WriteFile(path, append([]byte(long), sample...), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runV(t, "", path)
	if code != exitFailed || !strings.Contains(errOut, "long.jsonl:1: not a verdict line: longer than") ||
		!strings.HasSuffix(out, "12 of 12 verdicts\n") {
		t.Errorf("exit %d, stderr %q, output tail %q", code, errOut, out[max(0, len(out)-100):])
	}
}

func TestVerdictsInputs(t *testing.T) {
	sample, err := os.ReadFile(verdictsSample)
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(sample)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	gzPath := filepath.Join(dir, "verdicts.jsonl.gz")
	if err := os.WriteFile(gzPath, gz.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	notGz := filepath.Join(dir, "plain.gz")
	if err := os.WriteFile(notGz, sample, 0o600); err != nil {
		t.Fatal(err)
	}
	_, want, _ := runV(t, "", "--action", "reject", verdictsSample)
	for _, c := range []struct {
		name, stdin string
		args        []string
	}{
		{"gz file", "", []string{gzPath}},
		{"stdin", string(sample), nil},
		{"stdin dash", string(sample), []string{"-"}},
		{"gz stdin", gz.String(), []string{"-"}},
	} {
		code, out, errOut := runV(t, c.stdin, append([]string{"--action", "reject"}, c.args...)...)
		if code != exitOK || out != want || errOut != "" {
			t.Errorf("%s: exit %d, stderr %q, output:\n%s\nwant:\n%s", c.name, code, errOut, out, want)
		}
	}
	// Two files are read in turn; a .gz that is not gzip is an error.
	_, out, _ := runV(t, "", verdictsSample, gzPath)
	if !strings.HasSuffix(out, "24 of 24 verdicts\n") {
		t.Errorf("two files: %q", out[max(0, len(out)-50):])
	}
	code, _, errOut := runV(t, "", notGz)
	if code != exitFailed || !strings.Contains(errOut, "plain.gz: gzip: invalid header") {
		t.Errorf("not gzip: exit %d, stderr %q", code, errOut)
	}
}

func TestVerdictsUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--nope"},
		{"--since", "yesterday"},
		{"--until", "-1h"},
		{"--since", "2026-11-25", "--until", "2026-11-24"},
		{"--client", "300.1.1.1"},
		{"--client", "10.0.0.0/33"},
		{"--action", "rejected"},
		{"--action", "reject,"},
		{"--check", "=fail"},
		{"--check", "spf="},
		{"--json", "--summary"},
		{"--summary", "--top", "-1"},
	} {
		code, out, errOut := runV(t, "", append(args, verdictsSample)...)
		if code != exitUsage || out != "" || errOut == "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	code, out, errOut := runV(t, "", "-h")
	if code != exitOK || out != "" || !strings.Contains(errOut, "usage: mxguard verdicts") || !strings.Contains(errOut, "-check NAME[=RESULT]") {
		t.Errorf("-h: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestVerdictsParseTime(t *testing.T) {
	// A zone east of UTC, so that "local midnight" differs from UTC's.
	loc := time.FixedZone("X", 3*3600)
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, loc)
	for in, want := range map[string]time.Time{
		"2026-11-25T10:00:00Z":        time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC),
		"2026-11-25T10:00:00.5-05:00": time.Date(2026, 11, 25, 15, 0, 0, 5e8, time.UTC),
		"2026-11-24":                  time.Date(2026, 11, 23, 21, 0, 0, 0, time.UTC),
		"90m":                         now.Add(-90 * time.Minute),
		"7d":                          now.AddDate(0, 0, -7),
		"1d12h":                       now.Add(-36 * time.Hour),
		"0s":                          now,
		"0d":                          now,
	} {
		got, err := policy.ParseVerdictTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("%q: got %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "7", "-1h", "-1d", "+1d", "1d-1h", "1dd", "1.5d", "2026-13-01", "2026-11-25T10:00:00", "1w"} {
		if got, err := policy.ParseVerdictTime(in, now); err == nil {
			t.Errorf("%q: got %v, want an error", in, got)
		}
	}
}

// TestVerdictsEdges covers inputs the sample does not: an IPv4-mapped
// client address in the log, and a flood of bad lines, which is reported
// only in part so that a wrong file does not bury the terminal.
func TestVerdictsEdges(t *testing.T) {
	mapped := `{"time":"2026-11-25T09:00:00Z","session":"m1","client_ip":"::ffff:192.0.2.77","action":"accept"}` + "\n"
	code, out, _ := runV(t, mapped, "--json", "--client", "192.0.2.0/24")
	if code != exitOK || out != mapped {
		t.Errorf("mapped address: exit %d, output %q", code, out)
	}
	code, out, errOut := runV(t, strings.Repeat("garbage\n", 25)+mapped)
	if code != exitFailed || strings.Count(errOut, "not a verdict line") != verdictMaxReports ||
		!strings.Contains(errOut, "<stdin>:20: not a verdict line") || strings.Contains(errOut, "<stdin>:21:") ||
		!strings.Contains(errOut, "more bad lines, not shown") || !strings.Contains(errOut, "bad lines: 25") ||
		!strings.HasSuffix(out, "1 of 1 verdicts\n") {
		t.Errorf("exit %d, stderr:\n%s\noutput:\n%s", code, errOut, out)
	}
}

// TestVerdictsOnTerminalPrintsUsage: with no file and a terminal as
// standard input, nobody is piping a log in; verdicts prints its usage
// instead of waiting for input that never comes.
func TestVerdictsOnTerminalPrintsUsage(t *testing.T) {
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	done := make(chan int, 1)
	var out, errb strings.Builder
	go func() { done <- runVerdicts(nil, tty, &out, &errb, time.Now()) }()
	select {
	case code := <-done:
		if code != exitUsage || !strings.Contains(errb.String(), "usage: mxguard verdicts") {
			t.Fatalf("exit %d, stderr %q", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		tty.Close() // ends the read, so the goroutine returns
		t.Fatal("verdicts waits for a log on the terminal")
	}
	// A pipe or a file is read as a log, as before.
	if code := runVerdicts(nil, strings.NewReader(""), &out, &errb, time.Now()); code != exitOK {
		t.Fatalf("empty input: exit %d", code)
	}
}
