package mailaddr

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse holds the two modes to one reading and checks what each
// returns. Neither panics; Lenient never fails; Strict fails only with a
// *SyntaxError. Wherever Strict accepts a value, Lenient reads the same
// addresses from it, display names and comments included, and wherever
// Strict got past the lexical level they count the same number. What
// Strict accepts is clean: each local-part a word or words that
// ValidLocalPart takes, each domain a dot-separated run of atoms, every
// display name and comment without white space at its ends or doubled,
// and an address written back as <local@domain> reads back the same.
// Seeds beyond these live in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"a@b.test",
		`"x@y.test" <a@b.test>`,
		"a@b.test, c@d.test",
		"<a@b.test> <c@d.test>",
		"Team: a@b.test, \"x, y\" <c@d.test>;",
		"undisclosed:;",
		"=?utf-8?b?w4lyaWM=?= <a@b.test>",
		`(c (n) \) @x) a(x)@(y)b . test`,
		"<@r.test,@s.test:a@b.test>",
		" Alice (x)\t<a@Bücher.test.> (y)",
		"a@[192.0.2.1]",
		`"unterminated`,
		"a@b\x00c.test",
		`a\@c.test <a@b.test>`,
		`"a\"<x@c.test>" <a@b.test>`,
		"ceo@bank.test <x@evil.test>",
		"a@evil.test (bank.test) x@bank.test",
		`a . "b c" . d @ mail . b . test.`,
		"Foo <Bar <a@b.test>",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		strict, err := Parse(v, Strict)
		lenient, lerr := Parse(v, Lenient)
		if lerr != nil {
			t.Fatalf("Lenient failed: %v", lerr)
		}
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Msg == "" {
				t.Fatalf("Strict error %#v is no SyntaxError", err)
			}
			if _, _, lexErr := lex(v, Strict); lexErr == nil && len(strict) != len(lenient) {
				t.Fatalf("Strict counts %d addresses (%v), Lenient %d", len(strict), err, len(lenient))
			}
			return
		}
		if !reflect.DeepEqual(strict, lenient) {
			t.Fatalf("the modes disagree on a value Strict accepts:\n strict  %s\n lenient %s", show(strict), show(lenient))
		}
		for _, a := range strict {
			checkAccepted(t, a)
		}
	})
}

// checkAccepted checks one address that Strict accepted.
func checkAccepted(t *testing.T, a Address) {
	t.Helper()
	if a.Local == "" && (a.Domain != "" || !a.Angle) {
		t.Fatalf("no local-part: %s", show([]Address{a}))
	}
	if a.Local != "" {
		toks, _, err := lex(a.Local, Strict)
		if err != nil || !validLocalPart(toks) {
			t.Fatalf("local-part %q: %v", a.Local, err)
		}
	}
	if a.Domain != "" {
		for i, label := range strings.Split(strings.TrimSuffix(a.Domain, "."), ".") {
			if label == "" || strings.ContainsFunc(label, func(r rune) bool { return r < 0x80 && !isAtext(byte(r)) }) {
				t.Fatalf("domain %q: label %d is %q", a.Domain, i, label)
			}
		}
	}
	for name, s := range map[string]string{"Display": a.Display, "Comment": a.Comment} {
		if s != collapseWSP(s) {
			t.Fatalf("%s %q has white space at its ends or doubled", name, s)
		}
	}
	if a.Local == "" {
		return
	}
	spec := a.Local
	if a.Domain != "" {
		spec += "@" + a.Domain
	}
	back, err := Parse("<"+spec+">", Strict)
	if err != nil || len(back) != 1 || back[0].Local != a.Local || back[0].Domain != a.Domain {
		t.Fatalf("<%s> reads back as %s, %v", spec, show(back), err)
	}
}
