package headers

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"mxguard/checks/dmarc"
)

// dmarcCount is how many addresses DMARC's reader finds in a From field:
// its answer says so for each outcome but a syntax error or a bad domain,
// for which it returns -1.
func dmarcCount(err error) int {
	var n int
	switch {
	case err == nil, errors.Is(err, dmarc.ErrNoDomain):
		return 1
	case errors.Is(err, dmarc.ErrNoAddress):
		return 0
	case errors.Is(err, dmarc.ErrMultipleAddresses):
		if _, e := fmt.Sscanf(err.Error(), "dmarc: From holds %d addresses", &n); e == nil {
			return n
		}
	}
	return -1
}

// TestFromReadersAgree holds the header checks to read a From field as
// DMARC does: the same number of addresses, and each display name held
// against the domain of the address it belongs to. Two readers that split
// a field differently are what an attacker plays off against each other:
// one sees the address at the domain the display name claims, the other
// judges another.
func TestFromReadersAgree(t *testing.T) {
	opts := Options{Domains: []string{"example.org"}, Protected: []string{"bank.test"}}
	tests := []struct {
		name  string
		from  string
		spoof bool
	}{
		{name: "word after an angle address", from: `<a@b.test>x`},
		{name: "word after an address", from: `a@b.test x`},
		{name: "stray parenthesis between words", from: `a)b`},
		{
			// The lenient reader glued the two addresses into one at
			// bank.test, and so let the display name pass.
			name: "two addresses glued by a comment", from: `a@evil.test (bank.test) x@bank.test`, spoof: true,
		},
		{
			// The '@' is inside the quoted local-part: the address has
			// no domain, bank.test least of all.
			name: "at sign inside a quoted local-part", from: `(bank.test) "x>y@bank.test"`, spoof: true,
		},
		{name: "comments and quotes", from: `(c@d.test) "a,b" (x) <a@(y)b.test> (z)`},
		{name: "group", from: `Team: a@b.test, "x, y" <c@d.test>;`},
		{name: "empty group", from: `undisclosed:;`},
		{name: "source route", from: `<@c.test,@d.test:a@b.test>`},
		{name: "encoded word with a comma", from: `=?utf-8?q?a,b?= <a@b.test>`},
		{name: "backslash outside quotes", from: `a\@c.test <a@b.test>`},
		{name: "display name with an angle bracket", from: `Foo <Bar <a@b.test>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := hdr("From: "+tt.from, "Subject: x", "Date: Tue, 1 Jul 2025 09:59:58 +0200")
			_, err := dmarc.FromDomain(h)
			got := Check(h, opts)
			if n := dmarcCount(err); n >= 0 && got.FromAddresses != n {
				t.Errorf("FromAddresses = %d, but DMARC reads %d (%v)", got.FromAddresses, n, err)
			}
			if got.DisplayNameSpoof != tt.spoof {
				t.Errorf("DisplayNameSpoof = %v (%q), want %v", got.DisplayNameSpoof, got.SpoofDetail, tt.spoof)
			}
		})
	}
}

// FuzzFromReadersAgree is TestFromReadersAgree for any From value: the
// header checks count the addresses DMARC counts, and where DMARC accepts
// the field they read one address at the domain DMARC judges.
func FuzzFromReadersAgree(f *testing.F) {
	for _, s := range []string{
		"a@b.test",
		"<a@b.test>x",
		"a@evil.test (bank.test) x@bank.test",
		`(bank.test) "x>y@bank.test"`,
		`(c@d.test) "a,b" (x) <a@(y)b.test> (z)`,
		"Team: a@b.test, \"x, y\" <c@d.test>;",
		"<@c.test,@d.test:a@b.test>",
		"=?utf-8?q?a,b?= <a@b.test>",
		`a\@c.test <a@b.test>`,
		"Foo <Bar <a@b.test>",
		"a@Bücher.test.",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		h := []byte("From: " + v + "\r\nSubject: x\r\n\r\n")
		d, err := dmarc.FromDomain(h)
		got := Check(h, Options{})
		if n := dmarcCount(err); n >= 0 && got.FromCount == 1 && got.FromAddresses != n {
			t.Fatalf("FromAddresses = %d, but DMARC reads %d (%v)", got.FromAddresses, n, err)
		}
		if err != nil || strings.ContainsAny(v, "\r\n") {
			return
		}
		boxes := parseMailboxes(v)
		if len(boxes) != 1 || canonicalDomain(boxes[0].domain) != d {
			t.Fatalf("DMARC reads %q, the header checks %+v", d, boxes)
		}
	})
}
