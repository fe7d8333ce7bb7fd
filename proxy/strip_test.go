package proxy

import (
	"bytes"
	"strings"
	"testing"

	"mxguard/internal/mailhdr"
)

func TestStripForged(t *testing.T) {
	in := "Authentication-Results: mx.example.org; dkim=pass header.d=bank.test\r\n" +
		"Received: from a\r\n" +
		"authentication-results :  (comment) MX.Example.Org (another) 1;\r\n\tspf=pass\r\n" +
		"Authentication-Results: other.test; dkim=pass\r\n" +
		"Authentication-Results: mx.example.org.evil.test; dkim=pass\r\n" +
		"X-Mxguard-Quarantine: no\r\n" +
		"Subject: hi\r\n" +
		"\r\n" +
		"Authentication-Results: mx.example.org; in the body stays\r\n"
	want := "Received: from a\r\n" +
		"Authentication-Results: other.test; dkim=pass\r\n" +
		"Authentication-Results: mx.example.org.evil.test; dkim=pass\r\n" +
		"Subject: hi\r\n" +
		"\r\n" +
		"Authentication-Results: mx.example.org; in the body stays\r\n"
	if got := strip(t, in); got != want {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
}

// strip is what the backend gets of message in: writeContent with the
// header section that mailhdr finds.
func strip(t testing.TB, in string) string {
	t.Helper()
	split := mailhdr.Find([]byte(in))
	var out bytes.Buffer
	if err := writeContent(&out, []byte(in[:split.End]), strings.NewReader(in[split.Body:]), "mx.example.org"); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// TestStripForgedPastLongAndMalformedLines: a field of 40 KiB does not end
// stripping, and a line that is not a field ends the header section for
// the backend too: it gets an empty line before it.
func TestStripForgedPastLongAndMalformedLines(t *testing.T) {
	long := "X-Long: " + strings.Repeat("y", 40<<10) + "\r\n"
	forgedAR := "Authentication-Results: mx.example.org; dkim=pass\r\n"
	for _, c := range []struct{ in, want string }{
		{long + forgedAR + "Subject: s\r\n\r\nbody\r\n", long + "Subject: s\r\n\r\nbody\r\n"},
		{"Subject: s\r\nnot a field\r\n" + forgedAR + "\r\nbody\r\n", "Subject: s\r\n\r\nnot a field\r\n" + forgedAR + "\r\nbody\r\n"},
		{" folded\r\n" + forgedAR + "\r\n", "\r\n folded\r\n" + forgedAR + "\r\n"},
		{"Subject: s\r\n" + forgedAR, "Subject: s\r\n\r\n"},
		{"Subject: no line end", "Subject: no line end\r\n\r\n"},
	} {
		if got := strip(t, c.in); got != c.want {
			t.Errorf("strip(%.80q…):\n got %.200q\nwant %.200q", c.in, got, c.want)
		}
	}
}

// FuzzStripForged: no header field claiming our authserv-id survives, and
// whatever is not a forged field comes through byte for byte.
func FuzzStripForged(f *testing.F) {
	f.Add("Authentication-Results: mx.example.org; dkim=pass\r\nSubject: x\r\n\r\nbody\r\n")
	f.Add("A: b\r\n\tc\r\nAuthentication-Results:(x)mx.example.org(y);\r\n\r\n")
	f.Add("no header\r\n\r\n")
	f.Fuzz(func(t *testing.T, in string) {
		if strings.Count(in, "\n") != strings.Count(in, "\r\n") || strings.Count(in, "\r") != strings.Count(in, "\r\n") {
			return // the spool holds canonical CRLF text only
		}
		out := strip(t, in)
		if len(out) > len(in)+4 {
			t.Fatalf("output grew by more than an empty line: %q → %q", in, out)
		}
		// Whatever reader splits the output, at the empty line or at the
		// first line that is not a field, finds no forged field in it.
		head, _, _ := strings.Cut(out, "\r\n\r\n")
		if !strings.HasPrefix(out, "\r\n") {
			head += "\r\n"
		} else {
			head = ""
		}
		if got := mailhdr.Find([]byte(out)); got.Malformed || got.End != len(head) {
			t.Fatalf("the output's header section is not the one mxguard wrote: %+v for %q", got, out)
		}
		for _, fld := range splitFields(head) {
			if forged([]byte(fld), "mx.example.org") {
				t.Fatalf("forged field survived: %q in %q", fld, out)
			}
		}
	})
}

// splitFields splits a header section into fields, continuation lines
// kept with their field.
func splitFields(head string) []string {
	var out []string
	for _, line := range strings.SplitAfter(head, "\r\n") {
		if !strings.Contains(line, ":") && !strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "\t") {
			break // the header section ends at a line that is no field
		}
		if len(out) > 0 && (strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")) {
			out[len(out)-1] += line
			continue
		}
		out = append(out, line)
	}
	return out
}
