package dmarc

import "testing"

func TestOrgDomain(t *testing.T) {
	tests := []struct{ in, want string }{
		{"b.test", "b.test"},
		{"a.b.test", "b.test"},
		{"x.y.example.co.uk", "example.co.uk"},
		{"co.uk", "co.uk"}, // a public suffix is its own (RFC 7489 §3.2)
		{"test", "test"},
		{"alice.github.io", "alice.github.io"}, // the PSL's private section counts
	}
	for _, tc := range tests {
		if got := OrgDomain(tc.in); got != tc.want {
			t.Errorf("OrgDomain(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestAligned(t *testing.T) {
	tests := []struct {
		from, auth string
		strict     bool
		want       bool
	}{
		{"b.test", "b.test", true, true},
		{"b.test", "B.Test.", true, true},
		{"b.test", "a.b.test", true, false},
		{"b.test", "a.b.test", false, true},
		{"x.b.test", "y.b.test", false, true},
		{"example.co.uk", "evil.co.uk", false, false},
		{"co.uk", "evil.co.uk", false, false},
		{"alice.github.io", "bob.github.io", false, false},
		{"b.test", "", false, false},
		{"b.test", "b.test\x00", false, false},
		{"xn--bcher-kva.test", "mail.bücher.test", false, true},
	}
	for _, tc := range tests {
		if got := aligned(tc.from, tc.auth, tc.strict); got != tc.want {
			t.Errorf("aligned(%q, %q, strict=%v) = %v, want %v", tc.from, tc.auth, tc.strict, got, tc.want)
		}
	}
}
