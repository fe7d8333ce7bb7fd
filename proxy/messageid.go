package proxy

import (
	"bytes"
	"strings"
)

// MessageID returns the Message-ID in header (a header section, as
// policy.Transaction.Header gives it) without angle brackets, or "".
// Continued lines are unfolded.
func MessageID(header []byte) string {
	var cur []byte
	found := false
	for len(header) > 0 {
		line := header
		if i := bytes.IndexByte(header, '\n'); i >= 0 {
			line = header[:i+1]
		}
		header = header[len(line):]
		if line[0] == ' ' || line[0] == '\t' {
			if found {
				cur = append(cur, bytes.TrimRight(line, "\r\n")...)
			}
			continue
		}
		if found {
			break
		}
		if name, value, ok := bytes.Cut(line, []byte(":")); ok && strings.EqualFold(string(bytes.TrimSpace(name)), "Message-ID") {
			found = true
			cur = append(cur[:0], bytes.TrimRight(value, "\r\n")...)
		}
	}
	id := strings.TrimSpace(string(cur))
	id = strings.TrimSuffix(strings.TrimPrefix(id, "<"), ">")
	if len(id) > 998 {
		id = id[:998]
	}
	return id
}
