package proxy

import (
	"errors"
	"strings"
	"unicode/utf8"

	"mxguard/internal/mailaddr"
)

// maxPath is RFC 5321 §4.5.3.1.3's limit on a reverse or forward path,
// angle brackets included.
const maxPath = 256

var errBadPath = errors.New("bad address syntax")

// parsePath parses an RFC 5321 §4.1.2 Reverse-path or Forward-path at the
// start of s, "<>" included, and returns the mailbox without brackets and
// the rest of s (the ESMTP parameters). A source route (<@a,@b:user@c>) is
// accepted and dropped, as §4.1.1.3 asks of servers.
func parsePath(s string) (addr, rest string, err error) {
	s = strings.TrimLeft(s, " ")
	if !strings.HasPrefix(s, "<") {
		return "", "", errBadPath
	}
	end := closingBracket(s)
	if end < 0 || end+1 > maxPath {
		return "", "", errBadPath
	}
	addr, rest = s[1:end], s[end+1:]
	if rest != "" && rest[0] != ' ' {
		return "", "", errBadPath
	}
	if strings.HasPrefix(addr, "@") {
		i := strings.IndexByte(addr, ':')
		if i < 0 {
			return "", "", errBadPath
		}
		addr = addr[i+1:]
	}
	if addr != "" && !validMailbox(addr) {
		return "", "", errBadPath
	}
	return addr, strings.TrimLeft(rest, " "), nil
}

// postmasterPath reports whether s starts with the path <Postmaster>, in
// any case (RFC 5321 §4.1.1.3), and returns the parameters after it.
func postmasterPath(s string) (params string, ok bool) {
	const p = "<postmaster>"
	s = strings.TrimLeft(s, " ")
	if len(s) < len(p) || !strings.EqualFold(s[:len(p)], p) || len(s) > len(p) && s[len(p)] != ' ' {
		return "", false
	}
	return strings.TrimLeft(s[len(p):], " "), true
}

// closingBracket finds the '>' that ends the path, skipping quoted strings
// in the local part.
func closingBracket(s string) int {
	quoted := false
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case c == '>' && !quoted:
			return i
		}
	}
	return -1
}

// validMailbox checks the RFC 5321 §4.1.2 Mailbox form: a local part (dot
// string or quoted string, mailaddr.ValidLocalPart) and a domain or address
// literal. UTF-8 is allowed in both for SMTPUTF8 (RFC 6531 §3.3); control
// characters never are.
func validMailbox(m string) bool {
	if !utf8.ValidString(m) {
		// RFC 6531 §3.3: non-ASCII addresses are UTF-8.
		return false
	}
	at := strings.LastIndexByte(m, '@')
	if at <= 0 || at == len(m)-1 {
		return false
	}
	local, domain := m[:at], m[at+1:]
	if len(local) > 64 && !strings.HasPrefix(local, "\"") {
		return false
	}
	// The local-part check the header parser applies to each word
	// (RFC 5321 Dot-string or Quoted-string): one definition, so that
	// the envelope and the header never disagree on what one is.
	if !mailaddr.ValidLocalPart(local) {
		return false
	}
	if strings.HasPrefix(domain, "[") {
		if !strings.HasSuffix(domain, "]") || len(domain) < 3 {
			return false
		}
		// RFC 5321 §4.1.3 allows any printable ASCII but [ \ ] in an
		// address literal; in use they are IPv4 and IPv6 addresses, and
		// anything else (<, >, quotes) would only confuse a header or the
		// backend's parser.
		for i := 1; i < len(domain)-1; i++ {
			c := domain[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == ':' || c == '-') {
				return false
			}
		}
		return true
	}
	return validDomain(domain)
}

// validDomain accepts a dot-separated name of letters, digits, hyphens and
// (for SMTPUTF8 names) non-ASCII octets.
func validDomain(d string) bool {
	d = strings.TrimSuffix(d, ".")
	if d == "" || len(d) > 255 {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c >= 0x80) {
				return false
			}
		}
	}
	return true
}

// parseParams splits ESMTP parameters (RFC 5321 §4.1.2 esmtp-param) into
// upper-cased keywords and their values.
func parseParams(s string) (map[string]string, error) {
	params := map[string]string{}
	for _, f := range strings.Fields(s) {
		k, v, eq := strings.Cut(f, "=")
		if k == "" {
			return nil, errors.New("empty parameter")
		}
		if eq && v == "" {
			// RFC 5321 §4.1.2: esmtp-value is at least one octet.
			return nil, errors.New("empty parameter value")
		}
		params[strings.ToUpper(k)] = v
	}
	return params, nil
}
