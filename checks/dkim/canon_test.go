package dkim

import (
	"crypto/sha256"
	"strings"
	"testing"

	"mxguard/checks/dkim/dkimtest"
)

// canonStream runs body through bodyCanon in chunks of the given sizes
// (cycled), with a hash of the first limit octets (negative: all), and
// returns what it hashed and the canonical length it counted.
func canonStream(body string, relaxedCanon bool, chunks []int, limit int64) (string, int64) {
	var got strings.Builder
	h := &bodyHash{h: &recorder{b: &got}, limit: limit}
	c := &bodyCanon{relaxed: relaxedCanon, hashes: []*bodyHash{h}}
	for i := 0; len(body) > 0; i++ {
		n := min(len(body), max(1, chunks[i%len(chunks)]))
		c.write([]byte(body[:n]))
		body = body[n:]
	}
	c.close()
	return got.String(), c.total
}

// recorder is a hash.Hash that keeps what is written to it.
type recorder struct{ b *strings.Builder }

func (r *recorder) Write(p []byte) (int, error) { return r.b.Write(p) }
func (r *recorder) Sum(b []byte) []byte         { return append(b, r.b.String()...) }
func (r *recorder) Reset()                      { r.b.Reset() }
func (r *recorder) Size() int                   { return sha256.Size }
func (r *recorder) BlockSize() int              { return sha256.BlockSize }

// TestBodyCanon pins the streaming canonicalisation to RFC 6376 §3.4.3
// and §3.4.4, whatever the chunks the body arrives in.
func TestBodyCanon(t *testing.T) {
	for _, c := range []struct{ body, simple, relaxed string }{
		{"", "\r\n", ""},
		{"\r\n", "\r\n", ""},
		{"\r\n\r\n \t\r\n", "\r\n\r\n \t\r\n", ""},
		{"abc", "abc\r\n", "abc\r\n"},
		{"abc\r\n\r\n\r\n", "abc\r\n", "abc\r\n"},
		{" a \t b\t\r\n\tc  \r\n", " a \t b\t\r\n\tc  \r\n", " a b\r\n c\r\n"},
		{"a\r\n \r\n\t\r\nb", "a\r\n \r\n\t\r\nb\r\n", "a\r\n\r\n\r\nb\r\n"},
		// RFC 6376 §3.4.6's example, relaxed/relaxed body.
		{" C \r\nD \t E\r\n\r\n\r\n", " C \r\nD \t E\r\n", " C\r\nD E\r\n"},
		// A bare LF ends a line; a bare CR is an ordinary octet.
		{"a \nb\n\n", "a \r\nb\r\n", "a\r\nb\r\n"},
		{"a \rb\r", "a \rb\r\r\n", "a \rb\r\r\n"},
		{"a\r\r\n", "a\r\r\n", "a\r\r\n"},
	} {
		for _, chunks := range [][]int{{1 << 20}, {1}, {2, 3}, {3, 1, 4, 1, 5}} {
			if got, n := canonStream(c.body, false, chunks, -1); got != c.simple || n != int64(len(got)) {
				t.Errorf("simple %q in chunks %v: %q (%d), want %q", c.body, chunks, got, n, c.simple)
			}
			if got, n := canonStream(c.body, true, chunks, -1); got != c.relaxed || n != int64(len(got)) {
				t.Errorf("relaxed %q in chunks %v: %q (%d), want %q", c.body, chunks, got, n, c.relaxed)
			}
		}
	}
	// l=: the hash stops at the limit, the count goes on.
	if got, n := canonStream("one\r\ntwo\r\n", true, []int{3}, 5); got != "one\r\n" || n != 10 {
		t.Errorf("limit 5: hashed %q, counted %d; want %q, 10", got, n, "one\r\n")
	}
	// Many empty lines before a letter are written out, in bounded pieces.
	long := strings.Repeat("\r\n", 3*outMax) + "x"
	if got, _ := canonStream(long, true, []int{4096}, -1); got != long+"\r\n" {
		t.Errorf("%d empty lines then x: %d octets out, want %d", 3*outMax, len(got), len(long)+2)
	}
}

// FuzzBodyCanon holds the streaming canonicalisation to dkimtest's
// whole-string one (written separately, from the RFC), for bodies made of
// the octets that matter, cut into chunks anywhere, and the relaxed header
// canonicalisation likewise.
func FuzzBodyCanon(f *testing.F) {
	f.Add([]byte("a b\t\r\n\r\n  c\r"), uint8(3))
	f.Add([]byte("\r\n\r\n"), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		// Bare LF is left out: the reference reads only CRLF as a line end.
		alphabet := []string{"a", " ", "\t", "\r\n", "\r", "b"}
		var b strings.Builder
		for _, d := range data {
			b.WriteString(alphabet[int(d)%len(alphabet)])
		}
		body := b.String()
		chunks := []int{int(chunk%16) + 1, int(chunk/16) + 1}
		for _, canon := range []string{simple, relaxed} {
			want := dkimtest.CanonBody(body, canon)
			if got, n := canonStream(body, canon == relaxed, chunks, -1); got != want || n != int64(len(want)) {
				t.Fatalf("%s %q: %q (%d), want %q", canon, body, got, n, want)
			}
		}
		// Every CRLF of the body becomes a fold; white space before the
		// colon too.
		field := "X-F \t:" + strings.ReplaceAll(body, "\r\n", "\r\n ") + "\r\n"
		if got, want := string(canonHeader(nil, field, relaxed)), dkimtest.CanonHeader(field, relaxed); got != want {
			t.Fatalf("header %q: %q, want %q", field, got, want)
		}
	})
}

// TestWithoutSignature: RFC 6376 §3.7 hashes the signature field with the
// value of b= removed, white space around it included, and nothing else
// changed: not bh=, not a tag whose name ends in b, not the final CRLF.
func TestWithoutSignature(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"DKIM-Signature: v=1; bh=AB=; b=XYZ\r\n", "DKIM-Signature: v=1; bh=AB=; b=\r\n"},
		{"DKIM-Signature: b= X\r\n\tYZ ; v=1; bh=AB=\r\n", "DKIM-Signature: b=; v=1; bh=AB=\r\n"},
		{"DKIM-Signature: v=1;\r\n\t b =XYZ;\r\n", "DKIM-Signature: v=1;\r\n\t b =;\r\n"},
		{"DKIM-Signature: xb=1; z=b=2; b=XYZ\r\n", "DKIM-Signature: xb=1; z=b=2; b=\r\n"},
		{"DKIM-Signature: v=1; bh=AB=\r\n", "DKIM-Signature: v=1; bh=AB=\r\n"},
	} {
		if got := withoutSignature(c.in); got != c.want {
			t.Errorf("%q: %q, want %q", c.in, got, c.want)
		}
	}
}
