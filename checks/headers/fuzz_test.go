package headers

import (
	"net/mail"
	"reflect"
	"slices"
	"testing"
	"unicode/utf8"
)

// FuzzCheck checks that Check never panics and that its counts agree with
// each other: non-negative, Duplicates sorted, unique and consistent with the
// counts, TooBig exactly when a limit is passed, work bounded by 2*MaxBytes,
// and the same input giving the same Result. Seeds beyond these live in
// testdata/fuzz/FuzzCheck.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		"From: Alice <alice@example.org>\r\nDate: Tue, 1 Jul 2025 09:59:58 +0200\r\nSubject: hi\r\nMessage-ID: <a@b>\r\n\r\n",
		"From: \"ceo@bank.test\" <x@evil.test>\r\n\r\n",
		"From: =?utf-8?q?ceo=40bank=2Etest?= <x@evil.test>\r\n\r\n",
		"From: \"ceo＠bank.test\" <x@evil.test>\r\n\r\n",
		"From: Example.org Support <x@evil.test>\r\nFrom : y@z.test\r\n\r\n",
		"From: Team: a@b.test, c@d.test;\r\nTo: a\r\nto: b\r\n\r\n",
		"From: x@evil.test (ceo@bank.test)\r\n\r\n",
		"From: <@r.test,@s.test:a@b.test>\r\n\r\n",
		" leading\r\nno colon\r\n: empty\r\nBad Name: x\r\nX: a\rb\x00\r\n\r\n",
		"Subject: =?utf-8?b?R3LDvMOfZQ==?= =?x-unknown?q?a?= =?utf-8?q?bad=ZZ?=\r\n\r\n",
		"Subject: =?=?=?=?=?=?utf-8?q??=\r\n\r\n",
		"Subject: Gr\xfc\xdfe\r\n\r\n",
		"Subject: one\r\n two\r\nDate: yesterday\r\nDate: today\r\n\r\n",
		"From: \"unterminated\r\nFrom: (unterminated\r\nFrom: <unterminated\r\n",
		"From: a@b.test\nFrom: c@d.test\n\n",
		"From: \"b\u0430nk.test\" <a@evil.test>\r\n\r\n",
		"From: =?koi8-r?b?88zV1sLBIMLF2s/QwdPOz9PUySBiwW5rLnRlc3Q=?= <a@evil.test>\r\n\r\n",
		"From: =?iso-2022-jp?q?=1B$B#c=1B(J=1B$?= =?shift_jis?q?=82?= =?x-none?q?=FF@bank.test?= <a@evil.test>\r\n\r\n",
	} {
		f.Add([]byte(s), false, uint8(0))
		f.Add([]byte(s), true, uint8(16))
	}
	f.Fuzz(func(t *testing.T, header []byte, smtputf8 bool, maxBytes uint8) {
		o := Options{
			MaxBytes:  int(maxBytes),
			MaxFields: 4,
			Domains:   []string{"example.org"},
			Protected: []string{"bank.test", "bücher.test"},
			SMTPUTF8:  smtputf8,
		}
		limit := o.MaxBytes
		if limit == 0 {
			limit = DefaultMaxBytes
		}
		r := Check(header, o)

		for name, n := range map[string]int{
			"FromCount": r.FromCount, "FromAddresses": r.FromAddresses, "DateCount": r.DateCount,
			"MessageIDCount": r.MessageIDCount, "Fields": r.Fields, "Bytes": r.Bytes,
		} {
			if n < 0 {
				t.Fatalf("%s = %d", name, n)
			}
		}
		if r.FromCount+r.DateCount+r.MessageIDCount > r.Fields {
			t.Fatalf("From %d + Date %d + Message-ID %d > Fields %d", r.FromCount, r.DateCount, r.MessageIDCount, r.Fields)
		}
		if r.Bytes > len(header) || r.Bytes > 2*limit {
			t.Fatalf("Bytes = %d, input %d, limit %d", r.Bytes, len(header), limit)
		}
		if want := r.Bytes > limit || r.Fields > o.MaxFields; r.TooBig != want {
			t.Fatalf("TooBig = %v with Bytes %d/%d, Fields %d/%d", r.TooBig, r.Bytes, limit, r.Fields, o.MaxFields)
		}
		if !slices.IsSorted(r.Duplicates) || len(slices.Compact(slices.Clone(r.Duplicates))) != len(r.Duplicates) {
			t.Fatalf("Duplicates %q not sorted and unique", r.Duplicates)
		}
		for _, d := range r.Duplicates {
			if !slices.Contains(slices.Collect(mapValues(onceFields)), d) {
				t.Fatalf("Duplicates holds %q, which may occur more than once", d)
			}
		}
		for name, n := range map[string]int{"From": r.FromCount, "Date": r.DateCount, "Message-ID": r.MessageIDCount} {
			if slices.Contains(r.Duplicates, name) != (n > 1) {
				t.Fatalf("Duplicates %q disagrees with %s count %d", r.Duplicates, name, n)
			}
		}
		if r.DateValid && r.DateCount != 1 {
			t.Fatalf("DateValid with %d Dates", r.DateCount)
		}
		if len(r.Malformed) > maxMalformed {
			t.Fatalf("%d Malformed entries", len(r.Malformed))
		}
		if smtputf8 && r.EightBit {
			t.Fatal("EightBit with SMTPUTF8")
		}
		if r.DisplayNameSpoof != (r.SpoofDetail != "") {
			t.Fatalf("DisplayNameSpoof %v, SpoofDetail %q", r.DisplayNameSpoof, r.SpoofDetail)
		}
		if r.FromCount == 0 && (r.FromAddresses != 0 || r.FromDisplay != "" || r.DisplayNameSpoof) {
			t.Fatalf("no From field, but %+v", r)
		}
		for name, s := range map[string]string{"Subject": r.Subject, "FromDisplay": r.FromDisplay, "SpoofDetail": r.SpoofDetail} {
			if !utf8.ValidString(s) {
				t.Fatalf("%s %q is not valid UTF-8", name, s)
			}
		}
		if r2 := Check(header, o); !reflect.DeepEqual(r, r2) {
			t.Fatalf("two runs differ:\n%+v\n%+v", r, r2)
		}
		// Work is bounded: nothing past 2*MaxBytes is read.
		if len(header) > 2*limit {
			more := append(slices.Clone(header), "\r\nFrom: x@y.test\r\n\r\n"...)
			if r3 := Check(more, o); !reflect.DeepEqual(r, r3) {
				t.Fatalf("bytes past 2*MaxBytes changed the result:\n%+v\n%+v", r, r3)
			}
		}
	})
}

// mapValues yields the values of m.
func mapValues(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for _, v := range m {
			if !yield(v) {
				return
			}
		}
	}
}

// FuzzValidDate holds validDate to net/mail.ParseDate: the common layout
// tried first must not accept anything ParseDate refuses, nor the reverse.
func FuzzValidDate(f *testing.F) {
	for _, s := range []string{
		"Tue, 1 Jul 2025 09:59:58 +0200",
		"Tue, 01 Jul 2025 09:59:58 +0200 (CEST)",
		"1 Jul 2025 09:59 GMT",
		"Tue, 31 Feb 2025 09:59:58 +0200",
		"Tue, 1 Jul 2025 09:59:58 +9999",
		"Xyz, 1 Jul 2025 09:59:58 +0200",
		" Tue, 1 Jul 2025 09:59:58 +0200",
		"Tue, 1 Jul 2025 09:59:58 -0000\r\n",
		"Wed, 25 Nov 2026 22:15:31 +0000 (UTC)",
		"Wed, 25 Nov 2026 22:15:31 +0000 (Coordinated Universal Time)",
		"Wed, 25 Nov 2026 22:15:31 +0000 (UTC) (x)",
		"Wed, 25 Nov 2026 22:15:31 +0000 ()",
		"Wed, 25 Nov 2026 22:15:31 +0000 (a(b)",
		"Wed, 25 Nov 2026 22:15:31 +0000  (UTC)",
		"Wed, 25 Nov 2026 22:15:31 UTC (UTC)",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		_, err := mail.ParseDate(v)
		if got := validDate(v); got != (err == nil) {
			t.Fatalf("validDate(%q) = %v, but ParseDate says %v", v, got, err)
		}
	})
}
