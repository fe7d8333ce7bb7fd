package rspamd

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"testing"

	"mxguard/internal/testrspamd"
)

// BenchmarkCheck scans a message of 4 KiB and of 100 KiB with the test
// rspamd: the request (envelope headers, the message chunked), rspamd's
// parse and its JSON answer, over one kept connection. Most of the time
// is rspamd's; the allocations are mxguard's.
func BenchmarkCheck(b *testing.B) {
	c, err := NewClient(testrspamd.Shared(b).URL())
	if err != nil {
		b.Fatal(err)
	}
	env := Envelope{Client: netip.MustParseAddr("192.0.2.7"), HELO: "mail.sender.test", MailFrom: "alice@sender.test",
		Rcpts: []string{"user@example.org"}, QueueID: "BENCH.1"}
	for _, size := range []int{4 << 10, 100 << 10} {
		msg := append([]byte("From: alice@sender.test\r\nTo: user@example.org\r\nSubject: t\r\n\r\n"),
			bytes.Repeat([]byte("clean text, nothing to see\r\n"), size/28)...)
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				rep, err := c.Check(context.Background(), env, bytes.NewReader(msg))
				if err != nil || rep.Action != NoAction {
					b.Fatalf("%+v, %v", rep, err)
				}
			}
		})
	}
}
