package rcpt

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseFile: parseFile never panics; it either fails with positioned
// errors only, or every entry it accepted is found again by lookup, in
// any case.
func FuzzParseFile(f *testing.F) {
	f.Add([]byte(testFile))
	f.Add([]byte("alice@example.org\r\n@example.net\r\n"))
	f.Add([]byte("bob\n<a@b.c>\n@\na@b..c\n"))
	f.Add([]byte("\"a@b\"@example.org\nmüller@bücher.example\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := parseFile("f", data)
		if err != nil {
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var fe *FileError
				if !errors.As(e, &fe) || fe.File != "f" || fe.Line < 1 {
					t.Fatalf("not a positioned error: %v", e)
				}
			}
			return
		}
		for line := range strings.SplitSeq(string(data), "\n") {
			fields := strings.Fields(line)
			if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
				continue
			}
			addr := fields[0]
			if addr[0] == '@' {
				addr = "someone" + addr
			}
			// Case-insensitivity is strings.ToLower's; ASCII is where it
			// must hold exactly both ways.
			upper := strings.Map(func(r rune) rune {
				if r >= 'a' && r <= 'z' {
					return r - 'a' + 'A'
				}
				return r
			}, addr)
			for _, a := range []string{addr, upper, strings.ToLower(addr)} {
				if _, ok := s.lookup(a); !ok {
					t.Fatalf("line %q accepted, but lookup(%q) fails", line, a)
				}
			}
		}
	})
}
