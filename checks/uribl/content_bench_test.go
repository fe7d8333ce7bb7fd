package uribl

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"mxguard/checks/mime"
	"mxguard/checks/mime/mimetest"
	"mxguard/checks/resolver"
	"mxguard/checks/resolver/dnstest"
)

// contentMessage is a 100 KB message as mail commonly is: a text part, an
// HTML newsletter with a link every few hundred bytes (some behind
// entities and redirectors), a PDF, a DOCX and a small ZIP.
func contentMessage() []byte {
	var html strings.Builder
	for i := 0; html.Len() < 40<<10; i++ {
		fmt.Fprintf(&html, `<p>Paragraph %d of some newsletter text that goes on for a while before a link. `+
			`<a href="https://www.site%d&#x2e;example/path?id=%d&amp;u=https%%3A%%2F%%2Fother%d.example%%2F">read more</a></p>`+"\n", i, i%30, i, i%7)
	}
	r := rand.New(rand.NewPCG(1, 1))
	noise := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	return mimetest.Message("bench",
		mimetest.Part{Type: "text/html; charset=utf-8", Data: []byte(html.String())},
		mimetest.Part{Type: "application/pdf", Name: "report.pdf", Data: append([]byte("%PDF-1.4\n"), noise(34<<10)...)},
		mimetest.Part{Type: "application/vnd.openxmlformats-officedocument.wordprocessingml.document", Name: "letter.docx", Data: mimetest.Docx()},
		mimetest.Part{Type: "application/zip", Name: "photos.zip", Data: mimetest.Zip(mimetest.File{Name: "a.jpg", Data: append([]byte("\xff\xd8\xff\xe0"), noise(10<<10)...)})},
	)
}

// BenchmarkContentFacts100KB measures the content facts of one 100 KB
// message: the MIME walk (mime.Parse) and the URL extraction, and with
// "lookups" also the URL lookups in two zones, answered from the
// resolver's cache as most are (a newsletter's domains recur).
func BenchmarkContentFacts100KB(b *testing.B) {
	m := contentMessage()
	o := mime.Options{TempDir: b.TempDir()}
	facts := func(b *testing.B, c *Checker) {
		r := mime.Parse(context.Background(), bytes.NewReader(m), o)
		if len(r.Parts) < 5 {
			b.Fatalf("%d parts", len(r.Parts))
		}
		f, err := Extract(context.Background(), bytes.NewReader(m), DefaultMaxDomains)
		if err != nil || len(f.Domains) != DefaultMaxDomains {
			b.Fatalf("%d domains, %v", len(f.Domains), err)
		}
		if c != nil {
			c.Lookups(context.Background(), f)
		}
	}
	b.Run("extract", func(b *testing.B) {
		b.SetBytes(int64(len(m)))
		b.ReportAllocs()
		for b.Loop() {
			facts(b, nil)
		}
		b.ReportMetric(float64(len(m))/1024, "KB/msg")
	})
	b.Run("lookups", func(b *testing.B) {
		s := dnstest.StartFiles(b, zoneFile)
		r, err := resolver.New(resolver.Options{Servers: []string{s.Addr()}, Timeout: 2 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		c, err := NewChecker(Config{Zones: []ZoneConfig{{Zone: "dbl.test", Weight: 10}, {Zone: "multi.test", Weight: 5, Bitmask: 0x4c}}}, r)
		if err != nil {
			b.Fatal(err)
		}
		facts(b, c) // the cache warmed
		b.SetBytes(int64(len(m)))
		b.ReportAllocs()
		for b.Loop() {
			facts(b, c)
		}
		b.ReportMetric(float64(len(m))/1024, "KB/msg")
	})
}
