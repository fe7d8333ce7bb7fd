package policy

import "context"

// Walk is the stage sequence of one transaction, connect to data, for the
// tools that have all of a transaction's inputs at once: check (a stored
// message and an envelope given on the command line) and replay (a logged
// transaction). serve goes through the same stages one SMTP command at a
// time, deciding each with the same Session.Decide; only where the inputs
// come from differs.
type Walk struct {
	// Tx returns the transaction stage decides on. Connect and HELO are
	// the session's decisions: each gets a transaction of its own. MAIL's
	// is the one the rest of the walk fills in (recipients, content).
	Tx func(stage Stage) *Transaction
	// Rcpts are the recipients, decided in order.
	Rcpts []string
	// Content fills in the message before the data stage. A refusal it
	// returns (a limit that no rule makes) ends the walk.
	Content func(tx *Transaction) (Verdict, bool)
	// Stop reports whether the walk ends after stage although nothing
	// refused: replay stops where the logged transaction stopped. Nil
	// walks to the end.
	Stop func(stage Stage) bool
	// Step, when set, is told each decision: the stage, what it decided
	// on (the client's address, the HELO name, <address>), the verdict.
	Step func(stage Stage, what string, v Verdict)
}

// WalkResult is where a walk ended and with what.
type WalkResult struct {
	Tx      *Transaction // the transaction of the last stage decided
	Stage   Stage
	Verdict Verdict
	// Stopped is set when Stop ended the walk before a refusal.
	Stopped bool
}

// Walk decides a transaction stage by stage until a stage refuses, Stop
// ends it, or the data stage has decided.
func (s *Session) Walk(ctx context.Context, w Walk) WalkResult {
	step := func(stage Stage, what string, v Verdict) {
		if w.Step != nil {
			w.Step(stage, what, v)
		}
	}
	stop := func(stage Stage) bool { return w.Stop != nil && w.Stop(stage) }
	for _, stage := range []Stage{StageConnect, StageHelo, StageMail} {
		tx := w.Tx(stage)
		v := s.Decide(ctx, stage, tx)
		what := tx.Client.Addr.Addr().String()
		switch stage {
		case StageHelo:
			what = tx.Client.HELO
		case StageMail:
			what = "<" + tx.MailFrom + ">"
		}
		step(stage, what, v)
		if v.Action.Refuses() || stop(stage) {
			return WalkResult{Tx: tx, Stage: stage, Verdict: v, Stopped: !v.Action.Refuses()}
		}
		if stage != StageMail {
			continue
		}
		var last Verdict
		for _, r := range w.Rcpts {
			tx.Rcpt = r
			last = s.Decide(ctx, StageRcpt, tx)
			tx.Rcpt = ""
			step(StageRcpt, "<"+r+">", last)
			if last.Action.Refuses() {
				tx.Refused = append(tx.Refused, RcptRefusal{Rcpt: r, Reply: last.Reply.String(), Rule: last.Reason})
			} else {
				tx.Rcpts = append(tx.Rcpts, r)
			}
		}
		if len(tx.Rcpts) == 0 {
			return WalkResult{Tx: tx, Stage: StageRcpt, Verdict: last}
		}
		if stop(StageRcpt) {
			return WalkResult{Tx: tx, Stage: StageRcpt, Verdict: last, Stopped: true}
		}
		if w.Content != nil {
			if v, refused := w.Content(tx); refused {
				return WalkResult{Tx: tx, Stage: StageData, Verdict: v}
			}
		}
		return WalkResult{Tx: tx, Stage: StageData, Verdict: s.Decide(ctx, StageData, tx)}
	}
	panic("unreachable")
}
