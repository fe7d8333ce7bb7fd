package rules

import (
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// lineBreaks are what YAML counts as line breaks (YAML 1.1 §5.4, which
// the parser follows): CRLF, CR, LF, NEL, LS and PS.
var lineBreaks = strings.NewReplacer("\r\n", "\n", "\r", "\n", "\u0085", "\n", "\u2028", "\n", "\u2029", "\n")

// splitLines splits a file's text into lines as YAML numbers them.
func splitLines(data []byte) []string {
	return strings.Split(lineBreaks.Replace(string(data)), "\n")
}

// condPos maps a position inside a condition to the file: off is its
// rune offset in cond, the text of the when node n, and line and col
// (1-based line, 0-based column) the same position as expr counts it.
// src are the lines of the file.
//
// YAML takes away quotes, escapes, the indentation of a block scalar and
// the line breaks it folds, so the file's text is walked alongside cond:
// each rune of cond that is not a space is the next one in the file that
// is neither a space nor quoting (a backslash in double quotes, a doubled
// quote in single quotes). An escape that stands for another rune (\n,
// \x41) ends the walk, and the position is then reckoned from the start
// of the node.
func condPos(src []string, n *yaml.Node, cond string, off, line, col int) (int, int) {
	if l, c, ok := walkPos(src, n, cond, off); ok {
		line, col = l, c
	} else {
		line, col = exprPos(n, line, col)
	}
	// Within the file at least, for what the walk does not foresee.
	line = min(max(line, 1), len(src))
	return line, min(max(col, 1), len([]rune(src[line-1]))+1)
}

func walkPos(src []string, n *yaml.Node, cond string, off int) (int, int, bool) {
	dq := n.Style&yaml.DoubleQuotedStyle != 0
	sq := n.Style&yaml.SingleQuotedStyle != 0
	li, ci, ok := textStart(src, n)
	if !ok {
		return 0, 0, false
	}
	startL, startC := li, ci
	text := []rune(cond)
	raw := []rune(src[li])
	lastL, lastC, lastOff := -1, -1, -1
	for i := 0; i < len(text) && i <= off; i++ {
		if unicode.IsSpace(text[i]) {
			continue
		}
		quoteL, quoteC := -1, -1 // where the quoting of this rune starts
		for {
			if ci >= len(raw) {
				if li++; li >= len(src) {
					return 0, 0, false
				}
				raw, ci, quoteL = []rune(src[li]), 0, -1
				continue
			}
			c := raw[ci]
			if c == text[i] {
				break
			}
			switch {
			case unicode.IsSpace(c):
				quoteL = -1
			case dq && c == '\\', sq && c == '\'':
				if quoteL < 0 {
					quoteL, quoteC = li, ci
				}
			default:
				return 0, 0, false
			}
			ci++
		}
		lastL, lastC, lastOff = li, ci, i
		if i == off && quoteL >= 0 {
			// An escaped rune is pointed at from its backslash.
			lastL, lastC = quoteL, quoteC
		}
		ci++
	}
	switch {
	case lastOff < 0: // nothing but spaces up to off
		return startL + 1, startC + 1 + off, true
	case lastOff == off:
		return lastL + 1, lastC + 1, true
	}
	// off is a space or the end: count on from the last rune found, to
	// the end of its line at most.
	on := off - lastOff
	for k := lastOff; k < min(off, len(text)); k++ {
		if text[k] == '\n' {
			on = k - lastOff
			break
		}
	}
	return lastL + 1, min(lastC+1+on, len([]rune(src[lastL]))+1), true
}

// textStart finds the first rune of n's text in the file: after its tag
// and anchor (YAML 1.2 §6.9), after the opening quote of a quoted
// scalar, on the line after the | or > of a block scalar.
func textStart(src []string, n *yaml.Node) (int, int, bool) {
	li, ci := n.Line-1, n.Column-1
	if li < 0 || li >= len(src) || ci < 0 {
		return 0, 0, false
	}
	// next moves to the next rune that is not a space, across lines.
	next := func() (rune, bool) {
		for li < len(src) {
			raw := []rune(src[li])
			for ; ci < len(raw); ci++ {
				if !unicode.IsSpace(raw[ci]) {
					return raw[ci], true
				}
			}
			li, ci = li+1, 0
		}
		return 0, false
	}
	r, ok := next()
	for ok && (r == '!' || r == '&') {
		raw := []rune(src[li])
		for ci < len(raw) && !unicode.IsSpace(raw[ci]) {
			ci++
		}
		r, ok = next()
	}
	switch {
	case !ok:
		return 0, 0, false
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		if r != '|' && r != '>' {
			return 0, 0, false
		}
		return li + 1, 0, li+1 < len(src)
	case n.Style&yaml.DoubleQuotedStyle != 0:
		return li, ci + 1, r == '"'
	case n.Style&yaml.SingleQuotedStyle != 0:
		return li, ci + 1, r == '\''
	}
	return li, ci, true
}

// exprPos reckons a position inside the condition from the node's start:
// plain and quoted scalars start on the node's line, block scalars on the
// next. It is right for a condition on one line without escapes.
func exprPos(n *yaml.Node, line, col int) (int, int) {
	switch {
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		return n.Line + line, n.Column + col
	case n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 && line == 1:
		return n.Line, n.Column + 1 + col
	case line == 1:
		return n.Line, n.Column + col
	}
	return n.Line + line - 1, col + 1
}
