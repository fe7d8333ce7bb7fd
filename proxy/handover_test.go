package proxy

import (
	"net/netip"
	"strings"
	"testing"

	"mxguard/policy"
)

// TestClientAttrs: the XCLIENT/XFORWARD attributes of a client, in the
// form of Postfix's XCLIENT_README: IPV6: before an IPv6 address, the PTR
// name when there is one, [UNAVAILABLE] for what is unknown.
func TestClientAttrs(t *testing.T) {
	for _, c := range []struct {
		client policy.Client
		want   string
	}{
		{policy.Client{Addr: netip.MustParseAddrPort("192.0.2.7:4000"), HELO: "c.test", ESMTP: true},
			"[[NAME [UNAVAILABLE]] [ADDR 192.0.2.7] [PORT 4000] [PROTO ESMTP] [HELO c.test]]"},
		{policy.Client{Addr: netip.MustParseAddrPort("[2001:db8::7]:25"), PTR: "mail.c.test", HELO: "c.test"},
			"[[NAME mail.c.test] [ADDR IPV6:2001:db8::7] [PORT 25] [PROTO SMTP] [HELO c.test]]"},
		{policy.Client{Addr: netip.MustParseAddrPort("[::ffff:192.0.2.8]:26")},
			"[[NAME [UNAVAILABLE]] [ADDR 192.0.2.8] [PORT 26] [PROTO SMTP] [HELO [UNAVAILABLE]]]"},
		// A name that is not one is passed on as the address literal.
		{policy.Client{Addr: netip.MustParseAddrPort("[2001:db8::9]:27"), HELO: "caf\xe9.test"},
			"[[NAME [UNAVAILABLE]] [ADDR IPV6:2001:db8::9] [PORT 27] [PROTO SMTP] [HELO [IPv6:2001:db8::9]]]"},
		{policy.Client{Addr: netip.MustParseAddrPort("192.0.2.9:28"), HELO: "[192.0.2.99]"},
			"[[NAME [UNAVAILABLE]] [ADDR 192.0.2.9] [PORT 28] [PROTO SMTP] [HELO [192.0.2.99]]]"},
	} {
		got := fmtAttrs(clientAttrs(&policy.Transaction{Client: c.client}))
		if got != c.want {
			t.Errorf("%v:\n got %s\nwant %s", c.client.Addr, got, c.want)
		}
	}
}

func fmtAttrs(a [][2]string) string {
	var parts []string
	for _, kv := range a {
		parts = append(parts, "["+kv[0]+" "+kv[1]+"]")
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// TestHandOverFailures: a backend that does not offer the configured
// hand-over, or refuses XCLIENT, gets no transaction (it would apply its
// rules to mxguard's address, or relay for it): the client gets 451 and
// the backend sees no MAIL. Under auto, a backend that offers neither
// gets the mail without a hand-over.
func TestHandOverFailures(t *testing.T) {
	const plainEHLO = "250-script.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
	const xclientEHLO = "250-script.test\r\n250-PIPELINING\r\n250 XCLIENT NAME ADDR PORT PROTO HELO\r\n"
	for _, c := range []struct {
		name   string
		mode   HandOver
		script func(step) string
		want   string
		mail   bool // the backend saw MAIL on the first connection
	}{
		{"xclient not offered", "xclient", on("EHLO", plainEHLO), "451 4.4.2 ", false},
		{"xforward not offered", "xforward", on("EHLO", plainEHLO), "451 4.4.2 ", false},
		{"XCLIENT refused", "xclient", func(s step) string {
			switch s.Verb {
			case "EHLO":
				return xclientEHLO
			case "XCLIENT":
				return "550 5.7.0 not authorized\r\n"
			}
			return ""
		}, "451 4.4.2 ", false},
		{"auto with neither", "auto", on("EHLO", plainEHLO), "250 2.0.0 Ok: queued as S1-1 ", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			sb := startScript(t, func(sb *scriptBackend) { sb.script = c.script })
			px := startProxy(t, sb.addr, func(_ *Options, bo *BackendOptions) { bo.ForwardClient = c.mode })
			got := deliverRaw(hello(t, px.addr), []string{"user@example.org"})
			if !strings.HasPrefix(got, c.want) {
				t.Fatalf("client got %q, want %q…", got, c.want)
			}
			sawMail, sawHandOver := false, false
			for _, l := range sb.conn(1).Lines {
				sawMail = sawMail || strings.HasPrefix(l, "MAIL ")
				sawHandOver = sawHandOver || strings.HasPrefix(l, "XFORWARD") || strings.HasPrefix(l, "XCLIENT") && c.mode != HandOverXClient
			}
			if sawMail != c.mail || sawHandOver {
				t.Fatalf("backend saw MAIL %v (want %v), an unoffered hand-over %v: %q", sawMail, c.mail, sawHandOver, sb.conn(1).Lines)
			}
		})
	}
}
