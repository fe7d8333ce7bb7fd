package rules

import (
	"fmt"

	"github.com/expr-lang/expr/vm"

	"mxguard/internal/mailaddr"
)

// Outcome is what the rules of one stage said.
type Outcome struct {
	// Matches are every rule whose condition held, in order, monitor rules
	// included and rules after the decisive one excluded.
	Matches []*Rule
	// Decisive is the first enforced accept, reject, tempfail,
	// quarantine or hold that matched, or nil.
	Decisive *Rule
	// Score is the sum of the enforced score rules that matched.
	Score float64
	// Headers are what the enforced tag rules that matched add.
	Headers []Header
	// Errors are enforced conditions that failed at run time (never at
	// load time: they are type-checked). The caller must not treat them as
	// no match.
	Errors []error
	// MonitorErrors are monitor-mode conditions that failed: worth a log
	// line, never a refusal, since monitor rules enforce nothing.
	MonitorErrors []error
}

// Eval runs the rules of stage against env, a value of the facts type the
// set was compiled for. rcptDomains are the recipient domains the stage
// concerns (the one recipient at rcpt, all of them at data), for rules
// limited to some domains, in any spelling: they are compared as names
// (mailaddr.Domain), so that "example.org.", "EXAMPLE.org" and the U-label
// and A-label forms of a name all fall under a rule for it.
func (s *Set) Eval(stage string, env any, rcptDomains []string) Outcome {
	var out Outcome
	var machine vm.VM
	var keys []string // rcptDomains' comparison forms, made on first need
	for _, r := range s.Rules {
		if r.Stage != stage {
			continue
		}
		if len(r.Domains) > 0 {
			if keys == nil {
				keys = make([]string, len(rcptDomains))
				for i, d := range rcptDomains {
					keys[i] = mailaddr.ParseDomain(d).ASCII()
				}
			}
			if !r.applies(keys) {
				continue
			}
		}
		v, err := machine.Run(r.program, env)
		if err != nil {
			err = fmt.Errorf("rule %s (%s:%d): %w", r.Name, r.File, r.Line, err)
			if r.Mode == Monitor {
				out.MonitorErrors = append(out.MonitorErrors, err)
			} else {
				out.Errors = append(out.Errors, err)
			}
			continue
		}
		if ok, _ := v.(bool); !ok {
			continue
		}
		out.Matches = append(out.Matches, r)
		if r.Mode == Monitor {
			continue
		}
		switch {
		case r.Action == Score:
			out.Score += r.Score
		case r.Action == Tag:
			out.Headers = append(out.Headers, r.Headers...)
		case Decisive(r.Action):
			out.Decisive = r
			return out
		}
	}
	return out
}

// applies reports whether one of the recipient domains, in their
// comparison form, is one of the rule's.
func (r *Rule) applies(keys []string) bool {
	for _, d := range keys {
		for _, want := range r.Domains {
			if d == want {
				return true
			}
		}
	}
	return false
}
