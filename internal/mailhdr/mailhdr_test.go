package mailhdr

import (
	"bytes"
	"testing"
)

func TestFind(t *testing.T) {
	for _, c := range []struct {
		msg       string
		head      string // msg[:End]
		body      string // msg[Body:]
		malformed bool
	}{
		{"From: a\r\nTo: b\r\n\r\nbody\r\n", "From: a\r\nTo: b\r\n", "body\r\n", false},
		{"From: a\r\n folded\r\n\r\n\r\nbody", "From: a\r\n folded\r\n", "\r\nbody", false},
		{"\r\nbody only\r\n", "", "body only\r\n", false},
		{"From: a\nTo: b\n\nbody\n", "From: a\nTo: b\n", "body\n", false},
		{"From: a\r\n\r\r\nbody", "From: a\r\n", "body", false},
		{"From: a\r\nno body", "From: a\r\n", "no body", true},
		{"From: a\r\nX: last", "From: a\r\nX: last", "", false},
		{"From: a\r\n\r", "From: a\r\n", "", false},
		{"", "", "", false},
		{"From: a\r\n \r\nx: y\r\n\r\n", "From: a\r\n \r\nx: y\r\n", "", false}, // a line of blanks continues
		{"From : obsolete\r\n\r\nb", "From : obsolete\r\n", "b", false},
		{"From: a\r\nnot a field\r\nX: y\r\n\r\nb", "From: a\r\n", "not a field\r\nX: y\r\n\r\nb", true},
		{"From: a\r\nBad Name: v\r\n\r\nb", "From: a\r\n", "Bad Name: v\r\n\r\nb", true},
		{"From: a\r\n: v\r\n\r\nb", "From: a\r\n", ": v\r\n\r\nb", true},
		{"From: a\r\nN\xe4me: v\r\n\r\nb", "From: a\r\n", "N\xe4me: v\r\n\r\nb", true},
		{" folded first\r\nFrom: a\r\n\r\nb", "", " folded first\r\nFrom: a\r\n\r\nb", true},
		{"From: a\r\n\t\r\n\r\nb", "From: a\r\n\t\r\n", "b", false},
	} {
		s := Find([]byte(c.msg))
		if got := c.msg[:s.End]; got != c.head || c.msg[s.Body:] != c.body || s.Malformed != c.malformed {
			t.Errorf("Find(%q): head %q body %q malformed %v, want %q %q %v", c.msg, got, c.msg[s.Body:], s.Malformed, c.head, c.body, c.malformed)
		}
	}
}

// FuzzFind holds the invariants every reader relies on: the section is a
// prefix made of field and continuation lines only, the body follows the
// empty line or starts with the line that is not a field, and feeding the
// message to End in pieces finds the same split as Find.
func FuzzFind(f *testing.F) {
	for _, s := range []string{"From: a\r\n\r\nb", "X: a\r\nno\r\n", " x\r\n", "A: b\r\n c\r\n\r\r\n", ":\r\n"} {
		f.Add([]byte(s), 3)
	}
	f.Fuzz(func(t *testing.T, msg []byte, step int) {
		s := Find(msg)
		if s.End < 0 || s.End > s.Body || s.Body > len(msg) {
			t.Fatalf("split %+v out of range for %d octets", s, len(msg))
		}
		lines := bytes.SplitAfter(msg[:s.End], []byte("\n"))
		for i, l := range lines {
			text := bytes.TrimRight(l, "\r\n")
			if len(l) == 0 {
				continue
			}
			if len(text) == 0 {
				t.Fatalf("empty line %q inside the header section", l)
			}
			if !IsField(text) && !(i > 0 && (text[0] == ' ' || text[0] == '\t')) {
				t.Fatalf("line %q in the header section is neither a field nor a continuation", l)
			}
		}
		if s.Malformed != (s.Body == s.End && s.Body < len(msg)) {
			t.Fatalf("split %+v: Malformed disagrees with the offsets", s)
		}
		if !s.Malformed && s.Body > s.End && len(bytes.TrimRight(msg[s.End:s.Body], "\r\n")) != 0 {
			t.Fatalf("the separator %q is not an empty line", msg[s.End:s.Body])
		}
		// In pieces, as the prefetcher sees the message arrive.
		if step <= 0 {
			step = 1
		}
		pos := 0
		for n := 0; n <= len(msg); n += step {
			if got, ok := End(msg[:n], &pos); ok {
				if got != s {
					t.Fatalf("End on %d octets: %+v, Find: %+v", n, got, s)
				}
				return
			}
		}
	})
}
