package proxy

import (
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"mxguard/internal/smtpreply"
	"mxguard/policy"
)

func (s *session) cmdData(arg string) smtpreply.Reply {
	switch {
	case arg != "":
		return s.fail(smtpreply.C501BadParamSyntax, smtpreply.Se5Proto5InvalidArgs4, "syntax: DATA")
	case s.bdat != nil:
		return s.fail(smtpreply.C503BadCmdSeq, smtpreply.Se5Proto5InvalidCmd1, "DATA not allowed during BDAT transfer")
	case s.tx == nil:
		return s.fail(smtpreply.C503BadCmdSeq, smtpreply.Se5Proto5InvalidCmd1, "send MAIL first")
	case len(s.tx.Rcpts) == 0:
		// RFC 2920 §3.1: DATA after every RCPT failed gets 554.
		return s.fail(smtpreply.C554TransactionFailed, smtpreply.Se5Proto5InvalidCmd1, "no valid recipients")
	}
	// The 354 goes out now: the client's next octets are the message
	// (RFC 5321 §4.1.1.4), and its reply is the one returned.
	s.send(reply(smtpreply.C354Continue, smtpreply.Enhanced{}, "end data with <CR><LF>.<CR><LF>"))
	s.flush()
	if !s.setReadDeadline(s.opts.DataTimeout, false) {
		s.quit = true
		return s.readFailed(os.ErrDeadlineExceeded)
	}
	msg := s.opts.Spool.NewMessage()
	defer msg.Close()
	scan := newDataScanner(s.sink(msg), s.opts.MaxMessageBytes, true)
	defer scan.release()
	s.inData = true
	err := scan.readData(s)
	s.endData()
	if err != nil && !isWriteErr(scan, err) {
		s.quit = true
		return s.readFailed(err)
	}
	return s.finishMessage(msg, scan)
}

func isWriteErr(d *dataScanner, err error) bool { return d.werr != nil && errors.Is(err, d.werr) }

// sink is where message content goes as it arrives: the spool, and the
// policy's tap (DKIM verifies while the message streams in) when it has one.
func (s *session) sink(msg *Message) io.Writer {
	if tap := s.pol.DataTap(s.txCtx, s.tx); tap != nil {
		return io.MultiWriter(msg, tap)
	}
	return msg
}

func (s *session) cmdBdat(arg string) smtpreply.Reply {
	f := strings.Fields(arg)
	last := len(f) == 2 && strings.EqualFold(f[1], "LAST")
	var size int64
	var err error
	if len(f) >= 1 {
		size, err = strconv.ParseInt(f[0], 10, 64)
	}
	if len(f) == 0 || len(f) > 2 || len(f) == 2 && !last || err != nil || size < 0 {
		// Without a size we cannot know where the chunk ends: the session
		// is out of step and must end (RFC 3030 §3).
		s.quit = true
		return reply(smtpreply.C501BadParamSyntax, smtpreply.Se5Proto5InvalidArgs4, "syntax: BDAT size [LAST], closing connection")
	}
	ok := false
	if s.bdat != nil {
		ok = s.setReadDeadlineAt(s.bdat.until)
	} else {
		ok = s.setReadDeadline(s.opts.DataTimeout, false)
	}
	if !ok {
		s.quit = true
		return s.readFailed(os.ErrDeadlineExceeded)
	}
	if s.tx == nil || len(s.tx.Rcpts) == 0 {
		// The chunk follows the command whatever we answer: read it so the
		// next command is read where it starts.
		if _, err := io.CopyN(io.Discard, s.reader(), size); err != nil {
			s.quit = true
			return s.readFailed(err)
		}
		return s.fail(smtpreply.C503BadCmdSeq, smtpreply.Se5Proto5InvalidCmd1, "send MAIL and RCPT first")
	}
	if s.bdat == nil {
		msg := s.opts.Spool.NewMessage()
		s.bdat = &bdatState{msg: msg, scan: newDataScanner(s.sink(msg), s.opts.MaxMessageBytes, false),
			until: time.Now().Add(s.opts.DataTimeout)}
	}
	b := s.bdat
	if err := b.scan.readChunk(s, size); err != nil && !isWriteErr(b.scan, err) {
		s.quit = true
		return s.readFailed(err)
	}
	if b.scan.tooBig() {
		// Content is counted and checked like DATA (RFC 3030 §2): refuse as
		// soon as the limit is passed, and discard the rest of the message.
		r := replyTooBig.WithSession(s.id)
		b.failed = &r
	}
	if !last {
		if b.failed != nil {
			return *b.failed
		}
		return reply(smtpreply.C250Completed, smtpreply.Se2Other00, strconv.FormatInt(size, 10)+" octets received")
	}
	if b.failed != nil {
		failed := *b.failed
		s.logVerdict(s.tx, policy.Outcome{Stage: policy.StageData, Action: "reject", Reason: "size"}, nil)
		s.tx = nil
		s.resetTx()
		return failed
	}
	if err := b.scan.finish(); err != nil {
		s.log.Error("spool failed", "err", err)
	}
	msg := b.msg
	s.bdat = nil
	defer msg.Close()
	defer b.scan.release()
	return s.finishMessage(msg, b.scan)
}

// finishMessage decides on a complete message and, if it is accepted,
// delivers it, and returns the reply to the end of the message. The client
// hears 250 only when the backend said 250 for this very message: that is
// the contract that no acknowledged message is lost.
func (s *session) finishMessage(msg *Message, scan *dataScanner) smtpreply.Reply {
	// The transaction's context outlives s.tx, which is cleared at once,
	// until its verdict and delivery are done.
	ctx := s.txCtx
	defer s.endTx()
	tx := s.tx
	s.tx = nil
	tx.Size = scan.size
	tx.Protocol = scan.facts
	log := txLogger{s.log, []any{"tx", tx.ID, "from", tx.MailFrom, "rcpts", tx.Rcpts, "size", tx.Size}}
	// finish returns r, with the verdict line and then the log line
	// waiting for it to be sent (see send).
	finish := func(v policy.Verdict, r smtpreply.Reply, backend string, logLine func()) smtpreply.Reply {
		action := v.Action.String()
		if v.Action == policy.ActionInvalid {
			action = "tempfail"
		}
		s.logVerdict(tx, policy.Outcome{Stage: policy.StageData, Action: action, Reason: v.Reason, BackendReply: backend}, logLine)
		return r
	}
	switch {
	case scan.tooBig():
		return finish(policy.Verdict{Action: policy.ActionReject, Reason: "size"}, replyTooBig.WithSession(s.id), "",
			func() { log.Info("message refused", "reason", "size") })
	case scan.werr != nil:
		return finish(policy.Verdict{Action: policy.ActionTempfail, Reason: "spool"}, replySpoolFailed.WithSession(s.id), "",
			func() { log.Error("spool failed", "err", scan.werr) })
	}
	tx.Content = msg
	if _, err := tx.HeaderSplit(); errors.Is(err, policy.ErrHeaderTooBig) {
		// Every reader takes the whole header section at once; one that
		// does not end within the limit is refused, never checked in part.
		v := HeaderTooBig(s.id)
		return finish(v, v.Reply, "", func() { log.Info("message refused", "reason", "size", "detail", "header section") })
	} else if err != nil {
		return finish(policy.Verdict{Action: policy.ActionTempfail, Reason: "spool"}, replySpoolFailed.WithSession(s.id), "",
			func() { log.Error("spool failed", "err", err) })
	}
	tx.MessageID = MessageID(tx.Header())
	v := s.pol.Decide(ctx, policy.StageData, tx)
	if v.Action.Refuses() {
		return finish(v, v.Reply, "", func() { log.Info("message refused", "action", v.Action, "reason", v.Reason, "reply", v.Reply.String()) })
	}
	if v.Action == policy.ActionHold {
		r, o, logLine := s.hold(tx, msg, v, log)
		s.logVerdict(tx, o, logLine)
		return r
	}
	start := time.Now()
	d := s.opts.Backend.Deliver(ctx, tx, msg)
	backendMS, spooled := time.Since(start).Milliseconds(), msg.Spilled()
	return finish(v, d.Reply, d.Backend, func() {
		what := "message forwarded"
		if d.Reply.Code/100 != 2 {
			what = "message not delivered"
		}
		log.Info(what, "action", v.Action, "reply", d.Reply.String(), "backend_ms", backendMS, "spooled", spooled)
	})
}
