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
	"strconv"
	"strings"
	"sync"
	"time"

	"mxguard/internal/mailaddr"
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
	r    *bufio.Reader
	w    *bufio.Writer
	out  []byte // a reply being written
	id   string
	log  *slog.Logger

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
	bdat   *bdatState
	errors int
	junk   int // commands that moved nothing forward (see MaxJunkCommands)
	quit   bool

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
	s.r = bufio.NewReaderSize(c, 4096)
	s.w = bufio.NewWriterSize(c, 4096)
	return s
}

func (s *session) serve() {
	s.log.Debug("connect")
	s.pol = s.opts.Policy.NewSession()
	if !s.greetPause() {
		return
	}
	tx := s.newTx()
	if v := s.pol.Decide(s.ctx, policy.StageConnect, tx); v.Action.Refuses() {
		// RFC 5321 §3.1: a server that will not talk answers 554 instead of
		// the 220 banner, then waits for QUIT; we do not wait. A 4xx
		// refusal is 421, which closes the session.
		rep := v.Reply
		if rep.Code/100 == 4 {
			rep.Code = 421
		} else {
			rep.Code = 554
		}
		s.replyWith(rep)
		s.flush()
		s.pol.Finish(tx, policy.Outcome{Stage: policy.StageConnect, Action: v.Action.String(), Reason: v.Reason, Reply: rep.String()})
		s.log.Info("connection refused", "reason", v.Reason)
		return
	}
	s.reply(smtpreply.C220ServiceReady, smtpreply.Enhanced{}, s.opts.Hostname+" ESMTP ready")
	for !s.quit {
		line, err := s.readCommand()
		if err != nil {
			s.readFailed(err)
			return
		}
		if line == "" {
			continue
		}
		s.dispatch(line)
		if s.errors > s.opts.MaxErrors {
			s.reply(smtpreply.C421ServiceUnavail, smtpreply.Se4Pol7Other0, "too many errors, closing connection")
			s.log.Info("too many errors", "errors", s.errors)
			break
		}
	}
	s.flush()
	s.resetTx()
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
	_, err := s.r.Peek(1)
	if err == nil {
		s.client.SMTP.Pregreet = true
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// readFailed answers a read that ended the session.
func (s *session) readFailed(err error) {
	defer s.resetTx()
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	var ne net.Error
	switch {
	case draining && errors.As(err, &ne) && ne.Timeout():
		s.reply(smtpreply.C421ServiceUnavail, smtpreply.Se4Sys3NotAccepting2, s.opts.Hostname+" service shutting down, try again later")
	case errors.As(err, &ne) && ne.Timeout():
		s.reply(smtpreply.C421ServiceUnavail, smtpreply.Se4Net4BadConn2, s.opts.Hostname+" timeout, closing connection")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		s.log.Debug("client disconnected")
		return
	default:
		s.log.Debug("read failed", "err", err)
		return
	}
	s.flush()
}

// reply queues one reply line. Replies are flushed when the client has no
// more pipelined commands waiting (RFC 2920 §3.2), so a pipelining client
// gets one packet per group.
func (s *session) reply(code int, enh smtpreply.Enhanced, text string) {
	s.replyWith(smtpreply.Reply{Code: code, Enhanced: enh, Text: text})
}

func (s *session) replyWith(r smtpreply.Reply) {
	s.out = r.Append(s.out[:0])
	_, _ = s.w.Write(s.out)
}

func (s *session) flush() {
	if s.w.Buffered() == 0 {
		return
	}
	if now := time.Now(); s.wd.renew(now, s.opts.CommandTimeout) {
		_ = s.conn.SetWriteDeadline(now.Add(s.opts.CommandTimeout))
	}
	_ = s.w.Flush()
}

// fail answers a client error and counts it towards MaxErrors.
func (s *session) fail(code int, enh smtpreply.Enhanced, text string) {
	s.errors++
	s.client.SMTP.Errors = s.errors
	s.reply(code, enh, text)
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

// readCommand reads one command line and returns it without its CRLF.
func (s *session) readCommand() (string, error) {
	if s.r.Buffered() == 0 {
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
	line, err := s.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) || err == nil && len(line) > maxCommandLine {
		// Skip to the end of the overlong line so the session stays in step.
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = s.r.ReadSlice('\n')
		}
		if err != nil {
			return "", err
		}
		s.fail(smtpreply.C500BadSyntax, smtpreply.Se5Proto5SyntaxErr2, "line too long")
		return "", nil
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

// groupEnders are the commands after which a client must wait for our
// reply (RFC 2920 §3.1, RFC 3207 §4 for STARTTLS).
var groupEnders = map[string]bool{"EHLO": true, "HELO": true, "DATA": true, "VRFY": true, "EXPN": true,
	"TURN": true, "NOOP": true, "STARTTLS": true, "AUTH": true}

// junkCommands move a session nothing forward: a client may send them to
// stay connected without ever sending mail. ETRN is one too, but it is not
// implemented here, so it is an error anyway.
var junkCommands = map[string]bool{"NOOP": true, "RSET": true, "VRFY": true, "HELP": true}

// junkCommand counts a command that moves nothing forward; past
// MaxJunkCommands each counts as an error, as with Postfix's
// smtpd_junk_command_limit, so MaxErrors ends the session.
func (s *session) junkCommand() {
	s.junk++
	if s.junk > s.opts.MaxJunkCommands {
		s.errors++
		s.client.SMTP.Errors = s.errors
	}
}

// nonSMTP are the first words of other protocols sent to port 25 by
// scanners and proxies: HTTP, and POP3 logins.
var nonSMTP = map[string]bool{"GET": true, "POST": true, "HEAD": true, "PUT": true, "OPTIONS": true,
	"CONNECT": true, "USER": true, "PASS": true}

func (s *session) dispatch(line string) {
	verb, arg, _ := strings.Cut(line, " ")
	verb = strings.ToUpper(verb)
	arg = strings.TrimSpace(arg)
	if s.r.Buffered() > 0 && (groupEnders[verb] || !s.client.ESMTP) && verb != "QUIT" && verb != "BDAT" {
		s.client.SMTP.UnauthPipelining = true
	}
	if junkCommands[verb] {
		s.junkCommand()
	}
	if nonSMTP[verb] {
		// Not a mail client: answer once and close, like postscreen.
		s.replyWith(replyNotSMTP.WithSession(s.id))
		s.pol.Finish(s.newTx(), policy.Outcome{Stage: policy.StageConnect, Action: "reject", Reason: "non-smtp",
			Reply: replyNotSMTP.String()})
		s.log.Info("non-SMTP client", "verb", verb)
		s.quit = true
		return
	}
	if hasControl(line) {
		// A CR, NUL or other control octet inside a command would end up in
		// our Received header or in the backend's parser.
		s.fail(smtpreply.C500BadSyntax, smtpreply.Se5Proto5SyntaxErr2, "control character in command")
		return
	}
	switch verb {
	case "EHLO", "HELO":
		s.cmdHello(verb == "EHLO", arg)
	case "MAIL":
		s.cmdMail(arg)
	case "RCPT":
		s.cmdRcpt(arg)
	case "DATA":
		s.cmdData(arg)
	case "BDAT":
		s.cmdBdat(arg)
	case "RSET":
		s.resetTx()
		s.reply(smtpreply.C250Completed, smtpreply.Se2Other00, "Ok")
	case "NOOP":
		s.reply(smtpreply.C250Completed, smtpreply.Se2Other00, "Ok")
	case "QUIT":
		s.reply(smtpreply.C221Closing, smtpreply.Se2Other00, s.opts.Hostname+" closing connection")
		s.quit = true
	case "VRFY":
		s.reply(smtpreply.C252WithoutVrfy, smtpreply.Se2Proto5Other0, "cannot VRFY user, but will take a message for it")
	case "HELP":
		s.reply(smtpreply.C214Help, smtpreply.Se2Other00, "see RFC 5321")
	case "STARTTLS":
		s.cmdStartTLS(arg)
	case "EXPN", "AUTH", "TURN", "ETRN", "SEND", "SOML", "SAML":
		s.fail(smtpreply.C502CmdNotImpl, smtpreply.Se5Proto5InvalidCmd1, verb+" not implemented")
	default:
		s.fail(smtpreply.C500BadSyntax, smtpreply.Se5Proto5SyntaxErr2, "command not recognized")
	}
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

func (s *session) cmdHello(ehlo bool, arg string) {
	if arg == "" || strings.ContainsAny(arg, " \t") {
		s.fail(smtpreply.C501BadParamSyntax, smtpreply.Se5Proto5InvalidArgs4, "syntax: EHLO hostname")
		return
	}
	// RFC 5321 §4.1.4: EHLO resets the transaction state.
	s.resetTx()
	s.client.HELO, s.client.ESMTP = arg, ehlo
	s.client.SMTP.BadHELO = !validHELO(arg)
	s.client.SMTP.HELONotFQDN = !s.client.SMTP.BadHELO && !strings.HasPrefix(arg, "[") && !strings.Contains(strings.TrimSuffix(arg, "."), ".")
	s.client.SMTP.HELOIsUs = s.heloIsUs(arg)
	tx := s.newTx()
	if v := s.pol.Decide(s.ctx, policy.StageHelo, tx); v.Action.Refuses() {
		s.client.HELO = ""
		s.replyWith(v.Reply)
		s.pol.Finish(tx, policy.Outcome{Stage: policy.StageHelo, Action: v.Action.String(), Reason: v.Reason, Reply: v.Reply.String()})
		return
	}
	if !ehlo {
		s.reply(smtpreply.C250Completed, smtpreply.Enhanced{}, s.opts.Hostname)
		return
	}
	ext := []string{
		s.opts.Hostname,
		"PIPELINING",
		"SIZE " + strconv.FormatInt(s.opts.MaxMessageBytes, 10),
		"8BITMIME",
		"SMTPUTF8",
		"ENHANCEDSTATUSCODES",
		"CHUNKING",
	}
	if s.tls != nil && s.client.TLS == nil {
		ext = append(ext, "STARTTLS")
	}
	s.replyWith(smtpreply.Multiline(smtpreply.C250Completed, ext...))
}

func (s *session) cmdMail(arg string) {
	switch {
	case s.client.HELO == "":
		s.fail(smtpreply.C503BadCmdSeq, smtpreply.Se5Proto5InvalidCmd1, "send EHLO first")
		return
	case s.tx != nil:
		s.fail(smtpreply.C503BadCmdSeq, smtpreply.Se5Proto5InvalidCmd1, "nested MAIL command")
		return
	}
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	if draining {
		s.reply(smtpreply.C421ServiceUnavail, smtpreply.Se4Sys3NotAccepting2, s.opts.Hostname+" service shutting down, try again later")
		s.quit = true
		return
	}
	rest, ok := cutPrefixFold(arg, "FROM:")
	if !ok {
		s.fail(smtpreply.C501BadParamSyntax, smtpreply.Se5Proto5InvalidArgs4, "syntax: MAIL FROM:<address>")
		return
	}
	if ok, key := s.rate.allow(rateMsg, s.client.Addr.Addr()); !ok {
		// RFC 5321 §4.2.5: 451 asks the sender to come back later.
		s.replyWith(replyRateMessages(key, s.id))
		return
	}
	addr, params, err := parsePath(rest)
	if err != nil {
		s.fail(smtpreply.C501BadParamSyntax, smtpreply.Se5Addr1BadSenderSyntax7, "bad sender address syntax")
		return
	}
	s.txSeq++
	tx := s.newTx()
	tx.ID = s.id + "." + strconv.Itoa(s.txSeq)
	tx.MailFrom = addr
	kv, err := parseParams(params)
	if err != nil {
		s.fail(smtpreply.C501BadParamSyntax, smtpreply.Se5Proto5InvalidArgs4, "bad MAIL parameters")
		return
	}
	for k, v := range kv {
		switch k {
		case "SIZE":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				s.fail(smtpreply.C501BadParamSyntax, smtpreply.Se5Proto5InvalidArgs4, "bad SIZE parameter")
				return
			}
			if n > s.opts.MaxMessageBytes {
				// RFC 1870 §6.1
				s.replyWith(replyTooBig.WithSession(s.id))
				return
			}
		case "BODY":
			switch strings.ToUpper(v) {
			case "7BIT":
			case "8BITMIME":
				tx.Body8Bit = true
			default:
				s.fail(smtpreply.C501BadParamSyntax, smtpreply.Se5Proto5InvalidArgs4, "unsupported BODY type")
				return
			}
		case "SMTPUTF8":
			if v != "" {
				// RFC 6531 §3.4: the parameter takes no value.
				s.fail(smtpreply.C501BadParamSyntax, smtpreply.Se5Proto5InvalidArgs4, "SMTPUTF8 takes no value")
				return
			}
			tx.SMTPUTF8 = true
		default:
			// RFC 5321 §4.1.1.11: parameters of extensions we did not
			// advertise are refused with 555.
			s.fail(smtpreply.C555UnrecognizedAddrParam, smtpreply.Se5Proto5InvalidArgs4, "unsupported MAIL parameter "+k)
			return
		}
	}
	if !tx.SMTPUTF8 && !isASCII(addr) {
		s.fail(smtpreply.C553BadMailbox, smtpreply.Se5Media6NonASCIIAddr7, "non-ASCII address needs SMTPUTF8")
		return
	}
	if b, ok := s.opts.Backend.(interface{ RefusesSMTPUTF8() bool }); ok && tx.SMTPUTF8 && b.RefusesSMTPUTF8() {
		// RFC 6531 §3.5: refuse before the message is sent, not after.
		s.replyWith(replyNoUTF8Backend.WithSession(s.id))
		return
	}
	if v := s.pol.Decide(s.beginTx(), policy.StageMail, tx); v.Action.Refuses() {
		s.endTx()
		s.replyWith(v.Reply)
		s.pol.Finish(tx, policy.Outcome{Stage: policy.StageMail, Action: v.Action.String(), Reason: v.Reason, Reply: v.Reply.String()})
		return
	}
	s.tx = tx
	s.reply(smtpreply.C250Completed, smtpreply.Se2Addr1Other0, "Ok")
}

func (s *session) cmdRcpt(arg string) {
	if s.tx == nil {
		s.fail(smtpreply.C503BadCmdSeq, smtpreply.Se5Proto5InvalidCmd1, "send MAIL first")
		return
	}
	if s.bdat != nil {
		s.fail(smtpreply.C503BadCmdSeq, smtpreply.Se5Proto5InvalidCmd1, "RCPT not allowed during BDAT transfer")
		return
	}
	rest, ok := cutPrefixFold(arg, "TO:")
	if !ok {
		s.fail(smtpreply.C501BadParamSyntax, smtpreply.Se5Proto5InvalidArgs4, "syntax: RCPT TO:<address>")
		return
	}
	addr, params, err := parsePath(rest)
	if p, ok := postmasterPath(rest); ok {
		// RFC 5321 §4.1.1.3 and §4.5.1: <Postmaster> without a domain is
		// always accepted; the backend gets an address it knows.
		addr, params, err = "postmaster", p, nil
		if s.opts.Postmaster != "" {
			addr = s.opts.Postmaster
		}
	}
	if err != nil || addr == "" {
		s.fail(smtpreply.C501BadParamSyntax, smtpreply.Se5Addr1BadDestSyntax3, "bad recipient address syntax")
		return
	}
	if params != "" {
		s.fail(smtpreply.C555UnrecognizedAddrParam, smtpreply.Se5Proto5InvalidArgs4, "unsupported RCPT parameter")
		return
	}
	if !s.tx.SMTPUTF8 && !isASCII(addr) {
		s.fail(smtpreply.C553BadMailbox, smtpreply.Se5Media6NonASCIIAddr7, "non-ASCII address needs SMTPUTF8")
		return
	}
	if len(s.tx.Rcpts) >= s.opts.MaxRecipients {
		// RFC 5321 §4.5.3.1.10: 452 tells the client to send the rest in
		// another transaction.
		s.reply(smtpreply.C452StorageFull, smtpreply.Se4Proto5TooManyRcpts3, "too many recipients")
		return
	}
	s.tx.Rcpt = addr
	v := s.pol.Decide(s.txCtx, policy.StageRcpt, s.tx)
	s.tx.Rcpt = ""
	if v.Action.Refuses() {
		s.replyWith(v.Reply)
		s.tx.Refused = append(s.tx.Refused, policy.RcptRefusal{Rcpt: addr, Reply: v.Reply.String(), Rule: v.Reason})
		return
	}
	if ok, key := s.rate.allow(rateRcpt, s.client.Addr.Addr()); !ok {
		rep := replyRateRecipients(key, s.id)
		s.replyWith(rep)
		s.tx.Refused = append(s.tx.Refused, policy.RcptRefusal{Rcpt: addr, Reply: rep.String(), Rule: "rate"})
		return
	}
	s.tx.Rcpts = append(s.tx.Rcpts, addr)
	s.reply(smtpreply.C250Completed, smtpreply.Se2Addr1DestValid5, "Ok")
}

// validHELO accepts a domain name or an address literal (RFC 5321 §4.1.3).
// The name is ASCII: RFC 6531 §3.7.1 does not extend EHLO, and the name is
// copied into our Received header.
func validHELO(h string) bool {
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		lit := strings.TrimPrefix(h[1:len(h)-1], "IPv6:")
		_, err := netip.ParseAddr(lit)
		return err == nil
	}
	return isASCII(h) && validDomain(h)
}

// heloIsUs reports a client greeting us with our own name, one of our
// domains, or the address it connected to: a forger's shortcut.
func (s *session) heloIsUs(h string) bool {
	h = mailaddr.NormalizeDomain(h)
	if mailaddr.ParseDomain(h).Equal(mailaddr.ParseDomain(s.opts.Hostname)) || s.pol.LocalDomain(h) {
		return true
	}
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		lit, err := netip.ParseAddr(strings.TrimPrefix(strings.TrimPrefix(h[1:len(h)-1], "ipv6:"), "IPv6:"))
		local := addrPort(s.conn.LocalAddr())
		return err == nil && local.IsValid() && lit.Unmap() == local.Addr().Unmap()
	}
	return false
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return "", false
	}
	return s[len(prefix):], true
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return true
		}
	}
	return false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func (s *session) cmdStartTLS(arg string) {
	switch {
	case s.tls == nil:
		s.fail(smtpreply.C502CmdNotImpl, smtpreply.Se5Proto5InvalidCmd1, "STARTTLS not available")
		return
	case s.client.TLS != nil:
		s.fail(smtpreply.C503BadCmdSeq, smtpreply.Se5Proto5InvalidCmd1, "TLS already active")
		return
	case arg != "":
		s.fail(smtpreply.C501BadParamSyntax, smtpreply.Se5Proto5InvalidArgs4, "syntax: STARTTLS")
		return
	}
	// Anything the client pipelined after STARTTLS arrived in clear text and
	// must not be taken as if it came over TLS (CVE-2011-0411).
	if n := s.r.Buffered(); n > 0 {
		_, _ = s.r.Discard(n)
		s.log.Info("discarded plaintext pipelined after STARTTLS", "bytes", n)
	}
	s.reply(smtpreply.C220ServiceReady, smtpreply.Se2Other00, "ready to start TLS")
	s.flush()
	tc := tls.Server(s.conn, s.tls)
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.CommandTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		s.log.Info("TLS handshake failed", "err", err)
		s.quit = true
		_ = s.conn.Close()
		return
	}
	s.mu.Lock()
	s.conn = tc
	s.rd.forget()
	s.wd.forget()
	s.mu.Unlock()
	s.r.Reset(tc)
	s.w.Reset(tc)
	st := tc.ConnectionState()
	// RFC 3207 §4.2: the client must greet again; forget what it said.
	s.resetTx()
	s.client.HELO = ""
	s.client.TLS = &policy.TLSInfo{
		Version:     tls.VersionName(st.Version),
		CipherSuite: tls.CipherSuiteName(st.CipherSuite),
		ServerName:  st.ServerName,
	}
}
