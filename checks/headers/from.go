package headers

import (
	"strings"
)

// mailbox is one address of a From field as a reader would show it.
type mailbox struct {
	display string // the display name, RFC 2047 decoded; for a bare addr-spec, its comments
	addr    string // the address: inside <>, or the bare addr-spec; CFWS removed
}

// parseMailboxes reads a From value (RFC 5322 §3.6.2, §3.4 mailbox-list,
// with the obsolete forms of §4.4 and RFC 6854 groups) leniently: it never
// fails, since it is looking for what a reader might show, not deciding
// whether the field is valid — dmarc.FromDomain does that. It returns the
// mailboxes and how many addresses the value holds, counted as the DMARC
// parser counts them: each angle-addr, each bare addr-spec (so that
// `c@d.test <a@b.test>` is two), and a bare word without '@' (an address
// without a domain).
func parseMailboxes(v string) ([]mailbox, int) {
	var (
		boxes   []mailbox
		count   int
		phrase  strings.Builder // text outside <>, quotes removed, comments dropped
		comment strings.Builder // the text of the comments
		angle   string          // the first angle-addr's content
		angles  int             // angle-addrs in this element
		bareAt  bool            // an '@' outside <>, quotes and comments: a bare addr-spec
	)
	end := func() {
		p := collapseWSP(phrase.String())
		n := angles
		if bareAt {
			n++
		}
		if n == 0 && p != "" {
			n = 1 // "From: alice": an address without a domain
		}
		if n > 0 {
			b := mailbox{addr: angle}
			if angles == 0 {
				// A bare addr-spec: the phrase is the address, and
				// the old "addr (Name)" form puts the name in a
				// comment (RFC 5322 §3.4, obsolete practice).
				b.addr = strings.ReplaceAll(p, " ", "")
				b.display = decodeWords(collapseWSP(comment.String()))
			} else {
				b.display = decodeWords(p)
				if b.display == "" {
					b.display = decodeWords(collapseWSP(comment.String()))
				}
			}
			boxes = append(boxes, b)
			count += n
		}
		phrase.Reset()
		comment.Reset()
		angle, angles, bareAt = "", 0, false
	}
	for i := 0; i < len(v); {
		c := v[i]
		switch c {
		case '"':
			// RFC 5322 §3.2.4 quoted-string: the content, unescaped, is
			// display text. An unterminated one runs to the end.
			i++
			for i < len(v) && v[i] != '"' {
				if v[i] == '\\' && i+1 < len(v) {
					i++
				}
				phrase.WriteByte(v[i])
				i++
			}
			i++
		case '(':
			// RFC 5322 §3.2.2: comments nest.
			var text string
			text, i = readComment(v, i)
			comment.WriteString(text)
			comment.WriteByte(' ')
			phrase.WriteByte(' ')
		case '<':
			j := i + 1
			var a strings.Builder
			for j < len(v) && v[j] != '>' {
				switch v[j] {
				case '(':
					_, j = readComment(v, j)
				case '"':
					// Keep a quoted local-part as written.
					k := j + 1
					for k < len(v) && v[k] != '"' {
						if v[k] == '\\' {
							k++
						}
						k++
					}
					k = min(k+1, len(v))
					a.WriteString(v[j:k])
					j = k
				case ' ', '\t':
					j++
				default:
					a.WriteByte(v[j])
					j++
				}
			}
			if angles == 0 {
				angle = a.String()
			}
			angles++
			phrase.WriteByte(' ')
			i = j + 1
		case ',', ';':
			end()
			i++
		case ':':
			// A group name (RFC 5322 §3.4 group): not a display name.
			phrase.Reset()
			comment.Reset()
			i++
		default:
			if c == '@' {
				bareAt = true
			}
			phrase.WriteByte(c)
			i++
		}
	}
	end()
	return boxes, count
}

// readComment reads the comment that starts at v[i] == '(' and returns its
// text (nested parentheses kept, quoted-pairs unescaped) and the index after
// it. An unterminated comment runs to the end.
func readComment(v string, i int) (string, int) {
	var b strings.Builder
	depth := 0
	for ; i < len(v); i++ {
		switch v[i] {
		case '\\':
			if i+1 < len(v) {
				i++
				b.WriteByte(v[i])
			}
			continue
		case '(':
			depth++
			if depth == 1 {
				continue
			}
		case ')':
			depth--
			if depth == 0 {
				return b.String(), i + 1
			}
		}
		b.WriteByte(v[i])
	}
	return b.String(), len(v)
}

// collapseWSP turns each run of spaces and tabs into one space and trims
// the ends.
func collapseWSP(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' }), " ")
}

// addrDomain returns the domain of an address as written: the part after
// the last '@', with a trailing dot and any source route removed.
func addrDomain(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		addr = addr[i+1:] // obs-route (RFC 5322 §4.4)
	}
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return strings.TrimSuffix(addr[i+1:], ".")
}
