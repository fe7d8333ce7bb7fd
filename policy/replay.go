package policy

import (
	"context"
	"net/netip"
	"strings"

	"mxguard/checks/dmarc"
	"mxguard/rules"
)

// Decisions that no rule makes: replaying other rules cannot change them.
var fixedReasons = map[string]bool{"relay": true, "size": true, "spool": true, "non-smtp": true, "hold-store": true}

// fixedActions are the lines about a held message after it was held.
var fixedActions = map[string]bool{ActionRelease: true, ActionDelete: true}

// ReplayResult is what a rule set would have done to a logged transaction.
type ReplayResult struct {
	Action string // accept, reject, tempfail, quarantine, tag, hold, abandoned (release, delete: as logged)
	Stage  string
	Reason string // the deciding rule, or why no rule decided
	Reply  string
}

// Replay decides a logged transaction again with set, from the facts and
// check results in its record: no DNS, no network, no check is run. The
// stages are replayed in order as the client went through them; recipients
// refused by relaying stay refused.
func Replay(rec *Record, set *rules.Set) ReplayResult {
	if fixedReasons[rec.Reason] || fixedActions[rec.Action] {
		return ReplayResult{Action: rec.Action, Stage: rec.Stage, Reason: rec.Reason, Reply: rec.Reply}
	}
	e := NewEngine(Options{Rules: set, Domains: replayDomains(rec)})
	mail := replayTx(rec)
	r := e.NewSession().Walk(context.Background(), Walk{
		Tx: func(stage Stage) *Transaction {
			if stage == StageMail {
				return mail
			}
			return replayTx(rec)
		},
		Rcpts: replayRcpts(rec),
		// The walk ends where the logged transaction ended.
		Stop: func(stage Stage) bool {
			switch stage {
			case StageConnect, StageHelo, StageMail:
				return rec.Stage == stage.String()
			}
			return rec.Stage != "data" || rec.Action == "abandoned"
		},
	})
	if r.Stopped && r.Stage == StageRcpt {
		return ReplayResult{Action: "abandoned", Stage: "data"}
	}
	v := r.Verdict
	return ReplayResult{Action: v.Action.String(), Stage: r.Stage.String(), Reason: v.Reason, Reply: v.Reply.String()}
}

// replayTx rebuilds the transaction a record describes, as it stood before
// any recipient was decided.
func replayTx(rec *Record) *Transaction {
	f := rec.Facts
	if f == nil {
		f = &Facts{}
	}
	ip, _ := netip.ParseAddr(rec.ClientIP)
	smtp := f.SMTP // the session's conduct, which recipients may add to
	tx := &Transaction{
		Session: rec.Session,
		ID:      rec.Tx,
		Client: Client{Addr: netip.AddrPortFrom(ip, uint16(f.Client.Port)), PTR: rec.ClientPTR, HELO: rec.HELO, ESMTP: f.ESMTP, TLS: rec.TLS,
			SMTP: &smtp},
		MailFrom:  rec.MailFrom,
		Size:      rec.Size,
		MessageID: rec.MessageID,
		Protocol:  f.Protocol,
		Checks:    map[string]CheckRecord{},
	}
	for k, v := range rec.Checks {
		if name, _, ok := strings.Cut(k, " <"); ok && perRcptNames[name] {
			if tx.replayRcpts == nil {
				tx.replayRcpts = map[string]CheckRecord{}
			}
			tx.replayRcpts[k] = v
			continue
		}
		tx.Checks[k] = v
	}
	// The checks' own facts come from the log too: replay never runs one.
	tx.found, tx.fromFacts = f.Found, f.From
	tx.from = &dmarc.ParsedFrom{Domain: f.From.Domain}
	if d := &tx.found.DMARC; d.Policy != "" && d.AppliedPolicy == "" {
		// A line written before pct was sampled: draw the sample from
		// what the line holds, as the check would have.
		d.AppliedPolicy, d.Sampled = dmarc.Applied(d.Policy, d.Percent, f.From.Domain, rec.MessageID)
	}
	return tx
}

// replayRcpts are the recipients to decide again: those accepted, and those
// refused by a rule (a relay refusal is not the rules' to change).
func replayRcpts(rec *Record) []string {
	out := append([]string(nil), rec.Rcpts...)
	for _, r := range rec.Refused {
		if r.Rule != "relay" && r.Rule != "rate" {
			out = append(out, r.Rcpt)
		}
	}
	return out
}

// replayDomains are the local domains as the record shows them: those of
// every recipient that was not refused for relaying.
func replayDomains(rec *Record) []string {
	var out []string
	for _, r := range replayRcpts(rec) {
		if d := Domain(r); d != "" {
			out = append(out, d)
		}
	}
	return out
}
