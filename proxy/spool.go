package proxy

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"mxguard/internal/membudget"
)

// Spool holds message content while a transaction runs. Content up to
// Threshold octets stays in memory, as long as Memory, the budget shared by
// every message of the process, has room for it; beyond either the message
// goes to a temporary file in Dir, so that neither a session's memory nor
// the process's grows with the size or the number of messages. Nothing
// outlives the transaction: Message.Close removes the file.
type Spool struct {
	// Dir is where large messages are written; "" means os.TempDir().
	Dir string
	// Threshold is the largest message kept in memory, in octets.
	Threshold int
	// Memory is the process-wide budget for content held in memory; nil
	// means none (Threshold alone bounds each message).
	Memory *membudget.Budget
}

// chunkSize is the unit in which message content is held in memory and
// reserved from the budget. Fixed-size chunks are recycled through one
// pool and never copied to grow, so the memory held for content (in use
// and pooled) stays within the budget; 16 KiB holds the header section of
// nearly every message, which Head can then hand over without a copy.
const chunkSize = 16 << 10

type chunk = [chunkSize]byte

// chunkPool recycles chunks between messages. A chunk is allocated only
// when the pool has none to give, that is when the chunks in use are all
// there are: the pool never holds more than the budget allowed in use, and
// the garbage collector empties it when the chunks stay unused.
var chunkPool = sync.Pool{New: func() any { return new(chunk) }}

// NewMessage returns an empty message that spills to the spool when large.
func (s *Spool) NewMessage() *Message {
	return &Message{spool: s}
}

// Message is the content of one message being received or forwarded.
// It is written once, then read any number of times with Reader.
type Message struct {
	spool *Spool
	size  int64
	err   error
	// mu guards chunks, file and closed against a check that overran its
	// deadline and asks for a Reader while the transaction ends. The
	// content itself is written by one goroutine before any reader exists.
	mu     sync.Mutex
	chunks []*chunk // content in memory: chunks[i] holds octets i*chunkSize on
	file   *os.File
	closed bool
	// readers counts the in-memory Readers that have not reached the end.
	// A check that overran its deadline may still be reading when the
	// transaction ends; the chunks it reads are then left to the garbage
	// collector rather than handed to another message.
	readers atomic.Int32
	// wbuf gathers a spilled message's small writes into fewer system
	// calls. It is a chunk of the budget, taken only when there is room:
	// a session that waits with a spilled message half received holds no
	// memory outside the budget.
	wbuf *chunk
	wlen int
}

// errClosed is what a closed message answers.
var errClosed = errors.New("spool: message already closed")

// Write appends p, moving the content to a file once it passes the
// threshold or the memory budget has no room for it.
func (m *Message) Write(p []byte) (int, error) {
	if m.err != nil {
		return 0, m.err
	}
	if m.closed {
		return 0, errClosed
	}
	if m.file == nil {
		if m.size+int64(len(p)) <= int64(m.spool.Threshold) && m.reserve(m.size+int64(len(p))) {
			m.copyIn(p)
			return len(p), nil
		}
		if err := m.spill(); err != nil {
			m.err = err
			return 0, err
		}
	}
	if m.wbuf == nil && len(p) < chunkSize && m.spool.Memory.Reserve(chunkSize) {
		m.wbuf = chunkPool.Get().(*chunk)
	}
	if m.wbuf != nil && m.wlen+len(p) > chunkSize {
		if err := m.flushFile(); err != nil {
			return 0, err
		}
	}
	if m.wbuf != nil && len(p) < chunkSize {
		m.wlen += copy(m.wbuf[m.wlen:], p)
		m.size += int64(len(p))
		return len(p), nil
	}
	n, err := m.file.Write(p)
	m.size += int64(n)
	if err != nil {
		m.err = fmt.Errorf("spool: write: %w", err)
	}
	return n, m.err
}

// flushFile writes what wbuf holds to the spool file.
func (m *Message) flushFile() error {
	if m.wlen > 0 {
		if _, err := m.file.Write(m.wbuf[:m.wlen]); err != nil {
			m.err = fmt.Errorf("spool: write: %w", err)
		}
		m.wlen = 0
	}
	return m.err
}

// dropWbuf gives the write buffer back, without writing it.
func (m *Message) dropWbuf() {
	if m.wbuf != nil {
		chunkPool.Put(m.wbuf)
		m.spool.Memory.Release(chunkSize)
		m.wbuf, m.wlen = nil, 0
	}
}

// reserve makes room in memory for size octets of content, one chunk at a
// time from the budget; it reports false when the budget has no room.
func (m *Message) reserve(size int64) bool {
	for int64(len(m.chunks))*chunkSize < size {
		if !m.spool.Memory.Reserve(chunkSize) {
			return false
		}
		m.chunks = append(m.chunks, chunkPool.Get().(*chunk))
	}
	return true
}

// copyIn appends p to the content in memory; reserve made room for it.
func (m *Message) copyIn(p []byte) {
	for len(p) > 0 {
		c := m.chunks[m.size/chunkSize][m.size%chunkSize:]
		n := copy(c, p)
		p = p[n:]
		m.size += int64(n)
	}
}

// spill moves the content in memory to a file in the spool directory and
// gives its memory back. On failure the memory is given back too: the
// message is lost to this transaction, which must answer 4xx.
func (m *Message) spill() error {
	defer m.release()
	f, err := os.CreateTemp(m.spool.Dir, "mxguard-*.eml")
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	for i, c := range m.chunks {
		n := min(m.size-int64(i)*chunkSize, chunkSize)
		if n <= 0 {
			break
		}
		if _, err := f.Write(c[:n]); err != nil {
			f.Close()
			os.Remove(f.Name())
			return fmt.Errorf("spool: write: %w", err)
		}
	}
	m.mu.Lock()
	m.file = f
	m.mu.Unlock()
	return nil
}

// Size is the number of octets written.
func (m *Message) Size() int64 { return m.size }

// Spilled reports whether the content is in a file rather than in memory.
func (m *Message) Spilled() bool { return m.file != nil }

// Reader returns a reader over the whole content from the start. Readers are
// independent of one another.
func (m *Message) Reader() (io.Reader, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return nil, m.err
	}
	if m.closed {
		return nil, errClosed
	}
	if m.file != nil {
		// Writing is over once the content is read.
		if m.wbuf != nil {
			err := m.flushFile()
			m.dropWbuf()
			if err != nil {
				return nil, err
			}
		}
		return io.NewSectionReader(m.file, 0, m.size), nil
	}
	if m.size == 0 {
		return &memReader{}, nil
	}
	m.readers.Add(1)
	return &memReader{m: m, chunks: m.chunks, size: m.size}, nil
}

// Head returns the first n octets of the content, or all of it when it is
// shorter. When they lie in the first chunk in memory it is that chunk
// itself, not a copy: the caller must not modify it, nor keep it past Close.
func (m *Message) Head(n int) ([]byte, error) {
	n = int(min(int64(n), m.size))
	if m.file == nil && !m.closed && m.err == nil {
		if n == 0 {
			return nil, nil
		}
		if n <= chunkSize {
			return m.chunks[0][:n:n], nil
		}
	}
	r, err := m.Reader()
	if err != nil {
		return nil, err
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("spool: read: %w", err)
	}
	return b, nil
}

// Close discards the content, gives its memory back and removes the spool
// file, if any.
func (m *Message) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.release()
	m.dropWbuf()
	if m.file == nil {
		return nil
	}
	name := m.file.Name()
	err := m.file.Close()
	if rerr := os.Remove(name); rerr != nil && err == nil {
		err = rerr
	}
	m.file = nil
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
}

// release gives the chunks back to the budget and, unless a reader may
// still be at them, to the pool. It is called by the writing goroutine
// before any reader exists, or with mu held.
func (m *Message) release() {
	if len(m.chunks) == 0 {
		return
	}
	if m.readers.Load() == 0 {
		for _, c := range m.chunks {
			chunkPool.Put(c)
		}
	}
	m.spool.Memory.Release(int64(len(m.chunks)) * chunkSize)
	m.chunks = nil
}

// memReader reads content held in memory. It keeps its own view of the
// chunks, which are not written again once a reader exists.
type memReader struct {
	m      *Message
	chunks []*chunk
	size   int64
	off    int64
}

func (r *memReader) Read(p []byte) (int, error) {
	if r.off >= r.size {
		r.done()
		return 0, io.EOF
	}
	c := r.chunks[r.off/chunkSize][r.off%chunkSize:]
	c = c[:min(int64(len(c)), r.size-r.off)]
	n := copy(p, c)
	r.off += int64(n)
	if r.off >= r.size {
		r.done()
	}
	return n, nil
}

// WriteTo hands the chunks to w as they are, sparing a copy through a
// buffer on the forward path.
func (r *memReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for r.off < r.size {
		c := r.chunks[r.off/chunkSize][r.off%chunkSize:]
		c = c[:min(int64(len(c)), r.size-r.off)]
		n, err := w.Write(c)
		r.off += int64(n)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
	r.done()
	return total, nil
}

// done notes, once, that the reader reached the end.
func (r *memReader) done() {
	if r.m != nil {
		r.m.readers.Add(-1)
		r.m = nil
	}
}
