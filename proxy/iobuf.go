package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
)

// A session holds a read or write buffer only while it has bytes in it:
// an idle session (waiting for its next command, most of a session's life
// on a busy MX) holds neither, so that ten thousand of them cost their
// goroutines and sockets, not 8 KiB of buffers each. Buffers come from
// these pools when bytes arrive or a reply is written, and go back when
// they are empty.
//
// A message's content is read into larger buffers than commands are: a
// read takes what the socket holds, up to the buffer's size, so 32 KiB
// buffers take a 100 KiB message in four system calls rather than
// twenty-five. The wait for more content holds no buffer either (see
// next), so a client that stalls in the middle of a message does not
// keep one.
var (
	cmdReaders   = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, cmdReadSize) }}
	dataReaders  = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, dataReadSize) }}
	replyWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4096) }}
)

const (
	cmdReadSize  = 4096
	dataReadSize = 32 << 10
)

// errWouldBlock is connReader's answer, in its non-blocking mode, when the
// socket has nothing to read.
var errWouldBlock = errors.New("proxy: read would block")

// connReader is what a session's bufio.Reader reads from: the connection,
// or, while waitInput runs, the socket's descriptor read without blocking,
// so that the wait for the client happens with no buffer taken.
type connReader struct {
	c  net.Conn
	fd int // >= 0 only inside waitInput's callback
	// pending are octets read before, into a buffer since given back
	// (see endData): they come first.
	pending []byte
}

// Read reads what is pending, or from the connection, or from fd without
// blocking.
func (r *connReader) Read(p []byte) (int, error) {
	if len(r.pending) > 0 {
		n := copy(p, r.pending)
		r.pending = r.pending[n:]
		if len(r.pending) == 0 {
			r.pending = nil
		}
		return n, nil
	}
	if r.fd < 0 {
		return r.c.Read(p)
	}
	for {
		n, err := syscall.Read(r.fd, p)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EAGAIN):
			return 0, errWouldBlock
		case err != nil:
			return 0, &net.OpError{Op: "read", Net: "tcp", Err: err}
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// reader returns the session's bufio.Reader, taking one from the pool if
// it has none: a message-sized one while content is read (inData), else
// a command-sized one. A reader in use keeps its size until it is empty.
func (s *session) reader() *bufio.Reader {
	if s.r == nil {
		if s.inData {
			s.r = dataReaders.Get().(*bufio.Reader)
		} else {
			s.r = cmdReaders.Get().(*bufio.Reader)
		}
		s.r.Reset(&s.src)
	}
	return s.r
}

// putReader gives r back to the pool of its size.
func putReader(r *bufio.Reader) {
	r.Reset(nil)
	if r.Size() == dataReadSize {
		dataReaders.Put(r)
	} else {
		cmdReaders.Put(r)
	}
}

// next is the data scanner's source (dataSource): the session's reader
// with at least one octet in it, waiting for the client, with no buffer
// held, when it has sent nothing more.
func (s *session) next() (*bufio.Reader, error) {
	if s.buffered() == 0 {
		// An empty reader of the other size (a command's, at the start of
		// a message) goes back, so the next read is sized for content.
		s.releaseReader()
	}
	if err := s.waitInput(); err != nil {
		return nil, err
	}
	return s.reader(), nil
}

// buffered is how many bytes the client sent that no command has read yet.
func (s *session) buffered() int {
	n := len(s.src.pending)
	if s.r != nil {
		n += s.r.Buffered()
	}
	return n
}

// discardBuffered drops every byte the client sent that no command has
// read yet.
func (s *session) discardBuffered() {
	if s.r != nil {
		_, _ = s.r.Discard(s.r.Buffered())
	}
	s.src.pending = nil
}

// endData ends the reading of a message's content: the message-sized
// reader goes back, and what it holds past the content's end (commands
// pipelined behind the dot) is read next through a command-sized one, so
// that a client cannot keep the larger buffer by leaving a command half
// sent.
func (s *session) endData() {
	s.inData = false
	r := s.r
	if r == nil || r.Size() != dataReadSize {
		return
	}
	if n := r.Buffered(); n > 0 {
		b, _ := r.Peek(n)
		s.src.pending = append(bytes.Clone(b), s.src.pending...)
	}
	s.r = nil
	putReader(r)
}

// releaseReader gives the read buffer back when it holds no unread byte:
// pipelined commands stay where they are.
func (s *session) releaseReader() {
	if s.r == nil || s.r.Buffered() > 0 || s.raw == nil {
		return
	}
	putReader(s.r)
	s.r = nil
}

// waitInput waits, holding no read buffer, until the client sends
// something, then reads what is there into a buffer from the pool. It
// costs no system call more than a plain read: the read is tried, and
// only if the socket has nothing is the buffer given back for the wait
// (the runtime's poller wakes the session when bytes arrive). The read
// deadline in force bounds the wait. Without a raw socket (TLS, a PROXY
// protocol wrapper) the session keeps its buffer and reads as usual.
func (s *session) waitInput() error {
	if s.raw == nil || s.buffered() > 0 {
		_, err := s.reader().Peek(1)
		return err
	}
	if s.readable == nil {
		// Made once: a closure per wait would cost an allocation per
		// command.
		s.readable = s.tryRead
	}
	s.perr = nil
	if err := s.raw.Read(s.readable); err != nil {
		return err
	}
	return s.perr
}

// tryRead is waitInput's callback, run with the socket's descriptor: it
// reads what is there, or gives the buffer back and asks for a wait.
func (s *session) tryRead(fd uintptr) bool {
	s.src.fd = int(fd)
	_, s.perr = s.reader().Peek(1)
	s.src.fd = -1
	if errors.Is(s.perr, errWouldBlock) {
		s.releaseReader()
		return false
	}
	return true
}

// writer returns the session's bufio.Writer, taking one from the pool if
// it has none.
func (s *session) writer() *bufio.Writer {
	if s.w == nil {
		s.w = replyWriters.Get().(*bufio.Writer)
		s.w.Reset(s.wconn)
	}
	return s.w
}

// releaseWriter gives the write buffer back once everything in it was
// written (or could not be: the session ends then).
func (s *session) releaseWriter() {
	if s.w == nil {
		return
	}
	s.w.Reset(nil)
	replyWriters.Put(s.w)
	s.w = nil
}

// dropBuffers gives both buffers back at the end of the session, whatever
// they still hold: the client has gone.
func (s *session) dropBuffers() {
	if s.r != nil {
		putReader(s.r)
		s.r = nil
	}
	s.releaseWriter()
}
