package mailaddr

import "strings"

// specials are the characters that end an atom (RFC 5322 §3.2.3 specials);
// with white space and controls they are what atext is not.
const specials = `()<>[]:;@\,."`

// isAtext reports whether c may appear in an atom: RFC 5322 §3.2.3 atext,
// which RFC 5321 §4.1.2 Atom shares, plus any octet of a UTF-8 sequence
// (RFC 6532 §3.2, RFC 6531 §3.3).
func isAtext(c byte) bool {
	switch {
	case c >= 0x80:
		return true
	case c <= ' ' || c == 0x7f:
		return false
	}
	return strings.IndexByte(specials, c) < 0
}

// ValidLocalPart reports whether s is a local-part in the form the header
// and the envelope grammars share: a dot-atom (RFC 5322 §3.2.3 dot-atom-text,
// RFC 5321 §4.1.2 Dot-string) or a quoted-string (RFC 5322 §3.2.4, RFC 5321
// Quoted-string), each with RFC 6532 UTF-8. A control character is never
// part of one, quoted or escaped: readers that stop at a NUL or a CR would
// see another address. The obsolete form of RFC 5322 §4.4, words joined by
// dots, is a sequence of these, which the header parser checks one by one.
func ValidLocalPart(s string) bool {
	if s == "" {
		return false
	}
	if s[0] == '"' {
		return validQuoted(s)
	}
	atom := false // the previous octet was part of an atom
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '.' {
			if !atom {
				return false // leading dot, or two in a row
			}
			atom = false
			continue
		}
		if !isAtext(c) {
			return false
		}
		atom = true
	}
	return atom // no trailing dot
}

// validQuoted reports whether s is exactly one quoted-string: DQUOTE, then
// qtext, WSP or quoted-pairs, then DQUOTE.
func validQuoted(s string) bool {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return false
	}
	for i := 1; i < len(s)-1; i++ {
		c := s[i]
		switch {
		case c == '"':
			return false // unescaped: the string ended before the end
		case c == '\\':
			i++
			if i == len(s)-1 {
				return false // the closing quote is escaped
			}
			c = s[i]
		}
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
