package mime_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"

	"mxguard/checks/mime"
	"mxguard/checks/mime/mimetest"
)

// noise is n bytes that do not compress, as photos and PDFs do not.
func noise(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// BenchmarkParse100KB: a 100 KB message as mail commonly is: a text part,
// an HTML part, a PDF, a DOCX and a small ZIP.
func BenchmarkParse100KB(b *testing.B) {
	pdf := append([]byte("%PDF-1.4\n"), noise(1, 40<<10)...)
	msg := mimetest.Message("bench",
		mimetest.Part{Type: "text/html; charset=utf-8", Data: bytes.Repeat([]byte("<p>Hello <a href=\"https://example.org/\">there</a></p>\n"), 100)},
		mimetest.Part{Type: "application/pdf", Name: "report.pdf", Data: pdf},
		mimetest.Part{Type: "application/vnd.openxmlformats-officedocument.wordprocessingml.document", Name: "letter.docx", Data: mimetest.Docx()},
		mimetest.Part{Type: "application/zip", Name: "photos.zip", Data: mimetest.Zip(mimetest.File{Name: "a.jpg", Data: append([]byte("\xff\xd8\xff\xe0"), noise(2, 20<<10)...)})},
	)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	o := mime.Options{TempDir: b.TempDir()}
	for b.Loop() {
		r := mime.Parse(context.Background(), bytes.NewReader(msg), o)
		if len(r.Parts) != 9 {
			b.Fatalf("%d parts", len(r.Parts))
		}
	}
	b.ReportMetric(float64(len(msg))/1024, "KB/msg")
}

// BenchmarkParseBig: messages of 2 MB and 20 MB with 5 and 50
// attachments (a fifth of them ZIP archives), read from a file as the
// spool holds a big message. The peak of the live heap during the walk
// (sampled every millisecond) shows that memory is bounded, not
// proportional to the message: what the walk keeps is a part's first
// bytes and an archive copy of at most 1 MiB.
func BenchmarkParseBig(b *testing.B) {
	for _, n := range []int{5, 50} {
		b.Run(fmt.Sprintf("%dattachments", n), func(b *testing.B) {
			var parts []mimetest.Part
			for i := range n {
				data := noise(uint64(i), 300<<10)
				if i%5 == 0 {
					parts = append(parts, mimetest.Part{Type: "application/zip", Name: fmt.Sprintf("f%d.zip", i),
						Data: mimetest.Zip(mimetest.File{Name: "scan.pdf", Data: append([]byte("%PDF-1.4\n"), data...)})})
					continue
				}
				parts = append(parts, mimetest.Part{Type: "application/pdf", Name: fmt.Sprintf("f%d.pdf", i), Data: append([]byte("%PDF-1.4\n"), data...)})
			}
			path := filepath.Join(b.TempDir(), "big.eml")
			msg := mimetest.Message("big", parts...)
			if err := os.WriteFile(path, msg, 0o600); err != nil {
				b.Fatal(err)
			}
			size := len(msg)
			msg, parts = nil, nil
			runtime.GC()
			base := liveHeap()
			var peak atomic.Uint64
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				t := time.NewTicker(time.Millisecond)
				defer t.Stop()
				for {
					select {
					case <-stop:
						return
					case <-t.C:
						if h := liveHeap(); h > peak.Load() {
							peak.Store(h)
						}
					}
				}
			}()
			b.SetBytes(int64(size))
			b.ReportAllocs()
			o := mime.Options{TempDir: b.TempDir()}
			for b.Loop() {
				f, err := os.Open(path)
				if err != nil {
					b.Fatal(err)
				}
				r := mime.Parse(context.Background(), f, o)
				f.Close()
				if len(r.Attachments) != n+n/5 || r.TruncatedBy != "" {
					b.Fatalf("%d attachments, truncated %q", len(r.Attachments), r.TruncatedBy)
				}
			}
			close(stop)
			<-done
			b.ReportMetric(float64(size)/(1<<20), "MiB/msg")
			b.ReportMetric(float64(peak.Load()-min(base, peak.Load()))/(1<<20), "peak-heap-MiB")
		})
	}
}

// liveHeap is the heap's bytes in live and not yet swept objects.
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// BenchmarkParse4KB: the plain text message of bench/run.sh, which the
// default rules now walk too: what the check adds to every message.
func BenchmarkParse4KB(b *testing.B) {
	msg := []byte("From: <a@example.net>\r\nTo: <b@example.org>\r\nSubject: s\r\nMessage-ID: <1@example.net>\r\n\r\n" +
		string(bytes.Repeat([]byte("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\r\n"), 55)))
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		r := mime.Parse(context.Background(), bytes.NewReader(msg), mime.Options{})
		if len(r.Parts) != 1 {
			b.Fatalf("%d parts", len(r.Parts))
		}
	}
}
