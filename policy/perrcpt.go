package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"

	"mxguard/checks/check"
	"mxguard/checks/rcpt"
)

// Per-recipient checks (check.Def.PerRcpt) decide each recipient rather
// than the transaction: greylisting's triplet holds the recipient. Their
// answers for the recipient being decided are kept in tx.rcptNow (what
// checks.NAME and temperrors read at rcpt) and their facts in tx.found,
// both cleared when the next recipient is decided and after the decision,
// so that no recipient reads another's. The verdict log keeps every
// recipient's answer, with its facts, under "NAME <addr>"; replay decides
// from those and never runs the check.

// rcptKey is the verdict log's key for check name's answer about rcpt,
// the form recipient verification's answers have always had
// ("rcpt <addr>").
func rcptKey(name, rcpt string) string { return name + " <" + rcpt + ">" }

// perRcptNames are the registered per-recipient checks, with "rcpt"
// (recipient verification, decided apart in rcptverify.go): the names
// whose "NAME <addr>" entries in a verdict line are a recipient's.
var perRcptNames = func() map[string]bool {
	out := map[string]bool{"rcpt": true}
	for _, r := range registry {
		if r.perRcpt {
			out[r.name] = true
		}
	}
	return out
}()

// logRcptCheck keeps check name's answer about tx.Rcpt for the verdict log.
func (tx *Transaction) logRcptCheck(name string, rec CheckRecord) {
	if tx.rcptChecks == nil {
		tx.rcptChecks = map[string]CheckRecord{}
	}
	tx.rcptChecks[rcptKey(name, tx.Rcpt)] = rec
}

// startRcpt readies tx for the decision about tx.Rcpt: what the previous
// recipient's checks left is cleared and, in replay, the logged answers
// about this one are taken as the checks' answers.
func (s *Session) startRcpt(tx *Transaction) {
	clear(tx.rcptNow)
	clearRcptFacts(tx)
	if tx.replayRcpts == nil {
		return
	}
	for _, r := range registry {
		if !r.perRcpt {
			continue
		}
		rec, ok := tx.replayRcpts[rcptKey(r.name, tx.Rcpt)]
		if !ok {
			continue
		}
		facts := rec.Facts
		rec.Facts = nil
		if tx.rcptNow == nil {
			tx.rcptNow = map[string]CheckRecord{}
		}
		tx.rcptNow[r.name] = rec
		if facts == nil {
			continue
		}
		f, err := loggedFacts(r.field, facts)
		if err != nil {
			// An old or hand-edited line: the answer stands, the facts
			// stay empty, as for a check that gave none.
			s.e.logger.Warn("replay: cannot read logged facts", "check", r.name, "rcpt", tx.Rcpt, "err", err)
			continue
		}
		reflect.ValueOf(&tx.found).Elem().Field(r.field).Set(reflect.ValueOf(f))
	}
}

// loggedFacts turns facts as read back from a verdict line (JSON decoded
// into an any) into the type of Found's field.
func loggedFacts(field int, raw any) (any, error) {
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, fmt.Errorf("policy: logged facts: %w", err)
	}
	p := reflect.New(reflect.TypeFor[Found]().Field(field).Type)
	if err := json.Unmarshal(b, p.Interface()); err != nil {
		return nil, fmt.Errorf("policy: logged facts: %w", err)
	}
	return p.Elem().Interface(), nil
}

// clearRcptFacts empties the per-recipient checks' facts.
func clearRcptFacts(tx *Transaction) {
	found := reflect.ValueOf(&tx.found).Elem()
	for _, r := range registry {
		if r.perRcpt {
			f := found.Field(r.field)
			f.Set(reflect.Zero(f.Type()))
		}
	}
}

// ran is a check that ran for the decision being taken, whose Record the
// engine calls once the verdict is known.
type ran struct {
	c   *checker
	v   *view
	res check.Result
}

// recordRan calls the Record of the checks that ran for the decision v,
// in serve only (Options.Record): check and replay leave no trace. At
// rcpt, a check answered once per transaction that ran at an earlier
// recipient's decision is told this one's too (see check.Def.Record). A
// record that fails is logged and counted; the verdict stands.
func (s *Session) recordRan(ctx context.Context, tx *Transaction, stage Stage, v Verdict) {
	pending := tx.ran
	tx.ran = tx.ran[:0]
	if !s.e.record {
		return
	}
	verdict := check.Verdict{Refused: v.Action.Refuses(), Permanent: v.Action == ActionReject}
	if stage == StageRcpt {
		verdict.UnknownRcpt = tx.rcptVerify.Result == string(rcpt.Unknown)
		calls := append(append([]ran(nil), tx.rcptRan...), pending...)
		for _, r := range pending {
			if !r.c.PerRcpt {
				tx.rcptRan = append(tx.rcptRan, r)
			}
		}
		pending = calls
	}
	for _, r := range pending {
		if err := s.e.recordOne(ctx, r, verdict); err != nil {
			s.e.logger.Warn("check could not record its answer", "check", r.c.name, "session", tx.Session, "err", err)
			s.e.metrics.CheckRecordError(r.c.name)
		}
	}
}

// recordOne calls one Record under the check timeout; a panic is an error.
func (e *Engine) recordOne(ctx context.Context, r ran, verdict check.Verdict) (err error) {
	ctx, cancel := context.WithTimeout(ctx, e.checkTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			e.panicked(r.c, "", p)
			err = fmt.Errorf("policy: record of %s panicked: %v", r.c.name, p)
		}
	}()
	return r.c.Record(ctx, r.v, r.res, verdict)
}
