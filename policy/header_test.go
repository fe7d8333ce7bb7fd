package policy

import (
	"io"
	"strings"
	"testing"
)

func TestHeaderSection(t *testing.T) {
	for _, c := range []struct{ msg, want string }{
		{"From: a\r\nTo: b\r\n\r\nbody\r\n", "From: a\r\nTo: b\r\n"},
		{"From: a\r\n folded\r\n\r\n\r\nbody", "From: a\r\n folded\r\n"},
		{"\r\nbody only\r\n", ""},
		{"From: a\nTo: b\n\nbody\n", "From: a\nTo: b\n"},
		{"From: a\r\n\r\r\nbody", "From: a\r\n"},
		{"From: a\r\nno body", "From: a\r\n"}, // not a field: the section ends
		{"From: a\r\nX: no body", "From: a\r\nX: no body"},
		{"From: a\r\n\r", "From: a\r\n"},
		{"", ""},
		{"From: a\r\n \r\nx: y\r\n\r\n", "From: a\r\n \r\nx: y\r\n"}, // a line of blanks continues
	} {
		if got := string(HeaderSection([]byte(c.msg))); got != c.want {
			t.Errorf("HeaderSection(%q) = %q, want %q", c.msg, got, c.want)
		}
	}
}

// Content with and without Head must give the same header section, and a
// header longer than MaxHeaderBytes is cut there.
func TestTransactionHeader(t *testing.T) {
	long := "From: a\r\nX: " + strings.Repeat("y", MaxHeaderBytes) + "\r\n\r\nbody"
	msgs := []string{
		"From: a@sender.test\r\nSubject: s\r\n\r\nbody\r\n",
		"From: a@sender.test\r\n",
		long,
	}
	// Header sections that end around the first part asked for, with
	// the empty line before it, across it and after it.
	for n := firstHeadBytes - 4; n <= firstHeadBytes+1; n++ {
		h := "From: a\r\nX: " + strings.Repeat("y", n-len("From: a\r\nX: \r\n")) + "\r\n"
		msgs = append(msgs, h+"\r\n"+strings.Repeat("body\r\n", 20000))
	}
	for _, msg := range msgs {
		want := string(HeaderSection([]byte(msg)))
		if len(want) > MaxHeaderBytes {
			want = want[:MaxHeaderBytes]
		}
		plain := &Transaction{Content: staticContent(msg)}
		headed := &Transaction{Content: headContent(msg)}
		if got := string(plain.Header()); got != want {
			t.Errorf("Reader path: %.60q…, want %.60q…", got, want)
		}
		if got := string(headed.Header()); got != want {
			t.Errorf("Head path: %.60q…, want %.60q…", got, want)
		}
	}
	if h := (&Transaction{}).Header(); h == nil || len(h) != 0 {
		t.Errorf("no content: %q, want empty", h)
	}
}

// A short header section of a long message is found without asking for
// more of it than the first part.
func TestTransactionHeaderAsksLittle(t *testing.T) {
	c := &countingContent{msg: "From: a\r\n\r\n" + strings.Repeat("body\r\n", 100000)}
	if got := string((&Transaction{Content: c}).Header()); got != "From: a\r\n" {
		t.Fatalf("header %q", got)
	}
	if len(c.asked) != 1 || c.asked[0] > firstHeadBytes {
		t.Fatalf("asked for %v octets, want one request of at most %d", c.asked, firstHeadBytes)
	}
}

type countingContent struct {
	msg   string
	asked []int
}

func (c *countingContent) Reader() (io.Reader, error) { return strings.NewReader(c.msg), nil }

func (c *countingContent) Head(n int) ([]byte, error) {
	c.asked = append(c.asked, n)
	return []byte(c.msg[:min(n, len(c.msg))]), nil
}

// headContent is staticContent that also hands over its first octets.
type headContent string

func (c headContent) Reader() (io.Reader, error) { return strings.NewReader(string(c)), nil }

func (c headContent) Head(n int) ([]byte, error) { return []byte(string(c)[:min(n, len(c))]), nil }
