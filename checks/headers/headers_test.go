package headers

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// hdr builds a header section from lines, with CRLF endings and the blank
// line.
func hdr(lines ...string) []byte {
	return []byte(strings.Join(lines, "\r\n") + "\r\n\r\n")
}

// clean is a well-formed header section; cases add or replace lines.
var clean = []string{
	"Received: from mx.example.net (mx.example.net [192.0.2.1])",
	"\tby mx.example.org; Tue, 1 Jul 2025 10:00:00 +0000",
	"From: Alice Example <alice@example.net>",
	"To: Bob <bob@example.org>",
	"Subject: Lunch tomorrow?",
	"Date: Tue, 1 Jul 2025 09:59:58 +0200",
	"Message-ID: <20250701095958.1234@example.net>",
	"MIME-Version: 1.0",
	"Content-Type: text/plain; charset=utf-8",
}

// cleanFields is the number of fields in clean, whose Received is folded.
const cleanFields = 8

// without returns clean minus the fields whose line starts with prefix.
func without(prefix string) []string {
	var out []string
	for _, l := range clean {
		if !strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

// with returns clean plus lines.
func with(lines ...string) []string {
	return append(append([]string(nil), clean...), lines...)
}

// manyFields returns a header section with n From-less filler fields.
func manyFields(n int) []byte {
	lines := with()
	for i := cleanFields; i < n; i++ {
		lines = append(lines, fmt.Sprintf("X-Filler-%d: %d", i, i))
	}
	return hdr(lines...)
}

// fields is a partial Result: field name to wanted value.
type fields map[string]any

// diff compares the named fields of got with want and describes each
// difference as "Field: got …, want …".
func diff(got Result, want fields) []string {
	var out []string
	v := reflect.ValueOf(got)
	for name, w := range want {
		f := v.FieldByName(name)
		if !f.IsValid() {
			out = append(out, "no field "+name)
			continue
		}
		g := f.Interface()
		if ws, ok := w.([]string); ok && len(ws) == 0 {
			w = []string(nil) // "none" is nil
		}
		if !reflect.DeepEqual(g, w) {
			out = append(out, fmt.Sprintf("%s: got %#v, want %#v", name, g, w))
		}
	}
	return out
}

func TestCheck(t *testing.T) {
	big := strings.Repeat("x", 70<<10)
	tests := []struct {
		name   string
		header []byte
		opts   Options
		want   fields
	}{
		{
			name:   "clean message",
			header: hdr(clean...),
			want: fields{
				"FromCount": 1, "FromAddresses": 1, "DateCount": 1, "DateValid": true,
				"MessageIDCount": 1, "Duplicates": []string{}, "Fields": 8, "TooBig": false,
				"EightBit": false, "Malformed": []string{}, "DisplayNameSpoof": false,
				"SpoofDetail": "", "FromDisplay": "Alice Example", "Subject": "Lunch tomorrow?",
			},
		},
		{
			name:   "size counts the blank line",
			header: []byte("From: a@b.test\r\n\r\nbody"),
			want:   fields{"Bytes": 18, "Fields": 1},
		},
		{
			name:   "truncated section",
			header: []byte("From: a@b.test\r\nSubject: cut he"),
			want:   fields{"Bytes": 31, "Fields": 2, "Subject": "cut he"},
		},
		{name: "missing Date", header: hdr(without("Date:")...), want: fields{"DateCount": 0, "DateValid": false}},
		{
			name:   "two Dates",
			header: hdr(with("Date: Wed, 2 Jul 2025 09:59:58 +0200")...),
			want:   fields{"DateCount": 2, "DateValid": false, "Duplicates": []string{"Date"}},
		},
		{
			name:   "invalid Date",
			header: hdr(append(without("Date:"), "Date: yesterday at noon")...),
			want:   fields{"DateCount": 1, "DateValid": false},
		},
		{
			name:   "obsolete Date with comment still valid",
			header: hdr(append(without("Date:"), "Date: 1 Jul 2025 09:59:58 GMT (UTC)")...),
			want:   fields{"DateCount": 1, "DateValid": true},
		},
		{name: "no Message-ID", header: hdr(without("Message-ID:")...), want: fields{"MessageIDCount": 0}},
		{
			name:   "duplicated Subject and To, any case",
			header: hdr(with("subject: again", "TO: carol@example.org", "X-Mailer: a", "X-Mailer: b")...),
			want:   fields{"Duplicates": []string{"Subject", "To"}, "Subject": "Lunch tomorrow?"},
		},
		{
			name:   "duplicated Message-ID and Reply-To in canonical case",
			header: hdr(with("message-id: <x@y>", "Reply-To: a@b.test", "REPLY-TO: c@d.test")...),
			want:   fields{"Duplicates": []string{"Message-ID", "Reply-To"}, "MessageIDCount": 2},
		},
		{
			name:   "two From fields, one with space before colon",
			header: hdr(with("From : Mallory <m@evil.test>")...),
			want:   fields{"FromCount": 2, "FromAddresses": 2, "Duplicates": []string{"From"}, "FromDisplay": "Alice Example"},
		},
		{
			name:   "From with two addresses",
			header: hdr(append(without("From:"), "From: a@b.test, <c@d.test>")...),
			want:   fields{"FromCount": 1, "FromAddresses": 2},
		},
		{
			name:   "From with bare address before angle address",
			header: hdr(append(without("From:"), "From: c@d.test <a@b.test>")...),
			want:   fields{"FromAddresses": 2},
		},
		{
			name:   "From group",
			header: hdr(append(without("From:"), "From: Team: a@b.test, c@d.test;")...),
			want:   fields{"FromAddresses": 2},
		},
		{
			name:   "From empty group",
			header: hdr(append(without("From:"), "From: undisclosed-recipients:;")...),
			want:   fields{"FromCount": 1, "FromAddresses": 0},
		},
		{name: "no From", header: hdr(without("From:")...), want: fields{"FromCount": 0, "FromAddresses": 0, "FromDisplay": ""}},
		{
			name:   "501 fields",
			header: manyFields(501),
			want:   fields{"Fields": 501, "TooBig": true},
		},
		{
			name:   "500 fields",
			header: manyFields(500),
			want:   fields{"Fields": 500, "TooBig": false},
		},
		{
			name:   "field limit option",
			header: hdr(clean...),
			opts:   Options{MaxFields: 5},
			want:   fields{"Fields": 8, "TooBig": true},
		},
		{
			name:   "70 KiB",
			header: hdr(with("X-Big: " + big)...),
			want:   fields{"TooBig": true, "Fields": 9},
		},
		{
			name:   "scanning stops at twice the limit",
			header: hdr(with("X-Big: "+big, "X-After: 1")...),
			opts:   Options{MaxBytes: 1000},
			want:   fields{"TooBig": true, "Bytes": 2000, "Fields": 8, "Malformed": []string{}},
		},
		{
			name:   "8-bit Subject without SMTPUTF8",
			header: hdr(append(without("Subject:"), "Subject: Grüße")...),
			want:   fields{"EightBit": true, "Subject": "Grüße"},
		},
		{
			name:   "8-bit Subject with SMTPUTF8",
			header: hdr(append(without("Subject:"), "Subject: Grüße")...),
			opts:   Options{SMTPUTF8: true},
			want:   fields{"EightBit": false, "Subject": "Grüße"},
		},
		{
			name:   "8-bit non-UTF-8 Subject is made valid UTF-8",
			header: hdr(append(without("Subject:"), "Subject: Gr\xfc\xdfe")...),
			want:   fields{"EightBit": true, "Subject": "Gr\uFFFDe"},
		},
		{
			name:   "RFC 2047 Subject",
			header: hdr(append(without("Subject:"), "Subject: =?UTF-8?B?R3LDvMOfZQ==?= aus =?iso-8859-1?q?M=FCnchen?=")...),
			want:   fields{"EightBit": false, "Subject": "Grüße aus München"},
		},
		{
			name:   "RFC 2047 adjacent words join, folded",
			header: hdr(append(without("Subject:"), "Subject: =?utf-8?q?Hello_?=", " =?utf-8?q?World?= !")...),
			want:   fields{"Subject": "Hello World !"},
		},
		{
			name:   "RFC 2047 windows-1252 and unknown charset",
			header: hdr(append(without("Subject:"), "Subject: =?windows-1252?q?=93Hi=94?= =?x-klingon?q?qapla?=")...),
			want:   fields{"Subject": "“Hi”qapla"}, // an unknown charset is read as UTF-8
		},
		{
			name:   "RFC 2047 bad base64 kept",
			header: hdr(append(without("Subject:"), "Subject: =?utf-8?b?!!!?= ok")...),
			want:   fields{"Subject": "=?utf-8?b?!!!?= ok"},
		},
		{
			name:   "folded header values",
			header: hdr("From: Alice", "\tExample", "  <alice@example.net>", "Subject: one", " two", "Date: Tue, 1 Jul", " 2025 09:59:58 +0200"),
			want: fields{
				"Fields": 3, "FromDisplay": "Alice Example", "FromAddresses": 1,
				"Subject": "one two", "DateValid": true, "Malformed": []string{},
			},
		},
		{
			name:   "malformed lines",
			header: hdr("  leading continuation", "From: a@b.test", "this line has no colon", ": empty name", "Bad Name: x", "Subject: a\rb", "X-Nul: \x00"),
			want: fields{
				"Fields": 3,
				"Malformed": []string{
					"line 1: continuation line without a field before it",
					"line 3: no colon",
					"line 4: empty field name",
					"line 5: invalid character in field name",
					"line 6: bare CR",
					"line 7: NUL byte",
				},
			},
		},
		{
			name:   "bare LF ends a line",
			header: []byte("From: a@b.test\nFrom: c@d.test\r\n\r\n"),
			want:   fields{"FromCount": 2, "Fields": 2, "Duplicates": []string{"From"}},
		},
		{
			name:   "blank line ends the section",
			header: []byte("Subject: a\r\n\r\nSubject: b\r\nno colon\r\n"),
			want:   fields{"Fields": 1, "Duplicates": []string{}, "Malformed": []string{}, "Subject": "a"},
		},
		{
			name:   "empty input",
			header: nil,
			want:   fields{"Fields": 0, "Bytes": 0, "TooBig": false, "FromCount": 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Check(tt.header, tt.opts)
			for _, d := range diff(got, tt.want) {
				t.Error(d)
			}
		})
	}
}

// TestMalformedLimit pins that Malformed describes at most ten lines.
func TestMalformedLimit(t *testing.T) {
	var lines []string
	for range 25 {
		lines = append(lines, "junk")
	}
	got := Check(hdr(lines...), Options{})
	if len(got.Malformed) != maxMalformed {
		t.Fatalf("len(Malformed) = %d, want %d: %q", len(got.Malformed), maxMalformed, got.Malformed)
	}
	if got.Malformed[9] != "line 10: no colon" {
		t.Errorf("Malformed[9] = %q, want %q", got.Malformed[9], "line 10: no colon")
	}
}
