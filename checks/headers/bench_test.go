package headers

import "testing"

// BenchmarkCheckFrom measures Check on header sections whose From field
// takes the address reader's paths: a common message, a display name that
// impersonates, and a From with several addresses, comments and groups.
func BenchmarkCheckFrom(b *testing.B) {
	o := Options{Domains: []string{"example.org"}, Protected: []string{"bank.test", "bücher.test"}}
	for _, tc := range []struct {
		name string
		from string
	}{
		{"plain", "From: Alice Example <alice@example.net>"},
		{"spoof", `From: "=?utf-8?q?ceo=40bank=2Etest?= (Security)" <x@evil.test>`},
		{"several", `From: (c@d.test) a@b.test, "x, y" <c@d.test>, Team: e@f.test, <@r.test:g@h.test>;`},
	} {
		h := hdr(append(without("From:"), tc.from)...)
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(h)))
			b.ReportAllocs()
			for b.Loop() {
				Check(h, o)
			}
		})
	}
}
