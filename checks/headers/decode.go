package headers

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"strings"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/ianaindex"
)

// wordDecoder decodes RFC 2047 encoded-words. mime.WordDecoder itself knows
// utf-8, us-ascii and iso-8859-1 by those exact names; charsetReader reads
// every other charset. A WordDecoder holds no state, so one serves every
// goroutine.
var wordDecoder = &mime.WordDecoder{CharsetReader: charsetReader}

// charsetReader converts the content of an encoded-word to UTF-8. A charset
// is looked up by its IANA names and aliases first (RFC 2047 §2: the
// charset is one registered with IANA), then by the WHATWG Encoding
// Standard's labels, which are the names web mail and most MUAs accept in
// practice (utf8, cp1251, sjis, ks_c_5601-1987, and gb2312, which the IANA
// index knows but does not implement). A name neither set knows, or one
// that names a charset golang.org/x/text does not implement (UTF-7, say),
// is read as UTF-8: its ASCII shows through as in every ASCII-compatible
// charset, which is what readers that fall back (Python's email package,
// for one) show, and decodeWords turns what is not valid UTF-8 into U+FFFD.
// A spoofer cannot hide an address behind an unknown charset name.
func charsetReader(charset string, input io.Reader) (io.Reader, error) {
	cs := charset
	if i := strings.IndexByte(cs, '*'); i >= 0 {
		cs = cs[:i] // RFC 2231 §5: "charset*language"
	}
	enc := lookupCharset(cs)
	if enc == nil {
		return input, nil
	}
	// nextWord finds no word longer than maxWord, and no charset turns an
	// octet into more than one character (4 octets of UTF-8), so what one
	// word decodes to is bounded too. The limit only keeps a caller that
	// hands over more from costing more. Decoding the octets at once
	// spares the 8 KiB of buffers a transform.Reader allocates per word.
	raw, err := io.ReadAll(io.LimitReader(input, maxWord))
	if err != nil {
		return nil, fmt.Errorf("headers: reading %s text: %w", charset, err)
	}
	// The decoders replace malformed input with U+FFFD rather than fail.
	out, err := enc.NewDecoder().Bytes(raw)
	if err != nil {
		return nil, fmt.Errorf("headers: decoding %s: %w", charset, err)
	}
	return bytes.NewReader(out), nil
}

// lookupCharset returns the encoding a charset name stands for, or nil.
func lookupCharset(name string) encoding.Encoding {
	if enc, err := ianaindex.IANA.Encoding(name); err == nil && enc != nil {
		return enc
	}
	if enc, err := htmlindex.Get(name); err == nil {
		return enc
	}
	return nil
}

// decodeWords decodes the RFC 2047 encoded-words in s. Unlike
// mime.WordDecoder.DecodeHeader, which fails the whole text on one bad word,
// it keeps a word it cannot decode (bad base64 or q encoding) as
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
