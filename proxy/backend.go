package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// The backend client is mxguard's own rather than go-smtp's: every
// transaction on a kept-alive connection must hand over its own client with
// XCLIENT or XFORWARD (Postfix's extensions, which go-smtp's client cannot
// send), and the client must get the backend's exact reply text.

// backendReply is one SMTP reply from the backend.
type backendReply struct {
	Code     int
	Enhanced [3]int // zero when the backend sent none
	Text     string // the last line's text, enhanced code removed
}

func (r backendReply) String() string {
	if r.Enhanced[0] != 0 {
		return fmt.Sprintf("%d %d.%d.%d %s", r.Code, r.Enhanced[0], r.Enhanced[1], r.Enhanced[2], r.Text)
	}
	return fmt.Sprintf("%d %s", r.Code, r.Text)
}

// errBackendIO marks failures of the connection itself (refused, reset,
// timed out, garbled): the message's fate at the backend is unknown.
var errBackendIO = errors.New("backend connection failed")

// bconn is one connection to the backend, in the ready state between
// transactions.
type bconn struct {
	c        net.Conn
	r        *bufio.Reader
	w        *bufio.Writer
	ext      map[string]string
	tls      bool
	lastUsed time.Time
	// spent is set once XCLIENT made the connection speak for one client:
	// it must not carry another client's transaction.
	spent bool
	opts  *BackendOptions
	// rd and wd spare re-arming the deadlines for every command.
	rd, wd deadline
}

func (b *bconn) close() { _ = b.c.Close() }

// setWriteDeadline puts the write deadline at d from now (or nearly; see
// deadline.renew).
func (b *bconn) setWriteDeadline(d time.Duration) {
	if now := time.Now(); b.wd.renew(now, d) {
		_ = b.c.SetWriteDeadline(now.Add(d))
	}
}

func ioErr(op string, err error) error {
	return fmt.Errorf("backend: %s: %w: %w", op, errBackendIO, err)
}

// cmd sends one command line and reads its reply.
func (b *bconn) cmd(timeout time.Duration, format string, args ...any) (backendReply, error) {
	if err := b.send(format, args...); err != nil {
		return backendReply{}, err
	}
	if err := b.w.Flush(); err != nil {
		return backendReply{}, ioErr("write", err)
	}
	return b.read(timeout)
}

// send queues a command line without flushing, for pipelining.
func (b *bconn) send(format string, args ...any) error {
	b.setWriteDeadline(b.opts.CommandTimeout)
	if _, err := fmt.Fprintf(b.w, format+"\r\n", args...); err != nil {
		return ioErr("write", err)
	}
	return nil
}

// read reads one (possibly multi-line) reply. Continuation lines are kept
// only for EHLO, whose lines are the extension list.
func (b *bconn) read(timeout time.Duration) (backendReply, error) {
	rep, _, err := b.readLines(timeout)
	return rep, err
}

func (b *bconn) readLines(timeout time.Duration) (backendReply, []string, error) {
	if now := time.Now(); b.rd.renew(now, timeout) {
		_ = b.c.SetReadDeadline(now.Add(timeout))
	}
	var lines []string
	for n := 0; ; n++ {
		line, err := b.r.ReadSlice('\n')
		if err != nil {
			return backendReply{}, nil, ioErr("read", err)
		}
		s := strings.TrimRight(string(line), "\r\n")
		if len(s) < 3 || n > 100 {
			return backendReply{}, nil, ioErr("read", fmt.Errorf("malformed reply %q", s))
		}
		code, err := strconv.Atoi(s[:3])
		if err != nil || code < 200 || code > 599 {
			return backendReply{}, nil, ioErr("read", fmt.Errorf("malformed reply %q", s))
		}
		text := ""
		if len(s) > 4 {
			text = s[4:]
		}
		lines = append(lines, text)
		if len(s) == 3 || s[3] == ' ' {
			rep := backendReply{Code: code, Text: text}
			rep.Enhanced, rep.Text = splitEnhanced(code, text)
			return rep, lines, nil
		}
		if s[3] != '-' {
			return backendReply{}, nil, ioErr("read", fmt.Errorf("malformed reply %q", s))
		}
	}
}

// splitEnhanced takes an RFC 3463 enhanced status code off the front of a
// reply's text when its class matches the reply code.
func splitEnhanced(code int, text string) ([3]int, string) {
	head, rest, _ := strings.Cut(text, " ")
	parts := strings.Split(head, ".")
	if len(parts) != 3 {
		return [3]int{}, text
	}
	var e [3]int
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 999 {
			return [3]int{}, text
		}
		e[i] = n
	}
	if e[0] != code/100 {
		return [3]int{}, text
	}
	return e, rest
}

// dial opens a backend connection and brings it to the ready state:
// greeting, EHLO (LHLO), and STARTTLS when configured.
func (f *Forwarder) dial(ctx context.Context) (*bconn, error) {
	o := &f.opts
	d := net.Dialer{Timeout: o.ConnectTimeout}
	c, err := d.DialContext(ctx, o.Network, o.Address)
	if err != nil {
		return nil, ioErr("dial", err)
	}
	b := &bconn{c: c, r: bufio.NewReaderSize(c, 4096), w: bufio.NewWriterSize(c, 32<<10), opts: o}
	rep, err := b.read(o.CommandTimeout)
	if err == nil && rep.Code != 220 {
		err = ioErr("greeting", fmt.Errorf("backend greets with %s", rep))
	}
	if err == nil {
		err = b.hello(o.Helo)
	}
	if err == nil && o.StartTLS != "none" {
		err = b.startTLS()
	}
	if err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

func (b *bconn) hello(name string) error {
	verb := "EHLO"
	if b.opts.LMTP {
		verb = "LHLO"
	}
	if err := b.send("%s %s", verb, name); err != nil {
		return err
	}
	if err := b.w.Flush(); err != nil {
		return ioErr("write", err)
	}
	rep, lines, err := b.readLines(b.opts.CommandTimeout)
	if err != nil {
		return err
	}
	if rep.Code != 250 {
		return ioErr("hello", fmt.Errorf("backend answers %s with %s", verb, rep))
	}
	b.ext = map[string]string{}
	for _, l := range lines[1:] {
		k, v, _ := strings.Cut(l, " ")
		b.ext[strings.ToUpper(k)] = v
	}
	return nil
}

func (b *bconn) startTLS() error {
	if _, ok := b.ext["STARTTLS"]; !ok {
		if b.opts.StartTLS == "required" {
			return ioErr("starttls", errors.New("backend does not offer STARTTLS"))
		}
		return nil
	}
	rep, err := b.cmd(b.opts.CommandTimeout, "STARTTLS")
	if err != nil {
		return err
	}
	if rep.Code != 220 {
		return ioErr("starttls", fmt.Errorf("backend answers STARTTLS with %s", rep))
	}
	tc := tls.Client(b.c, b.opts.TLSConfig)
	ctx, cancel := context.WithTimeout(context.Background(), b.opts.CommandTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return ioErr("starttls", err)
	}
	b.c, b.tls = tc, true
	b.rd.forget()
	b.wd.forget()
	b.r.Reset(tc)
	b.w.Reset(tc)
	return b.hello(b.opts.Helo)
}

// xtext encodes an XCLIENT/XFORWARD attribute value (RFC 3461 §4).
func xtext(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 33 || c > 126 || c == '+' || c == '=' {
			fmt.Fprintf(&sb, "+%02X", c)
			continue
		}
		sb.WriteByte(c)
	}
	return sb.String()
}
