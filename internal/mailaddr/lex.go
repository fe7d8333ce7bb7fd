package mailaddr

import (
	"fmt"
	"strings"
)

// SyntaxError is what Parse returns in Strict mode for a field value that
// is not an address list. Msg says what is wrong, for people.
type SyntaxError struct {
	Msg string
}

func (e *SyntaxError) Error() string { return "mailaddr: " + e.Msg }

func syntaxErr(format string, args ...any) *SyntaxError {
	return &SyntaxError{Msg: fmt.Sprintf(format, args...)}
}

// token kinds of the RFC 5322 §3.2 lexical level.
const (
	tAtom    = iota // 1*atext, with RFC 6532 UTF-8
	tQuoted         // quoted-string
	tLiteral        // domain-literal
	tSpecial        // one of < > @ , ; : . and a stray ] \ or )
)

type token struct {
	kind  uint8
	space bool   // CFWS (white space or a comment) stands before it
	text  string // as written: the atom, the special, the quoted-string or domain-literal with its delimiters
}

func (t token) is(special byte) bool {
	return t.kind == tSpecial && t.text[0] == special
}

// comment is the text of a comment (RFC 5322 §3.2.2) and where it stood.
type comment struct {
	at   int    // the index of the token it stands before
	text string // its content: nested parentheses kept, quoted-pairs unescaped
}

// lex splits a field value into tokens and comments. In Strict mode a
// control character anywhere, comments and quoted strings included, and an
// unterminated comment, quoted-string or domain-literal are errors: readers
// that stop at a NUL or a bare CR would see another field, and readers
// disagree on where the unterminated ones end. In Lenient mode control
// characters are part of the atom or string they stand in, and an
// unterminated construct runs to the end of the value.
func lex(s string, mode Mode) ([]token, []comment, error) {
	if mode == Strict {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
				return nil, nil, syntaxErr("control character 0x%02x", c)
			}
		}
	}
	var (
		toks  = make([]token, 0, maxTokens(s))
		cmts  []comment
		space bool
	)
	emit := func(kind uint8, text string) {
		toks = append(toks, token{kind: kind, space: space, text: text})
		space = false
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			space = true
			i++
		case c == '(':
			text, end, ok := readComment(s, i)
			if !ok && mode == Strict {
				return nil, nil, syntaxErr("unterminated comment")
			}
			cmts = append(cmts, comment{at: len(toks), text: text})
			space = true
			i = end
		case c == '"' || c == '[':
			end, ok := scanDelimited(s, i)
			if !ok && mode == Strict {
				return nil, nil, syntaxErr("unterminated %c", c)
			}
			kind := uint8(tQuoted)
			if c == '[' {
				kind = tLiteral
			}
			emit(kind, s[i:end])
			i = end
		case strings.IndexByte(`<>@,;:.]\)`, c) >= 0:
			emit(tSpecial, s[i:i+1])
			i++
		default:
			// Whatever is left is atext, or in Lenient mode a control
			// character, which stays in the atom it interrupts.
			j := i + 1
			for j < len(s) && s[j] != ' ' && s[j] != '\t' && strings.IndexByte(specials, s[j]) < 0 {
				j++
			}
			emit(tAtom, s[i:j])
			i = j
		}
	}
	return toks, cmts, nil
}

// maxTokens bounds the number of tokens in s, so that the token list is
// allocated once: a token other than an atom starts with a special, and an
// atom starts the value or follows a special or white space.
func maxTokens(s string) int {
	n := 1
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case strings.IndexByte(specials, c) >= 0:
			n += 2
		case (c == ' ' || c == '\t') && (i == 0 || s[i-1] != ' ' && s[i-1] != '\t'):
			n++
		}
	}
	return n
}

// scanDelimited finds the end of the quoted-string or domain-literal that
// starts at s[i]: the index after its closing delimiter. A domain-literal
// cannot hold '[' (RFC 5322 §3.4.1 dtext). ok is false when it is
// unterminated; end is then where it stops: the end of s, or the '[' that
// cannot be part of it.
func scanDelimited(s string, i int) (end int, ok bool) {
	open := s[i]
	closing := byte('"')
	if open == '[' {
		closing = ']'
	}
	for j := i + 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == closing:
			return j + 1, true
		case c == '\\':
			j++
		case c == '[' && open == '[':
			return j, false
		}
	}
	return len(s), false
}

// readComment reads the comment that starts at s[i] == '(' (comments nest,
// RFC 5322 §3.2.2) and returns its content, with nested parentheses kept
// and quoted-pairs unescaped, and the index after it. ok is false when it
// is unterminated; it then runs to the end of s.
func readComment(s string, i int) (text string, end int, ok bool) {
	var b strings.Builder
	escaped := false
	depth := 0
	start := i + 1
	for ; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if !escaped {
				escaped = true
				b.Grow(len(s) - start)
				b.WriteString(s[start:i])
			}
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
			continue
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				if !escaped {
					return s[start:i], i + 1, true
				}
				return b.String(), i + 1, true
			}
		}
		if escaped {
			b.WriteByte(s[i])
		}
	}
	if !escaped {
		return s[start:], len(s), false
	}
	return b.String(), len(s), false
}
