// Package rules is mxguard's rules-file language: it parses and validates
// YAML rules files, compiles each rule's condition once when the file loads
// (type-checked against the facts the caller describes), and evaluates a
// stage's rules against a facts value handed in by the caller.
//
// The package knows nothing about checks or SMTP sessions: the caller
// (policy) supplies the facts type and turns matches into replies.
package rules

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/expr-lang/expr/vm"
)

// Stages, in the order an SMTP transaction reaches them.
var Stages = []string{"connect", "helo", "mail", "rcpt", "data"}

// Actions a rule may take.
const (
	Accept     = "accept"
	Reject     = "reject"
	Tempfail   = "tempfail"
	Quarantine = "quarantine"
	Tag        = "tag"
	Score      = "score"
)

// Modes of a rule.
const (
	Enforce = "enforce"
	Monitor = "monitor"
)

// Decisive reports whether an action ends the evaluation of a stage: the
// first decisive match wins. Tag and score matches add up instead.
func Decisive(action string) bool {
	return action == Accept || action == Reject || action == Tempfail || action == Quarantine
}

// Reply is an SMTP reply a rule gives when it refuses.
type Reply struct {
	Code     int
	Enhanced [3]int
	Text     string
}

// String renders the reply as it is written in a rules file.
func (r Reply) String() string {
	return fmt.Sprintf("%d %d.%d.%d %s", r.Code, r.Enhanced[0], r.Enhanced[1], r.Enhanced[2], r.Text)
}

// ParseReply parses "550 5.7.1 text": a reply code, an RFC 3463 enhanced
// status code of the same class, and text.
func ParseReply(s string) (Reply, error) {
	f := strings.SplitN(strings.TrimSpace(s), " ", 3)
	if len(f) < 3 || strings.TrimSpace(f[2]) == "" {
		return Reply{}, fmt.Errorf("expected a reply like \"550 5.7.1 text\", got %q", s)
	}
	code, err := strconv.Atoi(f[0])
	if err != nil || len(f[0]) != 3 || code < 200 || code > 599 {
		return Reply{}, fmt.Errorf("expected a three-digit reply code, got %q", f[0])
	}
	var r Reply
	r.Code, r.Text = code, strings.TrimSpace(f[2])
	parts := strings.Split(f[1], ".")
	if len(parts) != 3 {
		return Reply{}, fmt.Errorf("expected an enhanced status code like 5.7.1, got %q", f[1])
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 999 {
			return Reply{}, fmt.Errorf("expected an enhanced status code like 5.7.1, got %q", f[1])
		}
		r.Enhanced[i] = n
	}
	if r.Enhanced[0] != code/100 {
		// RFC 3463 §2: the class of the enhanced code is the class of the
		// reply; a 550 4.x.x confuses every client that reads both.
		return Reply{}, fmt.Errorf("enhanced code %s does not match reply code %d: its first digit must be %d", f[1], code, code/100)
	}
	if strings.ContainsAny(r.Text, "\r\n") {
		return Reply{}, fmt.Errorf("reply text must be one line")
	}
	return r, nil
}

// Rule is one compiled rule.
type Rule struct {
	Name    string
	Stage   string
	When    string
	Action  string
	Reply   *Reply
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
