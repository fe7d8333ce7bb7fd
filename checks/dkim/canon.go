package dkim

import (
	"hash"
	"strings"
	"sync"
)

// Canonicalisation algorithms, RFC 6376 §3.4.
const (
	simple  = "simple"
	relaxed = "relaxed"
)

// canonHeader appends field (its name, its value, its continuation lines
// and its final CRLF) to dst in the given canonical form, RFC 6376 §3.4.1
// (simple: unchanged) and §3.4.2 (relaxed).
func canonHeader(dst []byte, field, canon string) []byte {
	if canon == simple {
		return append(dst, field...)
	}
	name, value, _ := strings.Cut(field, ":")
	// The name in lower case, without the white space around it (which
	// only the field's first line can hold).
	for _, c := range []byte(strings.TrimSpace(name)) {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	dst = append(dst, ':')
	// Unfold (every CRLF inside a field is a fold, and the final one is
	// put back below), turn each run of WSP into one SP, and drop WSP at
	// both ends of the value.
	value = strings.TrimSuffix(value, "\r\n")
	wsp, start := false, true
	for i := 0; i < len(value); i++ {
		switch c := value[i]; {
		case c == '\r' && i+1 < len(value) && value[i+1] == '\n':
			i++
		case c == ' ' || c == '\t':
			wsp = true
		default:
			if wsp && !start {
				dst = append(dst, ' ')
			}
			wsp, start = false, false
			dst = append(dst, c)
		}
	}
	return append(dst, '\r', '\n')
}

// withoutSignature returns a DKIM-Signature field with the value of its
// b= tag removed, white space around it included, as RFC 6376 §3.7 has it
// hashed; everything else, the final CRLF too, is kept byte for byte.
func withoutSignature(field string) string {
	colon := strings.IndexByte(field, ':')
	if colon < 0 {
		return field
	}
	end := len(strings.TrimSuffix(field, "\r\n"))
	for start := colon + 1; start < end; {
		semi := strings.IndexByte(field[start:end], ';')
		tagEnd := end
		if semi >= 0 {
			tagEnd = start + semi
		}
		if eq := strings.IndexByte(field[start:tagEnd], '='); eq >= 0 &&
			strings.Trim(field[start:start+eq], " \t\r\n") == "b" {
			return field[:start+eq+1] + field[tagEnd:]
		}
		start = tagEnd + 1
	}
	return field
}

// bodyHash is one signature's hash of the canonical body: of its first
// limit octets, or of all of it when limit is negative (no l=).
type bodyHash struct {
	h     hash.Hash
	limit int64
	n     int64 // octets hashed
}

func (b *bodyHash) write(p []byte) {
	if b.limit >= 0 {
		p = p[:min(int64(len(p)), max(b.limit-b.n, 0))]
	}
	b.h.Write(p)
	b.n += int64(len(p))
}

// bodyCanon canonicalises a body as it streams past, RFC 6376 §3.4.3
// (simple) and §3.4.4 (relaxed), and feeds the result to the hashes of
// every signature that uses this canonicalisation. It holds back only
// what the next octets decide: a CR (it may start a CRLF), a count of
// line ends (empty lines at the end of the body are dropped), and, for
// relaxed, whether white space preceded; its memory does not grow with
// the body.
//
// A bare LF ends a line like CRLF, as go-msgauth and the reference
// verifiers read it (the message should carry none: the protocol check
// reports them). A bare CR is an ordinary octet.
type bodyCanon struct {
	relaxed bool
	hashes  []*bodyHash
	total   int64  // octets of canonical body hashed so far
	out     []byte // canonical octets not yet hashed

	cr    bool // a CR held back
	crlfs int  // line ends held back
	wsp   bool // relaxed: white space held back
}

// outMax bounds the canonical body staged before it is hashed, but for
// what one write adds (at most twice its input: a bare LF becomes CRLF).
const outMax = 16 << 10

var outBufs = sync.Pool{New: func() any { b := make([]byte, 0, outMax+2*readSize+64); return &b }}

// special marks the octets a canonicalisation must look at; all others
// are copied as they are, in runs.
var special = [2][256]bool{
	{'\r': true, '\n': true},
	{'\r': true, '\n': true, ' ': true, '\t': true},
}

func (c *bodyCanon) write(p []byte) {
	sp := &special[0]
	if c.relaxed {
		sp = &special[1]
	}
	// The state lives in locals through the loop, where it is read for
	// every octet.
	out, cr, crlfs, wsp := c.out, c.cr, c.crlfs, c.wsp
	for i := 0; i < len(p); i++ {
		ch := p[i]
		if cr {
			cr = false
			if ch == '\n' {
				crlfs, wsp = crlfs+1, false // relaxed drops WSP at the end of a line
				continue
			}
			out, crlfs, wsp = c.pending(out, crlfs, wsp) // the CR was an ordinary octet
			out = append(out, '\r')
		}
		if !sp[ch] {
			if crlfs > 0 || wsp {
				out, crlfs, wsp = c.pending(out, crlfs, wsp)
			}
			j := i + 1
			for j < len(p) && !sp[p[j]] {
				j++
			}
			out = append(out, p[i:j]...)
			i = j - 1
			continue
		}
		switch ch {
		case '\r':
			cr = true
		case '\n':
			crlfs, wsp = crlfs+1, false
		default: // ' ' or '\t', relaxed only
			wsp = true
		}
	}
	c.out, c.cr, c.crlfs, c.wsp = out, cr, crlfs, wsp
	c.emit()
}

// pending appends what was held back, now that an ordinary octet follows
// it: the line ends, then the white space as one SP.
func (c *bodyCanon) pending(out []byte, crlfs int, wsp bool) ([]byte, int, bool) {
	for ; crlfs > 0; crlfs-- {
		out = append(out, '\r', '\n')
		if len(out) >= outMax { // a million empty lines, then a letter
			c.out = out
			c.emit()
			out = c.out
		}
	}
	if wsp {
		out = append(out, ' ')
	}
	return out, 0, false
}

// emit hands the canonical octets to the hashes.
func (c *bodyCanon) emit() {
	for _, h := range c.hashes {
		h.write(c.out)
	}
	c.total += int64(len(c.out))
	c.out = c.out[:0]
}

// close ends the body: the empty lines held back are dropped, and the
// body ends with one CRLF (simple: always, so an empty body is CRLF;
// relaxed: unless it is empty).
func (c *bodyCanon) close() {
	if c.cr {
		c.out, c.crlfs, c.wsp = c.pending(c.out, c.crlfs, c.wsp)
		c.out = append(c.out, '\r')
		c.cr = false
	}
	if !c.relaxed || c.total > 0 || len(c.out) > 0 {
		c.out = append(c.out, '\r', '\n')
	}
	c.emit()
}
