package headers

import (
	"fmt"
	"io"
	"mime"
	"strings"
	"unicode/utf8"
)

// wordDecoder decodes RFC 2047 encoded-words. mime.WordDecoder itself knows
// utf-8, us-ascii and iso-8859-1 by those exact names; charsetReader adds
// their common aliases and windows-1252, which mislabelled "iso-8859-1" mail
// often really is. A WordDecoder holds no state, so one serves every
// goroutine.
var wordDecoder = &mime.WordDecoder{CharsetReader: charsetReader}

// charsetReader converts the content of an encoded-word to UTF-8. An
// unknown charset is an error, and decodeWords then keeps the word as
// written.
func charsetReader(charset string, input io.Reader) (io.Reader, error) {
	cs := strings.ToLower(charset)
	if i := strings.IndexByte(cs, '*'); i >= 0 {
		cs = cs[:i] // RFC 2231 §5: "charset*language"
	}
	var conv func(byte) rune
	switch cs {
	case "utf-8", "utf8":
		return input, nil
	case "us-ascii", "ascii", "ansi_x3.4-1968", "us":
		conv = func(c byte) rune {
			if c >= 0x80 {
				return utf8.RuneError
			}
			return rune(c)
		}
	case "iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "l1", "cp819":
		conv = func(c byte) rune { return rune(c) }
	case "windows-1252", "cp1252", "x-cp1252":
		conv = func(c byte) rune {
			if 0x80 <= c && c < 0xa0 {
				return cp1252[c-0x80]
			}
			return rune(c)
		}
	default:
		return nil, fmt.Errorf("headers: unknown charset %q", charset)
	}
	raw, err := io.ReadAll(input)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	for _, c := range raw {
		b.WriteRune(conv(c))
	}
	return strings.NewReader(b.String()), nil
}

// cp1252 maps windows-1252 bytes 0x80–0x9F to Unicode; the five undefined
// ones become U+FFFD.
var cp1252 = [32]rune{
	'€', '\uFFFD', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\uFFFD', 'Ž', '\uFFFD',
	'\uFFFD', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\uFFFD', 'ž', 'Ÿ',
}

// decodeWords decodes the RFC 2047 encoded-words in s. Unlike
// mime.WordDecoder.DecodeHeader, which fails the whole text on one bad word,
// it keeps a word it cannot decode (unknown charset, bad encoding) as
// written and decodes the rest. Whitespace between two decoded words is
// dropped (RFC 2047 §6.2). Words are decoded wherever they stand, quoted
// strings included: RFC 2047 §5 forbids them there, but many readers decode
// them anyway, and a spoofer relies on that. The result is valid UTF-8.
func decodeWords(s string) string {
	if !strings.Contains(s, "=?") {
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	var (
		b           strings.Builder
		pendingWS   string // whitespace after a decoded word, not yet written
		lastDecoded bool
	)
	for s != "" {
		start, end := nextWord(s)
		if start < 0 {
			b.WriteString(pendingWS)
			b.WriteString(s)
			pendingWS = ""
			break
		}
		between := s[:start]
		word := s[start:end]
		dec, err := wordDecoder.Decode(word)
		switch {
		case err != nil:
			b.WriteString(pendingWS)
			b.WriteString(between)
			b.WriteString(word)
			lastDecoded = false
		case lastDecoded && strings.Trim(between, " \t") == "":
			// Adjacent encoded-words: the whitespace between them is
			// not part of the text.
			b.WriteString(dec)
		default:
			b.WriteString(pendingWS)
			b.WriteString(between)
			b.WriteString(dec)
			lastDecoded = true
		}
		pendingWS = ""
		s = s[end:]
		// Hold back the whitespace after a decoded word until we know
		// whether another encoded-word follows.
		if lastDecoded {
			ws := len(s) - len(strings.TrimLeft(s, " \t"))
			pendingWS, s = s[:ws], s[ws:]
		}
	}
	b.WriteString(pendingWS)
	return strings.ToValidUTF8(b.String(), "\uFFFD")
}

// maxWord bounds the length of an encoded-word that nextWord finds.
const maxWord = 998

// nextWord finds the first thing in s shaped like an encoded-word,
// "=?charset?X?text?=" (RFC 2047 §2) without whitespace, and returns its
// bounds, or -1, -1.
func nextWord(s string) (int, int) {
	off := 0
	for {
		i := strings.Index(s[off:], "=?")
		if i < 0 {
			return -1, -1
		}
		start := off + i
		// An encoded-word holds no whitespace and, whatever its length
		// limit (75, RFC 2047 §2), fits in a line (998, RFC 5322
		// §2.1.1): bounding the window keeps hostile input such as
		// "=?=?=?…" linear.
		rest := s[start+2:]
		if len(rest) > maxWord {
			rest = rest[:maxWord]
		}
		if w := strings.IndexAny(rest, " \t\r\n"); w >= 0 {
			rest = rest[:w]
		}
		q := strings.IndexByte(rest, '?') // end of charset
		if q > 0 && q+2 < len(rest) && rest[q+2] == '?' {
			text := rest[q+3:]
			if e := strings.Index(text, "?="); e >= 0 {
				end := start + 2 + q + 3 + e + 2
				return start, end
			}
		}
		off = start + 2
	}
}
