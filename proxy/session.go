package proxy

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base32"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"mxguard/internal/smtpreply"
	"mxguard/policy"
)

// maxCommandLine bounds a command line, CRLF included. RFC 5321 §4.5.3.1.4
// sets 512 octets and lets extensions add to it; Postfix allows 2048.
const maxCommandLine = 2048

var sessionIDEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newSessionID returns a short random id, quoted in replies and logs.
func newSessionID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return sessionIDEncoding.EncodeToString(b[:])
}

// session is one inbound SMTP connection.
type session struct {
	srv  *Server
	opts *Options
	rate *rateLimiter
	// tls is the STARTTLS configuration, nil when the listener offers none.
	tls  *tls.Config
	conn net.Conn
	// r and w are the read and write buffers, nil while empty (see
	// iobuf.go): r reads from src, w writes to wconn. raw is the socket
	// under conn, which waitInput waits on; nil when conn is not a plain
	// TCP connection (TLS, a PROXY protocol wrapper).
	r   *bufio.Reader
	w   *bufio.Writer
	src connReader
	// inData makes the next reader taken message-sized (see iobuf.go).
	inData bool
	wconn  io.Writer
	raw    syscall.RawConn
	// readable is tryRead, for raw.Read; perr is what its read returned.
	readable func(fd uintptr) bool
	perr     error
	id       string
	log      *slog.Logger

	// ctx lives as long as the session, and txCtx as long as its
	// transaction: every check's DNS query and the delivery take one, so
	// that the end of the session or transaction, or a drain whose
	// deadline has passed, stops the work done for it.
	ctx, txCtx       context.Context
	cancel, txCancel context.CancelFunc

	client policy.Client
	pol    *policy.Session
	tx     *policy.Transaction
	txSeq  int
	// rcptReserved: the transaction's first recipient was reserved in
	// the rate limits' store with its MAIL (see allowMail), from lease.
	rcptReserved bool
	lease        rateLease
	bdat         *bdatState
	errors       int
	junk         int // commands that moved nothing forward (see MaxJunkCommands)
	quit         bool
	// verdict waits for the reply that tells the client (see send).
	verdict *pendingVerdict

	// mu guards the drain state against Server.Shutdown, which pokes the
	// connection's read deadline to wake a session blocked on a read.
	mu       sync.Mutex
	draining bool
	forced   bool
	// rd and wd spare re-arming the deadlines for every command; rd is
	// guarded by mu, since drain sets the read deadline too.
	rd, wd deadline
	idle   bool
}

// bdatState is an RFC 3030 message being received in chunks.
type bdatState struct {
	msg    *Message
	scan   *dataScanner
	failed *smtpreply.Reply // set once a chunk was refused: the rest are discarded
	// until is when DataTimeout, counted from the first chunk, runs out:
	// it bounds the whole message, chunks and the commands between them,
	// so that a client cannot keep a message open by sending it slowly in
	// many chunks.
	until time.Time
}

func newSession(srv *Server, set *settings, c net.Conn, lo Listener, client netip.AddrPort) *session {
	id := newSessionID()
	s := &session{
		srv:    srv,
		opts:   &set.opts,
		rate:   set.rate,
		tls:    lo.tlsConfig(),
		conn:   c,
		id:     id,
		client: policy.Client{Addr: client, SMTP: &policy.SMTPBehaviour{}},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.log = set.opts.Logger.With("session", id, "client", client.Addr().String())
	s.src = connReader{c: c, fd: -1}
	s.wconn = c
	if tc, ok := c.(*net.TCPConn); ok {
		if raw, err := tc.SyscallConn(); err == nil {
			s.raw = raw
		}
	}
	return s
}

// serve runs the session. Its frame, and those under it, are kept small
// (the work is in greet and answer): an idle session's goroutine waits
// in readCommand on top of them, and the runtime shrinks the stack of a
// waiting goroutine to fit what it uses, so a shallow wait is the
// difference between a 4 KiB and an 8 KiB stack for every idle session.
func (s *session) serve() {
	if !s.greet() {
		return
	}
	for !s.quit {
		line, err := s.readCommand()
		if !s.answer(line, err) {
			return
		}
	}
	s.flush()
	s.resetTx()
}

// greet decides at the connect stage and sends the banner, or the
// refusal; it reports whether the session goes on.
func (s *session) greet() bool {
	s.log.Debug("connect")
	s.pol = s.opts.Policy.NewSession()
	if !s.greetPause() {
		return false
	}
	tx := s.newTx()
	if v := s.pol.Decide(s.ctx, policy.StageConnect, tx); v.Action.Refuses() {
		// RFC 5321 §3.1: a server that will not talk answers 554 instead of
		// the 220 banner, then waits for QUIT; we do not wait. A 4xx
		// refusal is 421, which closes the session.
		rep := v.Reply
		if rep.Code/100 == 4 {
			rep.Code = smtpreply.C421ServiceUnavail
		} else {
			rep.Code = smtpreply.C554TransactionFailed
		}
		s.logVerdict(tx, policy.Outcome{Stage: policy.StageConnect, Action: v.Action.String(), Reason: v.Reason}, nil)
		s.send(rep)
		s.flush()
		s.log.Info("connection refused", "reason", v.Reason)
		return false
	}
	s.send(reply(smtpreply.C220ServiceReady, smtpreply.Enhanced{}, s.opts.Hostname+" ESMTP ready"))
	return true
}

// answer carries out what readCommand returned and queues the reply; it
// reports false when the session ended (the read failed).
func (s *session) answer(line string, err error) bool {
	switch {
	case errors.Is(err, errLineTooLong):
		s.send(s.fail(smtpreply.C500BadSyntax, smtpreply.Se5Proto5SyntaxErr2, "line too long"))
		return true
	case err != nil:
		if r := s.readFailed(err); !r.IsZero() {
			s.send(r)
			s.flush()
		}
		return false
	case line == "":
		return true
	}
	s.send(s.command(line))
	if s.errors > s.opts.MaxErrors {
		s.send(reply(smtpreply.C421ServiceUnavail, smtpreply.Se4Pol7Other0, "too many errors, closing connection"))
		s.log.Info("too many errors", "errors", s.errors)
		s.quit = true
	}
	return true
}

// close closes the session's connection: after STARTTLS, the TLS one, whose
// Close sends close_notify first (RFC 8446 §6.1), so that the client can
// tell the end of the session from a truncation; closing the socket under
// it, as the deferred close of the raw connection would, is reported as an
// improper termination by TLS clients. crypto/tls bounds the alert's write
// (5 s), so a client that stopped reading does not hold the session.
func (s *session) close() {
	s.cancel()
	s.mu.Lock()
	c := s.conn
	s.mu.Unlock()
	_ = c.Close()
	// close runs in the session's goroutine, once it is done with them.
	s.dropBuffers()
}

// beginTx starts the context of a new transaction.
func (s *session) beginTx() context.Context {
	s.txCtx, s.txCancel = context.WithCancel(s.ctx)
	return s.txCtx
}

// endTx cancels the context of the transaction that ended, if any.
func (s *session) endTx() {
	if s.txCancel != nil {
		s.txCancel()
		s.txCtx, s.txCancel = nil, nil
	}
}

// greetPause waits GreetPause before the banner and notes a client that
// talks first (RFC 5321 §3.1: the client waits for the greeting). With no
// pause it still notes input that is already there. It reports false when
// the client has gone.
func (s *session) greetPause() bool {
	_ = s.conn.SetReadDeadline(time.Now().Add(s.opts.GreetPause))
	err := s.waitInput()
	if err == nil {
		s.client.SMTP.Pregreet = true
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// readFailed ends the transaction after a read that ended the session,
// and returns what the client is told: 421 when it was too slow or the
// server is draining, nothing when it has gone.
func (s *session) readFailed(err error) smtpreply.Reply {
	defer s.resetTx()
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	var ne net.Error
	switch {
	case draining && errors.As(err, &ne) && ne.Timeout():
		return s.replyShuttingDown()
	case errors.As(err, &ne) && ne.Timeout():
		return reply(smtpreply.C421ServiceUnavail, smtpreply.Se4Net4BadConn2, s.opts.Hostname+" timeout, closing connection")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		s.log.Debug("client disconnected")
	default:
		s.log.Debug("read failed", "err", err)
	}
	return smtpreply.Reply{}
}

// replyShuttingDown tells a client that the server is draining; the
// session ends after it (RFC 5321 §3.8).
func (s *session) replyShuttingDown() smtpreply.Reply {
	return reply(smtpreply.C421ServiceUnavail, smtpreply.Se4Sys3NotAccepting2, s.opts.Hostname+" service shutting down, try again later")
}

// send queues r for the client; the zero Reply sends nothing (the client
// has gone, or the command was answered already). It is the one place a
// reply is written: the command handlers return theirs to the serve loop,
// which sends it. Only the replies after which the client sends something
// other than a command are sent from their handler before it goes on:
// DATA's 354 and STARTTLS's 220.
//
// Replies are flushed when the client has no more pipelined commands
// waiting (RFC 2920 §3.2), so a pipelining client gets one packet per
// group. A verdict waiting for r (logVerdict) is written after it, quoting
// it: the client, who may have waited since its final dot, gets its reply
// before the verdict line is written, unless pipelined commands wait
// behind it and their replies can share the packet.
func (s *session) send(r smtpreply.Reply) {
	if !r.IsZero() {
		w := s.writer()
		// Appended in place: the reply costs no buffer of its own.
		_, _ = w.Write(r.Append(w.AvailableBuffer()))
	}
	p := s.verdict
	if p == nil {
		return
	}
	s.verdict = nil
	if s.buffered() == 0 {
		s.flush()
	}
	p.o.Reply = r.String()
	s.pol.Finish(p.tx, p.o)
	if p.then != nil {
		p.then()
	}
}

// pendingVerdict is a verdict line that waits for the reply that tells the
// client.
type pendingVerdict struct {
	tx   *policy.Transaction
	o    policy.Outcome
	then func()
}

// logVerdict has tx's verdict line written once the next reply is sent,
// with that reply in it, so that the line says what the client was told;
// then, if not nil, runs after it (the log line of a message).
func (s *session) logVerdict(tx *policy.Transaction, o policy.Outcome, then func()) {
	s.verdict = &pendingVerdict{tx: tx, o: o, then: then}
}

// reply is a reply mxguard gives without the session id: the answer to a
// command that went through, or an error the client can see for itself.
func reply(code int, enh smtpreply.Enhanced, text string) smtpreply.Reply {
	return smtpreply.Reply{Code: code, Enhanced: enh, Text: text}
}

// flush writes the replies queued, and gives the write buffer back.
func (s *session) flush() {
	if s.w == nil {
		return
	}
	if s.w.Buffered() > 0 {
		if now := time.Now(); s.wd.renew(now, s.opts.CommandTimeout) {
			_ = s.conn.SetWriteDeadline(now.Add(s.opts.CommandTimeout))
		}
		_ = s.w.Flush()
	}
	s.releaseWriter()
}

// fail counts a client error towards MaxErrors and returns its reply.
func (s *session) fail(code int, enh smtpreply.Enhanced, text string) smtpreply.Reply {
	s.errors++
	s.client.SMTP.Errors = s.errors
	return reply(code, enh, text)
}

// setReadDeadline sets the deadline under the drain lock, so that a drain
// that lands while the session is about to read still wakes it.
func (s *session) setReadDeadline(d time.Duration, idle bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.idle = idle
	if s.forced || s.draining && idle {
		return false
	}
	if now := time.Now(); s.rd.renew(now, d) {
		_ = s.conn.SetReadDeadline(now.Add(d))
	}
	return true
}

// setReadDeadlineAt is setReadDeadline for a fixed point in time, during
// a transfer (never idle).
func (s *session) setReadDeadlineAt(t time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.idle = false
	if s.forced {
		return false
	}
	s.rd.forget()
	_ = s.conn.SetReadDeadline(t)
	return true
}

// drain is called by Shutdown. A session idle between transactions is woken
// at once; one in a transaction only when force is set.
func (s *session) drain(force bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.draining = true
	s.forced = s.forced || force
	if s.forced {
		// The drain's deadline has passed: stop the checks and the
		// delivery the session waits on, as well as its reads.
		s.cancel()
	}
	if s.forced || s.idle {
		s.rd.forget()
		_ = s.conn.SetReadDeadline(time.Now())
	}
}

// errLineTooLong is a command line over maxCommandLine, which was skipped.
var errLineTooLong = errors.New("command line too long")

// readCommand reads one command line and returns it without its CRLF.
func (s *session) readCommand() (string, error) {
	if s.buffered() == 0 {
		s.flush()
	}
	ok := false
	if s.bdat != nil && time.Until(s.bdat.until) < s.opts.CommandTimeout {
		ok = s.setReadDeadlineAt(s.bdat.until)
	} else {
		ok = s.setReadDeadline(s.opts.CommandTimeout, s.tx == nil && s.bdat == nil)
	}
	if !ok {
		return "", os.ErrDeadlineExceeded
	}
	if err := s.waitInput(); err != nil {
		return "", err
	}
	line, err := s.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) || err == nil && len(line) > maxCommandLine {
		// Skip to the end of the overlong line so the session stays in step.
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = s.r.ReadSlice('\n')
		}
		if err != nil {
			return "", err
		}
		return "", errLineTooLong
	}
	if err != nil {
		return "", err
	}
	if len(line) > 512 {
		s.client.SMTP.LongCommand = true // RFC 5321 §4.5.3.1.4
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		// RFC 5321 §2.3.8: only CRLF ends a line. The command is read as
		// one, and the fact is the rules' to act on (the default rules
		// refuse the session's mail).
		s.client.SMTP.BareLF = true
		return string(line[:len(line)-1]), nil
	}
	return string(line[:len(line)-2]), nil
}

// newTx returns a transaction with the session's facts. Only MAIL starts a
// numbered one; connect and HELO decisions are the session's own.
func (s *session) newTx() *policy.Transaction {
	return &policy.Transaction{Session: s.id, Start: time.Now(), Client: s.client}
}

// resetTx ends the transaction in progress, if any, without a message:
// RSET, a new EHLO, QUIT, a dropped connection. It is still a transaction
// the admin may need to find, so it gets its verdict line.
func (s *session) resetTx() {
	if tx := s.tx; tx != nil {
		o := policy.Outcome{Stage: policy.StageData, Action: "abandoned"}
		if len(tx.Rcpts) == 0 && len(tx.Refused) > 0 {
			// Every recipient was refused: the refusal is the verdict.
			last := tx.Refused[len(tx.Refused)-1]
			action := "reject"
			if strings.HasPrefix(last.Reply, "4") {
				action = "tempfail"
			}
			o = policy.Outcome{Stage: policy.StageRcpt, Action: action, Reason: last.Rule, Reply: last.Reply}
		}
		s.pol.Finish(tx, o)
	}
	s.tx = nil
	s.endTx()
	if s.bdat != nil {
		_ = s.bdat.msg.Close()
		s.bdat = nil
	}
}
