// Package clamav asks a running clamd, ClamAV's scanning daemon, whether a
// message carries malware.
//
// The message goes to clamd with its INSTREAM command: "zINSTREAM\0",
// then the message in chunks, each preceded by its length as four bytes in
// network order, then a chunk of length zero; clamd answers one line,
// "stream: OK", "stream: NAME FOUND" or an error ending in "ERROR"
// ("INSTREAM size limit exceeded. ERROR" when the stream is longer than
// its StreamMaxLength). clamd unpacks MIME, archives (zip, nested zips)
// and documents itself.
//
// Every scan has its own connection. clamd is local (a unix socket or
// loopback), so a connection costs tens of microseconds against
// milliseconds of scanning; clamd's sessions (IDSESSION) would save that
// at the price of a connection whose state one failed scan leaves unknown
// for the next.
package clamav

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"mxguard/internal/membudget"
)

// ChunkSize is the size of the chunks the message is sent in: large
// enough that the four-byte headers cost nothing, small enough that every
// scan in flight holds little (clamd's own default StreamMaxLength is
// 25M; its chunk limit is the same).
const ChunkSize = 64 << 10

// MaxReplyBytes bounds what is read of clamd's answer: one line per
// signature found, each a name of a few dozen bytes.
const MaxReplyBytes = 16 << 10

// ErrSizeLimit is clamd's refusal of a stream longer than its
// StreamMaxLength (clamd.conf), which must be at least
// limits.max_message_bytes.
var ErrSizeLimit = errors.New("clamd refused the stream as longer than its StreamMaxLength (clamd.conf): set it to at least limits.max_message_bytes")

// Reply is clamd's answer to a scan.
type Reply struct {
	// Infected is set when clamd found at least one signature.
	Infected bool
	// Signatures are the names of the signatures found, as clamd gives
	// them (Eicar-Test-Signature, Win.Trojan.Agent-123456), in its order.
	Signatures []string
}

// SmallChunkSize is the chunk size of a scan that the memory budget has no
// room for: slower, since it takes more writes, but it still scans.
const SmallChunkSize = 4 << 10

// Client talks to one clamd.
type Client struct {
	// Network is "unix" or "tcp", and Address the socket's path or
	// host:port (see ParseAddress).
	Network, Address string
	// Memory, when set, is charged with each scan's chunk buffer while
	// the scan runs: thousands of sessions ending their DATA at once
	// would otherwise hold ChunkSize each. A scan it has no room for
	// sends SmallChunkSize chunks instead.
	Memory *membudget.Budget
}

// NewClient is a client for the address as the config writes it
// (ParseAddress).
func NewClient(address string) (*Client, error) {
	network, addr, err := ParseAddress(address)
	if err != nil {
		return nil, err
	}
	return &Client{Network: network, Address: addr}, nil
}

// String names the clamd, as the config writes it, for details and logs.
func (c *Client) String() string {
	if c.Network == "unix" {
		return "unix:" + c.Address
	}
	return c.Address
}

// ParseAddress reads a clamd address: "unix:/run/clamav/clamd.ctl" (an
// absolute path: clamd's LocalSocket) or "host:port" (its TCPAddr and
// TCPSocket), such as "127.0.0.1:3310".
func ParseAddress(s string) (network, addr string, err error) {
	if path, ok := strings.CutPrefix(s, "unix:"); ok {
		if !strings.HasPrefix(path, "/") {
			return "", "", fmt.Errorf("clamav: %q: a unix socket needs an absolute path, like unix:/run/clamav/clamd.ctl", s)
		}
		return "unix", path, nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" || port == "" {
		return "", "", fmt.Errorf("clamav: %q: expected unix:/path/to/clamd.ctl or host:port", s)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 || strings.Trim(port, "0123456789") != "" {
		return "", "", fmt.Errorf("clamav: %q: the port must be a number in 1-65535", s)
	}
	return "tcp", s, nil
}

// buffers holds the chunk buffers of scans in flight.
var buffers = sync.Pool{New: func() any { b := make([]byte, len(command)+4+ChunkSize+4); return &b }}

// dial connects to clamd and makes ctx's end (its deadline, or a cancel)
// end every read and write; stop undoes the latter.
func (c *Client) dial(ctx context.Context) (conn net.Conn, stop func() bool, err error) {
	var d net.Dialer
	conn, err = d.DialContext(ctx, c.Network, c.Address)
	if err != nil {
		return nil, nil, fmt.Errorf("clamd %s: %w", c, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop = context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	return conn, stop, nil
}

// Scan sends what r reads to clamd and returns its answer. It reads r as
// it sends (nothing is held beyond one chunk), under ctx. An error is any
// answer that is not a verdict: no connection, a timeout, clamd's size
// limit (ErrSizeLimit), a scan error, a reply it cannot read.
func (c *Client) Scan(ctx context.Context, r io.Reader) (Reply, error) {
	conn, stop, err := c.dial(ctx)
	if err != nil {
		return Reply{}, err
	}
	defer conn.Close()
	defer stop()
	sendErr := c.send(conn, r)
	if sendErr != nil && !isPeerGone(sendErr) {
		return Reply{}, fmt.Errorf("clamd %s: %w", c, sendErr)
	}
	// clamd that stops reading (its size limit) answers first, then
	// closes: its answer says why better than the broken pipe.
	raw, readErr := io.ReadAll(io.LimitReader(conn, MaxReplyBytes+1))
	if len(raw) > MaxReplyBytes {
		return Reply{}, fmt.Errorf("clamd %s: a reply longer than %d bytes", c, MaxReplyBytes)
	}
	rep, perr := ParseReply(raw)
	switch {
	case perr == nil && sendErr == nil:
		return rep, nil
	case perr != nil && len(bytes.TrimSpace(bytes.Trim(raw, "\x00"))) > 0:
		return Reply{}, fmt.Errorf("clamd %s: %w", c, perr)
	case sendErr != nil:
		return Reply{}, fmt.Errorf("clamd %s: sending the message: %w", c, sendErr)
	case readErr != nil:
		return Reply{}, fmt.Errorf("clamd %s: reading the reply: %w", c, readErr)
	}
	return Reply{}, fmt.Errorf("clamd %s: %w", c, perr)
}

// command starts an INSTREAM scan; the "z" form has clamd end its reply
// with NUL.
const command = "zINSTREAM\x00"

// send writes the INSTREAM command and r in chunks, then the zero-length
// chunk that ends the stream. The command goes out with the first chunk
// and the end with the last: a message shorter than a chunk is one write.
func (c *Client) send(w io.Writer, r io.Reader) error {
	var buf []byte
	if size := int64(len(command) + 4 + ChunkSize + 4); c.Memory.Reserve(size) {
		defer c.Memory.Release(size)
		bp := buffers.Get().(*[]byte)
		defer buffers.Put(bp)
		buf = *bp
	} else {
		buf = make([]byte, len(command)+4+SmallChunkSize+4)
	}
	chunk := len(buf) - len(command) - 8
	off := copy(buf, command)
	for {
		n, err := io.ReadFull(r, buf[off+4:off+4+chunk])
		end := off
		if n > 0 {
			buf[off], buf[off+1], buf[off+2], buf[off+3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
			end += 4 + n
		}
		last := err == io.EOF || err == io.ErrUnexpectedEOF
		if err != nil && !last {
			return fmt.Errorf("reading the message: %w", errMessage{err})
		}
		if last {
			end += copy(buf[end:], []byte{0, 0, 0, 0})
		}
		if _, werr := w.Write(buf[:end]); werr != nil {
			return werr
		}
		if last {
			return nil
		}
		off = 0
	}
}

// errMessage marks an error reading the message (not talking to clamd).
type errMessage struct{ error }

func (e errMessage) Unwrap() error { return e.error }

// isPeerGone reports a write that failed because clamd closed the
// connection (it does so after refusing a stream), not because of our
// deadline or the message.
func isPeerGone(err error) bool {
	var em errMessage
	if errors.As(err, &em) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

// ParseReply reads clamd's answer to INSTREAM: lines ended by NUL (the
// "z" form of the command) or newline, each "stream: OK", "stream: NAME
// FOUND" (one per signature when clamd reports every match) or an error
// ending in "ERROR". A signature found wins over an error line after it:
// the malware is there whatever else failed.
func ParseReply(raw []byte) (Reply, error) {
	var rep Reply
	var scanErr error
	ok := false
	for _, line := range strings.FieldsFunc(string(raw), func(r rune) bool { return r == 0 || r == '\n' }) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		switch rest, _ := strings.CutPrefix(line, "stream: "); {
		case rest == "OK":
			ok = true
		case strings.HasSuffix(rest, " FOUND"):
			name := cleanName(strings.TrimSuffix(rest, " FOUND"))
			if name == "" {
				return Reply{}, fmt.Errorf("a FOUND reply without a signature name: %q", line)
			}
			rep.Infected = true
			rep.Signatures = append(rep.Signatures, name)
		case strings.HasPrefix(line, "INSTREAM size limit exceeded"):
			scanErr = ErrSizeLimit
		case strings.HasSuffix(line, "ERROR"):
			scanErr = fmt.Errorf("clamd failed: %s", cleanName(strings.TrimSuffix(line, "ERROR")))
		default:
			return Reply{}, fmt.Errorf("an answer that is not clamd's: %q", truncate(line, 200))
		}
	}
	switch {
	case rep.Infected:
		return rep, nil
	case scanErr != nil:
		return Reply{}, scanErr
	case ok:
		return rep, nil
	}
	return Reply{}, errors.New("no answer (clamd closed the connection)")
}

// cleanName keeps a name that goes into SMTP replies and logs printable:
// ASCII graphic characters and spaces only, at most 200 bytes.
func cleanName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return -1
		}
		return r
	}, s)
	return truncate(strings.TrimSpace(s), 200)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Version asks clamd for its version and its database's (VERSION:
// "ClamAV 1.4.6/27500/Mon Nov 30 09:00:00 2026"); clamd has no command
// that reports its configuration, StreamMaxLength included.
func (c *Client) Version(ctx context.Context) (string, error) {
	conn, stop, err := c.dial(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	defer stop()
	if _, err := io.WriteString(conn, "zVERSION\x00"); err != nil {
		return "", fmt.Errorf("clamd %s: %w", c, err)
	}
	raw, err := io.ReadAll(io.LimitReader(conn, 1024))
	if err != nil {
		return "", fmt.Errorf("clamd %s: reading the reply: %w", c, err)
	}
	v := cleanName(string(bytes.TrimRight(raw, "\x00\n")))
	if !strings.HasPrefix(v, "ClamAV ") {
		return "", fmt.Errorf("clamd %s: an answer that is not clamd's: %q", c, truncate(v, 200))
	}
	return v, nil
}

// Takes asks clamd whether it takes a stream of n bytes: clamd has no
// command that reports its StreamMaxLength, and refuses a longer stream
// only once it has come. It sends n zero bytes; the answer is nil when
// clamd scanned them, ErrSizeLimit when it refused them, another error
// when it could not say.
func (c *Client) Takes(ctx context.Context, n int64) error {
	_, err := c.Scan(ctx, io.LimitReader(zeros{}, n))
	return err
}

// zeros reads as an endless run of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
