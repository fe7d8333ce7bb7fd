package dmarc

import (
	"errors"
	"strings"
	"testing"
)

// hdr builds a header section from lines, with CRLF endings and the blank
// line.
func hdr(lines ...string) []byte {
	return []byte(strings.Join(lines, "\r\n") + "\r\n\r\n")
}

func TestFromDomain(t *testing.T) {
	tests := []struct {
		name    string
		header  []byte
		want    string
		wantErr error  // the Err* kind, nil for success
		detail  string // the exact error text, when set
	}{
		// Good.
		{name: "plain", header: hdr("From: a@b.test"), want: "b.test"},
		{name: "angle", header: hdr("From: <a@b.test>"), want: "b.test"},
		{name: "display name", header: hdr("From: Alice Smith <alice@b.test>"), want: "b.test"},
		{name: "upper-case domain and field name", header: hdr("FROM: Alice <alice@Mail.B.TEST>"), want: "mail.b.test"},
		{name: "folded", header: hdr("Subject: hi", "From: Alice", "\t<alice@b.test>", "To: x@y.test"), want: "b.test"},
		{name: "comments", header: hdr("From: (c@d.test) a(x)@(y (nested) c@e.test)b.test (trailing c@f.test)"), want: "b.test"},
		{name: "quoted display name with address", header: hdr(`From: "x@y.test" <a@b.test>`), want: "b.test"},
		{name: "quoted local part", header: hdr(`From: "a\"@c.test <"@b.test`), want: "b.test"},
		{name: "rfc2047 display name", header: hdr("From: =?utf-8?q?ceo=40paypal=2Etest?= <a@b.test>"), want: "b.test"},
		{name: "rfc2047 base64 display name", header: hdr("From: =?UTF-8?B?w4lyaWMgPGVAZi50ZXN0Pg==?= <a@b.test>"), want: "b.test"},
		{name: "obsolete phrase with dot", header: hdr("From: John Q. Public <jqp@b.test>"), want: "b.test"},
		{name: "obsolete CFWS inside address", header: hdr("From: a . b @ mail . b . test"), want: "mail.b.test"},
		{name: "obsolete source route", header: hdr("From: <@c.test,@d.test:a@b.test>"), want: "b.test"},
		{name: "group with one address", header: hdr("From: Team: a@b.test;"), want: "b.test"},
		{name: "empty list elements", header: hdr("From: , <a@b.test> ,"), want: "b.test"},
		{name: "space before colon", header: hdr("From : a@b.test"), want: "b.test"},
		{name: "trailing dot", header: hdr("From: a@b.test."), want: "b.test"},
		{name: "internationalised domain", header: hdr("From: a@Bücher.test"), want: "xn--bcher-kva.test"},
		{name: "utf-8 local part", header: hdr("From: José <josé@b.test>"), want: "b.test"},
		{name: "bare LF endings", header: []byte("Subject: x\nFrom: a@b.test\n\n"), want: "b.test"},
		{name: "stops at blank line", header: []byte("From: a@b.test\r\n\r\nFrom: c@d.test\r\n"), want: "b.test"},
		{name: "From inside a folded field is not a From", header: hdr("Subject: hi", " From: c@d.test", "From: a@b.test"), want: "b.test"},
		{name: "other from-like fields ignored", header: hdr("Resent-From: c@d.test", "X-From: e@f.test", "Sender: g@h.test", "From: a@b.test"), want: "b.test"},
		{name: "double hyphen label", header: hdr("From: a@ab--cd.b.test"), want: "ab--cd.b.test"},

		// Hostile or broken.
		{name: "no From", header: hdr("Subject: hi"), wantErr: ErrNoFrom, detail: "dmarc: no From header field"},
		{name: "empty header", header: nil, wantErr: ErrNoFrom},
		{name: "two From fields", header: hdr("From: a@b.test", "from: c@d.test"), wantErr: ErrMultipleFrom, detail: "dmarc: 2 From header fields"},
		{name: "two From fields, one obsolete", header: hdr("From: a@b.test", "From : c@d.test"), wantErr: ErrMultipleFrom},
		{name: "two From fields split by bare LF", header: []byte("From: a@b.test\nFrom: c@d.test\r\n\r\n"), wantErr: ErrMultipleFrom},
		{name: "two addresses", header: hdr("From: a@b.test, c@d.test"), wantErr: ErrMultipleAddresses, detail: "dmarc: From holds 2 addresses"},
		{name: "two angle addresses", header: hdr("From: <a@b.test> <c@d.test>"), wantErr: ErrMultipleAddresses},
		{name: "address as bare display name", header: hdr("From: c@d.test <a@b.test>"), wantErr: ErrMultipleAddresses},
		{name: "group with two addresses", header: hdr("From: Team: a@b.test, c@d.test;"), wantErr: ErrMultipleAddresses},
		{name: "address after group", header: hdr("From: Team: a@b.test; c@d.test"), wantErr: ErrMultipleAddresses},
		{name: "three addresses folded", header: hdr("From: a@b.test,", " c@d.test,", " e@f.test"), wantErr: ErrMultipleAddresses, detail: "dmarc: From holds 3 addresses"},
		{name: "empty From", header: hdr("From:"), wantErr: ErrNoAddress},
		{name: "empty group", header: hdr("From: undisclosed-recipients:;"), wantErr: ErrNoAddress},
		{name: "no domain", header: hdr("From: alice"), wantErr: ErrNoDomain},
		{name: "null angle address", header: hdr("From: Alice <>"), wantErr: ErrNoDomain},
		{name: "angle address without domain", header: hdr("From: <alice>"), wantErr: ErrNoDomain},
		{name: "domain literal", header: hdr("From: a@[192.0.2.1]"), wantErr: ErrMalformedFrom},
		{name: "two at signs", header: hdr("From: a@b@c.test"), wantErr: ErrMalformedFrom},
		{name: "unterminated comment", header: hdr("From: a@b.test (oops"), wantErr: ErrMalformedFrom},
		{name: "unterminated quoted string", header: hdr(`From: "a@b.test`), wantErr: ErrMalformedFrom},
		{name: "unterminated angle", header: hdr("From: <a@b.test"), wantErr: ErrMalformedFrom},
		{name: "unquoted comma in display name", header: hdr("From: Foo, Inc. <a@b.test>"), wantErr: ErrMultipleAddresses},
		{name: "trailing dot in angle", header: hdr("From: <a@b.test.>"), want: "b.test"},
		{name: "two trailing dots", header: hdr("From: a@b.test.."), wantErr: ErrMalformedFrom},
		{name: "obsolete FWS after dot joins the domain", header: hdr("From: a@b.test. x"), want: "b.test.x"},
		{name: "word after address", header: hdr("From: a@b.test x"), wantErr: ErrMultipleAddresses},
		{name: "semicolon outside group", header: hdr("From: a@b.test;"), wantErr: ErrMalformedFrom},
		{name: "empty label", header: hdr("From: a@b..test"), wantErr: ErrMalformedFrom},
		{name: "leading dot", header: hdr("From: a@.b.test"), wantErr: ErrMalformedFrom},
		{name: "NUL byte", header: hdr("From: a@b.test\x00.evil.test"), wantErr: ErrMalformedFrom},
		{name: "NUL in a comment", header: hdr("From: a@b.test (\x00)"), wantErr: ErrMalformedFrom},
		{name: "DEL in a quoted string", header: hdr("From: \"\x7f\" <a@b.test>"), wantErr: ErrMalformedFrom},
		{name: "bare CR inside the field", header: hdr("From: a@b.test\rFrom: c@d.test"), wantErr: ErrMalformedFrom},
		{name: "header starts folded", header: hdr(" From: c@d.test", "From: a@b.test"), wantErr: ErrMalformedFrom},
		{name: "non-DNS domain", header: hdr("From: a@b+c.test"), wantErr: ErrBadDomain, detail: `dmarc: From domain "b+c.test" is not a DNS domain name`},
		{name: "label too long", header: hdr("From: a@" + strings.Repeat("x", 64) + ".test"), wantErr: ErrBadDomain},
		{name: "invalid IDN", header: hdr("From: a@\u200d.test"), wantErr: ErrBadDomain},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FromDomain(tc.header)
			if tc.wantErr == nil {
				if err != nil || got != tc.want {
					t.Fatalf("FromDomain = %q, %v; want %q, nil", got, err, tc.want)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("FromDomain = %q, %v; want error %v", got, err, tc.wantErr)
			}
			if got != "" {
				t.Errorf("FromDomain returned domain %q with error", got)
			}
			if !strings.HasPrefix(err.Error(), "dmarc: ") {
				t.Errorf("error %q lacks the dmarc: prefix", err)
			}
			if tc.detail != "" && err.Error() != tc.detail {
				t.Errorf("error text:\n got %q\nwant %q", err, tc.detail)
			}
		})
	}
}
