package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"

	"mxguard/policy"
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

// LoadMessage reads a whole message from r (an .eml file, say) the way the
// proxy reads BDAT content: literally, with line endings made canonical and
// anything non-conforming recorded as facts. Tools use it to put a stored
// message through the same pipeline as a live one.
func LoadMessage(r io.Reader, sp *Spool, max int64) (*Message, policy.Protocol, error) {
	msg := sp.NewMessage()
	d := newDataScanner(msg, max, false)
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		if _, err := br.Peek(1); err != nil {
			break
		}
		buf, _ := br.Peek(br.Buffered())
		n, _ := d.scan(buf)
		_, _ = br.Discard(n)
	}
	if err := d.finish(); err != nil {
		msg.Close()
		return nil, policy.Protocol{}, err
	}
	if d.tooBig() {
		msg.Close()
		return nil, policy.Protocol{}, fmt.Errorf("message is larger than %d octets", max)
	}
	return msg, d.facts, nil
}
