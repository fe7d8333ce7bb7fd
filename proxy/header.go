package proxy

import (
	"bufio"
	"bytes"
	"io"
	"strings"
)

// maxHeaderScan bounds how much of a message is read to find Message-ID.
const maxHeaderScan = 256 << 10

// messageID returns the Message-ID of msg without angle brackets, or "".
// It reads only the header section (RFC 5322 §2.1), unfolding continued
// lines, and stops at the first blank line or after maxHeaderScan octets.
func messageID(msg *Message) string {
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
