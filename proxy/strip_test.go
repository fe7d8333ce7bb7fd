package proxy

import (
	"bytes"
	"strings"
	"testing"
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
	var out bytes.Buffer
	if err := stripForged(&out, strings.NewReader(in), "mx.example.org"); err != nil {
		t.Fatal(err)
	}
	if out.String() != want {
		t.Fatalf("got\n%q\nwant\n%q", out.String(), want)
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
		var out bytes.Buffer
		if err := stripForged(&out, strings.NewReader(in), "mx.example.org"); err != nil {
			t.Fatal(err)
		}
		if out.Len() > len(in) {
			t.Fatalf("output grew: %q → %q", in, out.String())
		}
		head, _, _ := strings.Cut(out.String(), "\r\n\r\n")
		for _, fld := range splitFields(head) {
			if forged([]byte(fld), "mx.example.org") && len(fld) < 32<<10 {
				t.Fatalf("forged field survived: %q in %q", fld, out.String())
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
