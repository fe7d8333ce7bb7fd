package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// VerdictActions are the actions a verdict line can carry. A filter
// refuses anything else, so that a typo ("rejected") is an error rather
// than an empty result.
var VerdictActions = []string{"accept", "reject", "tempfail", "quarantine", "tag", "hold", "abandoned", ActionRelease, ActionDelete}

// VerdictFilter selects verdict records: `mxguard verdicts` and the
// console search with it, so a question asked of either gets the same
// answer. Zero fields do not filter.
type VerdictFilter struct {
	// Since is inclusive, Until exclusive.
	Since, Until time.Time
	// Actions, when not nil, are the actions wanted (see AddActions).
	Actions map[string]bool
	// Rule is a rule that matched, enforced or in monitor mode.
	Rule string
	// Checks are checks that ran, each with the result wanted, if any.
	Checks []CheckFilter
	// From and Rcpt are lower-cased substrings of the sender and of a
	// recipient (accepted or refused); From "<>" is the null sender.
	From, Rcpt string
	// Network holds the client's address (a one-address prefix for an
	// address).
	Network netip.Prefix
	// Session is a prefix of the session or transaction id.
	Session string
}

// CheckFilter is one check filter: the check ran, and gave Result unless
// AnyResult.
type CheckFilter struct {
	Name, Result string
	AnyResult    bool
}

// AddCheck adds a check filter written NAME=RESULT or NAME.
func (f *VerdictFilter) AddCheck(s string) error {
	name, result, hasResult := strings.Cut(s, "=")
	if name == "" || (hasResult && result == "") {
		return errors.New("want NAME=RESULT or NAME")
	}
	f.Checks = append(f.Checks, CheckFilter{Name: name, Result: result, AnyResult: !hasResult})
	return nil
}

// AddActions adds a comma-separated list to the actions wanted, so that
// it may be given again.
func (f *VerdictFilter) AddActions(s string) error {
	if f.Actions == nil {
		f.Actions = map[string]bool{}
	}
	for _, a := range strings.Split(s, ",") {
		a = strings.ToLower(strings.TrimSpace(a))
		if !slices.Contains(VerdictActions, a) {
			return fmt.Errorf("unknown action %q (want %s)", a, strings.Join(VerdictActions, ", "))
		}
		f.Actions[a] = true
	}
	return nil
}

// SetClient sets the client filter: an address, or a network in CIDR
// form.
func (f *VerdictFilter) SetClient(s string) error {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		f.Network = p.Masked()
		return err
	}
	a, err := netip.ParseAddr(s)
	// A one-address prefix, so that one comparison serves both forms.
	f.Network = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
	return err
}

// Match reports whether r passes every filter.
func (f *VerdictFilter) Match(r *Record) bool {
	if !f.Since.IsZero() && r.Time.Before(f.Since) || !f.Until.IsZero() && !r.Time.Before(f.Until) ||
		f.Actions != nil && !f.Actions[r.Action] {
		return false
	}
	if f.Rule != "" && !slices.ContainsFunc(r.Rules, func(m RuleMatch) bool { return m.Name == f.Rule }) {
		return false
	}
	for _, c := range f.Checks {
		got, ok := r.Checks[c.Name]
		if !ok || (!c.AnyResult && got.Result != c.Result) {
			return false
		}
	}
	// "<>" asks for the null sender, which is logged as "".
	if f.From == "<>" && r.Sender() != "<>" ||
		f.From != "" && f.From != "<>" && !strings.Contains(strings.ToLower(r.MailFrom), f.From) {
		return false
	}
	if f.Rcpt != "" {
		has := func(a string) bool { return strings.Contains(strings.ToLower(a), f.Rcpt) }
		if !slices.ContainsFunc(r.Rcpts, has) && !slices.ContainsFunc(r.Refused, func(x RcptRefusal) bool { return has(x.Rcpt) }) {
			return false
		}
	}
	if f.Network.IsValid() {
		a, err := netip.ParseAddr(r.ClientIP)
		if err != nil || !f.Network.Contains(a.Unmap()) {
			return false
		}
	}
	if f.Session != "" && !strings.HasPrefix(r.Session, f.Session) && !strings.HasPrefix(r.Tx, f.Session) {
		return false
	}
	return true
}

// Sender is the record's sender as an admin reads it: "<>" for the null
// sender, "-" when the session ended before MAIL FROM (the log has "" for
// both).
func (r *Record) Sender() string {
	if r.MailFrom != "" {
		return r.MailFrom
	}
	if r.Tx == "" || r.Stage == "connect" || r.Stage == "helo" {
		return "-"
	}
	return "<>"
}

// ParseVerdictTime reads the forms of a filter's times (the verdicts
// command's --since and --until, the console's search): RFC 3339, a date
// at midnight in now's location, or a duration before now with days ("d")
// allowed because log questions are asked in days.
func ParseVerdictTime(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, now.Location()); err == nil {
		return t, nil
	}
	bad := fmt.Errorf("%q is not a time (RFC 3339, YYYY-MM-DD, or a duration like 30m, 2h, 7d)", s)
	days, rest, hasDays := strings.Cut(s, "d")
	if !hasDays {
		days, rest = "0", s
	}
	// Digits only (Atoi takes signs); 100000 days cannot overflow a Duration.
	n, err := strconv.Atoi(days)
	if err != nil || days[0] < '0' || days[0] > '9' || n > 100000 {
		return time.Time{}, bad
	}
	d := time.Duration(n) * 24 * time.Hour
	if rest != "" || !hasDays {
		more, err := time.ParseDuration(rest)
		if err != nil || more < 0 {
			return time.Time{}, bad
		}
		d += more
	}
	return now.Add(-d), nil
}
