package greylist

import (
	"net/netip"
	"testing"
)

func TestNormalizeSender(t *testing.T) {
	for in, want := range map[string]string{
		"":                     "",
		"User@Example.COM":     "user@example.com",
		"user+tag@example.com": "user@example.com",
		"SRS0=HHH=TT=orig.example=alice@fwd.example":                  "alice@orig.example",
		"srs0+abcd=Z9=orig.example=Alice@fwd.example":                 "alice@orig.example",
		"SRS1=HHH=fwd1.example==HHH=TT=orig.example=bob@fwd2.example": "bob@orig.example",
		"SRS0=HHH=TT=orig.example=a=b@fwd.example":                    "a=b@orig.example",
		"SRS0=broken@fwd.example":                                     "srs0=broken@fwd.example",
		"prvs=1234abcdef=user@example.com":                            "user@example.com",
		"PRVS=0123ABCDEF=user@example.com":                            "user@example.com",
		"prvs=user=1234abcdef@example.com":                            "user@example.com",
		"prvs=notatag=user@example.com":                               "prvs=notatag=user@example.com",
		"bounce-12345-678@lists.example":                              "bounce-#-#@lists.example",
		"list-bounces+user=example.com@lists.example":                 "list-bounces@lists.example",
		"user2@example.com":                                           "user2@example.com",
		"+only@example.com":                                           "+only@example.com",
	} {
		if got := NormalizeSender(in); got != want {
			t.Errorf("NormalizeSender(%q) = %q, want %q", in, got, want)
		}
	}
	// A retry of one message and the next message of a sender match.
	a := NormalizeSender("prvs=1001abcdef=news+42@example.com")
	b := NormalizeSender("prvs=2002fedcba=news+43@example.com")
	if a != b {
		t.Errorf("two BATV/extension variants differ: %q, %q", a, b)
	}
}

func TestNormalizeRcpt(t *testing.T) {
	for in, want := range map[string]string{"User+x@Example.org": "user@example.org", "postmaster": "postmaster"} {
		if got := NormalizeRcpt(in); got != want {
			t.Errorf("NormalizeRcpt(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNetwork(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.77":        "192.0.2.0/24",
		"::ffff:192.0.2.77": "192.0.2.0/24",
		"2001:db8:1:2:3::4": "2001:db8:1:2::/64",
		"127.0.0.2":         "127.0.0.0/24",
	} {
		if got := Network(netip.MustParseAddr(in)).String(); got != want {
			t.Errorf("Network(%s) = %s, want %s", in, got, want)
		}
	}
}
