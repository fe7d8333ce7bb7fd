package proxy

import (
	"strings"
	"testing"
	"unicode"
)

func TestClaimsAuthservID(t *testing.T) {
	for _, c := range []struct {
		value string
		want  bool
	}{
		{" mx.example.org; dkim=pass", true},
		{"mx.example.org;dkim=pass", true},
		{" mx.example.org", true},
		{" mx.example.org; none", true},
		{" MX.Example.ORG; dkim=pass", true},
		{" mx.example.org.; dkim=pass", true},
		{" mx.example.org 1; dkim=pass", true},
		{" mx.example.org (c) 1 (d); dkim=pass", true},
		{" mx.example.org(c); dkim=pass", true},
		{" (c)mx.example.org; dkim=pass", true},
		{" (a;b) mx.example.org; dkim=pass", true},
		{" (a\\) ; b) mx.example.org; dkim=pass", true},
		{" (a\\(; b) mx.example.org; dkim=pass", true},
		{" ((;) (x;(y;))) mx.example.org; dkim=pass", true},
		{" (a\r\n ;b) mx.example.org; dkim=pass", true},
		{" (\x01\x7f;) mx.example.org; dkim=pass", true}, // obs-ctext
		{" (\\\x00;) mx.example.org; dkim=pass", true},   // obs-qp
		{" \"mx.example.org\"; dkim=pass", true},
		{" \"MX.EXAMPLE.ORG.\" ; dkim=pass", true},
		{" \"mx.ex\\ample\\.org\"; dkim=pass", true},
		{" \" mx.example.org\t\"; dkim=pass", true},
		{" \"mx.example\r\n .org\"; dkim=pass", false}, // the fold's blank stays in the content
		{" \"mx.example\r\n.org\"; dkim=pass", true},
		{" (c) \"mx.example.org\" (d) 1; dkim=pass", true},
		{"\r\n\tmx.example.org\r\n ; dkim=pass", true},
		{"\tmx.example.org\t;\tdkim=pass", true},
		{"\u00a0mx.example.org\u2028; dkim=pass", true},
		{" mx.example.org\u0085; dkim=pass", true},
		{" mx.example.org/x; dkim=pass", true}, // a token ends at a tspecial
		{" mx.example.org\x00; dkim=pass", true},
		{" mx.xn--bcher-kva.test; dkim=pass", false},
		{" =?us-ascii?q?mx.example.org?=; dkim=pass", true},
		{" =?utf-8?b?bXguZXhhbXBsZS5vcmc7IGRraW09cGFzcw==?=", true},
		{" (=?utf-8?q?=29_mx.example.org=3B_=28?=) other.example; dkim=pass", true},
		{" other.example (=?utf-8?q?x?= 1; dkim=pass", true}, // unterminated comment
		{" other.example; dkim=pass reason=\"=?utf-8?q?x?=\"", false},

		{" other.example; dkim=pass", false},
		{" mx.example.org.evil.test; dkim=pass", false},
		{" x.mx.example.org; dkim=pass", false},
		{" mx.example.org..; dkim=pass", false},
		{" mx-example.org; dkim=pass", false},
		{" \"other.example\" (mx.example.org); dkim=pass", false},
		{" (mx.example.org) other.example; dkim=pass", false},
		{" other.example; dkim=pass (mx.example.org; dkim=pass)", false},
		{" (unterminated mx.example.org; dkim=pass", false},
		{" \"mx.example.org; dkim=pass", false},
		{" \"mx.example.org\\\"\"; dkim=pass", false},
		{" ; dkim=pass", false},
		{"", false},
		{" mx.example.org\u200b\u200b.evil; dkim=pass", false},
	} {
		if got := claimsAuthservID(c.value, "mx.example.org"); got != c.want {
			t.Errorf("claimsAuthservID(%q) = %v, want %v", c.value, got, c.want)
		}
	}
	// Our hostname given with a trailing dot, or internationalised.
	if !claimsAuthservID(" mx.example.org; dkim=pass", "MX.example.org.") {
		t.Error("a trailing dot on our side must not matter")
	}
	if !claimsAuthservID(" mx.bücher.test; dkim=pass", "mx.xn--bcher-kva.test") {
		t.Error("the U-label form of our hostname must count as ours")
	}
}

// The field name may be followed by blanks before the colon (RFC 5322
// §4.5, obs-optional), in any case.
func TestForgedFieldName(t *testing.T) {
	for _, f := range []string{
		"Authentication-Results: mx.example.org; dkim=pass\r\n",
		"Authentication-Results : mx.example.org; dkim=pass\r\n",
		"Authentication-Results\t: mx.example.org; dkim=pass\r\n",
		"AUTHENTICATION-RESULTS:mx.example.org;\r\n\tdkim=pass\r\n",
		"X-Mxguard-Quarantine: yes\r\n",
	} {
		if !forged([]byte(f), "mx.example.org") {
			t.Errorf("forged(%q) = false", f)
		}
	}
	for _, f := range []string{
		"Authentication-Results-X: mx.example.org; dkim=pass\r\n",
		"X-Authentication-Results: mx.example.org; dkim=pass\r\n",
		"Subject: Authentication-Results: mx.example.org; dkim=pass\r\n",
	} {
		if forged([]byte(f), "mx.example.org") {
			t.Errorf("forged(%q) = true", f)
		}
	}
}

// FuzzAuthservID: reading never panics, and it agrees with the grammar
// read the other way: an id written as a quoted-string, with any comment
// before it, reads back as that id, and a comment in front of any value
// changes nothing.
func FuzzAuthservID(f *testing.F) {
	f.Add(" mx.example.org; dkim=pass", "mx.example.org", "a;b")
	f.Add(" (a\\) ;) \"x\\\"y\" 1; none", "MX.example.org.", "((;))")
	f.Add("=?utf-8?q?x?=", "a\\b\"c", "\\")
	f.Fuzz(func(t *testing.T, value, id, comment string) {
		sc := idScanner{s: value}
		got, ok := sc.authservID()
		if ok && sc.i > len(value) {
			t.Fatalf("scanner past the end: %d > %d", sc.i, len(value))
		}
		claim := claimsAuthservID(value, "mx.example.org")

		// The same value behind a comment reads the same.
		if strings.Contains(comment, "=?") {
			return
		}
		c := " (" + quoteComment(comment) + ")"
		sc2 := idScanner{s: c + value}
		got2, ok2 := sc2.authservID()
		if ok2 != ok || got2 != got || claimsAuthservID(c+value, "mx.example.org") != claim {
			t.Fatalf("a comment in front changes the reading: %q → %q %v, %q → %q %v", value, got, ok, c+value, got2, ok2)
		}

		// An id written as a quoted-string reads back.
		if strings.ContainsAny(id, "\r\n") {
			return // a bare CR or LF never reaches the header
		}
		field := c + " \"" + quoteString(id) + "\" (x;y) 1 ; dkim=pass"
		sc3 := idScanner{s: field}
		back, ok3 := sc3.authservID()
		if want := strings.TrimFunc(id, unicode.IsSpace); !ok3 || back != want {
			t.Fatalf("%q reads as %q %v, want %q", field, back, ok3, want)
		}
		if sc3.s[sc3.i:] != "; dkim=pass" {
			t.Fatalf("%q: the id part ends at %q", field, sc3.s[sc3.i:])
		}
		same := sameAuthservID(strings.TrimFunc(id, unicode.IsSpace), "mx.example.org")
		if !strings.Contains(field, "=?") && claimsAuthservID(field, "mx.example.org") != same {
			t.Fatalf("claimsAuthservID(%q) = %v, want %v", field, !same, same)
		}
	})
}

// quoteString writes s as the content of a quoted-string.
func quoteString(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// quoteComment writes s as the content of a comment.
func quoteComment(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '(' || s[i] == ')' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// BenchmarkStripForged: a header section with a forged field among seven
// others, the shape of every message the proxy forwards.
func BenchmarkStripForged(b *testing.B) {
	msg := "Received: from a by b; Mon, 2 Nov 2026 10:00:00 +0000\r\n" +
		"Authentication-Results: other.example; dkim=pass header.d=sender.test\r\n" +
		"Authentication-Results: (c;d) \"MX.example.org.\"; dkim=pass header.d=bank.test\r\n" +
		"From: alice@sender.test\r\nTo: user@example.org\r\nSubject: hi\r\n" +
		"Message-ID: <x@sender.test>\r\n\r\nbody\r\n"
	b.ReportAllocs()
	for b.Loop() {
		if strings.Contains(strip(b, msg), "bank.test") {
			b.Fatal("the forged field is still there")
		}
	}
}
