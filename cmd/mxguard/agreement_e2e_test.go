package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"mxguard/policy"
)

// corpusCase is one message of testdata/messages with its entry in
// testdata/messages/envelopes.yaml.
type corpusCase struct {
	File     string            `yaml:"-"`
	Client   string            `yaml:"client"`
	Helo     string            `yaml:"helo"`
	MailFrom *string           `yaml:"mail_from"`
	Rcpt     []string          `yaml:"rcpt"`
	Action   string            `yaml:"action"`
	Rules    []string          `yaml:"rules"`
	Checks   map[string]string `yaml:"checks"`
}

// corpusCases reads every message of testdata/messages and its envelope,
// failing t when a message has no entry in envelopes.yaml or an entry no
// message, so that adding a message file adds a case.
func corpusCases(t *testing.T) []corpusCase {
	t.Helper()
	dec := yaml.NewDecoder(strings.NewReader(corpusFile(t, "messages/envelopes.yaml")))
	dec.KnownFields(true)
	table := map[string]corpusCase{}
	if err := dec.Decode(&table); err != nil {
		t.Fatalf("testdata/messages/envelopes.yaml: %v", err)
	}
	files, _ := filepath.Glob(corpusPath("messages/*.eml"))
	if len(files) == 0 {
		t.Fatal("testdata/messages holds no .eml file")
	}
	var cases []corpusCase
	for _, f := range files {
		name := filepath.Base(f)
		c, ok := table[name]
		if !ok {
			t.Errorf("testdata/messages/%s has no entry in envelopes.yaml", name)
			continue
		}
		delete(table, name)
		if c.MailFrom == nil || c.Action == "" {
			t.Errorf("envelopes.yaml: %s: mail_from and action are required", name)
			continue
		}
		c.File = f
		if c.Client == "" {
			c.Client = "127.0.0.1"
		}
		if c.Helo == "" {
			c.Helo = "client.sender.test"
		}
		if len(c.Rcpt) == 0 {
			c.Rcpt = []string{"user@example.org"}
		}
		cases = append(cases, c)
	}
	for name := range table {
		t.Errorf("envelopes.yaml names %s, which testdata/messages lacks", name)
	}
	if t.Failed() {
		t.FailNow()
	}
	return cases
}

// dataStream is msg as a client sends it after DATA (RFC 5321 §4.5.2):
// a line that begins with "." gets a second one, and CRLF.CRLF ends it.
// Only CRLF ends a line, as for the server, so a bare LF or CR goes out as
// it is: serve receives the bytes that check reads from the file.
func dataStream(msg []byte) []byte {
	var b bytes.Buffer
	for line := range bytes.SplitAfterSeq(msg, []byte("\r\n")) {
		if len(line) > 0 && line[0] == '.' {
			b.WriteByte('.')
		}
		b.Write(line)
	}
	if b.Len() > 0 && !bytes.HasSuffix(b.Bytes(), []byte("\r\n")) {
		b.WriteString("\r\n")
	}
	b.WriteString(".\r\n")
	return b.Bytes()
}

// serveCorpusCase sends one corpus message to serve from its client,
// stopping at the first refusal as a client would.
func serveCorpusCase(t *testing.T, listen string, c corpusCase, msg []byte) {
	t.Helper()
	v := dialConv(t, c.Client, listen)
	v.say("", "220 ")
	cmds := []string{"EHLO " + c.Helo, "MAIL FROM:<" + *c.MailFrom + ">"}
	for _, r := range c.Rcpt {
		cmds = append(cmds, "RCPT TO:<"+r+">")
	}
	for _, cmd := range append(cmds, "DATA") {
		if reply := v.say(cmd, ""); !strings.HasPrefix(reply, "2") && !strings.HasPrefix(reply, "3") {
			v.say("QUIT", "221 ")
			return
		}
	}
	v.c.Write(dataStream(msg))
	v.say("", "")
	v.say("QUIT", "221 ")
}

// TestCheckAgreesWithServe sends every message of testdata/messages
// through mxguard serve, from the client and with the envelope that
// envelopes.yaml gives it, and puts the same message, envelope and client
// through mxguard check with the same configuration: both must reach the
// same action, by the same rules, with the same reply, and that action and
// those rules must be the ones envelopes.yaml expects.
func TestCheckAgreesWithServe(t *testing.T) {
	h := startAuth(t)
	cfg := filepath.Join(t.TempDir(), "check.yaml")
	os.WriteFile(cfg, []byte("hostname: mx.example.org\nlisten: [{address: 127.0.0.1:2525}]\nbackend: {address: \"builtin:"+t.TempDir()+"\"}\n"+
		"domains: [example.org]\ndns: {servers: ["+h.dns.Addr()+"], timeout: 500ms}\n"), 0o600)
	for i, c := range corpusCases(t) {
		name := strings.TrimSuffix(filepath.Base(c.File), ".eml")
		t.Run(name, func(t *testing.T) {
			msg, err := os.ReadFile(c.File)
			if err != nil {
				t.Fatal(err)
			}
			serveCorpusCase(t, h.listen, c, msg)
			served := waitVerdicts(t, h.vlog, i+1)[i]
			args := []string{"check", "--config", cfg, "--json", "--client-ip", c.Client, "--helo", c.Helo, "--mail-from", *c.MailFrom}
			for _, r := range c.Rcpt {
				args = append(args, "--rcpt", r)
			}
			var out, errb strings.Builder
			if code := run(append(args, c.File), &out, &errb); code != 0 {
				t.Fatalf("check exit %d: %s", code, errb.String())
			}
			var checked policy.Record
			if err := json.Unmarshal([]byte(out.String()), &checked); err != nil {
				t.Fatalf("check output: %v: %q", err, out.String())
			}
			if got, want := summary(checked), summary(served); got != want {
				t.Errorf("check and serve disagree\n check: %s\n serve: %s", got, want)
			}
			// Both judged the same message (its size counted once line
			// endings are canonical CRLF, as the backend would get it),
			// from its client, with its envelope.
			want := envelope(policy.Record{ClientIP: c.Client, HELO: c.Helo, MailFrom: *c.MailFrom, Rcpts: c.Rcpt, Size: served.Size, MessageID: served.MessageID})
			if got := envelope(served); got != want {
				t.Errorf("serve recorded %s, want %s", got, want)
			}
			if got := envelope(checked); got != want {
				t.Errorf("check recorded %s, want %s", got, want)
			}
			var rules []string
			for _, m := range served.Rules {
				rules = append(rules, m.Name)
			}
			if served.Action != c.Action || !slices.Equal(rules, c.Rules) {
				t.Errorf("serve: %s by rules %q; envelopes.yaml wants %s by %q", served.Action, rules, c.Action, c.Rules)
			}
			for check, want := range c.Checks {
				if got := served.Checks[check].Result; got != want {
					t.Errorf("serve: check %s gave %q, envelopes.yaml wants %q", check, got, want)
				}
			}
		})
	}
}

// envelope is the client, envelope and message a record was made for.
func envelope(r policy.Record) string {
	return fmt.Sprintf("client %s helo %s from <%s> to %v, %d bytes, Message-ID %s", r.ClientIP, r.HELO, r.MailFrom, r.Rcpts, r.Size, r.MessageID)
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
