// Package rules is mxguard's rules-file language: it parses and validates
// YAML rules files, compiles each rule's condition once when the file loads
// (type-checked against the facts the caller describes), and evaluates a
// stage's rules against a facts value handed in by the caller.
//
// The package knows nothing about checks or SMTP sessions: the caller
// (policy) supplies the facts type and turns matches into replies.
package rules

import (
	"github.com/expr-lang/expr/vm"

	"mxguard/internal/smtpreply"
)

// Stages, in the order an SMTP transaction reaches them.
var Stages = []string{"connect", "helo", "mail", "rcpt", "data"}

// Actions a rule may take.
const (
	Accept     = "accept"
	Reject     = "reject"
	Tempfail   = "tempfail"
	Quarantine = "quarantine"
	// Hold keeps the message in mxguard's own store instead of delivering
	// it, until an admin releases or deletes it. The message exists only
	// at the end of DATA, so only data-stage rules hold.
	Hold  = "hold"
	Tag   = "tag"
	Score = "score"
)

// Modes of a rule.
const (
	Enforce = "enforce"
	Monitor = "monitor"
)

// Decisive reports whether an action ends the evaluation of a stage: the
// first decisive match wins. Tag and score matches add up instead.
func Decisive(action string) bool {
	return action == Accept || action == Reject || action == Tempfail || action == Quarantine || action == Hold
}

// Rule is one compiled rule.
type Rule struct {
	Name    string
	Stage   string
	When    string
	Action  string
	Reply   *smtpreply.Reply // the reply as written, when the rule gives one
	Score   float64
	Headers []Header
	Mode    string
	// Domains, when set, limit the rule to recipients in these domains,
	// each in its comparison form (mailaddr.Domain.ASCII: lower case, no
	// trailing dot, A-labels).
	Domains []string
	// Names are the top-level facts the condition reads, which tell the
	// engine which checks the rule needs.
	Names []string
	// File, Line and Column locate the rule, for logs and lint.
	File         string
	Line, Column int

	program    *vm.Program
	replyParts []replyPart
}

// Header is a header field a tag rule adds.
type Header struct {
	Name, Value string
}

// Thresholds turn the score summed at the end of DATA into an action.
// Zero means not set.
type Thresholds struct {
	Reject     float64
	Quarantine float64
}

// Set is the rules of one or more files, in order.
type Set struct {
	Rules      []*Rule
	Thresholds Thresholds
	// Files are the files the set was loaded from, in order.
	Files []string
}

// Names returns the top-level facts that the rules of stage read.
func (s *Set) Names(stage string) map[string]bool {
	out := map[string]bool{}
	for _, r := range s.Rules {
		if r.Stage == stage {
			for _, n := range r.Names {
				out[n] = true
			}
		}
	}
	return out
}
