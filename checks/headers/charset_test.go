package headers

import (
	"strings"
	"testing"
)

// TestDisplayNameSpoofCharsets holds display-name impersonation to the same
// standard whatever charset the RFC 2047 encoded-word names. Each name is
// written with characters that only a real decoder of that charset turns
// into the look-alike address or domain (Cyrillic letters, fullwidth forms),
// so passing the bytes through as ASCII would not find it. The encoded
// words were made with Python's codecs, not with the decoder under test.
func TestDisplayNameSpoofCharsets(t *testing.T) {
	opts := Options{Domains: []string{"example.org"}, Protected: []string{"bank.test"}}
	tests := []struct {
		name    string
		from    string
		spoof   bool
		display string
	}{
		{
			name:    "koi8-r Cyrillic homoglyph of a protected domain",
			from:    `From: =?koi8-r?b?88zV1sLBIMLF2s/QwdPOz9PUySBiwW5rLnRlc3Q=?= <a@evil.test>`,
			spoof:   true,
			display: "Служба безопасности b\u0430nk.test",
		},
		{
			name:    "windows-1251 address with Cyrillic letters",
			from:    `From: =?windows-1251?b?z+7k5OXw5urgIGNl7kBw4HlwYWwudGVzdA==?= <a@evil.test>`,
			spoof:   true,
			display: "Поддержка ce\u043e@p\u0430ypal.test",
		},
		{
			name:    "iso-8859-15 address",
			from:    `From: =?iso-8859-15?b?pmVmIKQgY2VvQGJhbmsudGVzdA==?= <a@evil.test>`,
			spoof:   true,
			display: "Šef € ceo@bank.test",
		},
		{
			name:    "shift_jis fullwidth address",
			from:    `From: =?shift_jis?b?jtCStyCCg4KFgo+Bl4KCgoGCjoKLgUSClIKFgpOClA==?= <a@evil.test>`,
			spoof:   true,
			display: "社長 ｃｅｏ＠ｂａｎｋ．ｔｅｓｔ",
		},
		{
			name:    "iso-2022-jp fullwidth name of our domain",
			from:    `From: =?iso-2022-jp?b?GyRCI2UjeCNhI20jcCNsI2UhJSNvI3IjZxsoQiAbJEIlNSVdITwlSBsoQg==?= <a@evil.test>`,
			spoof:   true,
			display: "ｅｘａｍｐｌｅ．ｏｒｇ サポート",
		},
		{
			name:    "charset name in upper case, q encoding",
			from:    `From: =?KOI8-R?Q?=F3=CC=D5=D6=C2=C1_b=C1nk.test?= <a@evil.test>`,
			spoof:   true,
			display: "Служба b\u0430nk.test",
		},
		{
			// gb2312 is an IANA name that ianaindex knows but does
			// not implement; the WHATWG label set maps it to GBK.
			name:    "gb2312 fullwidth address",
			from:    `From: =?gb2312?b?1tDQxCCj4qPho+6j66Ouo/Sj5aPzo/Q=?= <a@evil.test>`,
			spoof:   true,
			display: "中心 ｂａｎｋ．ｔｅｓｔ",
		},
		{
			name:    "koi8-r name that is only a name",
			from:    `From: =?koi8-r?b?6dfBziDwxdTSz9c=?= <ivan@evil.test>`,
			display: "Иван Петров",
		},
		{
			name:    "shift_jis name at the domain it names",
			from:    `From: =?shift_jis?b?goKCgYKOgouBRIKUgoWCk4KU?= <alerts@bank.test>`,
			display: "ｂａｎｋ．ｔｅｓｔ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Check(hdr(tt.from, "Subject: x", "Date: Tue, 1 Jul 2025 09:59:58 +0200"), opts)
			if got.DisplayNameSpoof != tt.spoof {
				t.Errorf("DisplayNameSpoof = %v (%q), want %v", got.DisplayNameSpoof, got.SpoofDetail, tt.spoof)
			}
			if got.FromDisplay != tt.display {
				t.Errorf("FromDisplay:\n got %q\nwant %q", got.FromDisplay, tt.display)
			}
		})
	}
}

// TestDecodeWordsCharsets pins how charsets are read: names the IANA
// registry or the WHATWG label set knows are decoded; a name neither knows
// (or one known but not implemented) is read as UTF-8, so that the ASCII in
// it shows through as in every ASCII-compatible charset, with what is not
// valid UTF-8 as U+FFFD; malformed text in a known charset becomes U+FFFD.
func TestDecodeWordsCharsets(t *testing.T) {
	tests := []struct{ in, want string }{
		{"=?koi8-r?q?=E9=D7=C1=CE?=", "Иван"},
		{"=?cp1251?q?=C8=E2=E0=ED?=", "Иван"},
		{"=?x-cp1251?q?=C8=E2=E0=ED?=", "Иван"},
		{"=?iso-8859-15?q?=A4?=", "€"},
		{"=?iso-8859-1?q?=A4?=", "¤"},
		{"=?shift_jis?q?=82=A0?=", "あ"},
		{"=?sjis?q?=82=A0?=", "あ"},
		{"=?windows-31j?q?=82=A0?=", "あ"},
		{"=?euc-kr?q?=B0=A1?=", "가"},
		{"=?ks_c_5601-1987?q?=B0=A1?=", "가"},
		{"=?big5?q?=A4=A4?=", "中"},
		{"=?utf8?q?=C3=A9?=", "é"},
		{"=?cp1252?q?=80?=", "€"},
		{"=?x-unknown?q?ceo=40bank.test?=", "ceo@bank.test"},
		{"=?x-unknown?q?=D0=B0=FF?=", "а\uFFFD"},
		{"=?utf-7?q?+AEA-?=", "+AEA-"},
		{"=?shift_jis?q?=82?=", "\uFFFD"},
		{"=?iso-2022-jp?q?=1B$B0?=", "\uFFFD"},
		{"=?koi8-r?q?=E9?= =?shift_jis?q?=82=A0?=", "Иあ"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := decodeWords(tt.in); got != tt.want {
				t.Errorf("decodeWords(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestDecodeWordsHuge shows that an encoded-word longer than a line is not
// decoded at all, whatever its charset: the text that one word makes the
// decoder read is bounded by maxWord.
func TestDecodeWordsHuge(t *testing.T) {
	for _, cs := range []string{"shift_jis", "iso-2022-jp", "koi8-r", "x-unknown"} {
		t.Run(cs, func(t *testing.T) {
			huge := "=?" + cs + "?b?" + strings.Repeat("gqA", 1<<18) + "?="
			if got := decodeWords(huge); got != huge {
				t.Errorf("a %d-octet word was decoded to %d octets", len(huge), len(got))
			}
			// At the limit it is decoded, into at most 4 octets of
			// UTF-8 per octet of text.
			text := strings.Repeat("=82=A0", (maxWord-len(cs)-6)/6)
			word := "=?" + cs + "?q?" + text + "?="
			if len(word) > maxWord+2 {
				t.Fatalf("test word is %d octets", len(word))
			}
			got := decodeWords(word)
			if got == word || len(got) > 4*len(text)/3 {
				t.Errorf("a %d-octet word decoded to %d octets: %.40q", len(word), len(got), got)
			}
		})
	}
}

// BenchmarkCheckCharsetWords measures the worst header section for the
// charset decoders: DefaultMaxBytes of one Subject field folded into lines
// that each hold one encoded-word of the longest length nextWord finds.
func BenchmarkCheckCharsetWords(b *testing.B) {
	for _, cs := range []string{"utf-8", "koi8-r", "shift_jis", "iso-2022-jp", "x-unknown"} {
		b.Run(cs, func(b *testing.B) {
			word := "=?" + cs + "?q?" + strings.Repeat("=82=A0", (maxWord-len(cs)-6)/6) + "?="
			lines := []string{"From: a@b.test", "Subject: " + word}
			for n := len(word); n+len(word)+3 < DefaultMaxBytes-64; n += len(word) + 3 {
				lines = append(lines, " "+word)
			}
			h := hdr(lines...)
			if r := Check(h, Options{}); r.TooBig || r.Subject == "" || strings.Contains(r.Subject, "=?") {
				b.Fatalf("%d octets: TooBig %v, Subject %.40q", len(h), r.TooBig, r.Subject)
			}
			b.SetBytes(int64(len(h)))
			b.ReportAllocs()
			for b.Loop() {
				Check(h, Options{})
			}
		})
	}
}
