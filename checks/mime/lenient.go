package mime

import (
	"mime"
	"strings"
)

// lenientType is the media type of a Content-Type value that
// mime.ParseMediaType refuses: what comes before the first ";".
func lenientType(v string) string {
	t, _, _ := strings.Cut(v, ";")
	return strings.ToLower(strings.TrimSpace(t))
}

// lenientParam finds the parameter key in a header value that
// mime.ParseMediaType refuses (an unquoted blank, a duplicate, a stray
// character), the way mail readers find it anyway: the first
// "key=value" or "key*=charset”value", quoted or up to the next ";".
func lenientParam(v, key string) string {
	// ASCII only, byte for byte: strings.ToLower may change the length
	// of what is not ASCII, and the indexes found in lower are used in v.
	b := []byte(v)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	lower := string(b)
	for from := 0; ; {
		i := strings.Index(lower[from:], key)
		if i < 0 {
			return ""
		}
		i += from
		from = i + len(key)
		if i > 0 && !strings.ContainsRune("; \t", rune(lower[i-1])) {
			continue
		}
		rest := strings.TrimLeft(v[i+len(key):], " \t")
		ext := strings.HasPrefix(rest, "*")
		rest = strings.TrimLeft(strings.TrimPrefix(rest, "*"), " \t")
		if !strings.HasPrefix(rest, "=") {
			continue
		}
		rest = strings.TrimLeft(rest[1:], " \t")
		var val string
		if strings.HasPrefix(rest, `"`) {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				val = rest[1:]
			} else {
				val = rest[1 : 1+end]
			}
		} else {
			val, _, _ = strings.Cut(rest, ";")
			val = strings.TrimSpace(val)
		}
		if ext {
			// RFC 2231 §4: charset'language'percent-encoded.
			if _, p, err := mime.ParseMediaType("x/y; " + key + "*=" + val); err == nil {
				return p[key]
			}
		}
		if dec, err := new(mime.WordDecoder).DecodeHeader(val); err == nil {
			return dec
		}
		return val
	}
}
