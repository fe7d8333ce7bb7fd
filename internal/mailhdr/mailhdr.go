// Package mailhdr finds where a message's header section ends: the one
// rule that every reader in mxguard (the header checks, DMARC's From, DKIM
// and its prefetcher, the stripping of forged fields) and what the backend
// receives agree on.
//
// The header section is the longest run of lines at the start of the
// message that are header fields (RFC 5322 §2.2: a name of printable
// US-ASCII other than ':', then ':'; §4.5 lets white space stand before the
// colon) or continuation lines of one (§2.2.3). It ends at the empty line
// (§2.1) or at the first line that is neither. Readers disagree about what
// follows such a line (some stop, some read on), which lets an attacker
// hide fields from one reader and show them to another; so mxguard stops
// there, and passes the message on with an empty line inserted before it,
// so that every reader downstream splits the message where mxguard did.
package mailhdr

import "bytes"

// Split says where a message's header section ends.
type Split struct {
	// End is the length of the header section: its lines, each with its
	// line ending, and not the empty line.
	End int
	// Body is where the body starts: after the empty line, or at End when
	// a line that is not a field ended the section (Malformed).
	Body int
	// Malformed is set when a line that is neither a field, a
	// continuation nor the empty line ended the section: the message has
	// no empty line there, and whoever passes it on must write one.
	Malformed bool
}

// End finds the end of the header section in data, the first octets of a
// message. *pos is where to resume: the start of the first line not yet
// known to be a header line; End advances it, so a caller whose data grows
// can call again without rescanning. ok is false while the end is not in
// data; a last line without LF is not judged yet.
func End(data []byte, pos *int) (s Split, ok bool) {
	for {
		i := bytes.IndexByte(data[*pos:], '\n')
		if i < 0 {
			return Split{}, false
		}
		line := data[*pos : *pos+i+1]
		if s, ended := judge(line, *pos); ended {
			return s, true
		}
		*pos += i + 1
	}
}

// Find is End for a whole message: a last line without LF is judged too,
// and a message that is all header section ends with it.
func Find(msg []byte) Split {
	pos := 0
	if s, ok := End(msg, &pos); ok {
		return s
	}
	if pos < len(msg) {
		if s, ended := judge(msg[pos:], pos); ended {
			return s
		}
	}
	return Split{End: len(msg), Body: len(msg)}
}

// judge looks at the line that starts at offset at, line ending included,
// and reports whether it ends the header section.
func judge(line []byte, at int) (Split, bool) {
	text := bytes.TrimRight(line, "\r\n")
	switch {
	case len(text) == 0:
		// RFC 5322 §2.1. A line of nothing but CR and LF octets counts as
		// empty, as the readers that end a line at a bare CR see it.
		return Split{End: at, Body: at + len(line)}, true
	case text[0] == ' ' || text[0] == '\t':
		// A continuation needs a field before it; the lines before this
		// one are all fields or continuations.
		if at > 0 {
			return Split{}, false
		}
	case IsField(text):
		return Split{}, false
	}
	return Split{End: at, Body: at, Malformed: true}, true
}

// IsField reports whether line (without its line ending) starts a header
// field: a non-empty name of printable US-ASCII other than ':' (RFC 5322
// §3.6.8 ftext), optional white space (§4.5.2, obsolete syntax), then ':'.
func IsField(line []byte) bool {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return false
	}
	name := bytes.TrimRight(line[:colon], " \t")
	if len(name) == 0 {
		return false
	}
	for _, c := range name {
		if c < 33 || c > 126 {
			return false
		}
	}
	return true
}
