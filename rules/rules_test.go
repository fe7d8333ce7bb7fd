package rules

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"mxguard/internal/smtpreply"
)

var update = flag.Bool("update", false, "rewrite the expected-error files of testdata/badrules")

// testEnv stands for the caller's facts type: rules knows nothing of it but
// what its tags say.
type testEnv struct {
	Client struct {
		IP string `expr:"ip"`
	} `expr:"client"`
	HELO     string `expr:"helo"`
	Size     int    `expr:"size"`
	MailFrom struct {
		Domain string `expr:"domain"`
	} `expr:"mail_from"`
	Rcpt struct {
		Domain string `expr:"domain"`
	} `expr:"rcpt"`
	Spam   float64           `expr:"spam"`
	Checks map[string]string `expr:"checks"`
	// Facts with a fixed set of values, which comparisons are linted
	// against.
	Auth struct {
		Result string `expr:"result" values:"pass,fail,\"\""`
		Detail string `expr:"detail"`
	} `expr:"auth"`
	TLSVer  string             `expr:"tls_version" values:"\"\",TLS 1.2,TLS 1.3"`
	Sigs    []testSig          `expr:"sigs"`
	Results map[string]testSig `expr:"results"`
	Names   []string           `expr:"names" values:"alpha,beta"`
	Words   []string           `expr:"words"`
}

type testSig struct {
	Result string `expr:"result" values:"pass,fail"`
	Domain string `expr:"domain"`
}

var testOpts = Options{
	Env:   &testEnv{},
	Since: map[string]string{"size": "data", "mail_from": "mail", "helo": "helo"},
	Only:  map[string]string{"rcpt": "rcpt"},
}

func mustParse(t *testing.T, src string) *Set {
	t.Helper()
	s, err := Parse("test.yaml", []byte(src), testOpts)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return s
}

func TestEvalOrderAndActions(t *testing.T) {
	s := mustParse(t, `
rules:
  - name: watch
    when: size > 10
    action: reject
    mode: monitor
  - name: tagit
    when: size > 10
    action: tag
    headers: {X-Big: "yes"}
  - name: s1
    when: size > 10
    action: score
    score: 2.5
  - name: s2
    when: size > 100
    action: score
    score: 3
  - name: big
    when: size > 1000
    action: reject
    reply: "552 5.3.4 too big for us"
  - name: never-reached
    when: size > 1000
    action: accept
thresholds: {reject: 10, quarantine: 5}
`)
	env := &testEnv{Size: 5000}
	out := s.Eval("data", env, nil)
	var names []string
	for _, m := range out.Matches {
		names = append(names, m.Name)
	}
	if got := strings.Join(names, ","); got != "watch,tagit,s1,s2,big" {
		t.Errorf("matches %s", got)
	}
	if out.Decisive == nil || out.Decisive.Name != "big" || out.Decisive.Reply.String() != "552 5.3.4 too big for us" {
		t.Errorf("decisive %+v", out.Decisive)
	}
	if out.Score != 5.5 || len(out.Headers) != 1 || out.Headers[0] != (Header{Name: "X-Big", Value: "yes"}) {
		t.Errorf("score %v headers %v", out.Score, out.Headers)
	}
	if s.Thresholds != (Thresholds{Reject: 10, Quarantine: 5}) {
		t.Errorf("thresholds %+v", s.Thresholds)
	}
	// Monitor matches are reported and decide nothing.
	out = s.Eval("data", &testEnv{Size: 50}, nil)
	if out.Decisive != nil || out.Matches[0].Mode != Monitor || out.Score != 2.5 {
		t.Errorf("size 50: %+v", out)
	}
	// Other stages' rules are not evaluated.
	if out := s.Eval("connect", env, nil); len(out.Matches) != 0 {
		t.Errorf("connect evaluated data rules: %+v", out.Matches)
	}
}

// A hold rule at stage data decides like reject and quarantine: the first
// decisive match wins, and the rules after it are not evaluated.
func TestHoldIsDecisive(t *testing.T) {
	s := mustParse(t, `
rules:
  - name: hold-big
    when: size > 100
    action: hold
  - name: quarantine-big
    when: size > 100
    action: quarantine
`)
	out := s.Eval("data", &testEnv{Size: 500}, nil)
	if out.Decisive == nil || out.Decisive.Name != "hold-big" || out.Decisive.Action != Hold {
		t.Fatalf("decisive %+v, want hold-big", out.Decisive)
	}
	if len(out.Matches) != 1 {
		t.Errorf("matches after the decisive hold: %d", len(out.Matches))
	}
	if out := s.Eval("data", &testEnv{Size: 50}, nil); out.Decisive != nil {
		t.Errorf("size 50 decided by %s", out.Decisive.Name)
	}
}

func TestDomainsAndFunctions(t *testing.T) {
	s := mustParse(t, `
rules:
  - name: only-b
    stage: rcpt
    domains: [B.example]
    when: "true"
    action: tempfail
  - name: lan
    stage: connect
    when: in_net(client.ip, "192.0.2.0/24")
    action: accept
`)
	if out := s.Eval("rcpt", &testEnv{}, []string{"a.example"}); out.Decisive != nil {
		t.Error("rule limited to b.example matched a.example")
	}
	if out := s.Eval("rcpt", &testEnv{}, []string{"b.example"}); out.Decisive == nil {
		t.Error("rule limited to b.example did not match it (domains are case-insensitive)")
	}
	env := &testEnv{}
	env.Client.IP = "192.0.2.77"
	if out := s.Eval("connect", env, nil); out.Decisive == nil || out.Decisive.Name != "lan" {
		t.Error("in_net did not match an address in the network")
	}
	env.Client.IP = "198.51.100.1"
	if out := s.Eval("connect", env, nil); out.Decisive != nil {
		t.Error("in_net matched an address outside the network")
	}
	if got := strings.Join(s.Rules[1].Names, ","); got != "client" {
		t.Errorf("names read by the lan rule: %q, want client", got)
	}
}

func TestRuntimeErrorIsReported(t *testing.T) {
	s := mustParse(t, `
rules:
  - name: bad-index
    when: checks["spf"] == "x" || int(helo) > 1
    action: reject
`)
	out := s.Eval("data", &testEnv{HELO: "not a number"}, nil)
	if len(out.Errors) != 1 || out.Decisive != nil {
		t.Fatalf("a failing condition must be reported, not read as no match: %+v", out)
	}
}

func TestParseReplyClasses(t *testing.T) {
	for _, c := range []struct {
		in string
		ok bool
	}{
		{"550 5.7.1 no", true},
		{"451 4.7.1 later", true},
		{"550 4.7.1 mixed", false},
		{"55 5.7.1 short", false},
		{"550 5.7 two parts", false},
		{"550 5.7.1", false},
		{"650 6.0.0 nope", false},
	} {
		_, err := smtpreply.Parse(c.in)
		if (err == nil) != c.ok {
			t.Errorf("smtpreply.Parse(%q) err=%v, want ok=%v", c.in, err, c.ok)
		}
	}
}

// TestBadRules pins the exact error for each broken file in
// testdata/badrules/NN-name/{rules.yaml,expected-error}.
func TestBadRules(t *testing.T) {
	dirs, _ := filepath.Glob("testdata/badrules/*")
	if len(dirs) < 10 {
		t.Fatalf("only %d bad-rules cases", len(dirs))
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, "rules.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse("rules.yaml", data, testOpts)
			if err == nil {
				t.Fatal("loaded without error")
			}
			got := err.Error() + "\n"
			want, _ := os.ReadFile(filepath.Join(dir, "expected-error"))
			if *update {
				os.WriteFile(filepath.Join(dir, "expected-error"), []byte(got), 0o644)
				return
			}
			if got != string(want) {
				t.Errorf("got:\n%swant:\n%s", got, want)
			}
		})
	}
}

func TestLoadFilesDuplicateAcrossFiles(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")
	os.WriteFile(a, []byte("rules:\n  - name: x\n    when: \"true\"\n    action: accept\nthresholds: {reject: 9}\n"), 0o600)
	os.WriteFile(b, []byte("rules:\n  - name: x\n    when: \"false\"\n    action: reject\n"), 0o600)
	_, err := LoadFiles([]string{a, b}, testOpts)
	if err == nil || !strings.Contains(err.Error(), b+":2:5: rule \"x\" is already defined at "+a+":2") {
		t.Fatalf("err = %v", err)
	}
	os.WriteFile(b, []byte("rules:\n  - name: y\n    when: \"false\"\n    action: reject\n"), 0o600)
	s, err := LoadFiles([]string{a, b}, testOpts)
	if err != nil || len(s.Rules) != 2 || s.Thresholds.Reject != 9 || len(s.Files) != 2 {
		t.Fatalf("set %+v err %v", s, err)
	}
	if _, err := LoadFiles([]string{filepath.Join(dir, "missing.yaml")}, testOpts); err == nil || !strings.Contains(err.Error(), "missing.yaml:1:1: no such file") {
		t.Fatalf("missing file: %v", err)
	}
}

// FuzzParse: the loader never panics, every error it reports has the
// file:line:col form, and a condition's error is at a place in the file.
func FuzzParse(f *testing.F) {
	f.Add([]byte("rules:\n  - name: a\n    when: size > 1\n    action: reject\n"))
	f.Add([]byte("rules:\n  - name: a\n    when: |\n      size >\n    action: reject\n"))
	f.Add([]byte("rules: [{name: x, when: 'helo == \"a\"', action: tag, headers: {X: y}}]\nthresholds: {reject: 2, quarantine: 1}\n"))
	f.Add([]byte("rules: [{name: x, when: 'any(sigs, .result in [\"Fail\"]) || \"x\" in names', action: reject}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := Parse("rules.yaml", data, testOpts)
		if err == nil {
			return
		}
		lines := splitLines(data)
		for _, msg := range strings.Split(err.Error(), "\n") {
			var l, c int
			if n, _ := fmt.Sscanf(msg, "rules.yaml:%d:%d:", &l, &c); n != 2 || strings.Count(msg, ":") < 3 {
				t.Fatalf("error line without a position: %q", msg)
			}
			if l < 1 || c < 1 {
				t.Fatalf("%q: not a position", msg)
			}
			if !strings.Contains(msg, "].when: ") {
				continue
			}
			if l > len(lines) || c > utf8.RuneCountInString(lines[l-1])+1 {
				t.Fatalf("%q: not a position in the file (%d lines)", msg, len(lines))
			}
		}
	})
}

func TestReplyPlaceholders(t *testing.T) {
	s := mustParse(t, `
rules:
  - name: named
    stage: connect
    when: client.ip != ""
    action: reject
    reply: "554 5.7.1 ${client.ip} is listed (${upper(helo)}); see ${helo}"
`)
	env := &testEnv{HELO: "bad\r\nhost"}
	env.Client.IP = "192.0.2.9"
	got := s.Rules[0].RenderReply(env)
	if got.String() != "554 5.7.1 192.0.2.9 is listed (BAD  HOST); see bad  host" {
		t.Fatalf("rendered %q", got.String())
	}
	if _, err := Parse("t.yaml", []byte("rules:\n  - name: x\n    when: \"true\"\n    action: reject\n    reply: \"550 5.7.1 ${nosuch}\"\n"), testOpts); err == nil || !strings.Contains(err.Error(), "t.yaml:5:12: rules[0].reply: in ${nosuch}: unknown fact nosuch") {
		t.Fatalf("bad placeholder: %v", err)
	}
}

// TestReplyCutOnCharacter: a long rendered reply is cut to its bound
// between characters, never inside a UTF-8 sequence (a client, or a log
// reader, would see an invalid octet).
func TestReplyCutOnCharacter(t *testing.T) {
	s := mustParse(t, `
rules:
  - name: named
    stage: connect
    when: client.ip != ""
    action: reject
    reply: "554 5.7.1 x ${helo}"
`)
	for _, pad := range []string{"é", "€", "😀"} {
		env := &testEnv{HELO: strings.Repeat(pad, 300)}
		env.Client.IP = "192.0.2.9"
		got := s.Rules[0].RenderReply(env).Text
		if len(got) > maxReplyText || len(got) < maxReplyText-3 || !utf8.ValidString(got) {
			t.Errorf("%s: %d octets, valid UTF-8 %v", pad, len(got), utf8.ValidString(got))
		}
	}
}

// TestWhenBoolean: `when: true` and `when: false` unquoted are YAML
// booleans; they are conditions like their quoted forms.
func TestWhenBoolean(t *testing.T) {
	for _, c := range []struct {
		when  string
		match bool
	}{
		{"true", true}, {"false", false}, {"True", true}, {"FALSE", false}, {`"true"`, true}, {"'false'", false},
	} {
		s, err := Parse("t.yaml", []byte("rules:\n  - name: r\n    when: "+c.when+"\n    action: reject\n"), testOpts)
		if err != nil {
			t.Errorf("when: %s: %v", c.when, err)
			continue
		}
		if out := s.Eval("data", &testEnv{}, nil); (out.Decisive != nil) != c.match {
			t.Errorf("when: %s: matched %v, want %v", c.when, out.Decisive != nil, c.match)
		}
	}
	// What is neither a condition nor a boolean is still refused.
	for when, want := range map[string]string{
		"~":      "t.yaml:3:11: rules[0].when: expected a condition over the facts, got null",
		"[true]": "t.yaml:3:11: rules[0].when: expected a condition over the facts, got a list",
		"!tls":   "t.yaml:3:11: rules[0].when: expected a condition over the facts, got a value tagged !tls",
	} {
		_, err := Parse("t.yaml", []byte("rules:\n  - name: r\n    when: "+when+"\n    action: reject\n"), testOpts)
		if err == nil || err.Error() != want {
			t.Errorf("when: %s:\n got %v\nwant %s", when, err, want)
		}
	}
}
