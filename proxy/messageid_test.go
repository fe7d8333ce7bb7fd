package proxy

import (
	"bytes"
	"strings"
	"testing"

	"mxguard/internal/mailhdr"
	"mxguard/policy"
)

func TestMessageID(t *testing.T) {
	for _, c := range []struct{ header, want string }{
		{"From: a\r\nMessage-ID: <x@y>\r\n", "x@y"},
		{"message-id:\r\n <folded@y>\r\nTo: b\r\n", "folded@y"},
		{"From: a\r\n", ""},
		{"Message-Id: <first@y>\r\nMessage-Id: <second@y>\r\n", "first@y"},
		{"X-Message-ID: <not@y>\r\n", ""},
		{"Message-ID: <" + strings.Repeat("a", 2000) + ">\r\n", strings.Repeat("a", 998)},
	} {
		if got := MessageID([]byte(c.header)); got != c.want {
			t.Errorf("MessageID(%.40q) = %.40q, want %.40q", c.header, got, c.want)
		}
	}
}

// Head gives the same octets whether the message stayed in memory or went
// to a spool file.
func TestMessageHead(t *testing.T) {
	content := "From: a\r\nSubject: " + strings.Repeat("s", 200) + "\r\n\r\nbody\r\n"
	for _, threshold := range []int{1 << 20, 16} {
		sp := &Spool{Dir: t.TempDir(), Threshold: threshold}
		m := sp.NewMessage()
		if _, err := m.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
		if m.Spilled() != (threshold == 16) {
			t.Fatalf("threshold %d: spilled %v", threshold, m.Spilled())
		}
		for _, n := range []int{0, 10, len(content), len(content) + 100} {
			b, err := m.Head(n)
			if err != nil {
				t.Fatal(err)
			}
			if want := content[:min(n, len(content))]; string(b) != want {
				t.Errorf("threshold %d: Head(%d) = %.30q…, want %.30q…", threshold, n, b, want)
			}
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzMessageID: the header section of any message is a prefix of it that
// holds no empty line and ends at an empty line or a line that is no field,
// and MessageID on it never panics and gives at most 998 octets on one line.
func FuzzMessageID(f *testing.F) {
	for _, s := range []string{
		"From: a\r\nMessage-ID: <x@y>\r\n\r\nbody",
		"message-id:\r\n <folded@y>\r\n\r\n",
		"\r\n",
		"Message-ID: <a>\nX: y\n\n",
		"X: a\r\n\r\r\nMessage-ID: <hidden@y>\r\n",
		"Message-ID:<<>>\r\n \r\n\t\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		h := policy.HeaderSection(msg)
		if !bytes.HasPrefix(msg, h) {
			t.Fatalf("header section %q is not a prefix of the message", h)
		}
		if len(h) < len(msg) {
			rest := msg[len(h):]
			line := rest
			if i := bytes.IndexByte(rest, '\n'); i >= 0 {
				line = rest[:i+1]
			}
			if text := bytes.TrimRight(line, "\r\n"); len(text) != 0 && mailhdr.IsField(text) {
				t.Fatalf("the header section ends before %q, which is a field", line)
			}
		}
		for _, line := range bytes.SplitAfter(h, []byte("\n")) {
			if len(line) > 0 && len(bytes.TrimRight(line, "\r\n")) == 0 {
				t.Fatalf("empty line %q inside the header section %q", line, h)
			}
		}
		id := MessageID(h)
		if len(id) > 998 || strings.Contains(id, "\n") {
			t.Fatalf("MessageID gave %q", id)
		}
	})
}
