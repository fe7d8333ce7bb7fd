package proxy

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"sync"
)

// readerPool recycles the forward path's 32 KiB read buffers.
var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 32<<10) }}

// writeContent writes a message as the backend receives it: the header
// section (header, which split found) without the fields that only
// mxguard may write, then the empty line, then the body, read from body.
// Forged fields are every Authentication-Results field that names our
// authserv-id (RFC 8601 §5: a receiver must remove them before adding its
// own, or a sender could forge "dkim=pass" from us) and every X-Mxguard-*
// field (our verdict headers). The empty line is written even where the
// message lacks one (split.Malformed: a line that is not a field ended the
// header section), so that every reader downstream ends the header
// section where mxguard did, and stripping, the checks and the backend
// agree on which lines are fields. The content has canonical CRLF line
// endings.
func writeContent(w io.Writer, header []byte, body io.Reader, authservID string) error {
	sep := "\r\n"
	if len(header) > 0 && header[len(header)-1] != '\n' {
		// The message ends inside its last header line: end that line
		// first.
		sep = "\r\n\r\n"
	}
	for len(header) > 0 {
		// A field and its continuation lines (RFC 5322 §2.2.3); the header
		// section holds nothing else, and never starts with a continuation.
		n := fieldLen(header)
		if !forged(header[:n], authservID) {
			if _, err := w.Write(header[:n]); err != nil {
				return err
			}
		}
		header = header[n:]
	}
	if _, err := io.WriteString(w, sep); err != nil {
		return err
	}
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(body)
	defer func() {
		br.Reset(nil)
		readerPool.Put(br)
	}()
	_, err := br.WriteTo(w)
	return err
}

// fieldLen is the length of the field at the start of header: its first
// line and the continuation lines after it, line endings included.
func fieldLen(header []byte) int {
	n := 0
	for n < len(header) {
		i := bytes.IndexByte(header[n:], '\n')
		if i < 0 {
			return len(header)
		}
		n += i + 1
		if n == len(header) || header[n] != ' ' && header[n] != '\t' {
			return n
		}
	}
	return n
}

// forged reports whether a header field is one only mxguard may write.
func forged(field []byte, authservID string) bool {
	name, value, ok := bytes.Cut(field, []byte(":"))
	if !ok {
		return false
	}
	n := strings.TrimSpace(string(name))
	if len(n) > len("X-Mxguard-") && strings.EqualFold(n[:len("X-Mxguard-")], "X-Mxguard-") {
		return true
	}
	if !strings.EqualFold(n, "Authentication-Results") {
		return false
	}
	return claimsAuthservID(string(value), authservID)
}
