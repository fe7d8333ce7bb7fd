package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// relaxedHELORules let every HELO name through, as an admin who turns the
// default bad-helo rule into monitor mode would.
const relaxedHELORules = `
rules:
  - name: bad-helo
    stage: helo
    when: smtp.bad_helo || smtp.helo_is_us
    action: reject
    mode: monitor
`

// xtextDecode undoes RFC 3461 §4 xtext ("+" and two hex digits).
func xtextDecode(t *testing.T, s string) string {
	t.Helper()
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '+' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			t.Fatalf("xtext %q: truncated +XX", s)
		}
		n, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			t.Fatalf("xtext %q: %v", s, err)
		}
		b.WriteByte(byte(n))
		i += 2
	}
	return b.String()
}

// attr returns the value of attribute name in an XCLIENT or XFORWARD line.
func attr(line, name string) (string, bool) {
	for _, f := range strings.Fields(line)[1:] {
		if k, v, ok := strings.Cut(f, "="); ok && strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}

// printableASCII reports whether s holds only printable ASCII, SP, HTAB
// and CRLF: what a header field of a message that is not SMTPUTF8, or an
// SMTP command, may carry.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c >= 0x7f {
			return false
		}
	}
	return true
}

// TestInvalidHELONeverCopiedDownstream sends EHLO names that are not
// domains (8-bit bytes, UTF-8, characters that end a comment) to an
// mxguard whose rules let a bad HELO through. The name must not reach the
// Received field's "from" clause, the XCLIENT/XFORWARD HELO attribute, or
// the EHLO mxguard sends the backend after XCLIENT: RFC 5321 §4.4 wants a
// domain or an address literal there, and a backend or a reader that
// trusts our trace fields would otherwise take attacker bytes for ours.
// The "from" clause then holds the client's address literal and the name
// follows, with every byte that is not printable ASCII (and Postfix's
// neutered characters <>()\";:@) replaced by '?', as Postfix does, in a
// comment. A valid name is kept as it is. The verdict log stays valid
// UTF-8 JSON.
func TestInvalidHELONeverCopiedDownstream(t *testing.T) {
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte(relaxedHELORules), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, helo   string
		from, shown  string // the "from" domain, and the comment naming the HELO ("" when none)
		wantTraceLit bool
	}{
		{"latin-1", "caf\xe9.example", "[127.0.0.1]", "(HELO caf?.example)", true},
		{"utf-8", "caf\u00e9.example", "[127.0.0.1]", "(HELO caf??.example)", true},
		{"comment breakers", `a(b)\"c;@x.example`, "[127.0.0.1]", "(HELO a?b???c??x.example)", true},
		{"valid", "client.sender.test", "client.sender.test", "", false},
	}
	t.Run("control", func(t *testing.T) {
		// A control character never gets as far as the HELO rules.
		b := startRawBackend(t, nil)
		_, listen := rawBackendMxguard(t, b, "", "rules: ["+rules+"]\n")
		v := dialConv(t, "", listen)
		v.say("", "220 ")
		v.say("EHLO bell\x07.example", "500 5.5.2 ")
		v.say("MAIL FROM:<alice@sender.test>", "503 5.5.1 ")
	})
	for _, mode := range []string{"xclient", "xforward"} {
		for _, c := range cases {
			t.Run(mode+"/"+c.name, func(t *testing.T) {
				b := startRawBackend(t, func(b *rawBackend) {
					b.ext = []string{"XCLIENT NAME ADDR PORT PROTO HELO", "XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE"}
				})
				vlog := filepath.Join(t.TempDir(), "verdicts.jsonl")
				_, listen := rawBackendMxguard(t, b, "  forward_client: "+mode+"\n",
					"rules: ["+rules+"]\nverdict_log: "+vlog+"\nauthentication_results: false\n")
				v := dialConv(t, "", listen)
				v.say("", "220 ")
				v.say("EHLO "+c.helo, "250 ")
				v.say("MAIL FROM:<alice@sender.test>", "250 ")
				v.say("RCPT TO:<user@example.org>", "250 ")
				v.data("From: alice@sender.test\r\nSubject: helo\r\n\r\nbody\r\n", "250 ")
				v.say("QUIT", "221 ")

				lines, stored := b.seen()
				for _, l := range lines {
					if !printableASCII(l) {
						t.Errorf("mxguard sent the backend a command with bytes outside printable ASCII: %q", l)
					}
				}
				if len(stored) != 1 {
					t.Fatalf("the backend holds %d messages, want 1", len(stored))
				}
				received, _, _ := strings.Cut(stored[0], "\r\n\tby ")
				if !strings.HasPrefix(received, "Received: from ") {
					t.Fatalf("the first field is not our Received field:\n%s", stored[0])
				}
				if !printableASCII(received) {
					t.Errorf("Received carries bytes outside printable ASCII: %q", received)
				}
				from := strings.Fields(strings.TrimPrefix(received, "Received: from "))[0]
				if from != c.from {
					t.Errorf("Received from %q, want %q (whole clause %q)", from, c.from, received)
				}
				if c.shown != "" && !strings.HasSuffix(received, "\r\n\t"+c.shown) {
					t.Errorf("Received should show the name as %q in a comment, got %q", c.shown, received)
				}
				if c.shown == "" && strings.Contains(received, "(HELO") {
					t.Errorf("a valid name needs no comment: %q", received)
				}

				// The name the backend records as the client's HELO.
				wantHELO := c.helo
				if c.wantTraceLit {
					wantHELO = "[127.0.0.1]"
				}
				verb := strings.ToUpper(mode)
				sent := b.linesWith(verb + " ")
				if len(sent) == 0 {
					t.Fatalf("mxguard sent no %s:\n%s", verb, strings.Join(lines, "\n"))
				}
				for _, l := range sent {
					h, ok := attr(l, "HELO")
					if !ok {
						t.Errorf("%s without HELO: %q", verb, l)
						continue
					}
					if got := xtextDecode(t, h); got != wantHELO {
						t.Errorf("%s HELO=%q, want %q", verb, got, wantHELO)
					}
				}
				if mode == "xclient" {
					// XCLIENT_README: the EHLO after XCLIENT names the
					// original client, and the backend records it.
					ehlos := b.linesWith("EHLO ")
					if last := ehlos[len(ehlos)-1]; last != "EHLO "+wantHELO {
						t.Errorf("EHLO after XCLIENT is %q, want %q", last, "EHLO "+wantHELO)
					}
				}

				recs := waitVerdicts(t, vlog, 1)
				data, _ := os.ReadFile(vlog)
				if !utf8.Valid(data) {
					t.Errorf("the verdict log is not valid UTF-8: %q", data)
				}
				if got := recs[0].HELO; !utf8.ValidString(got) || (c.wantTraceLit == false && got != c.helo) {
					t.Errorf("verdict log helo %q", got)
				}
			})
		}
	}
}
