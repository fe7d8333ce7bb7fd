package dmarc

import (
	"errors"
	"strings"
	"testing"
)

// FuzzFromDomain checks that FromDomain never panics, that an accepted
// domain is a plain lower-case DNS name, that it round-trips, and that every
// error is one of the documented kinds with the package prefix. Seeds beyond
// these live in testdata/fuzz/FuzzFromDomain.
func FuzzFromDomain(f *testing.F) {
	for _, s := range []string{
		"From: a@b.test\r\n\r\n",
		"From: \"x@y.test\" <a@b.test>\r\n\r\n",
		"From: a@b.test, c@d.test\r\n\r\n",
		"From: <a@b.test> <c@d.test>\r\n\r\n",
		"From: a@b.test\r\nFrom: c@d.test\r\n\r\n",
		"From: Team: a@b.test;\r\n\r\n",
		"From: undisclosed:;\r\n\r\n",
		"From: =?utf-8?b?w4lyaWM=?= <a@b.test>\r\n\r\n",
		"From: (c (n) \\) @x) a(x)@(y)b . test\r\n\r\n",
		"From: <@r.test,@s.test:a@b.test>\r\n\r\n",
		"From : Alice\r\n <a@Bücher.test.>\r\n\r\n",
		"Subject: x\r\n From: c@d.test\r\nFrom: a@[192.0.2.1]\r\n\r\n",
		"From: \"unterminated\r\n\r\n",
		"From: a@b\x00c.test\r\n\r\n",
		"From: a\nFrom: b\rFrom: c@d\r\n",
	} {
		f.Add([]byte(s))
	}
	kinds := []error{ErrNoFrom, ErrMultipleFrom, ErrNoAddress, ErrMultipleAddresses, ErrNoDomain, ErrMalformedFrom, ErrBadDomain}
	f.Fuzz(func(t *testing.T, header []byte) {
		d, err := FromDomain(header)
		if err != nil {
			if d != "" {
				t.Fatalf("domain %q returned with error %v", d, err)
			}
			if !strings.HasPrefix(err.Error(), "dmarc: ") {
				t.Fatalf("error %q lacks the dmarc: prefix", err)
			}
			known := false
			for _, k := range kinds {
				known = known || errors.Is(err, k)
			}
			if !known {
				t.Fatalf("error %v is none of the documented kinds", err)
			}
			return
		}
		if d == "" {
			t.Fatal("empty domain without error")
		}
		if d != strings.ToLower(d) {
			t.Fatalf("domain %q is not lower-case", d)
		}
		for _, r := range d {
			if r <= ' ' || r >= 0x7f {
				t.Fatalf("domain %q holds %q", d, r)
			}
		}
		if strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") || strings.Contains(d, "..") {
			t.Fatalf("domain %q has an empty label", d)
		}
		// The domain is a fixed point: an address at it gives it back.
		if d2, err := FromDomain([]byte("From: x@" + d + "\r\n\r\n")); err != nil || d2 != d {
			t.Fatalf("round trip of %q: %q, %v", d, d2, err)
		}
		if OrgDomain(d) == "" {
			t.Fatalf("empty organizational domain for %q", d)
		}
	})
}
