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
	buf    *bufPipe
	cancel context.CancelFunc
	done   chan struct{}
	res    Result // set before done is closed
	closed bool
}

// NewVerifier starts verifying a message that will be written to the
// returned Verifier. ctx bounds the verification: when it ends, key lookups
// fail with temperror and the goroutine stops.
func NewVerifier(ctx context.Context, o Options) *Verifier {
	ctx, cancel := context.WithCancel(ctx)
	v := &Verifier{buf: newBufPipe(), cancel: cancel, done: make(chan struct{})}
	// If ctx ends before Close, stop waiting for input that may never come.
	stop := context.AfterFunc(ctx, v.buf.abort)
	go func() {
		defer close(v.done)
		v.res = Verify(ctx, v.buf, o)
		stop()
		v.buf.readerDone()
	}()
	return v
}

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("dkim: write after close")

// Write adds p to the message. It copies p and returns at once. After
// Abort, or once verification no longer needs input, the data is dropped
// and Write still succeeds, so a Verifier can sit in an io.MultiWriter next
// to the spool without ever failing it.
func (v *Verifier) Write(p []byte) (int, error) {
	return v.buf.Write(p)
}

// Close ends the message, waits for verification to finish and returns its
// result. Calling it again returns the same result. If Abort (or the end of
// the context) cut the message short, the result is temperror with no
// signatures: nothing can be said of a message not seen whole.
func (v *Verifier) Close() Result {
	if !v.closed {
		v.closed = true
		v.buf.closeWrite()
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
	v.buf.abort()
	v.cancel()
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
