package proxy

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"mxguard/policy"
)

// TestReceivedFromClause: the Received field's "from" holds the HELO name
// when it is a domain or an address literal, else the client's address
// literal with the name in a comment, each unsafe byte as '?'; the field
// is ASCII whatever the client sent.
func TestReceivedFromClause(t *testing.T) {
	for _, c := range []struct {
		addr, ptr, helo, want string
	}{
		{"192.0.2.1:25", "", "client.test", "Received: from client.test ([192.0.2.1])\r\n\tby "},
		{"192.0.2.1:25", "mail.client.test", "[192.0.2.1]", "Received: from [192.0.2.1] (mail.client.test [192.0.2.1])\r\n\tby "},
		{"192.0.2.1:25", "", "caf\xe9.test", "Received: from [192.0.2.1] ([192.0.2.1])\r\n\t(HELO caf?.test)\r\n\tby "},
		{"[2001:db8::1]:25", "", "a(b)\\\"c;@\u00e9.test", "Received: from [IPv6:2001:db8::1] ([IPv6:2001:db8::1])\r\n\t(HELO a?b???c????.test)\r\n\tby "},
		{"[2001:db8::1]:25", "", "[not-an-ip]", "Received: from [IPv6:2001:db8::1] ([IPv6:2001:db8::1])\r\n\t(HELO [not-an-ip])\r\n\tby "},
	} {
		tx := &policy.Transaction{ID: "T.1", Client: policy.Client{Addr: netip.MustParseAddrPort(c.addr), PTR: c.ptr, HELO: c.helo}}
		got := receivedHeader("mx.example.org", tx, time.Date(2026, 11, 30, 7, 0, 0, 0, time.UTC))
		if !strings.HasPrefix(got, c.want) {
			t.Errorf("HELO %q:\n got %q\nwant %q…", c.helo, got, c.want)
		}
		for i := 0; i < len(got); i++ {
			if got[i] >= 0x7f {
				t.Errorf("HELO %q: byte %#x in %q", c.helo, got[i], got)
			}
		}
	}
}
