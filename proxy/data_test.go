package proxy

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"

	"mxguard/policy"
)

func scanData(t testing.TB, in string) (string, policy.Protocol, string, error) {
	var out bytes.Buffer
	d := newDataScanner(&out, 0, true)
	r := bufio.NewReaderSize(strings.NewReader(in), 16)
	err := d.readData(bufSource{r})
	rest, _ := io.ReadAll(r)
	return out.String(), d.facts, string(rest), err
}

func TestDataScanner(t *testing.T) {
	cases := []struct {
		name, in, out, rest string
		facts               policy.Protocol
	}{
		{name: "plain", in: "a\r\nb\r\n.\r\nNEXT", out: "a\r\nb\r\n", rest: "NEXT"},
		{name: "empty", in: ".\r\n", out: ""},
		{name: "unstuff", in: "..x\r\n..\r\n.\r\n", out: ".x\r\n.\r\n"},
		{name: "bare LF", in: "a\nb\r\n.\r\n", out: "a\r\nb\r\n", facts: policy.Protocol{BareLF: true}},
		{name: "bare CR", in: "a\rb\r\n.\r\n", out: "a\r\nb\r\n", facts: policy.Protocol{BareCR: true}},
		{name: "LF.LF", in: "a\n.\nb\r\n.\r\n", out: "a\r\n.\r\nb\r\n", facts: policy.Protocol{BareLF: true, BadTerminator: true}},
		{name: "CRLF.LF", in: "a\r\n.\nb\r\n.\r\n", out: "a\r\n\r\nb\r\n", facts: policy.Protocol{BareLF: true, BadTerminator: true}},
		{name: "LF.CRLF", in: "a\n.\r\nb\r\n.\r\n", out: "a\r\n.\r\nb\r\n", facts: policy.Protocol{BareLF: true, BadTerminator: true}},
		{name: "CR.CR", in: "a\r.\rb\r\n.\r\n", out: "a\r\n.\r\nb\r\n", facts: policy.Protocol{BareCR: true, BadTerminator: true}},
		{name: "CRLF.CRCRLF", in: "a\r\n.\r\r\n.\r\n", out: "a\r\n\r\n\r\n", facts: policy.Protocol{BareCR: true, BadTerminator: true}},
		{name: "NUL", in: "a\x00b\r\n.\r\n", out: "a\x00b\r\n", facts: policy.Protocol{NUL: true}},
		{name: "long line", in: strings.Repeat("x", 999) + "\r\n.\r\n", out: strings.Repeat("x", 999) + "\r\n", facts: policy.Protocol{LongLine: true}},
		{name: "998 is fine", in: strings.Repeat("x", 998) + "\r\n.\r\n", out: strings.Repeat("x", 998) + "\r\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, facts, rest, err := scanData(t, c.in)
			if err != nil {
				t.Fatal(err)
			}
			if out != c.out || facts != c.facts || rest != c.rest {
				t.Errorf("got out=%q facts=%+v rest=%q\nwant out=%q facts=%+v rest=%q", out, facts, rest, c.out, c.facts, c.rest)
			}
		})
	}
}

func TestDataScannerSizeLimit(t *testing.T) {
	var out bytes.Buffer
	d := newDataScanner(&out, 10, true)
	err := d.readData(bufSource{bufio.NewReader(strings.NewReader("0123456789abc\r\n.\r\nNEXT"))})
	if err != nil || !d.tooBig() || out.Len() != 0 || d.size != 15 {
		t.Fatalf("err=%v tooBig=%v out=%d size=%d", err, d.tooBig(), out.Len(), d.size)
	}
}

// FuzzDataScanner checks the invariants that keep the backend safe: the
// output never holds a bare CR or LF, the scanner never reads past the real
// end of data, and clean input comes back exactly (dot-stuffing undone).
func FuzzDataScanner(f *testing.F) {
	for _, s := range []string{"a\r\n.\r\n", "a\n.\nb\r\n.\r\n", "..\r\n.\r\n", "\r.\r\r\n.\r\n", "x\x00\r\n.\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, facts, rest, err := scanData(t, string(in))
		for i := 0; i < len(out); i++ {
			if out[i] == '\r' && (i+1 == len(out) || out[i+1] != '\n') || out[i] == '\n' && (i == 0 || out[i-1] != '\r') {
				t.Fatalf("bare line ending in output %q", out)
			}
		}
		if err != nil {
			return // no terminator in the input
		}
		end := len(in) - len(rest)
		if !bytes.HasSuffix(in[:end], []byte(".\r\n")) {
			t.Fatalf("stopped at %d, not after a terminator: %q", end, in)
		}
		if !facts.Ambiguous() {
			// RFC 5321 §4.5.2: the receiver drops the first dot of a line.
			lines := strings.Split(string(in[:end-3]), "\r\n")
			for i, l := range lines {
				lines[i] = strings.TrimPrefix(l, ".")
			}
			if want := strings.Join(lines, "\r\n"); out != want {
				t.Fatalf("clean input not reproduced: want %q out %q", want, out)
			}
		}
	})
}
