// Package smtpreply is mxguard's one SMTP reply type: the replies the
// proxy gives, the ones the policy and the rules decide on, and the ones
// the backend sends back. It names every reply code and enhanced status
// code mxguard uses (codes.go), renders a reply for the wire and the log,
// parses a reply as a rules file writes it, and adds the session id to the
// replies mxguard gives on its own behalf.
//
// It imports nothing of mxguard's, so that policy, rules and proxy can all
// use it.
package smtpreply

import (
	"strconv"
	"unicode/utf8"
)

// MaxLine is the longest reply line RFC 5321 §4.5.3.1.5 allows, CRLF
// included.
const MaxLine = 512

// Enhanced is an RFC 3463 enhanced status code: class, subject, detail.
// The zero value means none was given, which the backend may do (RFC 3463
// is an extension), and which mxguard does for the greeting, the EHLO
// reply and 354.
type Enhanced [3]int

// IsZero reports whether no enhanced code was given.
func (e Enhanced) IsZero() bool { return e == Enhanced{} }

// Class is the first number: 2 success, 4 persistent transient failure,
// 5 permanent failure (RFC 3463 §3.1).
func (e Enhanced) Class() int { return e[0] }

// String renders the code as it is written: "5.7.1"; "" when none was given.
func (e Enhanced) String() string {
	if e.IsZero() {
		return ""
	}
	return string(e.appendTo(nil))
}

func (e Enhanced) appendTo(b []byte) []byte {
	b = strconv.AppendInt(b, int64(e[0]), 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(e[1]), 10)
	b = append(b, '.')
	return strconv.AppendInt(b, int64(e[2]), 10)
}

// Other is the enhanced code that says only the class: "4.0.0" for a 4xx
// reply. It stands in for an enhanced code in the wrong class.
func Other(class int) Enhanced { return Enhanced{class, 0, 0} }

// Reply is one SMTP reply: a reply code, an enhanced status code (zero when
// none is given) and text. A multi-line reply (EHLO's) has its earlier
// lines in Lines; Text is always the last line, the one logs and relayed
// replies quote.
type Reply struct {
	Code     int
	Enhanced Enhanced
	Text     string
	// Lines are the texts of the lines before the last, for a multi-line
	// reply; nil for a reply of one line.
	Lines []string
}

// Multiline is a reply of one line per text (at least one): EHLO's name and
// keywords (RFC 5321 §4.1.1.1), with no enhanced code.
func Multiline(code int, lines ...string) Reply {
	n := len(lines) - 1
	return Reply{Code: code, Text: lines[n], Lines: lines[:n:n]}
}

// IsZero reports whether r is no reply at all.
func (r Reply) IsZero() bool {
	return r.Code == 0 && r.Text == "" && r.Enhanced.IsZero() && r.Lines == nil
}

// String renders the reply's last line as it goes on the wire, without
// CRLF: "550 5.7.1 text", or "220 text" when no enhanced code was given.
// It is what the verdict log and the logs quote. The zero Reply is "".
func (r Reply) String() string {
	if r.IsZero() {
		return ""
	}
	return string(r.appendLine(nil, r.Text, ' '))
}

// Append appends the reply as it goes on the wire, every line ended by
// CRLF, to b.
func (r Reply) Append(b []byte) []byte {
	for _, l := range r.Lines {
		b = append(r.appendLine(b, l, '-'), '\r', '\n')
	}
	return append(r.appendLine(b, r.Text, ' '), '\r', '\n')
}

// appendLine is one line without CRLF: the code, sep ('-' for a line that
// is not the last, RFC 5321 §4.2.1), the enhanced code when one was given
// (RFC 2034 §4), and text.
func (r Reply) appendLine(b []byte, text string, sep byte) []byte {
	b = strconv.AppendInt(b, int64(r.Code), 10)
	b = append(b, sep)
	if !r.Enhanced.IsZero() {
		b = append(r.Enhanced.appendTo(b), ' ')
	}
	return append(b, text...)
}

// Valid reports whether the code is a reply code from 200 to 599 and, when
// an enhanced code is given, whether it is one RFC 3463 §2 allows: its
// class is 2, 4 or 5 and is the class of the reply code ("550 4.7.1"
// confuses every client that reads both), and subject and detail are
// numbers of one to three digits.
func (r Reply) Valid() bool {
	if r.Code < 200 || r.Code > 599 {
		return false
	}
	e := r.Enhanced
	if e.IsZero() {
		return true
	}
	class := r.Code / 100
	return class != 3 && e[0] == class && inRange(e[1]) && inRange(e[2])
}

func inRange(n int) bool { return n >= 0 && n <= 999 }

// sessionOpen and sessionClose surround the session id after the text of a
// reply that carries it: " (session ID)".
const (
	sessionOpen  = " (session "
	sessionClose = ")"
)

// WithSession is r with the session id after its text, " (session ID)":
// every refusal mxguard gives on its own behalf carries it, so that an
// admin can find the reason for a bounce in the logs. It is the one place
// that adds it. The text is cut, between characters, so that the line
// stays within the 512 octets RFC 5321 §4.5.3.1.5 allows: quoted text (a
// backend's reply, a rule's) may use them all, and the session id is what
// the admin searches for, so it is never the part cut. An empty id adds
// nothing (mxguard check and replay decide outside a session).
func (r Reply) WithSession(id string) Reply {
	if id == "" {
		return r
	}
	// The line is "CODE SP [ENHANCED SP] TEXT (session ID) CRLF".
	room := MaxLine - len(r.appendLine(make([]byte, 0, 32), "", ' ')) - len(sessionOpen) - len(id) - len(sessionClose) - len("\r\n")
	text := r.Text
	if len(text) > room {
		room = max(room, 0)
		for room > 0 && !utf8.RuneStart(text[room]) {
			room--
		}
		text = text[:room]
	}
	r.Text = text + sessionOpen + id + sessionClose
	return r
}
