package dmarc

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Errors that FromDomain wraps, so that a caller can classify a From problem
// with errors.Is. Check reports each of them as permerror: RFC 7489 §6.6.1
// requires exactly one RFC5322.From domain, and a message that has none, or
// several, cannot be evaluated (several From fields or addresses are a known
// way to have the MUA show one domain while DMARC judges another).
var (
	ErrNoFrom            = errors.New("dmarc: no From header field")
	ErrMultipleFrom      = errors.New("dmarc: more than one From header field")
	ErrNoAddress         = errors.New("dmarc: From holds no address")
	ErrMultipleAddresses = errors.New("dmarc: From holds more than one address")
	ErrNoDomain          = errors.New("dmarc: From address has no domain")
	ErrMalformedFrom     = errors.New("dmarc: malformed From header field")
	ErrBadDomain         = errors.New("dmarc: From domain is not a DNS domain name")
)

// fromError is a FromDomain error: a message for the operator that wraps
// one of the Err* kinds.
type fromError struct {
	kind error
	msg  string
}

func (e *fromError) Error() string { return "dmarc: " + e.msg }
func (e *fromError) Unwrap() error { return e.kind }

func fromErr(kind error, format string, args ...any) error {
	return &fromError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// FromDomain extracts the RFC5322.From domain (RFC 7489 §3.1, §6.6.1) from a
// message's header section: the raw bytes up to the blank line, CRLF line
// endings (a bare LF also ends a line, so that no line can hide inside
// another). Reading stops at the first empty line.
//
// Exactly one From header field with exactly one address that has a domain
// is required (RFC 5322 §3.6, §3.6.2); anything else is an error wrapping
// one of the Err* values above. The field is parsed with RFC 5322's
// obsolete syntax (§4) too — folding, comments, CFWS between the parts of an
// address, source routes, empty list elements, "From :" — and with RFC 6854
// groups, because attackers use exactly these to make parsers disagree. What
// does not parse is an error rather than a guess: a permerror is safer than
// judging a domain the reader never sees.
//
// The domain is returned lower-case, without a trailing dot, in ASCII
// (internationalised domains as A-labels, RFC 5891).
func FromDomain(header []byte) (domain string, err error) {
	fields, err := fromFields(header)
	if err != nil {
		return "", err
	}
	switch len(fields) {
	case 0:
		return "", ErrNoFrom
	case 1:
	default:
		// RFC 5322 §3.6: the From field occurs exactly once.
		return "", fromErr(ErrMultipleFrom, "%d From header fields", len(fields))
	}
	return parseFromValue(fields[0])
}

// fromFields returns the unfolded values of every From field in header.
func fromFields(header []byte) ([]string, error) {
	var (
		fields []string
		cur    []byte // the unfolded value of the current From field
		inFrom bool
		first  = true
	)
	flush := func() {
		if inFrom {
			fields = append(fields, string(cur))
		}
		inFrom, cur = false, nil
	}
	for len(header) > 0 {
		var line []byte
		if i := bytes.IndexByte(header, '\n'); i >= 0 {
			line, header = header[:i], header[i+1:]
		} else {
			line, header = header, nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break // end of the header section
		}
		if line[0] == ' ' || line[0] == '\t' {
			if first {
				// A continuation with nothing to continue: readers
				// disagree on what it belongs to, so refuse to guess.
				return nil, fromErr(ErrMalformedFrom, "header section starts with a folded line")
			}
			// RFC 5322 §2.2.3: unfolding removes the CRLF only.
			if inFrom {
				cur = append(cur, line...)
			}
			continue
		}
		first = false
		flush()
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			continue // not a header field; no reader takes it for From
		}
		// RFC 5322 §4.5 (obs-from): WSP may stand between the name and
		// the colon, and readers honour it, so "From :" counts.
		name := bytes.TrimRight(line[:colon], " \t")
		if strings.EqualFold(string(name), "From") {
			inFrom = true
			cur = append([]byte(nil), line[colon+1:]...)
		}
	}
	flush()
	return fields, nil
}

// token kinds of the RFC 5322 §3.2 lexical level.
const (
	tAtom    = iota // 1*atext, with RFC 6532 UTF-8
	tQuoted         // quoted-string
	tLiteral        // domain-literal
	tSpecial        // one of < > @ , ; : . and a stray ] \ or )
)

type token struct {
	kind int
	text string // the atom, or the special character; empty for quoted/literal
}

// lex splits a field value into tokens, dropping CFWS (comments nest,
// RFC 5322 §3.2.2).
func lex(s string) ([]token, error) {
	// No control character anywhere, comments and quoted strings included:
	// readers that stop at a NUL or a bare CR would see another field.
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return nil, fromErr(ErrMalformedFrom, "malformed From: control character 0x%02x", c)
		}
	}
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case c == '(':
			depth := 0
			for ; i < len(s); i++ {
				switch s[i] {
				case '\\':
					i++
				case '(':
					depth++
				case ')':
					depth--
				}
				if depth == 0 {
					break
				}
			}
			if depth != 0 || i >= len(s) {
				return nil, fromErr(ErrMalformedFrom, "malformed From: unterminated comment")
			}
			i++
		case c == '"' || c == '[':
			end := byte('"')
			kind := tQuoted
			if c == '[' {
				end, kind = ']', tLiteral
			}
			j := i + 1
			for ; j < len(s) && s[j] != end; j++ {
				if s[j] == '\\' {
					j++
				} else if s[j] == '[' && c == '[' {
					break
				}
			}
			if j >= len(s) || s[j] != end {
				return nil, fromErr(ErrMalformedFrom, "malformed From: unterminated %c", c)
			}
			toks = append(toks, token{kind: kind})
			i = j + 1
		case strings.IndexByte(`<>@,;:.]\)`, c) >= 0:
			toks = append(toks, token{kind: tSpecial, text: string(c)})
			i++
		default:
			j := i
			for j < len(s) && isAtext(s[j]) {
				j++
			}
			toks = append(toks, token{kind: tAtom, text: s[i:j]})
			i = j
		}
	}
	return toks, nil
}

// isAtext reports whether c may appear in an atom: RFC 5322 §3.2.3 atext,
// plus any byte of a UTF-8 sequence (RFC 6532 §3.2).
func isAtext(c byte) bool {
	switch {
	case c >= 0x80:
		return true
	case c <= ' ' || c == 0x7f:
		return false
	}
	return strings.IndexByte(`()<>[]:;@\,."`, c) < 0
}

// addrParser reads a mailbox-list (RFC 5322 §3.4, §4.4 obs-mbox-list) with
// RFC 6854 groups, counting addresses.
type addrParser struct {
	toks    []token
	pos     int
	domains []string // the domain of each address, "" when it had none
	err     error    // the first syntax error
}

func (p *addrParser) peek() (token, bool) {
	if p.pos < len(p.toks) {
		return p.toks[p.pos], true
	}
	return token{}, false
}

func (p *addrParser) isSpecial(s string) bool {
	t, ok := p.peek()
	return ok && t.kind == tSpecial && t.text == s
}

func (p *addrParser) fail(format string, args ...any) {
	if p.err == nil {
		p.err = fromErr(ErrMalformedFrom, "malformed From: "+format, args...)
	}
}

// parseFromValue parses an unfolded From field value.
func parseFromValue(v string) (string, error) {
	toks, err := lex(v)
	if err != nil {
		return "", err
	}
	p := &addrParser{toks: toks}
	p.list()
	switch n := len(p.domains); {
	case n > 1:
		// Reported before syntax errors: "a@b, c@d" and "<a@b> <c@d>"
		// are the multiple-address bypass, whatever else is wrong.
		return "", fromErr(ErrMultipleAddresses, "From holds %d addresses", n)
	case p.err != nil:
		return "", p.err
	case n == 0:
		return "", ErrNoAddress
	}
	d := p.domains[0]
	if d == "" {
		return "", ErrNoDomain
	}
	return normalizeFromDomain(d)
}

// list parses the whole value. It goes on after a syntax error where it
// can, so that every address is counted.
func (p *addrParser) list() {
	inGroup := false
	for p.pos < len(p.toks) {
		t := p.toks[p.pos]
		if t.kind == tSpecial {
			switch t.text {
			case ",":
				p.pos++ // obs-mbox-list allows empty elements
				continue
			case ";":
				p.pos++
				if !inGroup {
					p.fail("';' outside a group")
				}
				inGroup = false
				continue
			}
		}
		// phrase: display name, group name or local-part.
		start := p.pos
		for p.pos < len(p.toks) {
			t := p.toks[p.pos]
			if t.kind == tAtom || t.kind == tQuoted || t.kind == tSpecial && t.text == "." {
				p.pos++
				continue
			}
			break
		}
		phrase := p.toks[start:p.pos]
		t, ok := p.peek()
		switch {
		case ok && t.kind == tSpecial && t.text == "<":
			p.pos++
			p.angleAddr()
		case ok && t.kind == tSpecial && t.text == "@":
			// addr-spec; the phrase was its local-part.
			p.pos++
			d := p.domain()
			if len(phrase) == 0 {
				// "a@b@c": junk after an address, not a second one.
				p.fail("'@' without a local-part")
				break
			}
			if !validLocalPart(phrase) {
				p.fail("bad local-part")
			}
			p.domains = append(p.domains, d)
		case ok && t.kind == tSpecial && t.text == ":":
			p.pos++
			if len(phrase) == 0 {
				p.fail("group without a name")
			}
			if inGroup {
				p.fail("group within a group")
			}
			inGroup = true
			continue
		case len(phrase) > 0:
			// A bare word such as "From: alice": an address without a
			// domain when it is one, otherwise junk.
			if validLocalPart(phrase) {
				p.domains = append(p.domains, "")
			} else {
				p.fail("not an address")
			}
		default:
			p.fail("unexpected %s", describe(t))
			p.pos++
			continue
		}
		// After an address: a separator, or the end.
		if t, ok := p.peek(); ok && !(t.kind == tSpecial && (t.text == "," || t.text == ";")) {
			p.fail("missing ',' between addresses")
		}
	}
	if inGroup {
		p.fail("group without ';'")
	}
}

// angleAddr parses the rest of an angle-addr after '<', including an
// obsolete source route (RFC 5322 §4.4 obs-route), which is ignored.
func (p *addrParser) angleAddr() {
	if p.isSpecial(">") {
		p.pos++
		p.domains = append(p.domains, "") // "<>": no domain
		return
	}
	if p.isSpecial("@") || p.isSpecial(",") {
		// obs-route: 1*("," / "@" domain) ":"
		for p.pos < len(p.toks) && !p.isSpecial(":") && !p.isSpecial(">") {
			p.pos++
		}
		if !p.isSpecial(":") {
			p.fail("bad source route")
		} else {
			p.pos++
		}
	}
	start := p.pos
	for p.pos < len(p.toks) {
		t := p.toks[p.pos]
		if t.kind == tAtom || t.kind == tQuoted || t.kind == tSpecial && t.text == "." {
			p.pos++
			continue
		}
		break
	}
	local := p.toks[start:p.pos]
	domain := ""
	if p.isSpecial("@") {
		p.pos++
		if !validLocalPart(local) {
			p.fail("bad local-part")
		}
		domain = p.domain()
	} else if !validLocalPart(local) {
		p.fail("bad address in <>")
	}
	p.domains = append(p.domains, domain)
	if !p.isSpecial(">") {
		p.fail("missing '>'")
		// Skip to the '>' so that what follows is still counted.
		for p.pos < len(p.toks) && !p.isSpecial(">") {
			p.pos++
		}
	}
	if p.pos < len(p.toks) {
		p.pos++
	}
}

// domain parses a domain (RFC 5322 §3.4.1, §4.4 obs-domain) after '@'. It
// returns the atoms joined with dots; a domain-literal is an error, since
// DMARC needs a DNS name.
func (p *addrParser) domain() string {
	var b strings.Builder
	wantAtom := true
	for p.pos < len(p.toks) {
		t := p.toks[p.pos]
		switch {
		case t.kind == tLiteral:
			p.fail("domain literal")
			p.pos++
			return ""
		case t.kind == tAtom && wantAtom:
			b.WriteString(t.text)
			wantAtom = false
		case t.kind == tSpecial && t.text == "." && !wantAtom:
			b.WriteByte('.')
			wantAtom = true
		default:
			if wantAtom && (b.Len() == 0 || !isEnd(t)) {
				p.fail("bad domain")
			}
			return b.String()
		}
		p.pos++
	}
	if wantAtom && b.Len() == 0 {
		p.fail("bad domain")
	}
	// A trailing dot is DNS's absolute form of the same name;
	// normalizeFromDomain removes it.
	return b.String()
}

// validLocalPart reports whether toks form word *("." word), which also
// covers dot-atom and obs-local-part.
func validLocalPart(toks []token) bool {
	if len(toks) == 0 {
		return false
	}
	for i, t := range toks {
		isWord := t.kind == tAtom || t.kind == tQuoted
		if isWord != (i%2 == 0) {
			return false
		}
	}
	return len(toks)%2 == 1
}

// describe names a token for an error message.
func describe(t token) string {
	switch t.kind {
	case tQuoted:
		return "quoted-string"
	case tLiteral:
		return "domain literal"
	}
	return fmt.Sprintf("%q", t.text)
}

// isEnd reports whether t ends an address: a list separator or '>'.
func isEnd(t token) bool {
	return t.kind == tSpecial && (t.text == "," || t.text == ";" || t.text == ">")
}
