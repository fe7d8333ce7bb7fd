package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/authres"

	"mxguard/checks/dkim"
	"mxguard/checks/spf"
)

// arInput is what the Authentication-Results field is made from; every
// string in it can come from the sender.
type arInput struct {
	mailFrom, helo, fromDomain string
	spf, dmarc                 string
	sigs                       []dkim.Signature
}

func (in arInput) tx() *Transaction {
	tx := &Transaction{MailFrom: in.mailFrom, Checks: map[string]CheckRecord{
		"spf": {Result: in.spf}, "dkim": {Result: "none"}, "dmarc": {Result: in.dmarc}}}
	tx.found.SPF = spf.Facts{Result: in.spf, Identity: "mailfrom", Domain: in.mailFrom}
	if in.mailFrom == "" {
		tx.found.SPF.Identity, tx.found.SPF.Domain = "helo", in.helo
	}
	for _, s := range in.sigs {
		tx.found.DKIM.Signatures = append(tx.found.DKIM.Signatures, dkim.SigFacts{Domain: s.Domain, Result: s.Result, Identifier: s.Identifier})
	}
	tx.fromFacts.Domain = in.fromDomain
	return tx
}

func (in arInput) field() string { return formatAuthResults("mx.example.org", authResults(in.tx())) }

func TestAuthResultsHostileValues(t *testing.T) {
	sig := func(d, i, res string) []dkim.Signature {
		return []dkim.Signature{{Domain: d, Identifier: i, Result: res}}
	}
	const head = "mx.example.org;\r\n\t"
	for _, c := range []struct {
		name string
		in   arInput
		want string
	}{
		{"plain", arInput{mailFrom: "alice@sender.test", spf: "pass", dmarc: "pass", fromDomain: "sender.test",
			sigs: sig("sender.test", "@sender.test", "pass")},
			head + "spf=pass smtp.mailfrom=alice@sender.test;\r\n\tdkim=pass header.d=sender.test header.i=@sender.test;\r\n\tdmarc=pass header.from=sender.test"},
		{"no-signature", arInput{mailFrom: "alice@sender.test", spf: "pass", dmarc: "none", fromDomain: "sender.test"},
			head + "spf=pass smtp.mailfrom=alice@sender.test;\r\n\tdkim=none;\r\n\tdmarc=none header.from=sender.test"},
		// MAIL FROM
		{"mailfrom-quoted-local", arInput{mailFrom: `"a\";dmarc=pass header.from=bank.test;x=\"b"@good.test`, spf: "none", dmarc: "none"},
			head + "spf=none smtp.mailfrom=good.test;\r\n\tdkim=none;\r\n\tdmarc=none"},
		{"mailfrom-utf8-local", arInput{mailFrom: "ü.ö@BÜCHER.test", spf: "none", dmarc: "none"},
			head + "spf=none smtp.mailfrom=xn--bcher-kva.test;\r\n\tdkim=none;\r\n\tdmarc=none"},
		{"mailfrom-utf8-domain", arInput{mailFrom: "Alice@BÜCHER.test.", spf: "none", dmarc: "none"},
			head + "spf=none smtp.mailfrom=Alice@xn--bcher-kva.test;\r\n\tdkim=none;\r\n\tdmarc=none"},
		{"mailfrom-atext", arInput{mailFrom: "a=b?c/d{e}@x.test", spf: "none", dmarc: "none"},
			head + "spf=none smtp.mailfrom=a=b?c/d{e}@x.test;\r\n\tdkim=none;\r\n\tdmarc=none"},
		{"mailfrom-long-local", arInput{mailFrom: strings.Repeat("a", 65) + "@x.test", spf: "none", dmarc: "none"},
			head + "spf=none smtp.mailfrom=x.test;\r\n\tdkim=none;\r\n\tdmarc=none"},
		{"mailfrom-address-literal", arInput{mailFrom: "alice@[127.0.0.1]", spf: "none", dmarc: "none"},
			head + "spf=none smtp.mailfrom=\"[127.0.0.1]\";\r\n\tdkim=none;\r\n\tdmarc=none"},
		{"mailfrom-crlf", arInput{mailFrom: "a@x.test\r\n\tdmarc=pass", spf: "none", dmarc: "none"},
			head + "spf=none smtp.mailfrom=\"x.test???dmarc=pass\";\r\n\tdkim=none;\r\n\tdmarc=none"},
		// HELO, for the null sender
		{"helo-quotes", arInput{helo: `a";dmarc=pass;b="\`, spf: "none", dmarc: "none"},
			head + `spf=none smtp.helo="a\"?dmarc=pass?b=\"\\";` + "\r\n\tdkim=none;\r\n\tdmarc=none"},
		{"helo-controls", arInput{helo: "x\r\n\tdkim=pass\x00\u2028\u0085\xff\u202e", spf: "none", dmarc: "none"},
			head + "spf=none smtp.helo=\"x???dkim=pass?????\";\r\n\tdkim=none;\r\n\tdmarc=none"},
		{"helo-long", arInput{helo: strings.Repeat("(", 300), spf: "none", dmarc: "none"},
			head + "spf=none smtp.helo=\"" + strings.Repeat("(", maxQuoted) + "\";\r\n\tdkim=none;\r\n\tdmarc=none"},
		{"helo-idn", arInput{helo: "Mail.BÜCHER.test.", spf: "none", dmarc: "none"},
			head + "spf=none smtp.helo=mail.xn--bcher-kva.test;\r\n\tdkim=none;\r\n\tdmarc=none"},
		{"helo-literal", arInput{helo: "[IPv6:::1]", spf: "none", dmarc: "none"},
			head + "spf=none smtp.helo=\"[IPv6:::1]\";\r\n\tdkim=none;\r\n\tdmarc=none"},
		// DKIM d= and i=
		{"dkim-hostile-d", arInput{mailFrom: "a@x.test", spf: "none", dmarc: "none",
			sigs: sig(`bank.test"\(x)=y`, `"a\"b"@bank.test`, "permerror")},
			head + "spf=none smtp.mailfrom=a@x.test;\r\n\tdkim=permerror header.i=@bank.test header.d=\"bank.test\\\"\\\\(x)=y\";\r\n\tdmarc=none"},
		{"dkim-hostile-i", arInput{mailFrom: "a@x.test", spf: "none", dmarc: "none",
			sigs: sig("bank.test", "x@bank.test;dmarc=pass", "fail")},
			head + "spf=none smtp.mailfrom=a@x.test;\r\n\tdkim=fail header.d=bank.test;\r\n\tdmarc=none"},
		{"dkim-idn", arInput{mailFrom: "a@x.test", spf: "none", dmarc: "none",
			sigs: sig("BÜCHER.test", "ü@Bücher.test", "pass")},
			head + "spf=none smtp.mailfrom=a@x.test;\r\n\tdkim=pass header.d=xn--bcher-kva.test header.i=@xn--bcher-kva.test;\r\n\tdmarc=none"},
		{"dkim-local-part", arInput{mailFrom: "a@x.test", spf: "none", dmarc: "none",
			sigs: sig("bank.test", "news.letter@mail.bank.test", "pass")},
			head + "spf=none smtp.mailfrom=a@x.test;\r\n\tdkim=pass header.d=bank.test header.i=news.letter@mail.bank.test;\r\n\tdmarc=none"},
		{"dkim-empty", arInput{mailFrom: "a@x.test", spf: "none", dmarc: "none", sigs: sig("", "", "permerror")},
			head + "spf=none smtp.mailfrom=a@x.test;\r\n\tdkim=permerror;\r\n\tdmarc=none"},
		{"dkim-unknown-result", arInput{mailFrom: "a@x.test", spf: "none", dmarc: "none", sigs: sig("bank.test", "", "pass;dmarc=pass")},
			head + "spf=none smtp.mailfrom=a@x.test;\r\n\tdkim=temperror header.d=bank.test;\r\n\tdmarc=none"},
		// The From domain
		{"from-idn", arInput{mailFrom: "a@x.test", spf: "none", dmarc: "none", fromDomain: "BÜCHER.test"},
			head + "spf=none smtp.mailfrom=a@x.test;\r\n\tdkim=none;\r\n\tdmarc=none header.from=xn--bcher-kva.test"},
		{"from-hostile", arInput{mailFrom: "a@x.test", spf: "none", dmarc: "none", fromDomain: "x; dmarc=pass"},
			head + "spf=none smtp.mailfrom=a@x.test;\r\n\tdkim=none;\r\n\tdmarc=none header.from=\"x??dmarc=pass\""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := c.in.field()
			if got != c.want {
				t.Errorf("got\n%s\nwant\n%s", got, c.want)
			}
			checkReadBack(t, c.in)
		})
	}
}

// checkReadBack parses the field of in with go-msgauth and checks that it
// reads exactly the results we computed, one per line.
func checkReadBack(t *testing.T, in arInput) {
	t.Helper()
	rs := authResults(in.tx())
	field := formatAuthResults("mx.example.org", rs)
	lines := strings.Split(field, "\r\n")
	if len(lines) != 1+len(rs) {
		t.Fatalf("%d lines for %d results: %q", len(lines), len(rs), field)
	}
	for i, line := range lines {
		if len(line) > 998 { // RFC 5322 §2.1.1
			t.Errorf("line %d has %d octets: %q", i+1, len(line), line)
		}
		for j := 0; j < len(line); j++ {
			if c := line[j]; (c < 0x20 || c >= 0x7f) && !(c == '\t' && j == 0 && i > 0) {
				t.Fatalf("line %d holds 0x%02x: %q", i+1, c, line)
			}
		}
		if i > 0 && !strings.HasPrefix(line, "\t"+rs[i-1].method+"=") {
			t.Fatalf("line %d does not start with result %d (%s): %q", i+1, i, rs[i-1].method, line)
		}
	}
	id, got := readMsgauth(t, strings.ReplaceAll(field, "\r\n", ""))
	if id != "mx.example.org" {
		t.Fatalf("go-msgauth reads authserv-id %q from %q", id, field)
	}
	if g, w := fmt.Sprint(got), fmt.Sprint(model(rs)); g != w {
		t.Fatalf("go-msgauth reads\n%s\nwant\n%s\nfrom %q", g, w, field)
	}
}

// model is what a reader must read from rs: "method=result" followed by
// the sorted "name=value" of each property.
func model(rs []arResult) [][]string {
	var out [][]string
	for _, r := range rs {
		res := strings.ToLower(r.result)
		if !resultKeywords[res] {
			res = "temperror"
		}
		var props []string
		for _, p := range r.props {
			props = append(props, p.name+"="+p.value)
		}
		sort.Strings(props)
		out = append(out, append([]string{r.method + "=" + res}, props...))
	}
	return out
}

// readMsgauth parses an unfolded value with go-msgauth, which keeps the
// quotes and quoted-pairs of a quoted value; they are undone here.
func readMsgauth(t *testing.T, value string) (string, [][]string) {
	t.Helper()
	id, rs, err := authres.Parse(value)
	if err != nil {
		t.Fatalf("go-msgauth cannot parse %q: %v", value, err)
	}
	var out [][]string
	for _, r := range rs {
		var head string
		props := map[string]string{}
		switch r := r.(type) {
		case *authres.SPFResult:
			head = "spf=" + string(r.Value)
			props["reason"], props["smtp.mailfrom"], props["smtp.helo"] = r.Reason, r.From, r.Helo
		case *authres.DKIMResult:
			head = "dkim=" + string(r.Value)
			props["reason"], props["header.d"], props["header.i"] = r.Reason, r.Domain, r.Identifier
		case *authres.DMARCResult:
			head = "dmarc=" + string(r.Value)
			props["reason"], props["header.from"] = r.Reason, r.From
		default:
			t.Fatalf("go-msgauth reads a %T in %q", r, value)
		}
		var list []string
		for k, v := range props {
			if v != "" {
				list = append(list, k+"="+unquote(v))
			}
		}
		sort.Strings(list)
		out = append(out, append([]string{head}, list...))
	}
	return id, out
}

// unquote undoes a quoted-string (RFC 5322 §3.2.4); other values pass.
func unquote(v string) string {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return v
	}
	var b strings.Builder
	for i := 1; i < len(v)-1; i++ {
		if v[i] == '\\' {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// hostile draws a string of the characters that break headers and parsers.
func hostile(r *rand.Rand) string {
	parts := []string{"a", "b.test", "@", ".", "\"", "\\", ";", "=", "(", ")", " ", "\t", "\r\n", "\r", "\n",
		"\x00", "\x7f", "ü", "\u2028", "\u0085", "\u202e", "\xff", "dmarc=pass", "header.from=bank.test", "[", "]", "xn--"}
	var b strings.Builder
	for n := r.IntN(12); n >= 0; n-- {
		b.WriteString(parts[r.IntN(len(parts))])
	}
	return b.String()
}

func randomInput(r *rand.Rand) arInput {
	in := arInput{mailFrom: hostile(r) + "@" + hostile(r), helo: hostile(r), fromDomain: hostile(r),
		spf: []string{"pass", "fail", "none", hostile(r)}[r.IntN(4)], dmarc: "fail"}
	if r.IntN(3) == 0 {
		in.mailFrom = ""
	}
	for n := r.IntN(3); n > 0; n-- {
		in.sigs = append(in.sigs, dkim.Signature{Domain: hostile(r), Identifier: hostile(r) + "@" + hostile(r), Result: "fail"})
	}
	return in
}

// python3-authres, a complete RFC 8601 parser, reads each field exactly as
// we computed it: hand-written hostile values and random ones.
func TestAuthResultsReadByPython(t *testing.T) {
	const python = "/usr/bin/python3"
	if out, err := exec.Command(python, "-c", "import authres").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import authres (install the Debian package python3-authres; .ci/run does): %v\n%s", python, err, out)
	}
	r := rand.New(rand.NewPCG(1, 2))
	var ins []arInput
	for range 400 {
		ins = append(ins, randomInput(r))
	}
	ins = append(ins, arInput{mailFrom: `"a\";dmarc=pass header.from=bank.test;x=\"b"@good.test`, spf: "none", dmarc: "none"},
		arInput{helo: `a";dmarc=pass;b="\`, spf: "none", dmarc: "none", sigs: []dkim.Signature{{Domain: `x"\`, Identifier: `"\"@ü`, Result: "fail"}}})
	var values []string
	for _, in := range ins {
		values = append(values, strings.ReplaceAll(in.field(), "\r\n", ""))
	}
	js, _ := json.Marshal(values)
	cmd := exec.Command(python, "-c", `
import json, sys, authres
out = []
for v in json.load(sys.stdin):
    try:
        h = authres.AuthenticationResultsHeader.parse('Authentication-Results: ' + v)
        out.append([h.authserv_id] + [[r.method + "=" + r.result] + sorted(p.type + "." + p.name + "=" + p.value for p in r.properties) for r in h.results])
    except Exception as e:
        out.append(["%s: %s" % (type(e).__name__, e)])
json.dump(out, sys.stdout)
`)
	cmd.Stdin = bytes.NewReader(js)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3-authres: %v", err)
	}
	var parsed [][]any
	if err := json.Unmarshal(out, &parsed); err != nil {
		t.Fatal(err)
	}
	for i, p := range parsed {
		var got [][]string
		for _, r := range p[1:] {
			var res []string
			for _, s := range r.([]any) {
				// python3-authres keeps the quoted-pairs of a quoted value.
				res = append(res, unquote(`"`+s.(string)+`"`))
			}
			got = append(got, res)
		}
		want := model(authResults(ins[i].tx()))
		if p[0] != "mx.example.org" || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("python3-authres reads %v\nwant %v\nfrom %q", p, want, values[i])
		}
	}
}

// FuzzAuthResults: whatever the sender controls, go-msgauth reads exactly
// the results we computed, each on its own line, in printable ASCII.
func FuzzAuthResults(f *testing.F) {
	f.Add(`"a\";dmarc=pass;x=\"b"@good.test`, "helo.test", "bank.test", "d.test", "@d.test", true)
	f.Add("", "a\";b=\"\\\r\n", "x;y", "ü", "\"\\\"@\u2028", false)
	f.Fuzz(func(t *testing.T, mailFrom, helo, from, d, i string, signed bool) {
		in := arInput{mailFrom: mailFrom, helo: helo, fromDomain: from, spf: "softfail", dmarc: "fail"}
		if signed {
			in.sigs = []dkim.Signature{{Domain: d, Identifier: i, Result: "neutral"}}
		}
		checkReadBack(t, in)
	})
}

// BenchmarkAuthResultsHeader: the field of a signed message, written for
// every message accepted.
func BenchmarkAuthResultsHeader(b *testing.B) {
	s := &Session{e: &Engine{hostname: "mx.example.org"}}
	tx := arInput{mailFrom: "alice@sender.test", spf: "pass", dmarc: "pass", fromDomain: "sender.test",
		sigs: []dkim.Signature{{Domain: "sender.test", Identifier: "@sender.test", Result: "pass"}}}.tx()
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := s.authResultsHeader(tx); !ok {
			b.Fatal("no header")
		}
	}
}
