package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"

	"mxguard/policy"
)

// maxHeaderScan bounds how much of a message is read to find Message-ID.
const maxHeaderScan = 256 << 10

// MessageID returns the Message-ID of msg without angle brackets, or "".
// It reads only the header section (RFC 5322 §2.1), unfolding continued
// lines, and stops at the first blank line or after maxHeaderScan octets.
func MessageID(msg *Message) string {
	r, err := msg.Reader()
	if err != nil {
		return ""
	}
	br := bufio.NewReader(io.LimitReader(r, maxHeaderScan))
	var cur []byte
	found := false
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			if found {
				cur = append(cur, bytes.TrimRight(line, "\r\n")...)
			}
		} else {
			if found {
				break
			}
			if len(bytes.TrimRight(line, "\r\n")) == 0 {
				break // end of the header section
			}
			if name, value, ok := bytes.Cut(line, []byte(":")); ok && strings.EqualFold(string(bytes.TrimSpace(name)), "Message-ID") {
				found = true
				cur = append(cur[:0], bytes.TrimRight(value, "\r\n")...)
			}
		}
		if err != nil && err != bufio.ErrBufferFull {
			break
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
