package smtpreply

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestValid(t *testing.T) {
	for _, c := range []struct {
		name string
		r    Reply
		want bool
	}{
		{"5xx with 5.x.x", Reply{Code: 550, Enhanced: Enhanced{5, 7, 1}}, true},
		{"4xx with 4.x.x", Reply{Code: 451, Enhanced: Enhanced{4, 999, 999}}, true},
		{"2xx with 2.x.x", Reply{Code: 250, Enhanced: Enhanced{2, 0, 0}}, true},
		{"none given", Reply{Code: 220}, true},
		{"354 without", Reply{Code: 354}, true},
		{"5xx with 4.x.x", Reply{Code: 550, Enhanced: Enhanced{4, 7, 1}}, false},
		{"4xx with 5.x.x", Reply{Code: 421, Enhanced: Enhanced{5, 0, 0}}, false},
		{"2xx with 5.x.x", Reply{Code: 250, Enhanced: Enhanced{5, 0, 0}}, false},
		{"3xx with 3.x.x", Reply{Code: 354, Enhanced: Enhanced{3, 0, 0}}, false},
		{"class only wrong subject", Reply{Code: 550, Enhanced: Enhanced{5, 1000, 0}}, false},
		{"negative detail", Reply{Code: 550, Enhanced: Enhanced{5, 7, -1}}, false},
		{"code too small", Reply{Code: 199}, false},
		{"code too large", Reply{Code: 600}, false},
		{"zero", Reply{}, false},
	} {
		if got := c.r.Valid(); got != c.want {
			t.Errorf("%s: %+v.Valid() = %v, want %v", c.name, c.r, got, c.want)
		}
	}
}

func TestRender(t *testing.T) {
	for _, c := range []struct {
		name       string
		r          Reply
		wire, line string
	}{
		{"with enhanced", Reply{Code: 550, Enhanced: Se5Pol7DeliveryNotAuth1, Text: "no"},
			"550 5.7.1 no\r\n", "550 5.7.1 no"},
		{"without enhanced", Reply{Code: 220, Text: "mx.test ESMTP ready"},
			"220 mx.test ESMTP ready\r\n", "220 mx.test ESMTP ready"},
		{"empty text", Reply{Code: 250, Enhanced: Se2Other00},
			"250 2.0.0 \r\n", "250 2.0.0 "},
		{"wide enhanced", Reply{Code: 451, Enhanced: Enhanced{4, 999, 12}, Text: "x"},
			"451 4.999.12 x\r\n", "451 4.999.12 x"},
		{"multi-line", Multiline(250, "mx.test", "PIPELINING", "CHUNKING"),
			"250-mx.test\r\n250-PIPELINING\r\n250 CHUNKING\r\n", "250 CHUNKING"},
		{"one line given to Multiline", Multiline(250, "mx.test"), "250 mx.test\r\n", "250 mx.test"},
		// RFC 2034 §4: the same enhanced code on every line.
		{"multi-line with enhanced", Reply{Code: 550, Enhanced: Se5Pol7DeliveryNotAuth1, Text: "b", Lines: []string{"a"}},
			"550-5.7.1 a\r\n550 5.7.1 b\r\n", "550 5.7.1 b"},
		{"zero", Reply{}, "0 \r\n", ""},
	} {
		if got := string(c.r.Append(nil)); got != c.wire {
			t.Errorf("%s: Append = %q, want %q", c.name, got, c.wire)
		}
		if got := c.r.String(); got != c.line {
			t.Errorf("%s: String = %q, want %q", c.name, got, c.line)
		}
	}
}

// Multiline must not let an append to Lines overwrite the last line's
// text in the caller's slice.
func TestMultilineKeepsLastLine(t *testing.T) {
	lines := []string{"a", "b", "c"}
	r := Multiline(250, lines...)
	r.Lines = append(r.Lines, "x")
	if lines[2] != "c" || r.Text != "c" {
		t.Errorf("lines %q, text %q", lines, r.Text)
	}
}

func TestWithSession(t *testing.T) {
	r := Reply{Code: 552, Enhanced: Se5Sys3MsgTooBig4, Text: "message size exceeds fixed limit"}
	if got := string(r.WithSession("S1").Append(nil)); got != "552 5.3.4 message size exceeds fixed limit (session S1)\r\n" {
		t.Errorf("got %q", got)
	}
	if got := r.WithSession(""); got.Text != r.Text {
		t.Errorf("an empty session id changed the reply: %q", got)
	}
	// The text is not trimmed: a quote keeps what it quotes.
	if got := (Reply{Code: 451, Enhanced: Se4Sys3Other0, Text: "x "}).WithSession("S").Text; got != "x  (session S)" {
		t.Errorf("got %q", got)
	}
}

// A text too long for one line is cut between characters, and the session
// id is kept whole, for every length of enhanced code.
func TestWithSessionCutsAtCharacter(t *testing.T) {
	for _, enh := range []Enhanced{{5, 7, 1}, {4, 999, 999}, {}} {
		for _, text := range []string{strings.Repeat("é", 300), strings.Repeat("x", 600), strings.Repeat("€", 200)} {
			r := Reply{Code: 451, Enhanced: enh, Text: text}.WithSession("SESSION")
			line := string(r.Append(nil))
			if len(line) > MaxLine || len(line) < MaxLine-2 || !utf8.ValidString(line) || !strings.HasSuffix(line, " (session SESSION)\r\n") {
				t.Errorf("%v: %d octets, valid UTF-8 %v: %q", enh, len(line), utf8.ValidString(line), line)
			}
		}
	}
	// A text that fits is not touched.
	short := Reply{Code: 550, Enhanced: Se5Pol7DeliveryNotAuth1, Text: strings.Repeat("y", 400)}.WithSession("S")
	if !strings.HasPrefix(short.Text, strings.Repeat("y", 400)+" (session S)") {
		t.Errorf("a text that fits was cut: %q", short.Text)
	}
}

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Reply
		err  string
	}{
		{in: "550 5.7.1 go away", want: Reply{Code: 550, Enhanced: Enhanced{5, 7, 1}, Text: "go away"}},
		{in: "  451 4.7.1   later  ", want: Reply{Code: 451, Enhanced: Enhanced{4, 7, 1}, Text: "later"}},
		{in: "552 5.3.4 a b c", want: Reply{Code: 552, Enhanced: Enhanced{5, 3, 4}, Text: "a b c"}},
		{in: "550 5.999.999 x", want: Reply{Code: 550, Enhanced: Enhanced{5, 999, 999}, Text: "x"}},
		{in: "550 5.7.1", err: `expected a reply like "550 5.7.1 text", got "550 5.7.1"`},
		{in: "550 5.7.1    ", err: `expected a reply like "550 5.7.1 text", got "550 5.7.1    "`},
		{in: "", err: `expected a reply like "550 5.7.1 text", got ""`},
		{in: "55 5.7.1 x", err: `expected a three-digit reply code, got "55"`},
		{in: "0550 5.7.1 x", err: `expected a three-digit reply code, got "0550"`},
		{in: "650 6.7.1 x", err: `expected a three-digit reply code, got "650"`},
		{in: "199 1.7.1 x", err: `expected a three-digit reply code, got "199"`},
		{in: "abc 5.7.1 x", err: `expected a three-digit reply code, got "abc"`},
		{in: "550 5.7 x", err: `expected an enhanced status code like 5.7.1, got "5.7"`},
		{in: "550 5.7.1.2 x", err: `expected an enhanced status code like 5.7.1, got "5.7.1.2"`},
		{in: "550 5..1 x", err: `expected an enhanced status code like 5.7.1, got "5..1"`},
		{in: "550 5.7.1000 x", err: `expected an enhanced status code like 5.7.1, got "5.7.1000"`},
		{in: "550 5.-7.1 x", err: `expected an enhanced status code like 5.7.1, got "5.-7.1"`},
		{in: "550 4.7.1 x", err: `enhanced code 4.7.1 does not match reply code 550: its first digit must be 5`},
		{in: "250 5.0.0 x", err: `enhanced code 5.0.0 does not match reply code 250: its first digit must be 2`},
		{in: "550 5.7.1 a\nb", err: `reply text must be one line`},
		{in: "550 5.7.1 a\rb", err: `reply text must be one line`},
	} {
		got, err := Parse(c.in)
		switch {
		case c.err != "" && (err == nil || err.Error() != c.err):
			t.Errorf("Parse(%q) err = %v, want %q", c.in, err, c.err)
		case c.err == "" && err != nil:
			t.Errorf("Parse(%q) err = %v", c.in, err)
		case c.err == "" && (got.Code != c.want.Code || got.Enhanced != c.want.Enhanced || got.Text != c.want.Text || got.Lines != nil):
			t.Errorf("Parse(%q) = %+v, want %+v", c.in, got, c.want)
		case c.err == "" && !got.Valid():
			t.Errorf("Parse(%q) = %+v, not valid", c.in, got)
		}
	}
}

func TestSplitEnhanced(t *testing.T) {
	for _, c := range []struct {
		code     int
		text     string
		enh      Enhanced
		wantText string
	}{
		{250, "2.0.0 Ok: queued as X", Enhanced{2, 0, 0}, "Ok: queued as X"},
		{250, "2.0.0", Enhanced{2, 0, 0}, ""},
		{550, "5.7.1 no", Enhanced{5, 7, 1}, "no"},
		{550, "4.7.1 no", Enhanced{}, "4.7.1 no"},
		{250, "Ok", Enhanced{}, "Ok"},
		{250, "", Enhanced{}, ""},
		{250, "2.0 Ok", Enhanced{}, "2.0 Ok"},
		{250, "2.0.0.0 Ok", Enhanced{}, "2.0.0.0 Ok"},
		{451, "4.1000.0 x", Enhanced{}, "4.1000.0 x"},
		{451, "4.a.0 x", Enhanced{}, "4.a.0 x"},
	} {
		enh, text := SplitEnhanced(c.code, c.text)
		if enh != c.enh || text != c.wantText {
			t.Errorf("SplitEnhanced(%d, %q) = %v, %q; want %v, %q", c.code, c.text, enh, text, c.enh, c.wantText)
		}
	}
}

// FuzzParse: whatever Parse accepts is a valid reply of one line whose
// rendering parses back to the same reply.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"550 5.7.1 go away", "451 4.7.1 x", "550 4.7.1 x", "250 2.0.0 a\nb", "999 9.9.9 x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			return
		}
		if !r.Valid() || r.Enhanced.IsZero() || strings.ContainsAny(r.Text, "\r\n") {
			t.Fatalf("Parse(%q) = %+v", s, r)
		}
		back, err := Parse(r.String())
		if err != nil || back.Code != r.Code || back.Enhanced != r.Enhanced || back.Text != r.Text {
			t.Fatalf("Parse(%q) = %+v; again from %q: %+v, %v", s, r, r.String(), back, err)
		}
	})
}
