package mailaddr

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
)

// A is a short constructor for wanted addresses.
func A(display, comment, local, domain string, angle bool) Address {
	return Address{Display: display, Comment: comment, Local: local, Domain: domain, Angle: angle}
}

// TestParse pins what each mode reads from a field value: the same
// addresses wherever Strict accepts, Strict's first error otherwise, and
// what Lenient makes of the values Strict refuses, among them the ones on
// which mxguard's two former From readers disagreed.
func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Address
		strict  string    // the Strict mode's SyntaxError message; "" when it accepts
		lexical bool      // Strict refuses the value before parsing it: no addresses
		lenient []Address // what Lenient reads, when it is not want
	}{
		// Accepted by both modes, read alike.
		{name: "plain", in: "a@b.test", want: []Address{A("", "", "a", "b.test", false)}},
		{name: "display name", in: "Alice Smith <alice@b.test>", want: []Address{A("Alice Smith", "", "alice", "b.test", true)}},
		{name: "obsolete phrase with dot", in: "John Q. Public <jqp@b.test>", want: []Address{A("John Q. Public", "", "jqp", "b.test", true)}},
		{name: "quoted display name", in: `"Smith, \"Al\"  Jr" <a@b.test>`, want: []Address{A(`Smith, "Al" Jr`, "", "a", "b.test", true)}},
		{name: "quoted and atoms touch", in: `"a"b <x@y.test>`, want: []Address{A("ab", "", "x", "y.test", true)}},
		{name: "encoded word left as written", in: "=?utf-8?q?a=40c.test?= <a@b.test>", want: []Address{A("=?utf-8?q?a=40c.test?=", "", "a", "b.test", true)}},
		{
			name: "comments", in: "(c@d.test) a(x)@(y (nested) c@e.test)b.test (trailing c@f.test)",
			want: []Address{A("", "c@d.test x y (nested) c@e.test trailing c@f.test", "a", "b.test", false)},
		},
		{name: "comment in place of a name", in: "<x@evil.test> (ceo@bank.test)", want: []Address{A("", "ceo@bank.test", "x", "evil.test", true)}},
		{name: "comments inside angle brackets are not shown", in: "Al (x) <(y) a(z)@b.test (w)> (v)", want: []Address{A("Al", "x v", "a", "b.test", true)}},
		{name: "escapes in comments", in: `a@b.test (a\)b \(c\\)`, want: []Address{A("", `a)b (c\`, "a", "b.test", false)}},
		{name: "quoted local part with specials", in: `"a\"@c.test <"@b.test`, want: []Address{A("", "", `"a\"@c.test <"`, "b.test", false)}},
		{name: "quoted local part with comma", in: `"x,y"@b.test`, want: []Address{A("", "", `"x,y"`, "b.test", false)}},
		{name: "obsolete local part", in: `a . "b c" . d @ mail . b . test.`, want: []Address{A("", "", `a."b c".d`, "mail.b.test.", false)}},
		{name: "source route", in: "<@c.test,@d.test:a@b.test>", want: []Address{A("", "", "a", "b.test", true)}},
		{name: "null address", in: "Alice <>", want: []Address{A("Alice", "", "", "", true)}},
		{name: "no domain", in: "alice", want: []Address{A("", "", "alice", "", false)}},
		{name: "utf-8", in: "José <josé@bücher.test>", want: []Address{A("José", "", "josé", "bücher.test", true)}},
		{
			name: "list with groups and empty elements", in: `, a@b.test, "x, y" <c@d.test>, Team: e@f.test, <@r.test:g@h.test>;, Empty:;`,
			want: []Address{
				A("", "", "a", "b.test", false), A("x, y", "", "c", "d.test", true),
				A("", "", "e", "f.test", false), A("", "", "g", "h.test", true),
			},
		},
		{name: "empty group", in: "undisclosed-recipients:;", want: nil},
		{name: "empty", in: "  ", want: nil},
		{
			name: "comments go with the address before them", in: "a@b.test (one), (two) c@d.test (three)",
			want: []Address{A("", "one", "a", "b.test", false), A("", "two three", "c", "d.test", false)},
		},

		// Refused by Strict; Lenient reads on.
		{name: "two addresses without comma", in: "<a@b.test> <c@d.test>", strict: "missing ',' between addresses",
			want: []Address{A("", "", "a", "b.test", true), A("<a@b.test>", "", "c", "d.test", true)}},
		{name: "address as display name", in: "ceo@bank.test <x@evil.test>", strict: "missing ',' between addresses",
			want: []Address{A("", "", "ceo", "bank.test", false), A("ceo@bank.test", "", "x", "evil.test", true)}},
		{name: "word after an address", in: "<a@b.test>x", strict: "missing ',' between addresses",
			want: []Address{A("", "", "a", "b.test", true), A("", "", "x", "", false)}},
		{name: "two addresses glued by a comment", in: "a@evil.test (bank.test) x@bank.test", strict: "missing ',' between addresses",
			want: []Address{A("", "bank.test", "a", "evil.test", false), A("", "", "x", "bank.test", false)}},
		{name: "stray parenthesis", in: "a)b", strict: "missing ',' between addresses",
			want: []Address{A("", "", "a", "", false), A("", "", "b", "", false)}},
		{name: "at sign inside a quoted local-part", in: `(bank.test) "x>y@bank.test"`,
			want: []Address{A("", "bank.test", `"x>y@bank.test"`, "", false)}},
		{name: "two at signs", in: "a@b@c.test", strict: "missing ',' between addresses",
			want: []Address{A("", "", "a", "b", false)}},
		{name: "semicolon outside a group", in: "a@b.test;", strict: "';' outside a group", want: []Address{A("", "", "a", "b.test", false)}},
		{name: "group without semicolon", in: "a:b@c.test", strict: "group without ';'", want: []Address{A("", "", "b", "c.test", false)}},
		{name: "bad local part", in: "a..b@b.test", strict: "bad local-part", want: []Address{A("", "", "a..b", "b.test", false)}},
		{name: "phrase before addr-spec", in: `"a@c.test, x" a@b.test`, strict: "bad local-part",
			want: []Address{A("", "", `"a@c.test, x"a`, "b.test", false)}},
		{name: "display name with angle bracket", in: "Foo <Bar <a@b.test>", strict: "missing '>'",
			want: []Address{A("Foo", "", "Bar", "", true)}},
		{name: "not an address", in: "Foo Bar", strict: "not an address", want: nil},
		{name: "empty domain", in: "a@", strict: "bad domain", want: []Address{A("", "", "a", "", false)}},
		{name: "empty label", in: "a@b..test", strict: "bad domain", want: []Address{A("", "", "a", "b.", false)}},
		{name: "domain literal", in: "a@[192.0.2.1]", strict: "domain literal",
			want:    []Address{A("", "", "a", "", false)},
			lenient: []Address{A("", "", "a", "[192.0.2.1]", false)}},
		{name: "comma in a domain literal", in: "a@[b,c@d.test]", strict: "domain literal",
			want:    []Address{A("", "", "a", "", false)},
			lenient: []Address{A("", "", "a", "[b,c@d.test]", false)}},
		{name: "bad source route", in: "<@b.test>", strict: "bad source route", want: []Address{A("", "", "", "", true)}},

		// Refused by Strict at the lexical level: no addresses.
		{name: "unterminated comment", in: "a@b.test (c (d e)", strict: "unterminated comment", lexical: true,
			lenient: []Address{A("", "c (d e)", "a", "b.test", false)}},
		{name: "unterminated quoted-string", in: `"x <a@b.test>`, strict: `unterminated "`, lexical: true, lenient: nil},
		{name: "unterminated domain literal", in: "a@[1.2", strict: "unterminated [", lexical: true,
			lenient: []Address{A("", "", "a", "[1.2", false)}},
		{name: "control character", in: "a@b.test\x00.evil.test", strict: "control character 0x00", lexical: true,
			lenient: []Address{A("", "", "a", "b.test\x00.evil.test", false)}},
		{name: "control character in a quoted name", in: "\"\x7f\" <a@b.test>", strict: "control character 0x7f", lexical: true,
			lenient: []Address{A("\x7f", "", "a", "b.test", true)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.in, Strict)
			var se *SyntaxError
			switch {
			case tc.strict == "" && err != nil:
				t.Errorf("Strict: %v", err)
			case tc.strict != "" && (!errors.As(err, &se) || se.Msg != tc.strict):
				t.Errorf("Strict error = %v, want %q", err, tc.strict)
			}
			if err != nil && err.Error() != "mailaddr: "+tc.strict {
				t.Errorf("Strict error text %q", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Strict:\n got %s\nwant %s", show(got), show(tc.want))
			}
			wantLenient := tc.want
			if tc.lenient != nil || tc.lexical {
				wantLenient = tc.lenient
			}
			got, err = Parse(tc.in, Lenient)
			if err != nil {
				t.Errorf("Lenient: %v", err)
			}
			if !reflect.DeepEqual(got, wantLenient) {
				t.Errorf("Lenient:\n got %s\nwant %s", show(got), show(wantLenient))
			}
		})
	}
}

func show(addrs []Address) string {
	s := "["
	for _, a := range addrs {
		s += fmt.Sprintf("{display %q comment %q local %q domain %q angle %v} ", a.Display, a.Comment, a.Local, a.Domain, a.Angle)
	}
	return s + "]"
}
