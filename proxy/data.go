package proxy

import (
	"bufio"
	"io"
	"sync"

	"mxguard/policy"
)

// maxTextLine is RFC 5321 §4.5.3.1.6's limit on a text line, CRLF included.
const maxTextLine = 1000

// scanner states. A line start is "clean" when the previous line ended in
// CRLF and "bare" when it ended in a lone LF or CR: only a dot after a clean
// line start can begin the end-of-data line.
const (
	stBOL       = iota // start of a line after CRLF (or start of content)
	stData             // inside a line
	stCR               // CR seen, LF not yet
	stBOLBare          // start of a line after a bare LF or bare CR
	stDot              // "." at a clean line start
	stDotCR            // ".<CR>" at a clean line start
	stDotBare          // "." at a bare line start
	stDotCRBare        // ".<CR>" at a bare line start
	stEnd              // <CRLF>.<CRLF> seen
)

// dataScanner reads message content as it arrives on the wire, byte for byte
// as the client sent it, and writes it out with canonical CRLF line endings.
//
// go-smtp's reader hands the session bytes it has already interpreted (it
// accepts some malformed terminators as plain lines); this scanner sees the
// raw bytes so that every SMTP-smuggling variant is recorded as a fact.
// Only <CRLF>.<CRLF> ends DATA (RFC 5321 §4.1.1.4); on anything that merely
// looks like an end, the scanner keeps reading so the session stays in step.
type dataScanner struct {
	// dotted is true for DATA (dot-stuffed, ends at <CRLF>.<CRLF>) and false
	// for BDAT chunks, whose content is taken literally (RFC 3030 §2).
	dotted bool
	state  int
	facts  policy.Protocol

	out     []byte
	outp    *[]byte // out's home in outPool, kept so that Put allocates nothing
	w       io.Writer
	max     int64 // largest content accepted; beyond it bytes are dropped
	size    int64 // canonical octets seen, kept or not
	lineLen int
	werr    error
}

// outPool recycles the scanners' 32 KiB staging buffers: one per message
// would be the largest allocation of the receive path.
var outPool = sync.Pool{New: func() any { b := make([]byte, 0, 32<<10); return &b }}

func newDataScanner(w io.Writer, max int64, dotted bool) *dataScanner {
	return &dataScanner{dotted: dotted, w: w, max: max}
}

// release returns the staging buffer to the pool; the scanner takes
// another when it has more to stage.
func (d *dataScanner) release() {
	if d.out != nil {
		*d.outp = d.out[:0]
		outPool.Put(d.outp)
		d.out, d.outp = nil, nil
	}
}

// tooBig reports whether the content passed the size limit.
func (d *dataScanner) tooBig() bool { return d.max > 0 && d.size > d.max }

func (d *dataScanner) emit(p ...byte) {
	d.size += int64(len(p))
	if d.tooBig() || d.werr != nil {
		return
	}
	if d.out == nil {
		d.outp = outPool.Get().(*[]byte)
		d.out = (*d.outp)[:0]
	}
	d.out = append(d.out, p...)
	if len(d.out) >= 32<<10 {
		d.flush()
	}
}

func (d *dataScanner) flush() {
	if len(d.out) > 0 && d.werr == nil && !d.tooBig() {
		_, d.werr = d.w.Write(d.out)
	}
	d.out = d.out[:0]
}

func (d *dataScanner) newline(bare bool) {
	d.emit('\r', '\n')
	d.lineLen = 0
	if bare {
		d.state = stBOLBare
	} else {
		d.state = stBOL
	}
}

// scan consumes bytes from buf and reports how many it used; it stops right
// after the end-of-data line so that pipelined commands stay unread.
func (d *dataScanner) scan(buf []byte) (n int, done bool) {
	for n < len(buf) {
		if d.state == stData {
			// Fast path: copy a run of ordinary octets at once.
			j := n
			for j < len(buf) && buf[j] != '\r' && buf[j] != '\n' && buf[j] != 0 {
				j++
			}
			if j > n {
				d.lineLen += j - n
				if d.lineLen+2 > maxTextLine {
					d.facts.LongLine = true
				}
				d.emit(buf[n:j]...)
				n = j
				continue
			}
		}
		c := buf[n]
		n++
		if c == 0 {
			d.facts.NUL = true
		}
		d.step(c)
		if d.state == stEnd {
			return n, true
		}
	}
	return n, false
}

func (d *dataScanner) step(c byte) {
	switch d.state {
	case stBOL, stBOLBare:
		clean := d.state == stBOL
		switch c {
		case '.':
			if clean {
				d.state = stDot
			} else {
				d.state = stDotBare
			}
		case '\r':
			d.state = stCR
		case '\n':
			d.facts.BareLF = true
			d.newline(true)
		default:
			d.char(c)
		}
	case stData:
		switch c {
		case '\r':
			d.state = stCR
		case '\n':
			d.facts.BareLF = true
			d.newline(true)
		default:
			d.char(c)
		}
	case stCR:
		if c == '\n' {
			d.newline(false)
			return
		}
		d.facts.BareCR = true
		d.newline(true)
		d.step(c)
	case stDot:
		switch c {
		case '\r':
			d.state = stDotCR
		case '\n': // <CRLF>.<LF>
			d.facts.BadTerminator, d.facts.BareLF = true, true
			d.dotLine()
			d.newline(true)
		default:
			if !d.dotted {
				d.char('.')
			}
			d.char(c) // RFC 5321 §4.5.2: drop the stuffed dot
		}
	case stDotCR:
		if c == '\n' {
			if d.dotted {
				d.state = stEnd
				return
			}
			d.char('.')
			d.newline(false)
			return
		}
		// <CRLF>.<CR>x
		d.facts.BadTerminator, d.facts.BareCR = true, true
		d.dotLine()
		d.newline(true)
		d.step(c)
	case stDotBare:
		switch c {
		case '\r':
			d.state = stDotCRBare
		case '\n': // <LF>.<LF>, <CR>.<LF>
			d.facts.BadTerminator, d.facts.BareLF = true, true
			d.char('.')
			d.newline(true)
		default:
			d.char('.')
			d.char(c)
		}
	case stDotCRBare:
		d.facts.BadTerminator = true
		d.char('.')
		if c == '\n' { // <LF>.<CR><LF>, <CR>.<CR><LF>
			d.newline(false)
			return
		}
		// <LF>.<CR>x, <CR>.<CR>x
		d.facts.BareCR = true
		d.newline(true)
		d.step(c)
	}
}

// dotLine writes the content of a lone-dot line that did not end the data.
// In DATA the dot was stuffing; in BDAT it is content.
func (d *dataScanner) dotLine() {
	if !d.dotted {
		d.char('.')
	}
}

func (d *dataScanner) char(c byte) {
	d.lineLen++
	if d.lineLen+2 > maxTextLine {
		d.facts.LongLine = true
	}
	d.emit(c)
	d.state = stData
}

// finish ends BDAT content: a dangling CR or dot is written out, and the
// content is closed with CRLF so that it can be forwarded with DATA.
func (d *dataScanner) finish() error {
	switch d.state {
	case stCR:
		d.facts.BareCR = true
		d.newline(true)
	case stDot, stDotBare:
		d.char('.')
	case stDotCR, stDotCRBare:
		d.facts.BareCR = true
		d.char('.')
		d.newline(true)
	}
	if d.state == stData {
		d.newline(false)
	}
	d.flush()
	return d.werr
}

// dataSource is where content comes from: next returns a reader holding
// at least one octet, waiting for the client if it must; buffered is how
// many octets it holds now. The session is one (it gives its buffer back
// while it waits); bufSource, a plain bufio.Reader, is another.
type dataSource interface {
	buffered() int
	next() (*bufio.Reader, error)
}

// bufSource is a bufio.Reader as a dataSource.
type bufSource struct{ r *bufio.Reader }

func (b bufSource) buffered() int { return b.r.Buffered() }

func (b bufSource) next() (*bufio.Reader, error) {
	_, err := b.r.Peek(1)
	return b.r, err
}

// fill returns src's reader with octets in it. Before a read that may
// have to wait for the client, it passes on what is staged and gives the
// staging buffer back: a session that stalls in the middle of a message
// then holds no buffer of its own, only its content, which is in the
// spool's account.
func (d *dataScanner) fill(src dataSource) (*bufio.Reader, error) {
	if src.buffered() == 0 && d.out != nil {
		d.flush()
		d.release()
	}
	r, err := src.next()
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return r, err
}

// readData reads DATA content from src up to and including <CRLF>.<CRLF>.
func (d *dataScanner) readData(src dataSource) error {
	for {
		r, err := d.fill(src)
		if err != nil {
			return err
		}
		buf, _ := r.Peek(r.Buffered())
		n, done := d.scan(buf)
		_, _ = r.Discard(n)
		if done {
			d.flush()
			return d.werr
		}
	}
}

// readChunk reads exactly size octets of a BDAT chunk from src.
func (d *dataScanner) readChunk(src dataSource, size int64) error {
	for size > 0 {
		r, err := d.fill(src)
		if err != nil {
			return err
		}
		buf, _ := r.Peek(r.Buffered())
		if int64(len(buf)) > size {
			buf = buf[:size]
		}
		n, _ := d.scan(buf)
		_, _ = r.Discard(n)
		size -= int64(n)
	}
	d.flush()
	return d.werr
}
