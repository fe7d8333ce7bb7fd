package main

import (
	"fmt"
	"strings"
	"testing"
)

// TestDisplayNameSpoofKOI8R sends, through "mxguard serve" with the default
// rules, From fields whose display name is encoded in koi8-r (RFC 2047,
// both encodings) and names our domain example.org, once in Latin letters
// and once with a Cyrillic "а" in place of the Latin "a", while the
// address is elsewhere (alice@sender.test, which passes SPF and DMARC).
// The header check decodes the name (golang.org/x/text covers the IANA
// charsets) and sets headers.display_name_spoof, and the default rule
// display-name-spoof quarantines the message: it is delivered with
// X-Mxguard-Quarantine. The same charset without our domain is not a spoof.
func TestDisplayNameSpoofKOI8R(t *testing.T) {
	h := startAuth(t)
	cases := []struct {
		name, word, display string
		spoof               bool
	}{
		{"b-encoded", "=?koi8-r?b?88zV1sLBINDPxMTF0tbLySBleGFtcGxlLm9yZw==?=", "Служба поддержки example.org", true},
		{"q-encoded", "=?KOI8-R?Q?=F3=CC=D5=D6=C2=C1_=D0=CF=C4=C4=C5=D2=D6=CB=C9_example=2Eorg?=", "Служба поддержки example.org", true},
		{"cyrillic homoglyph", "=?koi8-r?b?88zV1sLBINDPxMTF0tbLySBleMFtcGxlLm9yZw==?=", "Служба поддержки ex\u0430mple.org", true},
		{"no domain", "=?koi8-r?b?88zV1sLBINDPxMTF0tbLyQ==?=", "Служба поддержки", false},
	}
	for i, c := range cases {
		id := fmt.Sprintf("<koi8-%d@sender.test>", i)
		h.send(t, "alice@sender.test", "From: "+c.word+" <alice@sender.test>\r\nTo: user@example.org\r\n"+
			"Date: Mon, 30 Nov 2026 07:00:00 +0000\r\nMessage-ID: "+id+"\r\nSubject: koi8-r\r\n\r\nbody\r\n", "250 ")
		rec := waitVerdicts(t, h.vlog, i+1)[i]
		f := rec.Facts.Headers
		if f.FromDisplay != c.display {
			t.Errorf("%s: headers.from_display %q, want %q", c.name, f.FromDisplay, c.display)
		}
		if f.DisplayNameSpoof != c.spoof {
			t.Errorf("%s: headers.display_name_spoof %v, want %v", c.name, f.DisplayNameSpoof, c.spoof)
		}
		var matched []string
		for _, m := range rec.Rules {
			matched = append(matched, m.Name)
		}
		want := "accept"
		if c.spoof {
			want = "quarantine"
		}
		if rec.Action != want || c.spoof != strings.Contains(strings.Join(matched, ","), "display-name-spoof") {
			t.Errorf("%s: action %s (rules %v), want %s", c.name, rec.Action, matched, want)
		}
		msg := storedWith(t, h, id)
		head, _, _ := strings.Cut(msg, "\r\n\r\n")
		if strings.Contains(head, "\r\nX-Mxguard-Quarantine:") != c.spoof {
			t.Errorf("%s: X-Mxguard-Quarantine in the delivered header is %v, want %v:\n%s", c.name, !c.spoof, c.spoof, head)
		}
	}
}
