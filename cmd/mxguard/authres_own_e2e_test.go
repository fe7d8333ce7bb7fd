package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mxguard/policy"
)

// TestOwnAuthResultsParses sends hostile MAIL FROM, HELO, From and DKIM
// values and parses the Authentication-Results field that mxguard added
// with two RFC 8601 parsers, python3-authres and go-msgauth: each must read
// exactly the results mxguard computed, and every line of the field must
// start with the result we put there.
func TestOwnAuthResultsParses(t *testing.T) {
	requirePythonAuthres(t)
	dir := t.TempDir()
	// Rules that refuse nothing, so that an invalid HELO gets to DATA.
	rulesPath := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rulesPath, []byte("rules:\n  - name: never\n    stage: helo\n    when: helo == \"never.test\"\n    action: reject\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := startAuthWith(t, "rules: ["+rulesPath+"]\n")
	const sig = "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; s=sel; h=from; bh=AAAA; b=AAAA;\r\n"
	pass := func(from string) arResult {
		return arResult{"spf", "pass", map[string]string{"smtp.mailfrom": from}}
	}
	none := func(k, v string) arResult { return arResult{"spf", "none", map[string]string{k: v}} }
	dkimNone := arResult{"dkim", "none", map[string]string{}}
	dmarc := func(res, from string) arResult {
		r := arResult{"dmarc", res, map[string]string{}}
		if from != "" {
			r.Props["header.from"] = from
		}
		return r
	}
	cases := []struct {
		name, helo, mail, params, head string
		want                           []arResult
	}{
		{name: "mailfrom-quoted-local", helo: "client.sender.test",
			mail: `"a\";dmarc=pass header.from=bank.test;x=\"b"@good.test`,
			head: "From: <alice@good.test>\r\n",
			want: []arResult{none("smtp.mailfrom", "good.test"), dkimNone, dmarc("none", "good.test")}},
		{name: "mailfrom-smtputf8", helo: "client.sender.test",
			mail: "ü.ö@BÜCHER.test", params: " SMTPUTF8",
			head: "From: ü@bücher.test\r\n",
			want: []arResult{none("smtp.mailfrom", "xn--bcher-kva.test"), dkimNone, dmarc("none", "xn--bcher-kva.test")}},
		{name: "mailfrom-address-literal", helo: "client.sender.test",
			mail: "alice@[127.0.0.1]",
			head: "From: alice@good.test\r\n",
			want: []arResult{none("smtp.mailfrom", "[127.0.0.1]"), dkimNone, dmarc("none", "good.test")}},
		// SPF asks the DNS about that name: the result is the verdict log's.
		{name: "helo-hostile", helo: `a";dmarc=pass;header.from=bank.test;b="\(c)`,
			head: "From: alice@good.test\r\n",
			want: []arResult{{"spf", "", map[string]string{"smtp.helo": `a"?dmarc=pass?header.from=bank.test?b="\(c)`}}, dkimNone, dmarc("none", "good.test")}},
		{name: "helo-address-literal", helo: "[127.0.0.1]",
			head: "From: alice@good.test\r\n",
			want: []arResult{none("smtp.helo", "[127.0.0.1]"), dkimNone, dmarc("none", "good.test")}},
		{name: "from-hostile", helo: "client.sender.test", mail: "alice@sender.test",
			head: "From: \"x;dmarc=pass\r\n\tfolded\" <a@BÜCHER.test> (y;dkim=pass)\r\n",
			want: []arResult{pass("alice@sender.test"), dkimNone, dmarc("none", "xn--bcher-kva.test")}},
		{name: "from-unparseable", helo: "client.sender.test", mail: "alice@sender.test",
			head: "From: a@bank.test;dmarc=pass\r\n",
			want: []arResult{pass("alice@sender.test"), dkimNone, dmarc("permerror", "")}},
		{name: "dkim-hostile", helo: "client.sender.test", mail: "alice@sender.test",
			head: strings.Replace(sig, "s=sel;", `s=sel; d=bank.test"\(x)=y; i="a\"b"@bank.test;`, 1) +
				strings.Replace(sig, "s=sel;", "s=sel; d=BÜCHER.test; i=ü@bücher.test;", 1) +
				strings.Replace(sig, "s=sel;", "s=sel; d=bank.test\u202e; i=x@bank.test\u202e;", 1) +
				"From: alice@sender.test\r\n",
			want: []arResult{pass("alice@sender.test"),
				{"dkim", "permerror", map[string]string{"header.d": `bank.test"\(x)=y`, "header.i": "@bank.test"}},
				{"dkim", "permerror", map[string]string{"header.d": "xn--bcher-kva.test", "header.i": "@xn--bcher-kva.test"}},
				{"dkim", "permerror", map[string]string{"header.d": "bank.test?"}},
				dmarc("pass", "sender.test")}},
	}
	var values []string
	for i, c := range cases {
		conv := dialConv(t, "", h.listen)
		conv.say("", "220 ")
		conv.say("EHLO "+c.helo, "250 ")
		conv.say("MAIL FROM:<"+c.mail+">"+c.params, "250 ")
		conv.say("RCPT TO:<user@example.org>", "250 ")
		id := fmt.Sprintf("<case%d@sender.test>", i)
		conv.data(c.head+"Message-ID: "+id+"\r\nSubject: "+c.name+"\r\n\r\nbody\r\n", "250 ")
		conv.say("QUIT", "221 ")
		want := computed(t, c.name, waitVerdicts(t, h.vlog, i+1)[i], c.want)
		cases[i].want = want
		msg := storedWith(t, h, id)
		fields := authResultsFields(msg)
		if len(fields) != 1 {
			t.Fatalf("%s: the delivered message has %d Authentication-Results fields, want ours only:\n%s", c.name, len(fields), msg)
		}
		checkLines(t, c.name, fields[0], want)
		values = append(values, unfoldValue(fields[0]))
	}
	ids, py := parsePython(t, values)
	for i, c := range cases {
		if ids[i] != "mx.example.org" {
			t.Errorf("%s: python3-authres reads authserv-id %q", c.name, ids[i])
		}
		if got, want := formatResults(py[i]), formatResults(c.want); got != want {
			t.Errorf("%s: python3-authres reads%s\nwant%s\nfrom %q", c.name, got, want, values[i])
		}
		id, gm := parseMsgauth(t, values[i])
		if id != "mx.example.org" {
			t.Errorf("%s: go-msgauth reads authserv-id %q", c.name, id)
		}
		if got, want := formatResults(gm), formatResults(c.want); got != want {
			t.Errorf("%s: go-msgauth reads%s\nwant%s\nfrom %q", c.name, got, want, values[i])
		}
	}
}

// computed returns want with the results the verdict log recorded for the
// transaction, in the order mxguard writes them (SPF, each DKIM signature
// or none, DMARC): the field must report what mxguard computed. A result
// given in want must be the recorded one.
func computed(t *testing.T, name string, rec policy.Record, want []arResult) []arResult {
	t.Helper()
	if rec.Facts == nil {
		t.Fatalf("%s: the verdict line has no facts", name)
	}
	var recorded []string
	recorded = append(recorded, rec.Checks["spf"].Result)
	if sigs := rec.Facts.DKIM.Signatures; len(sigs) == 0 {
		recorded = append(recorded, rec.Checks["dkim"].Result)
	} else {
		for _, s := range sigs {
			recorded = append(recorded, s.Result)
		}
	}
	recorded = append(recorded, rec.Checks["dmarc"].Result)
	if len(recorded) != len(want) {
		t.Fatalf("%s: the verdict log has %d results %v, the case expects %d", name, len(recorded), recorded, len(want))
	}
	out := make([]arResult, len(want))
	for i, w := range want {
		if w.Result != "" && w.Result != recorded[i] {
			t.Fatalf("%s: result %d is %s in the verdict log, the case expects %s", name, i+1, recorded[i], w.Result)
		}
		w.Result = recorded[i]
		out[i] = w
	}
	return out
}

// checkLines holds a line reader (a Sieve :contains test, a grep) to what
// we wrote: the first line names us, each further line starts with one of
// our results and ends with the ";" before the next, and no line holds
// another ";".
func checkLines(t *testing.T, name, field string, want []arResult) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(field, "\r\n"), "\r\n")
	if len(lines) != 1+len(want) || lines[0] != "Authentication-Results: mx.example.org;" {
		t.Errorf("%s: want the authserv-id and %d results on lines of their own:\n%s", name, len(want), field)
		return
	}
	for i, w := range want {
		line := lines[i+1]
		if !strings.HasPrefix(line, "\t"+w.Method+"="+w.Result) {
			t.Errorf("%s: line %d is %q, want it to start with %s=%s", name, i+2, line, w.Method, w.Result)
		}
		semis := 1
		if i == len(want)-1 {
			semis = 0
		}
		if strings.Count(line, ";") != semis || semis == 1 && !strings.HasSuffix(line, ";") {
			t.Errorf("%s: line %d is %q: a \";\" other than the one ending it", name, i+2, line)
		}
		for _, c := range line {
			if c < 0x20 && c != '\t' || c >= 0x7f {
				t.Errorf("%s: line %d holds %U: %q", name, i+2, c, line)
			}
		}
	}
}

// storedWith returns the stored message whose Message-ID is id.
func storedWith(t *testing.T, h *authHarness, id string) string {
	t.Helper()
	for _, m := range h.stored(t) {
		if strings.Contains(m, "\r\nMessage-ID: "+id+"\r\n") {
			return m
		}
	}
	t.Fatalf("no stored message has Message-ID %s", id)
	return ""
}
