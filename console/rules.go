package console

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"mxguard/policy"
	"mxguard/rules"
)

// Bounds of a replay from the rules page: the pasted file, the form that
// carries it (URL-encoded, up to three octets a character), and the
// verdicts replayed. A replay of the most costs about half a second of
// one core (BenchmarkRulesReplay10k), reading the index 500 at a time.
const (
	maxPastedRules   = 256 << 10
	maxRulesForm     = 4*maxPastedRules + 4<<10
	maxReplayed      = 10000
	defaultReplayed  = 1000
	replayExamples   = 20
	replayPageSize   = 500
	ruleCountHours   = 7 * 24
	pastedRulesName  = "pasted.yaml"
	maxRuleCountKeys = 1 << 20
)

// ruleRow is a loaded rule as the rules page lists it.
type ruleRow struct {
	*rules.Rule
	ReplyText string
	// Count is how many verdicts of the last ruleCountHours it matched.
	Count int
}

// replayView is a replay's outcome as the page shows it.
type replayView struct {
	Total, Changed int
	Changes        []*policy.ReplayChange
}

// rulesData is the rules page.
type rulesData struct {
	Rules []ruleRow
	Files []string
	// Counted is false when the match counts could not be read.
	Counted    bool
	CountHours int
	// The replay form as the page shows it back, its load errors (each
	// file:line:col) and its outcome.
	Pasted      string
	N           int
	MaxN        int
	LoadErrors  []string
	Replay      *replayView
	MaxPasteKiB int
}

// rulesPage fills the loaded rules and their match counts.
func (s *Server) rulesPage(ss *session) (pageData, *rulesData) {
	data := &rulesData{N: defaultReplayed, MaxN: maxReplayed, CountHours: ruleCountHours, MaxPasteKiB: maxPastedRules >> 10}
	d := pageData{User: ss.user, CSRF: ss.csrf, Title: "Rules", Data: data}
	var set *rules.Set
	if s.opts.Rules != nil {
		set = s.opts.Rules()
	}
	if set == nil {
		return d, data
	}
	data.Files = set.Files
	counts := map[string]int{}
	if st, err := s.opts.Index.Stats(ruleCountHours, maxRuleCountKeys); err != nil {
		s.opts.Logger.Warn("console: rule counts", "err", err)
	} else {
		data.Counted = true
		for _, c := range st.Rules {
			counts[c.Name] = c.Count
		}
	}
	for _, r := range set.Rules {
		row := ruleRow{Rule: r, Count: counts[r.Name]}
		if r.Reply != nil {
			row.ReplyText = r.Reply.String()
		}
		data.Rules = append(data.Rules, row)
	}
	return d, data
}

func (s *Server) rules(w http.ResponseWriter, r *http.Request, ss *session) {
	d, _ := s.rulesPage(ss)
	s.render(w, http.StatusOK, "rules", d)
}

// replay answers the rules page's form: the pasted rules file replayed
// on the newest verdicts of the index, as "mxguard rules replay" would.
func (s *Server) replay(w http.ResponseWriter, r *http.Request, ss *session) {
	d, data := s.rulesPage(ss)
	data.Pasted = r.PostFormValue("rules")
	if n := strings.TrimSpace(r.PostFormValue("n")); n != "" {
		v, err := strconv.Atoi(n)
		if err != nil || v < 1 || v > maxReplayed {
			d.Error = fmt.Sprintf("Verdicts: give a number from 1 to %d.", maxReplayed)
			s.render(w, http.StatusBadRequest, "rules", d)
			return
		}
		data.N = v
	}
	if len(data.Pasted) > maxPastedRules {
		d.Error = fmt.Sprintf("The rules file is larger than %d KiB.", maxPastedRules>>10)
		data.Pasted = ""
		s.render(w, http.StatusRequestEntityTooLarge, "rules", d)
		return
	}
	set, err := rules.Parse(pastedRulesName, []byte(data.Pasted), policy.RulesOptions())
	if err != nil {
		var errs rules.Errors
		if !errors.As(err, &errs) {
			errs = rules.Errors{err}
		}
		for _, e := range errs {
			data.LoadErrors = append(data.LoadErrors, e.Error())
		}
		d.Error = "The rules file does not load."
		s.render(w, http.StatusUnprocessableEntity, "rules", d)
		return
	}
	sum := policy.NewReplaySummary(set, replayExamples)
	after := ""
	for sum.Total < data.N {
		page, err := s.opts.Index.Search(&policy.VerdictFilter{}, after, min(replayPageSize, data.N-sum.Total))
		if err != nil {
			s.opts.Logger.Error("console: replay", "err", err)
			d.Error = "The verdicts cannot be read: see the log."
			s.render(w, http.StatusInternalServerError, "rules", d)
			return
		}
		for _, rec := range page.Records {
			sum.Add(rec)
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	data.Replay = &replayView{Total: sum.Total, Changed: sum.Changed, Changes: sum.Changes()}
	s.opts.Logger.Info("console: rules replayed", "user", ss.user, "verdicts", sum.Total, "changed", sum.Changed)
	s.render(w, http.StatusOK, "rules", d)
}

// limitBody refuses a request body over n octets before h parses it
// (the form of every POST is parsed for its CSRF token).
func limitBody(n int64, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > n {
			http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, n)
		h.ServeHTTP(w, r)
	})
}
