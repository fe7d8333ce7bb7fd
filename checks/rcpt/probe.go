package rcpt

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// idleTimeout is how long an unused probe connection is kept. Backends
// close idle sessions after a few minutes (Postfix's smtpd_timeout is 300s,
// RFC 5321 §4.5.3.2.7 asks servers for at least 5 minutes); dropping ours
// well before that keeps most probes off connections the backend has
// already given up on. The retry in probe handles the rest.
const idleTimeout = 60 * time.Second

// maxDetail caps the length of a backend reply copied into Result.Detail,
// which ends up in logs.
const maxDetail = 300

// probeConn is one SMTP or LMTP client connection to the backend.
type probeConn struct {
	conn   *ctxConn
	c      *smtp.Client
	idleAt time.Time
}

// close closes the connection without a QUIT, for connections in an
// unknown state.
func (pc *probeConn) close() {
	pc.c.Close()
}

// quit ends the session politely (RFC 5321 §4.1.1.10) and closes it.
func (pc *probeConn) quit(timeout time.Duration) {
	pc.conn.unbind()
	pc.conn.Conn.SetDeadline(time.Now().Add(timeout))
	if err := pc.c.Quit(); err != nil {
		pc.c.Close()
	}
}

// ctxConn is a net.Conn whose deadlines also honour a context. go-smtp's
// Client sets its own deadline (CommandTimeout) before every command and
// clears it after, which would undo a deadline set once from the context;
// so ctxConn clamps every deadline go-smtp sets to the context's, and when
// the context ends it moves the deadline into the past, which aborts the
// command in flight. go-smtp has no context support of its own.
type ctxConn struct {
	net.Conn

	mu       sync.Mutex // serialises SetDeadline against the context ending
	limit    time.Time  // the bound context's deadline, zero if none
	canceled bool       // the bound context has ended
	stop     func() bool
}

// past is a deadline that has always passed.
var past = time.Unix(1, 0)

// bind ties the connection to ctx until unbind.
func (c *ctxConn) bind(ctx context.Context) {
	c.mu.Lock()
	c.limit, _ = ctx.Deadline()
	c.canceled = false
	c.mu.Unlock()
	c.stop = context.AfterFunc(ctx, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.canceled = true
		c.Conn.SetDeadline(past)
	})
}

// unbind releases the connection from the context given to bind.
func (c *ctxConn) unbind() {
	if c.stop != nil {
		c.stop()
		c.stop = nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.limit, c.canceled = time.Time{}, false
	c.Conn.SetDeadline(time.Time{})
}

// SetDeadline implements net.Conn, clamped to the bound context.
func (c *ctxConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.canceled:
		t = past
	case !c.limit.IsZero() && (t.IsZero() || t.After(c.limit)):
		t = c.limit
	}
	return c.Conn.SetDeadline(t)
}

// pool keeps up to max idle probe connections. It never limits how many
// are open at once: concurrency is bounded by the callers (the proxy's
// session limit) and by coalescing in Verifier.
type pool struct {
	o       *Options
	network string
	address string

	mu     sync.Mutex
	idle   []*probeConn // most recently used last
	closed bool
	quits  sync.WaitGroup
}

// get returns an idle connection (reused true) or, if there is none or
// fresh is set, dials a new one.
func (p *pool) get(ctx context.Context, fresh bool) (pc *probeConn, reused bool, err error) {
	p.mu.Lock()
	for !fresh && len(p.idle) > 0 {
		pc = p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if time.Since(pc.idleAt) < idleTimeout {
			break
		}
		p.quitLocked(pc)
		pc = nil
	}
	p.mu.Unlock()
	if pc != nil {
		pc.conn.bind(ctx)
		return pc, true, nil
	}
	pc, err = p.dial(ctx)
	return pc, false, err
}

// dial opens a connection and says EHLO or LHLO (RFC 2033 §4.1).
func (p *pool) dial(ctx context.Context) (*probeConn, error) {
	d := net.Dialer{Timeout: p.o.Timeout}
	nc, err := d.DialContext(ctx, p.network, p.address)
	if err != nil {
		return nil, err
	}
	cc := &ctxConn{Conn: nc}
	cc.bind(ctx)
	var c *smtp.Client
	if p.o.LMTP {
		c = smtp.NewClientLMTP(cc)
	} else {
		c = smtp.NewClient(cc)
	}
	c.CommandTimeout = p.o.Timeout
	if err := c.Hello(p.o.Helo); err != nil {
		cc.unbind()
		c.Close()
		return nil, err
	}
	return &probeConn{conn: cc, c: c}, nil
}

// put returns a connection in a clean state (after RSET) to the pool, or
// ends it if the pool is full or closed.
func (p *pool) put(pc *probeConn) {
	pc.conn.unbind()
	pc.idleAt = time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.idle) >= p.o.MaxIdle {
		p.quitLocked(pc)
		return
	}
	p.idle = append(p.idle, pc)
}

// quitLocked ends pc in the background, so that nobody waits for the
// backend's reply to QUIT.
func (p *pool) quitLocked(pc *probeConn) {
	p.quits.Go(func() { pc.quit(p.o.Timeout) })
}

// close ends every idle connection and waits for the QUITs.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	for _, pc := range p.idle {
		p.quitLocked(pc)
	}
	p.idle = nil
	p.mu.Unlock()
	p.quits.Wait()
}

// attempt is the outcome of one probe on one connection.
type attempt struct {
	res   Result
	keep  bool // the connection is clean and may go back to the pool
	retry bool // nothing was answered about the recipient; a new connection may
}

// probe asks the backend about rcpt: MAIL FROM:<>, RCPT TO:<rcpt>, RSET.
// It never sends DATA, so nothing is ever delivered. A connection that
// fails is closed; if it failed before the backend answered RCPT, and not
// by a timeout (a backend too slow for one command is unlikely to be fast
// for the next, and the caller has already waited Timeout), the probe is
// retried once on a new connection: a kept connection may have been closed
// by the backend while idle.
//
// The returned connection, if any, is clean and goes back to the pool.
func (v *Verifier) probe(ctx context.Context, rcpt string) (Result, *probeConn) {
	for try := 0; ; try++ {
		v.probes.Add(1)
		pc, reused, err := v.pool.get(ctx, try > 0)
		var a attempt
		if err != nil {
			a = failure(ctx, "connect", err)
		} else {
			if !reused {
				v.dials.Add(1)
			}
			a = probeOn(ctx, pc, rcpt)
			if a.keep {
				return a.res, pc
			}
			pc.conn.unbind()
			pc.close()
		}
		if !a.retry || try > 0 || ctx.Err() != nil {
			return a.res, nil
		}
	}
}

// probeOn runs one probe on pc.
func probeOn(ctx context.Context, pc *probeConn, rcpt string) attempt {
	// go-smtp says EHLO (or LHLO) again before MAIL after a Reset; RFC 5321
	// §4.1.4 allows it, and it costs one round trip per probe.
	if err := pc.c.Mail("", nil); err != nil {
		a := failure(ctx, "MAIL FROM:<>", err)
		if a.keep {
			a.keep = pc.c.Reset() == nil
		}
		return a
	}
	err := pc.c.Rcpt(rcpt, nil)
	var a attempt
	if err == nil {
		a = attempt{res: Result{Status: Known, Detail: "backend accepted RCPT TO"}, keep: true}
	} else if e, ok := errors.AsType[*smtp.SMTPError](err); ok && e.Code != 421 {
		a = attempt{res: classify(e), keep: true}
	} else {
		a = failure(ctx, "RCPT TO", err)
	}
	// RSET returns the connection to its initial state (RFC 5321 §4.1.1.5)
	// for the next probe; a connection that cannot do that is not kept.
	if a.keep {
		a.keep = pc.c.Reset() == nil
	}
	return a
}

// failure turns an error from a command other than a RCPT that was
// answered into a temperror: the backend could not say.
func failure(ctx context.Context, cmd string, err error) attempt {
	if e, ok := errors.AsType[*smtp.SMTPError](err); ok {
		// RFC 5321 §3.8: 421 means the backend is closing the connection,
		// typically an idle kept one; it said nothing about the recipient.
		return attempt{
			res:   Result{Status: Temperror, Detail: fmt.Sprintf("backend refused %s: %s", cmd, formatReply(e))},
			keep:  e.Code != 421,
			retry: e.Code == 421,
		}
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return attempt{res: Result{Status: Temperror, Detail: fmt.Sprintf("backend %s: %v", cmd, ctxErr)}}
	}
	timeout := errors.Is(err, os.ErrDeadlineExceeded)
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		timeout = true
	}
	return attempt{
		res:   Result{Status: Temperror, Detail: fmt.Sprintf("backend %s: %s", cmd, clean(err.Error()))},
		retry: !timeout,
	}
}

// classify maps the backend's refusal of RCPT TO to a Result.
func classify(e *smtp.SMTPError) Result {
	detail := formatReply(e)
	switch {
	case e.Code == 552:
		// RFC 5321 §4.5.3.1.10: a 552 to RCPT is to be treated as
		// temporary (too many recipients or mailbox full): the mailbox
		// exists, or may.
		return Result{Status: Temperror, Detail: detail}
	case e.Code == 550 || e.Code == 551 || e.Code == 553:
		// RFC 5321 §4.2.2: 550 mailbox unavailable, 551 user not local,
		// 553 mailbox name not allowed.
		return Result{Status: Unknown, Detail: detail}
	case e.Code >= 500 && e.Code < 600 && e.EnhancedCode[0] == 5 && e.EnhancedCode[1] == 1:
		// RFC 3463 §3.2: X.1.X are addressing status codes.
		return Result{Status: Unknown, Detail: detail}
	case e.Code >= 500 && e.Code < 600:
		return Result{Status: Unknown, Detail: detail + " (a permanent refusal, but not an unknown-mailbox reply)"}
	case e.Code >= 400 && e.Code < 500:
		return Result{Status: Temperror, Detail: detail}
	default:
		return Result{Status: Temperror, Detail: "unexpected reply to RCPT TO: " + detail}
	}
}

// formatReply renders a reply as it was on the wire, on one line:
// "550 5.1.1 <x@example.org>: Recipient address rejected: User unknown".
func formatReply(e *smtp.SMTPError) string {
	s := fmt.Sprint(e.Code)
	if c := e.EnhancedCode; c != (smtp.EnhancedCode{}) && c != smtp.NoEnhancedCode {
		s += fmt.Sprintf(" %d.%d.%d", c[0], c[1], c[2])
	}
	if e.Message != "" {
		s += " " + e.Message
	}
	return clean(s)
}

// clean makes text from the backend safe and short enough for a log line:
// multi-line replies are joined, control characters replaced, and the
// result capped at maxDetail bytes.
func clean(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\n", " / ")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return '?'
		}
		return r
	}, s)
	if len(s) > maxDetail {
		s = strings.ToValidUTF8(s[:maxDetail], "") + "…"
	}
	return s
}
