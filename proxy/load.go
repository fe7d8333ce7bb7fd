package proxy

import (
	"bufio"
	"fmt"
	"io"

	"mxguard/policy"
)

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
