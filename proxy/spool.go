package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// Spool holds message content while a transaction runs. Content up to
// Threshold octets stays in memory; beyond it the message goes to a temporary
// file in Dir, so that a session's memory does not grow with the size of its
// message. Nothing outlives the transaction: Message.Close removes the file.
type Spool struct {
	// Dir is where large messages are written; "" means os.TempDir().
	Dir string
	// Threshold is the largest message kept in memory, in octets.
	Threshold int
}

// bufPool recycles in-memory message buffers between transactions, so a busy
// server does not allocate and grow a fresh buffer for every message.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// NewMessage returns an empty message that spills to the spool when large.
func (s *Spool) NewMessage() *Message {
	b := bufPool.Get().(*bytes.Buffer)
	b.Reset()
	return &Message{spool: s, mem: b}
}

// Message is the content of one message being received or forwarded.
// It is written once, then read any number of times with Reader.
type Message struct {
	spool *Spool
	mem   *bytes.Buffer
	file  *os.File
	fileW *bufio.Writer
	size  int64
	err   error
}

// Write appends p, moving the content to a file once it passes the threshold.
func (m *Message) Write(p []byte) (int, error) {
	if m.err != nil {
		return 0, m.err
	}
	m.size += int64(len(p))
	if m.file == nil && m.mem.Len()+len(p) <= m.spool.Threshold {
		return m.mem.Write(p)
	}
	if m.file == nil {
		if err := m.spill(); err != nil {
			m.err = err
			return 0, err
		}
	}
	n, err := m.fileW.Write(p)
	if err != nil {
		m.err = fmt.Errorf("spool: write: %w", err)
	}
	return n, m.err
}

func (m *Message) spill() error {
	f, err := os.CreateTemp(m.spool.Dir, "mxguard-*.eml")
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	m.file = f
	m.fileW = bufio.NewWriterSize(f, 64<<10)
	if _, err := m.fileW.Write(m.mem.Bytes()); err != nil {
		return fmt.Errorf("spool: write: %w", err)
	}
	m.release()
	return nil
}

// Size is the number of octets written.
func (m *Message) Size() int64 { return m.size }

// Spilled reports whether the content is in a file rather than in memory.
func (m *Message) Spilled() bool { return m.file != nil }

// Reader returns a reader over the whole content from the start. Readers are
// independent of one another.
func (m *Message) Reader() (io.Reader, error) {
	if m.err != nil {
		return nil, m.err
	}
	if m.file == nil {
		if m.mem == nil {
			return nil, errors.New("spool: message already closed")
		}
		return bytes.NewReader(m.mem.Bytes()), nil
	}
	if err := m.fileW.Flush(); err != nil {
		return nil, fmt.Errorf("spool: flush: %w", err)
	}
	return io.NewSectionReader(m.file, 0, m.size), nil
}

// Head returns the first n octets of the content, or all of it when it is
// shorter. For content held in memory it is the buffer itself, not a copy:
// the caller must not modify it, nor keep it past Close.
func (m *Message) Head(n int) ([]byte, error) {
	if m.file == nil && m.mem != nil && m.err == nil {
		b := m.mem.Bytes()
		n = min(n, len(b))
		return b[:n:n], nil
	}
	r, err := m.Reader()
	if err != nil {
		return nil, err
	}
	b := make([]byte, min(int64(n), m.size))
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("spool: read: %w", err)
	}
	return b, nil
}

// Close discards the content and removes the spool file, if any.
func (m *Message) Close() error {
	m.release()
	if m.file == nil {
		return nil
	}
	name := m.file.Name()
	err := m.file.Close()
	if rerr := os.Remove(name); rerr != nil && err == nil {
		err = rerr
	}
	m.file, m.fileW = nil, nil
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
}

func (m *Message) release() {
	if m.mem == nil {
		return
	}
	// A buffer that grew far past the threshold would pin that memory in
	// the pool; let the collector have it instead.
	if m.mem.Cap() <= 2*m.spool.Threshold+64<<10 {
		bufPool.Put(m.mem)
	}
	m.mem = nil
}
