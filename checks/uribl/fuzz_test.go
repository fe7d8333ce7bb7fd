package uribl

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"golang.org/x/net/publicsuffix"
)

// FuzzExtract feeds Extract arbitrary messages: it must not panic, must
// keep its bounds, and every domain it gives must be a registered domain
// in lower case A-labels.
func FuzzExtract(f *testing.F) {
	f.Add([]byte(msg("text/html", `<a href="https://good.example/r?u=https%3A%2F%2Fbad&#x2e;example">`)))
	f.Add([]byte(msg("text/plain", "http://b%61d.example http://[::1]/ www.xn--bcher-kva.example http://u@h.example:1/")))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nhttp://a.example\r\n--b--"))
	f.Fuzz(func(t *testing.T, b []byte) {
		const max = 4
		got, err := Extract(context.Background(), bytes.NewReader(b), max)
		if err != nil {
			t.Fatalf("Extract: %v", err)
		}
		if len(got.Domains) > max || len(got.IPs) > max || got.URLs > maxURLs {
			t.Fatalf("bounds exceeded: %+v", got)
		}
		for _, d := range got.Domains {
			if d != strings.ToLower(d) {
				t.Fatalf("domain %q not lower case", d)
			}
			if reg, err := publicsuffix.EffectiveTLDPlusOne(d); err != nil || reg != d {
				t.Fatalf("domain %q is not a registered domain (%q, %v)", d, reg, err)
			}
		}
	})
}
