package proxy

import (
	"testing"

	"mxguard/policy"
)

// TestEnvelopeAddressSpellings: a recipient's local-part is a dot-string
// or one quoted-string (RFC 5321 §4.1.2), checked as the header parser
// checks one, so that a quoted string with bare quotes inside, which
// readers split differently, is refused as bad syntax; and a recipient
// domain is ours in any spelling of the name (case, trailing dot, U-labels
// for the A-labels configured), but not in a look-alike spelling.
func TestEnvelopeAddressSpellings(t *testing.T) {
	be := startBackend(t, nil)
	px := startProxy(t, be.addr, func(o *Options, _ *BackendOptions) {
		o.Policy = policy.NewEngine(policy.Options{Domains: []string{"example.org", "xn--bcher-kva.test"}})
	})
	d := hello(t, px.addr)
	d.expect("MAIL FROM:<a@sender.test> SMTPUTF8", "250 ")
	for _, c := range []struct{ rcpt, want string }{
		{`"a"b"c"@example.org`, "501 5.1.3 "},
		{`"a\"b"@example.org`, "250 "},
		{`"a b"@example.org`, "250 "},
		{"a..b@example.org", "501 5.1.3 "},
		{"user@EXAMPLE.org.", "250 "},
		{"user@xn--bcher-kva.test", "250 "},
		{"user@Bücher.test", "250 "},
		{"user@ｅｘａｍｐｌｅ.org", "550 5.7.1 "},
	} {
		d.expect("RCPT TO:<"+c.rcpt+">", c.want)
	}
}
