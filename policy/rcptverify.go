package policy

import (
	"context"
	"time"

	"mxguard/checks/rcpt"
)

// verifyRcpt runs recipient verification for tx.Rcpt. It is per
// recipient, so it is not memoised per transaction like the other checks;
// the verifier has its own cache.
func (s *Session) verifyRcpt(ctx context.Context, tx *Transaction) {
	tx.rcptVerify = rcpt.Facts{Result: string(rcpt.Unchecked)}
	if c, ok := tx.replayRcpts["rcpt <"+tx.Rcpt+">"]; ok {
		// Replay decides from the logged answer; it never asks anyone.
		tx.rcptVerify = rcpt.Facts{Result: c.Result, Detail: c.Detail}
		return
	}
	v := s.e.recipients
	if v == nil {
		return
	}
	start := time.Now()
	// Most answers are in the verifier's cache: they need no deadline,
	// and so no timer.
	r, ok := v.Cached(tx.Rcpt)
	if !ok {
		ctx, cancel := context.WithTimeout(ctx, s.e.checkTimeout)
		r = v.Verify(ctx, tx.Rcpt)
		cancel()
	}
	tx.rcptVerify = rcpt.Facts{Result: string(r.Status), Detail: r.Detail}
	detail := r.Detail
	if r.Cached {
		detail += " (cached)"
	}
	took := time.Since(start)
	s.e.metrics.Check("rcpt", string(r.Status), took)
	// Kept apart from Checks: a recipient's verification concerns that
	// recipient only, and must not read as a temperror of the message.
	if tx.rcptChecks == nil {
		tx.rcptChecks = map[string]CheckRecord{}
	}
	tx.rcptChecks["rcpt <"+tx.Rcpt+">"] = CheckRecord{Result: string(r.Status), Detail: detail, DurationMS: float64(took.Microseconds()) / 1000}
	if r.Status == rcpt.Unknown && tx.Client.SMTP != nil {
		tx.Client.SMTP.UnknownRcpts++
	}
}
