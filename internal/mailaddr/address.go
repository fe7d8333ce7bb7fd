package mailaddr

import (
	"fmt"
	"strings"
)

// Mode says how Parse treats a field value that is not clean syntax.
type Mode int

const (
	// Strict refuses what readers might read differently: Parse returns
	// an error for any syntax error, a control character, an unterminated
	// comment, quoted-string or domain-literal, and a domain-literal
	// where a DNS name is expected. It is what DMARC needs (RFC 7489
	// §6.6.1): a permerror is safer than judging a domain that the reader
	// of the message never sees. The zero Mode is Strict.
	Strict Mode = iota
	// Lenient never fails: it reads what a mail reader would show, for
	// checks that look at what the recipient sees (display names) and
	// count what is there. Where Strict accepts a value, Lenient reads
	// the same addresses from it.
	Lenient
)

// Address is one mailbox of an address list (RFC 5322 §3.4).
type Address struct {
	// Display is the display name: the phrase before '<', quoted-strings
	// unquoted and unescaped, each run of white space and comments one
	// space. "" for an address without angle brackets. RFC 2047
	// encoded-words are left as written.
	Display string
	// Comment is the text of the comments in the address's part of the
	// list outside the angle brackets, one space between them; the old
	// "addr (Name)" form puts the name there.
	Comment string
	// Local is the local-part as written without CFWS: its atoms and
	// quoted-strings joined with dots (RFC 5322 §3.4.1).
	Local string
	// Domain is the domain as written without CFWS: its atoms joined with
	// dots, a trailing dot included, or a domain-literal with its
	// brackets (Lenient mode only). "" when the address has none.
	Domain string
	// Angle is set when the address was written in angle brackets.
	Angle bool
}

// Parse reads an unfolded field value that holds an address list
// (RFC 5322 §3.4 address-list and mailbox-list, the obsolete forms of §4.4:
// CFWS between the parts of an address, source routes, empty list elements;
// RFC 6854 groups; RFC 6532 UTF-8).
//
// It returns the addresses the value holds, counted the same way in both
// modes: each angle-addr, each addr-spec, and a bare local-part without
// '@' (an address without a domain), so that "c@d.test <a@b.test>" is two:
// no address that some reader might see goes uncounted.
//
// In Strict mode the error is a *SyntaxError for the first thing wrong.
// The addresses are returned with it, so that a caller can tell a value
// with several addresses from one that is merely malformed, except after
// an error at the lexical level (a control character, an unterminated
// comment, quoted-string or domain-literal), where none are. In Lenient
// mode the error is always nil.
func Parse(v string, mode Mode) ([]Address, error) {
	toks, cmts, err := lex(v, mode)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks, mode: mode}
	p.list()
	p.attachComments(cmts)
	if mode == Lenient {
		return p.addrs, nil
	}
	return p.addrs, p.err
}

// parser reads a token list as an address list.
type parser struct {
	toks  []token
	pos   int
	mode  Mode
	addrs []Address
	spans []span // where each address stood
	err   error  // the first syntax error
}

// span is where an address stood in the token list, for its comments.
type span struct {
	begin, end int // its tokens: toks[begin:end]
	lt, gt     int // its '<' and '>' (gt: where the angle-addr ended), or -1
}

func (p *parser) peekIs(special byte) bool {
	return p.pos < len(p.toks) && p.toks[p.pos].is(special)
}

func (p *parser) fail(format string, args ...any) {
	if p.err == nil {
		p.err = syntaxErr(format, args...)
	}
}

// list parses the whole value. It goes on after a syntax error where it
// can, so that every address is counted.
func (p *parser) list() {
	inGroup := false
	elem := 0 // where the current list element started
	for p.pos < len(p.toks) {
		t := p.toks[p.pos]
		switch {
		case t.is(','):
			p.pos++ // obs-mbox-list allows empty elements
			elem = p.pos
			continue
		case t.is(';'):
			p.pos++
			elem = p.pos
			if !inGroup {
				p.fail("';' outside a group")
			}
			inGroup = false
			continue
		}
		// phrase: display name, group name or local-part.
		start := p.pos
		p.words()
		phrase := p.toks[start:p.pos]
		switch {
		case p.peekIs('<'):
			p.pos++
			p.angleAddr(elem, start)
		case p.peekIs('@'):
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
			p.add(Address{Local: joinTokens(phrase), Domain: d}, span{begin: start, end: p.pos, lt: -1, gt: -1})
		case p.peekIs(':'):
			p.pos++
			if len(phrase) == 0 {
				p.fail("group without a name")
			}
			if inGroup {
				p.fail("group within a group")
			}
			inGroup = true
			elem = p.pos
			continue
		case len(phrase) > 0:
			// A bare word such as "From: alice": an address without a
			// domain when it is one, otherwise junk.
			if validLocalPart(phrase) {
				p.add(Address{Local: joinTokens(phrase)}, span{begin: start, end: p.pos, lt: -1, gt: -1})
			} else {
				p.fail("not an address")
			}
		default:
			p.fail("unexpected %s", describe(p.toks[p.pos]))
			p.pos++
			continue
		}
		// After an address: a separator, or the end.
		if p.pos < len(p.toks) && !p.peekIs(',') && !p.peekIs(';') {
			p.fail("missing ',' between addresses")
		}
	}
	if inGroup {
		p.fail("group without ';'")
	}
}

func (p *parser) add(a Address, s span) {
	p.addrs = append(p.addrs, a)
	p.spans = append(p.spans, s)
}

// words skips a phrase: atoms, quoted-strings and dots (RFC 5322 §4.1
// obs-phrase allows dots).
func (p *parser) words() {
	for p.pos < len(p.toks) {
		t := p.toks[p.pos]
		if t.kind != tAtom && t.kind != tQuoted && !t.is('.') {
			return
		}
		p.pos++
	}
}

// angleAddr parses the rest of an angle-addr after '<', including an
// obsolete source route (RFC 5322 §4.4 obs-route), which is ignored. The
// display name is toks[start:pos-1]. When that is empty but the list
// element, which started at elem, has something before it, that is what a
// reader shows as the name: in "ceo@bank.test <x@evil.test>" (two
// addresses without a ',', a syntax error), the first address.
func (p *parser) angleAddr(elem, start int) {
	lt := p.pos - 1
	shown := start
	if shown == lt {
		shown = elem
	}
	a := Address{Display: phraseText(p.toks[shown:lt]), Angle: true}
	if p.peekIs('>') {
		p.pos++
		p.add(a, span{begin: start, end: p.pos, lt: lt, gt: p.pos - 1}) // "<>": no domain
		return
	}
	if p.peekIs('@') || p.peekIs(',') {
		// obs-route: 1*("," / "@" domain) ":"
		for p.pos < len(p.toks) && !p.peekIs(':') && !p.peekIs('>') {
			p.pos++
		}
		if !p.peekIs(':') {
			p.fail("bad source route")
		} else {
			p.pos++
		}
	}
	local := p.pos
	p.words()
	a.Local = joinTokens(p.toks[local:p.pos])
	if p.peekIs('@') {
		p.pos++
		if !validLocalPart(p.toks[local : p.pos-1]) {
			p.fail("bad local-part")
		}
		a.Domain = p.domain()
	} else if !validLocalPart(p.toks[local:p.pos]) {
		p.fail("bad address in <>")
	}
	if !p.peekIs('>') {
		p.fail("missing '>'")
		// Skip to the '>' so that what follows is still counted.
		for p.pos < len(p.toks) && !p.peekIs('>') {
			p.pos++
		}
	}
	gt := p.pos
	if p.pos < len(p.toks) {
		p.pos++
	}
	p.add(a, span{begin: start, end: p.pos, lt: lt, gt: gt})
}

// domain parses a domain (RFC 5322 §3.4.1, §4.4 obs-domain) after '@' and
// returns it as written without CFWS. A domain-literal is an error in
// Strict mode, where a DNS name is wanted, and its text otherwise.
func (p *parser) domain() string {
	start := p.pos
	wantAtom := true
	for p.pos < len(p.toks) {
		t := p.toks[p.pos]
		switch {
		case t.kind == tLiteral:
			p.pos++
			if p.mode == Strict {
				p.fail("domain literal")
				return ""
			}
			return joinTokens(p.toks[start:p.pos])
		case t.kind == tAtom && wantAtom:
			wantAtom = false
		case t.is('.') && !wantAtom:
			wantAtom = true
		default:
			if wantAtom && (p.pos == start || !isEnd(t)) {
				p.fail("bad domain")
			}
			return joinTokens(p.toks[start:p.pos])
		}
		p.pos++
	}
	if wantAtom && p.pos == start {
		p.fail("bad domain")
	}
	// A trailing dot is DNS's absolute form of the same name; callers
	// normalise it away (NormalizeDomain, DNSName).
	return joinTokens(p.toks[start:p.pos])
}

// validLocalPart reports whether toks form word *("." word): dot-atom,
// quoted-string, or the obsolete local-part of RFC 5322 §4.4, each word a
// local-part on its own (ValidLocalPart).
func validLocalPart(toks []token) bool {
	if len(toks)%2 == 0 {
		return false
	}
	for i, t := range toks {
		if i%2 == 1 {
			if !t.is('.') {
				return false
			}
			continue
		}
		if t.kind != tAtom && t.kind != tQuoted || !ValidLocalPart(t.text) {
			return false
		}
	}
	return true
}

// joinTokens concatenates the text of toks, dropping the CFWS between them.
func joinTokens(toks []token) string {
	switch len(toks) {
	case 0:
		return ""
	case 1:
		return toks[0].text
	}
	n := 0
	for _, t := range toks {
		n += len(t.text)
	}
	var b strings.Builder
	b.Grow(n)
	for _, t := range toks {
		b.WriteString(t.text)
	}
	return b.String()
}

// phraseText is a display name as a reader shows it: quoted-strings
// unquoted and unescaped, each run of white space, comments included, one
// space, and none at the ends.
func phraseText(toks []token) string {
	if len(toks) == 1 && toks[0].kind == tAtom {
		return toks[0].text
	}
	var b strings.Builder
	for i, t := range toks {
		if i > 0 && t.space {
			b.WriteByte(' ')
		}
		if t.kind == tQuoted {
			writeUnquoted(&b, t.text)
		} else {
			b.WriteString(t.text)
		}
	}
	return collapseWSP(b.String())
}

// writeUnquoted writes the content of a quoted-string, its quoted-pairs
// unescaped. An unterminated one (Lenient mode) has no closing quote.
func writeUnquoted(b *strings.Builder, q string) {
	for i := 1; i < len(q); i++ {
		switch q[i] {
		case '"':
			return
		case '\\':
			if i+1 < len(q) {
				i++
			}
		}
		b.WriteByte(q[i])
	}
}

// attachComments gives each address the comments of its part of the list
// outside its angle brackets: a comment belongs to the address whose token
// stands before it ("a@b (Name)"), or else to the one whose token follows
// it ("(Name) a@b"). Comments and addresses are both in order, so one pass
// over each does.
func (p *parser) attachComments(cmts []comment) {
	ai := 0
	for _, c := range cmts {
		prev := c.at - 1
		for ai < len(p.spans) && p.spans[ai].end <= prev {
			ai++
		}
		if ai == len(p.spans) {
			return
		}
		s := p.spans[ai]
		if !(s.begin <= prev || s.begin <= c.at && c.at < s.end) {
			continue // between addresses: before a group name, say
		}
		if s.lt >= 0 && s.lt < c.at && c.at <= s.gt {
			continue // inside the angle brackets
		}
		a := &p.addrs[ai]
		text := collapseWSP(c.text)
		switch {
		case text == "":
		case a.Comment == "":
			a.Comment = text
		default:
			a.Comment += " " + text
		}
	}
}

// collapseWSP turns each run of spaces and tabs into one space and trims
// the ends.
func collapseWSP(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if s[i] == '\t' || s[i] == ' ' && (i == 0 || i == len(s)-1 || s[i+1] == ' ' || s[i+1] == '\t') {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' }), " ")
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
	return t.is(',') || t.is(';') || t.is('>')
}
