package dkim

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
)

// Verifier verifies a message while it arrives: the proxy writes the DATA
// (or BDAT) content to it as it comes in, so verification and its key
// lookups overlap the transfer, and Close returns the same Result that
// Verify would give for the whole message.
//
// Write never waits for verification. A bare io.Pipe would not do: each
// pipe write waits until the reader has taken all of it, and go-msgauth
// looks the key up before it reads the body, so the SMTP transfer would
// stall for as long as DNS does. Instead, writes go to a buffer that a
// goroutine running Verify drains; the buffer holds at most the part of the
// message not yet read, which the proxy's message size limit bounds.
//
// A Verifier is used by one writer; Close and Abort may be called from
// another goroutine than Write, but not concurrently with each other.
type Verifier struct {
	// The goroutine starts only once the header section shows a signature
	// may be there: an unsigned message costs neither a goroutine nor a
	// copy of its body. ctx and o wait for that start.
	ctx context.Context
	o   Options

	mu    sync.Mutex
	state verifierState
	head  []byte // input held while state is collecting
	hpos  int    // where the line being collected starts in head

	buf    *bufPipe
	cancel context.CancelFunc
	done   chan struct{}
	res    Result // set before done is closed
	closed bool
}

type verifierState int

const (
	collecting verifierState = iota // reading the header section
	running                         // Verify runs on the goroutine
	unsigned                        // the header section has no signature
	abandoned                       // aborted before the goroutine started
)

// maxHeld bounds the header section held before deciding; a longer one
// starts verification anyway, which then reads it as usual.
const maxHeld = 64 << 10

// NewVerifier starts verifying a message that will be written to the
// returned Verifier. ctx bounds the verification: when it ends, key lookups
// fail with temperror and the goroutine stops.
func NewVerifier(ctx context.Context, o Options) *Verifier {
	return &Verifier{ctx: ctx, o: o}
}

// start runs Verify on its goroutine, fed what was held. v.mu is held.
func (v *Verifier) start() {
	ctx, cancel := context.WithCancel(v.ctx)
	v.buf, v.cancel, v.done = newBufPipe(), cancel, make(chan struct{})
	v.state = running
	// If ctx ends before Close, stop waiting for input that may never come.
	stop := context.AfterFunc(ctx, v.buf.abort)
	o := v.o
	go func() {
		defer close(v.done)
		v.res = Verify(ctx, v.buf, o)
		stop()
		v.buf.readerDone()
	}()
	_, _ = v.buf.Write(v.head)
	v.head = nil
}

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("dkim: write after close")

// Write adds p to the message. It copies p and returns at once. After
// Abort, or once verification no longer needs input, the data is dropped
// and Write still succeeds, so a Verifier can sit in an io.MultiWriter next
// to the spool without ever failing it.
func (v *Verifier) Write(p []byte) (int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return 0, ErrClosed
	}
	switch v.state {
	case running:
		return v.buf.Write(p)
	case collecting:
		// The input so far; p itself while nothing is held, which spares
		// a copy when the header section ends within the first write.
		data := p
		if len(v.head) > 0 {
			v.head = append(v.head, p...)
			data = v.head
		}
		end, ok := headerEnd(data, &v.hpos)
		switch {
		case ok && !maySign(data[:end]):
			v.state, v.head = unsigned, nil
		case ok || len(data) > maxHeld:
			v.head = data // start copies it into the pipe
			v.start()
		case len(v.head) == 0:
			v.head = append(v.head, p...)
		}
	}
	return len(p), nil
}

// headerEnd finds the empty line that ends the header section in data,
// resuming at *pos, where the last call stopped.
func headerEnd(data []byte, pos *int) (int, bool) {
	for {
		i := bytes.IndexByte(data[*pos:], '\n')
		if i < 0 {
			return 0, false
		}
		line := data[*pos : *pos+i+1]
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return *pos, true
		}
		*pos += i + 1
	}
}

// maySign reports whether a header section may hold a DKIM-Signature
// field: it names one, in any case, or holds non-ASCII octets, where
// Unicode case folding (which go-msgauth's field matching uses, like
// ours) could make another spelling match.
func maySign(header []byte) bool {
	const name = "dkim-signature"
	for i, c := range header {
		if c >= 0x80 {
			return true
		}
		if (c == 'd' || c == 'D') && len(header)-i >= len(name) && asciiEqualFold(header[i:i+len(name)], name) {
			return true
		}
	}
	return false
}

func asciiEqualFold(b []byte, lower string) bool {
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// Close ends the message, waits for verification to finish and returns its
// result. Calling it again returns the same result. If Abort (or the end of
// the context) cut the message short, the result is temperror with no
// signatures: nothing can be said of a message not seen whole.
func (v *Verifier) Close() Result {
	v.mu.Lock()
	if !v.closed {
		v.closed = true
		if v.state == collecting {
			// The message ended within its header section.
			if maySign(v.head) {
				v.start()
			} else {
				v.state, v.head = unsigned, nil
			}
		}
		if v.state == running {
			v.buf.closeWrite()
		}
	}
	state := v.state
	v.mu.Unlock()
	switch state {
	case unsigned:
		return Result{Result: None}
	case abandoned:
		return Result{Result: Temperror}
	}
	<-v.done
	v.cancel()
	if v.buf.wasTruncated() {
		return Result{Result: Temperror}
	}
	return v.res
}

// Abort stops verification: the message was refused or the session ended.
// It does not wait: the goroutine ends as soon as any lookup in flight
// returns, which is at once since their context is cancelled here. After
// Close it changes nothing.
func (v *Verifier) Abort() {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch v.state {
	case collecting:
		v.state, v.head = abandoned, nil
	case running:
		v.buf.abort()
		v.cancel()
	}
}

// bufPipe is an in-memory pipe whose writes never block. Its reader sees
// io.EOF at the end of the input or after abort, never another error: a
// reader error mid-body would make go-msgauth's parallel path leak its
// goroutines, and an aborted result is thrown away anyway.
type bufPipe struct {
	mu        sync.Mutex
	cond      sync.Cond
	data      bytes.Buffer
	wclosed   bool // no more input: the reader gets EOF after the data
	aborted   bool // the reader gets EOF now; input is dropped
	truncated bool // the reader got EOF from abort, not from the end of input
	rdone     bool // the reader is gone; input is dropped
}

func newBufPipe() *bufPipe {
	p := &bufPipe{}
	p.cond.L = &p.mu
	return p
}

func (p *bufPipe) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.wclosed {
		return 0, ErrClosed
	}
	if p.aborted || p.rdone {
		return len(b), nil
	}
	p.data.Write(b)
	p.cond.Signal()
	return len(b), nil
}

func (p *bufPipe) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.data.Len() == 0 && !p.wclosed && !p.aborted {
		p.cond.Wait()
	}
	if p.aborted {
		p.truncated = true
		return 0, io.EOF
	}
	if p.data.Len() == 0 {
		return 0, io.EOF
	}
	return p.data.Read(b)
}

func (p *bufPipe) closeWrite() {
	p.mu.Lock()
	p.wclosed = true
	p.cond.Signal()
	p.mu.Unlock()
}

func (p *bufPipe) abort() {
	p.mu.Lock()
	p.aborted = true
	p.data = bytes.Buffer{} // release the memory now
	p.cond.Signal()
	p.mu.Unlock()
}

func (p *bufPipe) readerDone() {
	p.mu.Lock()
	p.rdone = true
	p.data = bytes.Buffer{}
	p.mu.Unlock()
}

func (p *bufPipe) wasTruncated() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.truncated
}
