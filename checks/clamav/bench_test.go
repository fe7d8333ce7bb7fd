package clamav

import (
	"bytes"
	"context"
	"testing"

	"mxguard/internal/testclamd"
)

// BenchmarkScan scans a 4 KiB message with the test clamd over its unix
// socket: one connection, the stream, clamd's answer. Most of the time is
// clamd's; the allocations are mxguard's.
func BenchmarkScan(b *testing.B) {
	c, err := NewClient(testclamd.Shared(b).Address())
	if err != nil {
		b.Fatal(err)
	}
	msg := append([]byte("Subject: t\r\n\r\n"), bytes.Repeat([]byte("clean text, nothing to see\r\n"), 4096/28)...)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		rep, err := c.Scan(context.Background(), bytes.NewReader(msg))
		if err != nil || rep.Infected {
			b.Fatalf("%+v, %v", rep, err)
		}
	}
}
