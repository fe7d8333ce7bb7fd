package mailaddr

import "testing"

func TestParseDomain(t *testing.T) {
	tests := []struct {
		in, name, ascii string
	}{
		{"example.org", "example.org", "example.org"},
		{"Example.ORG.", "example.org", "example.org"},
		{"example.org..", "example.org.", "example.org."}, // one dot only: the rest is no name, and stays unequal
		{"", "", ""},
		{"Bücher.test", "bücher.test", "xn--bcher-kva.test"},
		{"BÜCHER.TEST.", "bücher.test", "xn--bcher-kva.test"},
		{"xn--bcher-kva.test", "xn--bcher-kva.test", "xn--bcher-kva.test"},
		{"xn--bcher-kva.bücher.test", "xn--bcher-kva.bücher.test", "xn--bcher-kva.xn--bcher-kva.test"},
		// Not canonical U-labels: compared as written, so equal to no
		// ASCII name.
		{"ｅｘａｍｐｌｅ.org", "ｅｘａｍｐｌｅ.org", "ｅｘａｍｐｌｅ.org"},
		{"e\u0301xample.org", "e\u0301xample.org", "e\u0301xample.org"}, // NFC would make it é
		{"a\u200d.test", "a\u200d.test", "a\u200d.test"},                // invalid joiner
		{"[192.0.2.1]", "[192.0.2.1]", "[192.0.2.1]"},
	}
	for _, tc := range tests {
		d := ParseDomain(tc.in)
		if d.String() != tc.name || d.ASCII() != tc.ascii {
			t.Errorf("ParseDomain(%q) = %q / %q, want %q / %q", tc.in, d.String(), d.ASCII(), tc.name, tc.ascii)
		}
		if d.IsZero() != (tc.name == "") {
			t.Errorf("ParseDomain(%q).IsZero() = %v", tc.in, d.IsZero())
		}
	}
}

func TestDomainEqual(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"example.org", "EXAMPLE.org.", true},
		{"bücher.test", "xn--bcher-kva.test", true},
		{"BÜCHER.test", "xn--BCHER-kva.test", true},
		{"example.org", "ｅｘａｍｐｌｅ.org", false},
		{"example.org", "example.org..", false},
		{"example.org", "sub.example.org", false},
		{"", "", true},
		{"", ".", true},
	}
	for _, tc := range tests {
		if got := ParseDomain(tc.a).Equal(ParseDomain(tc.b)); got != tc.want {
			t.Errorf("%q equal %q = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestDNSName(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"b.test", "b.test", true},
		{"B.Test.", "b.test", true},
		{"Bücher.test", "xn--bcher-kva.test", true},
		{"ｅｘａｍｐｌｅ.org", "example.org", true}, // mapped as a lookup maps it
		{"ab--cd.b.test", "ab--cd.b.test", true},
		{"_dmarc.b.test", "_dmarc.b.test", true},
		{"", "", false},
		{".", "", false},
		{"b..test", "", false},
		{"b+c.test", "", false},
		{"a\u200d.test", "", false},
		{"b.test\x00", "", false},
		{"\xff.test", "", false},
	}
	for _, tc := range tests {
		got, ok := DNSName(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("DNSName(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestValidLocalPart(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"alice", true},
		{"a.b.c", true},
		{"josé", true},
		{"!#$%&'*+-/=?^_`{|}~", true},
		{`""`, true},
		{`"a b"`, true},
		{`"a@b, c"`, true},
		{`"a\"b"`, true},
		{`"a\\"`, true},
		{"\"a\tb\"", true},
		{"", false},
		{".a", false},
		{"a.", false},
		{"a..b", false},
		{"a b", false},
		{"a@b", false},
		{"a,b", false},
		{`a\b`, false},
		{"a\x00b", false},
		{`"a"b"`, false},
		{`"a\"`, false},
		{`"a`, false},
		{`a"b"`, false},
		{"\"a\x00\"", false},
		{"\"a\\\x00\"", false},
		{"\"a\x7f\"", false},
		{`"a".b`, false}, // obsolete form: words joined by dots, not one local-part
	}
	for _, tc := range tests {
		if got := ValidLocalPart(tc.in); got != tc.want {
			t.Errorf("ValidLocalPart(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
