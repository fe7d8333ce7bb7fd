package uribl

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
)

// BenchmarkExtract100KB measures the extraction on a 100 KB HTML message
// with a link every few hundred bytes, some of them entity-obfuscated.
func BenchmarkExtract100KB(b *testing.B) {
	var body strings.Builder
	for i := 0; body.Len() < 100<<10; i++ {
		fmt.Fprintf(&body, `<p>Paragraph %d of some newsletter text that goes on for a while before a link. `+
			`<a href="https://www.site%d&#x2e;example/path?id=%d&amp;u=https%%3A%%2F%%2Fother%d.example%%2F">read more</a></p>`+"\r\n", i, i%30, i, i%7)
	}
	m := []byte(msg("text/html; charset=utf-8", body.String()))
	b.SetBytes(int64(len(m)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Extract(context.Background(), bytes.NewReader(m), DefaultMaxDomains); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExtractManyHosts measures the worst case of the walk past
// max_domains: a message of maxURLs links, each to a domain of its own,
// every one parsed and counted though only DefaultMaxDomains are looked up.
func BenchmarkExtractManyHosts(b *testing.B) {
	var body strings.Builder
	for i := range maxURLs {
		fmt.Fprintf(&body, "http://www.host%d.example/ ", i)
	}
	m := []byte(msg("text/plain", body.String()))
	b.SetBytes(int64(len(m)))
	b.ReportAllocs()
	for b.Loop() {
		f, err := Extract(context.Background(), bytes.NewReader(m), DefaultMaxDomains)
		if err != nil || f.URLs != maxURLs || !f.Truncated {
			b.Fatalf("%d URLs, truncated %v, %v", f.URLs, f.Truncated, err)
		}
	}
}
