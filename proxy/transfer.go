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

func (s *session) cmdData(arg string) {
	switch {
	case arg != "":
		s.fail(smtpreply.C501BadParamSyntax, smtpreply.Se5Proto5InvalidArgs4, "syntax: DATA")
		return
	case s.bdat != nil:
		s.fail(smtpreply.C503BadCmdSeq, smtpreply.Se5Proto5InvalidCmd1, "DATA not allowed during BDAT transfer")
		return
	case s.tx == nil:
		s.fail(smtpreply.C503BadCmdSeq, smtpreply.Se5Proto5InvalidCmd1, "send MAIL first")
		return
	case len(s.tx.Rcpts) == 0:
		// RFC 2920 §3.1: DATA after every RCPT failed gets 554.
		s.fail(smtpreply.C554TransactionFailed, smtpreply.Se5Proto5InvalidCmd1, "no valid recipients")
		return
	}
	s.reply(smtpreply.C354Continue, smtpreply.Enhanced{}, "end data with <CR><LF>.<CR><LF>")
	s.flush()
	if !s.setReadDeadline(s.opts.DataTimeout, false) {
		s.readFailed(os.ErrDeadlineExceeded)
		s.quit = true
		return
	}
	msg := s.opts.Spool.NewMessage()
	defer msg.Close()
	scan := newDataScanner(s.sink(msg), s.opts.MaxMessageBytes, true)
	defer scan.release()
	if err := scan.readData(s.r); err != nil && !isWriteErr(scan, err) {
		s.readFailed(err)
		s.quit = true
		return
	}
	s.finishMessage(msg, scan)
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

func (s *session) cmdBdat(arg string) {
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
		s.reply(smtpreply.C501BadParamSyntax, smtpreply.Se5Proto5InvalidArgs4, "syntax: BDAT size [LAST], closing connection")
		s.quit = true
		return
	}
	ok := false
	if s.bdat != nil {
		ok = s.setReadDeadlineAt(s.bdat.until)
	} else {
		ok = s.setReadDeadline(s.opts.DataTimeout, false)
	}
	if !ok {
		s.readFailed(os.ErrDeadlineExceeded)
		s.quit = true
		return
	}
	if s.tx == nil || len(s.tx.Rcpts) == 0 {
		// The chunk follows the command whatever we answer: read it so the
		// next command is read where it starts.
		if _, err := io.CopyN(io.Discard, s.r, size); err != nil {
			s.readFailed(err)
			s.quit = true
			return
		}
		s.fail(smtpreply.C503BadCmdSeq, smtpreply.Se5Proto5InvalidCmd1, "send MAIL and RCPT first")
		return
	}
	if s.bdat == nil {
		msg := s.opts.Spool.NewMessage()
		s.bdat = &bdatState{msg: msg, scan: newDataScanner(s.sink(msg), s.opts.MaxMessageBytes, false),
			until: time.Now().Add(s.opts.DataTimeout)}
	}
	b := s.bdat
	if err := b.scan.readChunk(s.r, size); err != nil && !isWriteErr(b.scan, err) {
		s.readFailed(err)
		s.quit = true
		return
	}
	if b.scan.tooBig() {
		// Content is counted and checked like DATA (RFC 3030 §2): refuse as
		// soon as the limit is passed, and discard the rest of the message.
		r := replyTooBig.WithSession(s.id)
		b.failed = &r
	}
	if !last {
		if b.failed != nil {
			s.replyWith(*b.failed)
		} else {
			s.reply(smtpreply.C250Completed, smtpreply.Se2Other00, strconv.FormatInt(size, 10)+" octets received")
		}
		return
	}
	if b.failed != nil {
		s.replyWith(*b.failed)
		s.pol.Finish(s.tx, policy.Outcome{Stage: policy.StageData, Action: "reject", Reason: "size", Reply: b.failed.String()})
		s.tx = nil
		s.resetTx()
		return
	}
	if err := b.scan.finish(); err != nil {
		s.log.Error("spool failed", "err", err)
	}
	msg := b.msg
	s.bdat = nil
	defer msg.Close()
	defer b.scan.release()
	s.finishMessage(msg, b.scan)
}

// finishMessage decides on a complete message and, if it is accepted,
// delivers it. The client hears 250 only when the backend said 250 for this
// very message: that is the contract that no acknowledged message is lost.
func (s *session) finishMessage(msg *Message, scan *dataScanner) {
	// The transaction's context outlives s.tx, which is cleared at once,
	// until its verdict and delivery are done.
	ctx := s.txCtx
	defer s.endTx()
	tx := s.tx
	s.tx = nil
	tx.Size = scan.size
	tx.Protocol = scan.facts
	log := txLogger{s.log, []any{"tx", tx.ID, "from", tx.MailFrom, "rcpts", tx.Rcpts, "size", tx.Size}}
	finish := func(v policy.Verdict, r smtpreply.Reply, backend string) {
		s.replyWith(r)
		// The client has waited for this reply since its final dot; it goes
		// out before the verdict line is written, unless pipelined commands
		// wait behind it and their replies can share the packet.
		if s.r.Buffered() == 0 {
			s.flush()
		}
		action := v.Action.String()
		if v.Action == policy.ActionInvalid {
			action = "tempfail"
		}
		s.pol.Finish(tx, policy.Outcome{Stage: policy.StageData, Action: action, Reason: v.Reason, Reply: r.String(), BackendReply: backend})
	}
	switch {
	case scan.tooBig():
		finish(policy.Verdict{Action: policy.ActionReject, Reason: "size"}, replyTooBig.WithSession(s.id), "")
		log.Info("message refused", "reason", "size")
		return
	case scan.werr != nil:
		finish(policy.Verdict{Action: policy.ActionTempfail, Reason: "spool"}, replySpoolFailed.WithSession(s.id), "")
		log.Error("spool failed", "err", scan.werr)
		return
	}
	tx.Content = msg
	if _, err := tx.HeaderSplit(); errors.Is(err, policy.ErrHeaderTooBig) {
		// Every reader takes the whole header section at once; one that
		// does not end within the limit is refused, never checked in part.
		v := HeaderTooBig(s.id)
		finish(v, v.Reply, "")
		log.Info("message refused", "reason", "size", "detail", "header section")
		return
	} else if err != nil {
		finish(policy.Verdict{Action: policy.ActionTempfail, Reason: "spool"}, replySpoolFailed.WithSession(s.id), "")
		log.Error("spool failed", "err", err)
		return
	}
	tx.MessageID = MessageID(tx.Header())
	v := s.pol.Decide(ctx, policy.StageData, tx)
	if v.Action.Refuses() {
		finish(v, v.Reply, "")
		log.Info("message refused", "action", v.Action, "reason", v.Reason, "reply", v.Reply.String())
		return
	}
	start := time.Now()
	d := s.opts.Backend.Deliver(ctx, tx, msg)
	finish(v, d.Reply, d.Backend)
	what := "message forwarded"
	if d.Reply.Code/100 != 2 {
		what = "message not delivered"
	}
	log.Info(what, "action", v.Action, "reply", d.Reply.String(), "backend_ms", time.Since(start).Milliseconds(), "spooled", msg.Spilled())
}
