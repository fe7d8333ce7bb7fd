package smtpreply

import (
	"bufio"
	"fmt"
	"io"
	"testing"
)

// BenchmarkWrite is one reply line written to a session's buffered
// writer: Append into a reused buffer, and, for comparison, the
// fmt.Fprintf that wrote replies before.
func BenchmarkWrite(b *testing.B) {
	r := Reply{Code: C250Completed, Enhanced: Se2Addr1DestValid5, Text: "Ok"}
	w := bufio.NewWriter(io.Discard)
	b.Run("Append", func(b *testing.B) {
		b.ReportAllocs()
		var out []byte
		for i := 0; i < b.N; i++ {
			out = r.Append(out[:0])
			_, _ = w.Write(out)
		}
	})
	b.Run("Fprintf", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			fmt.Fprintf(w, "%d %d.%d.%d %s\r\n", r.Code, r.Enhanced[0], r.Enhanced[1], r.Enhanced[2], r.Text)
		}
	})
}

// BenchmarkWithSession is the session id added to a backend's reply.
func BenchmarkWithSession(b *testing.B) {
	r := Reply{Code: C250Completed, Enhanced: Se2Other00, Text: "Ok: queued as 02F3C0A7F948"}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = r.WithSession("EMXL6WZFFJ33M")
	}
}
