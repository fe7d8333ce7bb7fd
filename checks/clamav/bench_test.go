package clamav

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"mxguard/internal/testclamd"
)

// BenchmarkScan scans a message of 4 KiB and of 100 KiB with the test
// clamd over its unix socket: one connection, the stream, clamd's answer.
// Most of the time is clamd's; the allocations are mxguard's.
func BenchmarkScan(b *testing.B) {
	c, err := NewClient(testclamd.Shared(b).Address())
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{4 << 10, 100 << 10} {
		msg := append([]byte("Subject: t\r\n\r\n"), bytes.Repeat([]byte("clean text, nothing to see\r\n"), size/28)...)
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				rep, err := c.Scan(context.Background(), bytes.NewReader(msg))
				if err != nil || rep.Infected {
					b.Fatalf("%+v, %v", rep, err)
				}
			}
		})
	}
}
