package rules

import (
	"fmt"

	"github.com/expr-lang/expr/vm"
)

// Outcome is what the rules of one stage said.
type Outcome struct {
	// Matches are every rule whose condition held, in order, monitor rules
	// included and rules after the decisive one excluded.
	Matches []*Rule
	// Decisive is the first enforced accept, reject, tempfail or
	// quarantine that matched, or nil.
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
// limited to some domains.
func (s *Set) Eval(stage string, env any, rcptDomains []string) Outcome {
	var out Outcome
	var machine vm.VM
	for _, r := range s.Rules {
		if r.Stage != stage || !r.applies(rcptDomains) {
			continue
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

func (r *Rule) applies(rcptDomains []string) bool {
	if len(r.Domains) == 0 {
		return true
	}
	for _, d := range rcptDomains {
		for _, want := range r.Domains {
			if d == want {
				return true
			}
		}
	}
	return false
}
