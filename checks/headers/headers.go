// Package headers reports evidence about a message's header section
// (RFC 5322 §2.2, §3.6): how many of the fields that may occur once do occur,
// whether the Date parses, how big the section is, which lines are not header
// fields, raw 8-bit bytes without SMTPUTF8, and whether the From display name
// impersonates an address or a domain that the real From address is not.
//
// Like every check it reports evidence and never decides; it knows nothing
// of SMTP sessions or rules.
package headers

import (
	"bytes"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"

	"mxguard/checks/dmarc"
)

// Defaults for the zero values of Options.
const (
	DefaultMaxBytes  = 64 << 10 // 64 KiB
	DefaultMaxFields = 500
)

// maxMalformed is how many malformed lines Result.Malformed describes.
const maxMalformed = 10

// Options configures Check. The zero value is usable: limits that are zero or
// negative take their defaults.
type Options struct {
	MaxBytes  int      // header section size limit [64 KiB]
	MaxFields int      // header field count limit [500]
	Domains   []string // our own domains (lower-case)
	Protected []string // further domains whose names must not be impersonated in display names (e.g. a bank's)
	SMTPUTF8  bool     // the client used SMTPUTF8: 8-bit header bytes are allowed (RFC 6532)
	// From, when not nil, is dmarc.FromDomain's answer for the header
	// section, from a caller that has parsed it already.
	From *dmarc.ParsedFrom
}

// Result is the evidence Check found in one header section.
type Result struct {
	FromCount        int      // From header fields
	FromAddresses    int      // addresses in the From field(s)
	DateCount        int      // Date header fields
	DateValid        bool     // there is exactly one Date and it parses as an RFC 5322 §3.3 date-time (net/mail.ParseDate)
	MessageIDCount   int      // Message-ID header fields
	Duplicates       []string // names of fields that occur more than once but may occur at most once (RFC 5322 §3.6), canonical case, sorted
	Fields           int      // number of header fields
	Bytes            int      // size of the header section, blank line included; at most 2*MaxBytes, since scanning stops there
	TooBig           bool     // Bytes > MaxBytes or Fields > MaxFields
	EightBit         bool     // 8-bit bytes in the header section without SMTPUTF8
	Malformed        []string // lines that are not "name: value" or continuation lines, described briefly (at most 10)
	DisplayNameSpoof bool     // the From display name shows an address, or names one of our or the protected domains, that the From address is not at
	SpoofDetail      string   // why DisplayNameSpoof is set, for people
	FromDisplay      string   // the display name of the first From address, RFC 2047 decoded
	Subject          string   // the first Subject, RFC 2047 decoded (for logs)
}

// onceFields are the fields RFC 5322 §3.6 (the table in §3.6, "Max number")
// allows at most once, by lower-case name, with their canonical spelling.
var onceFields = map[string]string{
	"date":        "Date",
	"from":        "From",
	"sender":      "Sender",
	"reply-to":    "Reply-To",
	"to":          "To",
	"cc":          "Cc",
	"bcc":         "Bcc",
	"message-id":  "Message-ID",
	"in-reply-to": "In-Reply-To",
	"references":  "References",
	"subject":     "Subject",
}

// commonDate is the date-time layout nearly every sender writes.
const commonDate = "Mon, 2 Jan 2006 15:04:05 -0700"

// validDate reports whether net/mail.ParseDate accepts v. ParseDate tries
// its 48 layouts in turn, building an error for each that fails, and the
// common one with a day of the week comes 25th, which made it the costliest
// part of these checks; so that layout goes first, with or without a plain
// zone comment. Whatever it accepts,
// ParseDate accepts too (the fuzz target holds them to that).
func validDate(v string) bool {
	d := v
	// A trailing zone comment, as in "+0000 (UTC)", in its plainest form.
	if i := strings.LastIndex(d, " ("); i > 0 && strings.HasSuffix(d, ")") &&
		!strings.ContainsFunc(d[i+2:len(d)-1], func(r rune) bool { return !plainComment(r) }) {
		d = d[:i]
	}
	if _, err := time.Parse(commonDate, d); err == nil {
		return true
	}
	_, err := mail.ParseDate(v)
	return err == nil
}

// plainComment reports whether r may appear in a date's zone comment for
// validDate's shortcut: a letter, digit, space, '+' or '-'.
func plainComment(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == ' ' || r == '+' || r == '-'
}

// Check examines a header section: the bytes the proxy holds, CRLF line
// endings, up to and including the blank line, possibly truncated. A bare LF
// also ends a line, as it does for the DMARC From parser and for most
// readers, so that no field can hide inside another line. Check never
// panics, and it reads at most 2*MaxBytes bytes of header.
func Check(header []byte, o Options) Result {
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxFields <= 0 {
		o.MaxFields = DefaultMaxFields
	}
	var r Result
	s := scan(header, 2*o.MaxBytes, &r)
	section := header[:r.Bytes]

	r.TooBig = r.Bytes > o.MaxBytes || r.Fields > o.MaxFields
	// RFC 6532 §3.2 allows UTF-8 in header fields only when the message
	// travels with SMTPUTF8 (RFC 6531); otherwise header fields are
	// US-ASCII (RFC 5322 §2.2).
	if !o.SMTPUTF8 {
		r.EightBit = slices.ContainsFunc(section, func(c byte) bool { return c >= 0x80 })
	}

	for lname, n := range s.counts {
		if n > 1 {
			r.Duplicates = append(r.Duplicates, onceFields[lname])
		}
	}
	slices.Sort(r.Duplicates)

	r.FromCount = s.counts["from"]
	r.DateCount = s.counts["date"]
	r.MessageIDCount = s.counts["message-id"]
	if r.DateCount == 1 {
		// RFC 5322 §3.3 date-time; ParseDate also takes the obsolete
		// forms of §4.3, which receivers still see.
		r.DateValid = validDate(strings.TrimSpace(s.date))
	}
	if s.hasSubject {
		r.Subject = decodeWords(trimWSP(s.subject))
	}

	var boxes []mailbox
	for _, v := range s.froms {
		b := parseMailboxes(v)
		r.FromAddresses += len(b)
		boxes = append(boxes, b...)
	}
	if len(boxes) > 0 {
		r.FromDisplay = boxes[0].display
	}
	r.DisplayNameSpoof, r.SpoofDetail = spoofed(section, boxes, o)
	return r
}

// scanned is what scan keeps of the fields, beyond the counts in Result.
type scanned struct {
	counts     map[string]int // fields of onceFields, by lower-case name
	froms      []string       // unfolded From values
	date       string         // the unfolded value of the last Date
	subject    string         // the unfolded value of the first Subject
	hasSubject bool
}

// scan walks the lines of header, at most limit bytes of it, unfolding
// fields (RFC 5322 §2.2.3) and recording Fields, Bytes and Malformed in r.
func scan(header []byte, limit int, r *Result) *scanned {
	s := &scanned{counts: make(map[string]int)}
	data, cut := header, false
	if len(data) > limit {
		data, cut = data[:limit], true
	}
	var (
		name  string // lower-case name of the current field, "" for none
		value []byte // its unfolded value, when keep
		keep  bool
		pos   int
		line  int
		ended bool
	)
	malformed := func(format string, args ...any) {
		if len(r.Malformed) < maxMalformed {
			r.Malformed = append(r.Malformed, fmt.Sprintf("line %d: ", line)+fmt.Sprintf(format, args...))
		}
	}
	flush := func() {
		if name == "" {
			return
		}
		if _, ok := onceFields[name]; ok {
			s.counts[name]++
		}
		switch name {
		case "from":
			s.froms = append(s.froms, string(value))
		case "date":
			s.date = string(value)
		case "subject":
			if !s.hasSubject {
				s.subject, s.hasSubject = string(value), true
			}
		}
		name, value = "", nil
	}
	for pos < len(data) {
		rest := data[pos:]
		var l []byte
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			l, pos = rest[:i], pos+i+1
		} else if cut {
			// A line cut by the limit: not judged, the section is
			// too big anyway.
			pos = len(data)
			break
		} else {
			l, pos = rest, len(data) // a truncated last line
		}
		line++
		l = bytes.TrimSuffix(l, []byte("\r"))
		if len(l) == 0 {
			ended = true // RFC 5322 §2.1: the empty line ends the header section
			break
		}
		// Readers disagree about a bare CR or a NUL (some end the line
		// there), so it is evidence even inside an otherwise good field.
		if i := bytes.IndexFunc(l, func(r rune) bool { return r == '\r' || r == 0 }); i >= 0 {
			if l[i] == '\r' {
				malformed("bare CR")
			} else {
				malformed("NUL byte")
			}
		}
		if l[0] == ' ' || l[0] == '\t' {
			// RFC 5322 §2.2.3: a line that starts with WSP continues the
			// field before it; unfolding removes only the CRLF.
			if name == "" {
				malformed("continuation line without a field before it")
				continue
			}
			if keep {
				value = append(value, l...)
			}
			continue
		}
		flush()
		colon := bytes.IndexByte(l, ':')
		if colon < 0 {
			malformed("no colon")
			continue
		}
		// RFC 5322 §4.5 (obsolete syntax): WSP may stand between the
		// field name and the colon, and readers honour it, so "From :"
		// is a From field.
		n := bytes.TrimRight(l[:colon], " \t")
		switch {
		case len(n) == 0:
			malformed("empty field name")
			continue
		case bytes.ContainsFunc(n, func(r rune) bool { return r < 33 || r > 126 }):
			// RFC 5322 §3.6.8: ftext is printable US-ASCII but ':'.
			malformed("invalid character in field name")
			continue
		}
		r.Fields++
		name = fieldKey(n)
		// Only the values of From, Date and Subject are read.
		keep = name == "from" || name == "date" || name == "subject"
		if keep {
			value = append([]byte(nil), l[colon+1:]...)
		}
	}
	flush()
	if cut && !ended {
		pos = len(data)
	}
	r.Bytes = pos
	return s
}

// otherField is fieldKey's name for every field scan keeps no count or
// value of.
const otherField = "?"

// onceKeys are onceFields' keys, each its own value, so that fieldKey
// returns them without making a string per field.
var onceKeys = func() map[string]string {
	m := make(map[string]string, len(onceFields))
	for k := range onceFields {
		m[k] = k
	}
	return m
}()

// fieldKey is n in lower case when it is one of onceFields, else
// otherField: the only names scan distinguishes.
func fieldKey(n []byte) string {
	var buf [16]byte
	if len(n) > len(buf) {
		return otherField
	}
	for i, c := range n {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	if k, ok := onceKeys[string(buf[:len(n)])]; ok {
		return k
	}
	return otherField
}

// trimWSP removes leading and trailing spaces and tabs.
func trimWSP(s string) string {
	return strings.Trim(s, " \t")
}
