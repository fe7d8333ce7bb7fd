package policy

import (
	"bytes"
	"errors"
	"io"

	"mxguard/checks/headers"
	"mxguard/internal/mailhdr"
)

// Content is the message content as the engine reads it: the proxy's spool.
type Content interface {
	Reader() (io.Reader, error)
}

// MaxHeaderBytes bounds the header section. Every reader takes the whole
// section at once, from one definition of where it ends (mailhdr), so a
// message whose header section does not end within it is refused whole
// (the proxy answers 552) rather than checked in part.
const MaxHeaderBytes = headers.MaxSectionBytes

// firstHeadBytes is how much of the content is asked for first when
// looking for the header section.
const firstHeadBytes = 16 << 10

// ErrHeaderTooBig is HeaderSplit's error for a header section that does
// not end within MaxHeaderBytes.
var ErrHeaderTooBig = errors.New("policy: the header section is longer than 256 KiB")

// Header returns the message's header section (see mailhdr), read once
// and kept; when it is longer than MaxHeaderBytes, its first
// MaxHeaderBytes octets. Content that can hand over its first octets (the
// proxy's spool, with the message in memory) is not read through; only
// the header section is copied, since the spool's buffer is recycled when
// the transaction ends and a check that overran its deadline may still be
// reading. Callers must not modify the result.
func (tx *Transaction) Header() []byte {
	tx.loadHeader()
	return tx.headerBytes
}

// HeaderSplit says where the header section of the content ends: Header
// is the content up to split.End, and the body starts at split.Body. When
// split.Malformed, whoever passes the message on writes an empty line
// between the two. The error is ErrHeaderTooBig, or a spool failure.
func (tx *Transaction) HeaderSplit() (mailhdr.Split, error) {
	tx.loadHeader()
	return tx.split, tx.splitErr
}

func (tx *Transaction) loadHeader() {
	if tx.headerBytes != nil {
		return
	}
	tx.headerBytes = []byte{}
	if tx.Content == nil {
		return
	}
	// Most header sections are a few KiB: ask for a little first, which
	// content in memory hands over without a copy, so that a large message
	// is not copied (or read from its spool file) 256 KiB deep to find one.
	head, err := readHead(tx.Content, firstHeadBytes)
	if err != nil {
		tx.splitErr = err
		return
	}
	if len(head) == firstHeadBytes {
		pos := 0
		if split, ok := mailhdr.End(head, &pos); ok {
			tx.split = split
			if split.End > 0 {
				tx.headerBytes = bytes.Clone(head[:split.End])
			}
			return
		}
		if head, err = readHead(tx.Content, MaxHeaderBytes+1); err != nil {
			tx.splitErr = err
			return
		}
	}
	if len(head) <= MaxHeaderBytes {
		// The whole message: its last line is judged too.
		tx.split = mailhdr.Find(head)
	} else {
		pos := 0
		split, ok := mailhdr.End(head, &pos)
		if !ok || split.End > MaxHeaderBytes {
			tx.splitErr = ErrHeaderTooBig
			tx.headerBytes = bytes.Clone(head[:MaxHeaderBytes])
			return
		}
		tx.split = split
	}
	if tx.split.End > 0 {
		tx.headerBytes = bytes.Clone(head[:tx.split.End])
	}
}

// readHead returns the first n octets of c, or all of it when shorter.
func readHead(c Content, n int) ([]byte, error) {
	if h, ok := c.(interface{ Head(n int) ([]byte, error) }); ok {
		return h.Head(n)
	}
	r, err := c.Reader()
	if err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(r, int64(n)))
}

// HeaderSection returns the header section at the start of msg, the whole
// message (see mailhdr).
func HeaderSection(msg []byte) []byte {
	s := mailhdr.Find(msg)
	return msg[:s.End:s.End]
}
