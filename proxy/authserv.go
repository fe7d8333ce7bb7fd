package proxy

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// claimsAuthservID reports whether an Authentication-Results field value
// names ours as its authserv-id, in any spelling a reader could take for
// it (RFC 8601 §5: such fields must be removed before ours is added).
//
// The id is read as RFC 8601 §2.2 has it: after CFWS, an RFC 2045 value,
// that is a token or a quoted-string. Beyond the RFC, as readers are
// lenient: case never matters, one trailing dot on either side is ignored
// (the DNS's absolute form of the same name), blanks inside a quoted id are
// ignored, Unicode spaces count as blanks (Go's strings.TrimSpace, which
// go-msgauth applies, trims them), and an internationalised id is compared
// in its A-label form.
func claimsAuthservID(value, ours string) bool {
	sc := idScanner{s: value}
	id, ok := sc.authservID()
	if ok && sameAuthservID(id, ours) {
		return true
	}
	end := len(value)
	if ok {
		end = sc.i
	}
	// RFC 2047 §5 allows encoded-words in comments, and readers such as
	// Sieve (RFC 5228 §2.7.2) decode every encoded-word of a field before
	// they look at it: what the id is then depends on the reader's
	// charsets. A field with an encoded-word in front of its first
	// result, or one whose id cannot be read at all, is removed rather
	// than guessed at.
	return strings.Contains(value[:end], "=?")
}

// sameAuthservID compares an id read from a field with ours.
func sameAuthservID(id, ours string) bool {
	id = strings.TrimSuffix(id, ".")
	ours = strings.TrimSuffix(ours, ".")
	if strings.EqualFold(id, ours) {
		return true
	}
	for i := 0; i < len(id); i++ {
		if id[i] >= utf8.RuneSelf {
			// RFC 5891 §5: a U-label and its A-label name the same host.
			a, err := idna.Lookup.ToASCII(id)
			return err == nil && strings.EqualFold(strings.TrimSuffix(a, "."), ours)
		}
	}
	return false
}

// idScanner reads the start of an Authentication-Results field value,
// folding included (the CRLF of a fold is invisible, RFC 5322 §2.2.3).
type idScanner struct {
	s string
	i int
}

// authservID reads [CFWS] authserv-id [CFWS [authres-version [CFWS]]]
// (RFC 8601 §2.2) and returns the id with its quoting undone. ok is false
// when there is no id: the value is empty, starts with something that is
// neither a token nor a quoted-string, or a comment or quoted-string never
// ends. On success the scanner stands after the version, where the first
// ";" should be.
func (sc *idScanner) authservID() (id string, ok bool) {
	if !sc.cfws() {
		return "", false
	}
	if sc.i < len(sc.s) && sc.s[sc.i] == '"' {
		id, ok = sc.quoted()
		id = strings.TrimFunc(id, unicode.IsSpace)
	} else {
		id = sc.token()
		ok = id != ""
	}
	if !ok || !sc.cfws() {
		return id, ok
	}
	// authres-version = 1*DIGIT [CFWS]
	for sc.i < len(sc.s) && '0' <= sc.s[sc.i] && sc.s[sc.i] <= '9' {
		sc.i++
	}
	return id, sc.cfws()
}

// cfws skips blanks, line breaks and comments (RFC 5322 §3.2.2, with the
// obsolete forms of §4.2: comments may hold any octet, and quoted-pairs may
// quote any octet). It reports false for a comment that never ends.
func (sc *idScanner) cfws() bool {
	for sc.i < len(sc.s) {
		c := sc.s[sc.i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			sc.i++
		case c == '(':
			if !sc.comment() {
				return false
			}
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRuneInString(sc.s[sc.i:])
			if !unicode.IsSpace(r) {
				return true
			}
			sc.i += n
		default:
			return true
		}
	}
	return true
}

// comment skips a comment, nested ones included; the scanner stands on its
// "(". A ";" inside a comment is part of it and ends nothing.
func (sc *idScanner) comment() bool {
	depth := 0
	for ; sc.i < len(sc.s); sc.i++ {
		switch sc.s[sc.i] {
		case '\\':
			sc.i++ // quoted-pair: the next octet, whatever it is
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				sc.i++
				return true
			}
		}
	}
	return false
}

// quoted reads a quoted-string (RFC 5322 §3.2.4) and returns its content;
// the scanner stands on its opening quote.
func (sc *idScanner) quoted() (string, bool) {
	var b strings.Builder
	for sc.i++; sc.i < len(sc.s); sc.i++ {
		switch c := sc.s[sc.i]; c {
		case '\\':
			if sc.i+1 < len(sc.s) {
				sc.i++
				b.WriteByte(sc.s[sc.i])
			}
		case '"':
			sc.i++
			return b.String(), true
		case '\r', '\n':
			// The CRLF of a fold is not part of the content.
		default:
			b.WriteByte(c)
		}
	}
	return "", false
}

// token reads an RFC 2045 token: printable ASCII but tspecials, and, as
// RFC 6532 §3.2 allows UTF-8 where ASCII text is, non-ASCII characters
// other than spaces.
func (sc *idScanner) token() string {
	start := sc.i
	for sc.i < len(sc.s) {
		c := sc.s[sc.i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(sc.s[sc.i:])
			if unicode.IsSpace(r) {
				break
			}
			sc.i += n
			continue
		}
		if c <= ' ' || c == 0x7f || strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0 {
			break
		}
		sc.i++
	}
	return sc.s[start:sc.i]
}
