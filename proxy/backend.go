package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"mxguard/internal/smtpreply"
)

// The backend client is mxguard's own rather than go-smtp's: every
// transaction on a kept-alive connection must hand over its own client with
// XCLIENT or XFORWARD (Postfix's extensions, which go-smtp's client cannot
// send), and the client must get the backend's exact reply text.

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
	// raw, peek and peeked let quiet look at the socket without an
	// allocation per message (see quiet); raw is nil under TLS.
	raw    syscall.RawConn
	peek   func(fd uintptr) bool
	peeked [64]byte
	npeek  int
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
func (b *bconn) cmd(timeout time.Duration, format string, args ...any) (smtpreply.Reply, error) {
	if err := b.send(format, args...); err != nil {
		return smtpreply.Reply{}, err
	}
	if err := b.w.Flush(); err != nil {
		return smtpreply.Reply{}, ioErr("write", err)
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
func (b *bconn) read(timeout time.Duration) (smtpreply.Reply, error) {
	rep, _, err := b.readLines(timeout)
	return rep, err
}

// exchange sends cmds and reads exactly one reply to each: in one write
// when pipelining (RFC 2920 §3.1), else one command at a time. After the
// replies to a write, any octet more answers nothing we sent. After DATA's
// 354 that check is also the last chance to see a backend that answers
// the end of data before it was sent: nothing reads while the content
// goes out.
func (b *bconn) exchange(cmds []string, pipelining bool) ([]smtpreply.Reply, error) {
	replies := make([]smtpreply.Reply, 0, len(cmds))
	for i, c := range cmds {
		if err := b.send("%s", c); err != nil {
			return nil, err
		}
		if pipelining && i < len(cmds)-1 {
			continue
		}
		if err := b.w.Flush(); err != nil {
			return nil, ioErr("write", err)
		}
		for len(replies) <= i {
			r, err := b.read(b.opts.CommandTimeout)
			if err != nil {
				return nil, err
			}
			replies = append(replies, r)
		}
		if err := b.inStep(verb(c)); err != nil {
			return nil, err
		}
	}
	return replies, nil
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
	if sc, ok := c.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			b.raw = raw
			b.peek = func(fd uintptr) bool {
				// MSG_DONTWAIT: never block; MSG_PEEK: leave the octets
				// for the close to discard.
				b.npeek, _, _ = unix.Recvfrom(int(fd), b.peeked[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
				return true
			}
		}
	}
	rep, err := b.read(o.CommandTimeout)
	if err == nil && rep.Code != smtpreply.C220ServiceReady {
		err = ioErr("greeting", fmt.Errorf("backend greets with %s", rep))
	}
	if err == nil {
		err = b.inStep("greeting")
	}
	if err == nil {
		err = b.hello(o.Helo)
	}
	if err == nil && o.StartTLS != StartTLSNone {
		err = b.startTLS()
	}
	if err == nil {
		offered := int32(2)
		if _, ok := b.ext["SMTPUTF8"]; ok {
			offered = 1
		}
		f.utf8.Store(offered)
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
	if rep.Code != smtpreply.C250Completed {
		return ioErr("hello", fmt.Errorf("backend answers %s with %s", verb, rep))
	}
	if err := b.inStep(verb); err != nil {
		return err
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
		if b.opts.StartTLS == StartTLSRequired {
			return ioErr("starttls", errors.New("backend does not offer STARTTLS"))
		}
		return nil
	}
	rep, err := b.cmd(b.opts.CommandTimeout, "STARTTLS")
	if err != nil {
		return err
	}
	if rep.Code != smtpreply.C220ServiceReady {
		return ioErr("starttls", fmt.Errorf("backend answers STARTTLS with %s", rep))
	}
	// Octets after the 220 came before TLS: the handshake would drop
	// them unread, but they answer nothing, and whoever sent them (the
	// backend or someone on the path, as in CVE-2011-0411) is out of step.
	if err := b.inStep("starttls"); err != nil {
		return err
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
