package dmarc

import "testing"

// fromHeaders are header sections for the From benchmarks: the common
// forms, and the hostile ones that take the parser's longer paths.
var fromHeaders = map[string][]byte{
	"plain":   hdr("Received: from a by b", "Subject: hi", "From: Alice Example <alice@example.net>", "To: bob@example.org", "Date: Tue, 1 Jul 2025 09:59:58 +0200"),
	"idn":     hdr("From: =?utf-8?q?J=C3=BCrgen?= <j@Bücher.example>"),
	"obs":     hdr("From: (c@d.test) \"a\\\"@c\"(x) . b @ (y (nested)) mail . b . test (trailing)"),
	"several": hdr("From: a@b.test, \"x, y\" <c@d.test>, Team: e@f.test, <@r.test:g@h.test>;"),
}

// BenchmarkFromDomain measures finding the RFC5322.From domain.
func BenchmarkFromDomain(b *testing.B) {
	for _, name := range []string{"plain", "idn", "obs", "several"} {
		h := fromHeaders[name]
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(h)))
			b.ReportAllocs()
			for b.Loop() {
				_, _ = FromDomain(h)
			}
		})
	}
}
