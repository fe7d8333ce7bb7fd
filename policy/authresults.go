package policy

import (
	"strings"

	"mxguard/internal/mailaddr"
)

// Our Authentication-Results field (RFC 8601) is trusted by every reader
// behind us, and most of what it reports comes from the sender: the MAIL
// FROM address, the HELO name, the d= and i= tags of DKIM signatures. It is
// written here, not by a general formatter, so that a value can never be
// read as structure, by a full RFC 8601 parser (python3-authres) or by the
// simpler ones in use: go-msgauth splits the field at every ";" and a
// result at every blank, python3-authres reads ASCII only and reads a
// quoted value only as the last of its result, and a Sieve :contains test
// reads lines. So:
//
//   - every value is printable ASCII without ";" or blanks: a domain name
//     is written as A-labels (RFC 8616 §4 allows either form), and any other
//     character of a value that is not a domain name becomes "?";
//   - a value is written as it is when it is an RFC 2045 token or an
//     address ([dot-atom] "@" token), which RFC 8601 §2.3 pvalue allows,
//     and as a quoted-string otherwise, with "\" and `"` quoted (RFC 5322
//     §3.2.4);
//   - a result holds at most one quoted value, and it comes last;
//   - the field is folded only before each result, so each line holds one
//     result that we wrote.

// maxQuoted bounds a quoted value, so that a line of the field stays far
// below RFC 5322 §2.1.1's 998 octets.
const maxQuoted = 200

// resultKeywords are the result values RFC 8601 §2.7 and its registry
// define for the methods we report.
var resultKeywords = map[string]bool{"pass": true, "fail": true, "softfail": true, "neutral": true,
	"none": true, "temperror": true, "permerror": true, "policy": true}

// arResult is one resinfo of our field: method, result and properties,
// each value as readers must read it.
type arResult struct {
	method string
	result string
	props  []arProp
}

// arProp is one propspec: "ptype.property" and its value.
type arProp struct {
	name, value string
}

// authResultsHeader renders the Authentication-Results field for what the
// checks found, with our hostname as the authserv-id.
func (s *Session) authResultsHeader(tx *Transaction) (Header, bool) {
	results := authResults(tx)
	if len(results) == 0 {
		return Header{}, false
	}
	return Header{Name: "Authentication-Results", Value: formatAuthResults(s.e.hostname, results)}, true
}

// authResults lists the results of tx's SPF, DKIM and DMARC checks.
func authResults(tx *Transaction) []arResult {
	var out []arResult
	if c, ok := tx.Checks["spf"]; ok {
		r := arResult{method: "spf", result: c.Result}
		// RFC 8601 §2.7.2: the identity SPF checked.
		if tx.found.SPF.Identity == "helo" {
			r.props = addProp(r.props, "smtp.helo", domainValue(tx.found.SPF.Domain))
		} else {
			r.props = addProp(r.props, "smtp.mailfrom", mailFromValue(tx.MailFrom))
		}
		out = append(out, r)
	}
	if _, ok := tx.Checks["dkim"]; ok {
		if len(tx.found.DKIM.Signatures) == 0 {
			out = append(out, arResult{method: "dkim", result: "none"})
		}
		for _, sig := range tx.found.DKIM.Signatures {
			r := arResult{method: "dkim", result: sig.Result}
			r.props = addProp(r.props, "header.d", domainValue(sig.Domain))
			r.props = addProp(r.props, "header.i", identifierValue(sig.Identifier))
			out = append(out, r)
		}
	}
	if c, ok := tx.Checks["dmarc"]; ok {
		r := arResult{method: "dmarc", result: c.Result}
		r.props = addProp(r.props, "header.from", domainValue(tx.fromFacts.Domain))
		out = append(out, r)
	}
	return out
}

func addProp(props []arProp, name, value string) []arProp {
	if value == "" {
		return props
	}
	return append(props, arProp{name: name, value: value})
}

// domainValue is a domain name as A-labels, lower case, without a trailing
// dot; anything else (an address literal, junk from a HELO or a d= tag) in
// the safe alphabet of safeValue.
func domainValue(d string) string {
	if d == "" {
		return ""
	}
	if n, ok := mailaddr.DNSName(d); ok {
		return n
	}
	return safeValue(d)
}

// mailFromValue is the MAIL FROM address: local-part@domain when the local
// part is a dot-atom in ASCII, otherwise the domain alone (RFC 8601 §2.7.2
// allows either), so that a quoted local part never reaches the field.
func mailFromValue(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return domainValue(addr)
	}
	local, domain := addr[:at], addr[at+1:]
	d, ok := mailaddr.DNSName(domain)
	if !ok {
		return safeValue(domain)
	}
	if len(local) <= 64 && isDotAtom(local) {
		return local + "@" + d
	}
	return d
}

// identifierValue is a DKIM i= tag, [local-part] "@" domain-name (RFC 6376
// §3.5), with the local part kept only when it is a dot-atom in ASCII. An
// i= whose domain is no domain name is left out: it would be a second
// quoted value in the result (see the top of this file), and such a
// signature does not verify anyway (RFC 6376 §6.1.1).
func identifierValue(id string) string {
	at := strings.LastIndexByte(id, '@')
	if at < 0 {
		return ""
	}
	local, domain := id[:at], id[at+1:]
	d, ok := mailaddr.DNSName(domain)
	if !ok {
		return ""
	}
	if local != "" && len(local) <= 64 && isDotAtom(local) {
		return local + "@" + d
	}
	return "@" + d
}

// safeValue keeps the printable ASCII characters of s but ";", replaces
// every other character (blanks, controls, line separators, non-ASCII
// text, invalid UTF-8) with "?", and keeps at most maxQuoted characters.
func safeValue(s string) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == maxQuoted {
			break
		}
		n++
		if r > ' ' && r < 0x7f && r != ';' {
			b.WriteRune(r)
		} else {
			b.WriteByte('?')
		}
	}
	return b.String()
}

// formatAuthResults writes the field value: the authserv-id, then each
// result on a line of its own (RFC 5322 §2.2.3 folding).
func formatAuthResults(authservID string, results []arResult) string {
	var b strings.Builder
	b.WriteString(authservID)
	for _, r := range results {
		b.WriteString(";\r\n\t")
		b.WriteString(r.method)
		b.WriteByte('=')
		res := strings.ToLower(r.result)
		if !resultKeywords[res] {
			// A result we do not know claims nothing: say the check
			// could not finish.
			res = "temperror"
		}
		b.WriteString(res)
		// python3-authres reads a quoted value only as the last one of
		// its result: the bare ones go first.
		for _, quoted := range []bool{false, true} {
			for _, p := range r.props {
				if needsQuoting(p.value) != quoted {
					continue
				}
				b.WriteByte(' ')
				b.WriteString(p.name)
				b.WriteByte('=')
				writeValue(&b, p.value)
			}
		}
	}
	return b.String()
}

// writeValue writes v, which safeValue or a domain name made, as a pvalue.
func writeValue(b *strings.Builder, v string) {
	if !needsQuoting(v) {
		b.WriteString(v)
		return
	}
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		if v[i] == '"' || v[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(v[i])
	}
	b.WriteByte('"')
}

// needsQuoting reports whether v is neither an RFC 2045 token nor an
// address, [dot-atom] "@" token (RFC 8601 §2.3 pvalue).
func needsQuoting(v string) bool {
	if isToken(v) {
		return false
	}
	at := strings.IndexByte(v, '@')
	if at < 0 {
		return true
	}
	local, domain := v[:at], v[at+1:]
	return !(local == "" || isDotAtom(local)) || !isToken(domain)
}

// isToken reports whether s is an RFC 2045 token: printable ASCII but
// tspecials.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0 {
			return false
		}
	}
	return true
}

// isDotAtom reports whether s is an RFC 5322 §3.2.3 dot-atom-text in
// ASCII.
func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>[]:;@\,"`, c) >= 0 {
			return false
		}
	}
	return true
}
