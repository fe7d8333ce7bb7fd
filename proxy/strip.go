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

// stripForged copies the header section of a message from r to w without
// the fields that only mxguard may write: every Authentication-Results
// field that names our authserv-id (RFC 8601 §5: a receiver must remove
// them before adding its own, or a sender could forge "dkim=pass" from us)
// and every X-Mxguard-* field (our verdict headers). The body is copied as
// it is. r must have canonical CRLF line endings.
func stripForged(w io.Writer, r io.Reader, authservID string) error {
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(r)
	defer func() {
		br.Reset(nil)
		readerPool.Put(br)
	}()
	var field []byte // the current field, continuation lines included
	flush := func() error {
		if len(field) == 0 {
			return nil
		}
		var err error
		if !forged(field, authservID) {
			_, err = w.Write(field)
		}
		field = field[:0]
		return err
	}
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A line longer than the buffer: the header section ends here
			// as far as we care, and the rest goes out untouched.
			if ferr := flush(); ferr != nil {
				return ferr
			}
			if _, werr := w.Write(line); werr != nil {
				return werr
			}
			_, err = io.Copy(w, br)
			return err
		}
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			if len(field) > 0 {
				field = append(field, line...) // RFC 5322 §2.2.3 folding
			} else {
				// A stray continuation line before any field: a lenient
				// parser may read it as a field, and may read fields
				// after it, so it is judged as a field and we go on.
				field = append(field, line...)
			}
		} else {
			if ferr := flush(); ferr != nil {
				return ferr
			}
			if len(line) == 0 || bytes.Equal(line, []byte("\r\n")) || bytes.IndexByte(line, ':') < 0 {
				// The blank line (or a line that is no header field)
				// ends the header section.
				if _, werr := w.Write(line); werr != nil {
					return werr
				}
				if err != nil {
					return ignoreEOF(err)
				}
				_, err = io.Copy(w, br)
				return err
			}
			field = append(field, line...)
		}
		if err != nil {
			if ferr := flush(); ferr != nil {
				return ferr
			}
			return ignoreEOF(err)
		}
	}
}

func ignoreEOF(err error) error {
	if err == io.EOF {
		return nil
	}
	return err
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
	id, _, _ := strings.Cut(unfold(string(value)), ";")
	return strings.EqualFold(strings.TrimSpace(stripComments(id)), authservID)
}

// unfolder joins a folded field value into one line.
var unfolder = strings.NewReplacer("\r\n", "", "\n", "", "\t", " ")

func unfold(s string) string { return unfolder.Replace(s) }

// stripComments removes RFC 5322 comments (nested parentheses), which may
// surround the authserv-id (RFC 8601 §2.2 allows CFWS there), and the
// authres-version number that may follow it.
func stripComments(s string) string {
	var sb strings.Builder
	depth := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && depth > 0:
			i++
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth == 0:
			sb.WriteByte(c)
		}
	}
	f := strings.Fields(sb.String())
	if len(f) == 0 {
		return ""
	}
	return f[0]
}
