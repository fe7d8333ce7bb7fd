package proxy

import (
	"strings"
	"testing"
)

// BenchmarkSessionCommands is the command path of a session on loopback:
// MAIL, RCPT and RSET pipelined, each decided, answered and written (the
// rules at MAIL and RCPT with no checks to run), and the three replies
// read by the client.
func BenchmarkSessionCommands(b *testing.B) {
	be := startBackend(b, nil)
	px := startProxy(b, be.addr, func(o *Options, _ *BackendOptions) { o.MaxJunkCommands = 1 << 30 })
	d := dial(b, px.addr)
	d.expect("", "220 ")
	d.expect("EHLO client.test", "250 ")
	const group = "MAIL FROM:<a@sender.test>\r\nRCPT TO:<user@example.org>\r\nRSET\r\n"
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d.send(group)
		for _, want := range []string{"250 2.1.0 ", "250 2.1.5 ", "250 2.0.0 "} {
			if got := d.reply(); !strings.HasPrefix(got, want) {
				b.Fatalf("got %q, want %q", got, want)
			}
		}
	}
}
