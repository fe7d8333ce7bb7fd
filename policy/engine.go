package policy

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync/atomic"
	"time"

	"mxguard/checks/check"
	"mxguard/checks/rcpt"
	"mxguard/checks/resolver"
	"mxguard/internal/mailaddr"
	"mxguard/internal/membudget"
	"mxguard/internal/metrics"
	"mxguard/internal/smtpreply"
	store "mxguard/internal/state"
	"mxguard/rules"
)

// Options configures an Engine.
type Options struct {
	// Domains are the recipient domains this site accepts mail for. A
	// recipient anywhere else is refused whatever any rule says: mxguard is
	// never an open relay.
	Domains []string
	// Rules is the compiled rule set; nil means the built-in default.
	Rules *rules.Set
	// Log receives one Record per transaction; nil writes none.
	Log *VerdictLog
	// CheckTimeout bounds each check [check.DefaultTimeout].
	CheckTimeout time.Duration
	// Resolver is the DNS resolver of the SPF, DKIM and DMARC checks; nil
	// runs no DNS-using check (their facts stay empty).
	Resolver *resolver.Resolver
	// Hostname is our authserv-id in Authentication-Results.
	Hostname string
	// Sections are the checks' config sections, by check name (see
	// Found): each check reads its own (the DNS lists' []dnsbl.Zone, the
	// header checks' headers.Options).
	Sections map[string]any
	// Metrics records verdicts, checks and rule matches; nil records none.
	Metrics *metrics.Metrics
	// Recipients verifies recipients at RCPT; nil verifies none.
	Recipients *rcpt.Verifier
	// AuthResults adds an Authentication-Results header to every accepted
	// message, which runs SPF, DKIM and DMARC whatever the rules need.
	AuthResults bool
	Logger      *slog.Logger
	// Memory is the process-wide budget for what grows with a message
	// while it arrives (the proxy's spool shares it): the DKIM prefetcher
	// reserves the header section it reads ahead from it. Nil is no budget.
	Memory *membudget.Budget
	// State is the store of what outlives a transaction, shared by a
	// fleet's instances when it is Redis; nil keeps none.
	State store.Store
	// Record makes the engine call the checks' Record after each verdict
	// (a greylist triplet's first attempt). Only serve sets it: check
	// and replay decide without writing anything that would change a
	// later decision.
	Record bool
}

// state is what a reload replaces as a whole. A session keeps the state it
// started with, so it finishes on the rules it began under.
type state struct {
	domains    map[string]struct{} // by comparison form (mailaddr.Domain.ASCII)
	domainList []string            // as configured, normalised
	rules      *rules.Set
	// names are the facts each stage's rules read, and plan the checks
	// that makes each stage run, in dependency order: worked out once per
	// rule set, not per message.
	names map[Stage]map[string]bool
	plan  map[Stage][]*checker
}

// Engine decides, at each stage of a transaction, whether it goes on: the
// contracts no rule may override first, then the checks the stage's rules
// need, then the rules.
type Engine struct {
	cur          atomic.Pointer[state]
	log          *VerdictLog
	checks       map[string]*checker
	checkTimeout time.Duration
	resolver     *resolver.Resolver
	recipients   *rcpt.Verifier
	metrics      *metrics.Metrics
	hostname     string
	authResults  bool
	logger       *slog.Logger
	memory       *membudget.Budget
	record       bool // Options.Record
}

// RulesOptions are the facts that rules are compiled against: the Facts
// type, and the stage from which each fact is known.
func RulesOptions() rules.Options {
	since := map[string]string{
		"helo": "helo", "esmtp": "helo", "mail_from": "mail", "rcpts": "rcpt", "rcpt_count": "rcpt",
		"size": "data", "message_id": "data", "protocol": "data", "from": "data", "smtp": "connect",
	}
	// A per-recipient check's facts are those of the recipient being
	// decided: they exist at rcpt only.
	only := map[string]string{"rcpt": "rcpt", "rcpt_verify": "rcpt"}
	for _, r := range registry {
		since[r.name] = r.Define(check.Env{}).Stage.String()
		if r.perRcpt {
			only[r.name] = "rcpt"
		}
	}
	return rules.Options{
		Env:   &Facts{},
		Since: since,
		Only:  only,
	}
}

// DefaultRules compiles the built-in rule set.
func DefaultRules() *rules.Set {
	s, err := rules.Parse(rules.DefaultName, rules.Default, RulesOptions())
	if err != nil {
		// The default set is tested; failing here is a build defect.
		panic(fmt.Sprintf("policy: built-in rules: %v", err))
	}
	return s
}

// NewEngine returns an engine for opts.
func NewEngine(opts Options) *Engine {
	if opts.CheckTimeout <= 0 {
		opts.CheckTimeout = check.DefaultTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	e := &Engine{log: opts.Log, checks: map[string]*checker{}, checkTimeout: opts.CheckTimeout, logger: opts.Logger,
		resolver: opts.Resolver, recipients: opts.Recipients, metrics: opts.Metrics, hostname: opts.Hostname, authResults: opts.AuthResults && opts.Resolver != nil,
		memory: opts.Memory, record: opts.Record}
	for _, r := range registry {
		e.register(r.name, r.Define(check.Env{Resolver: opts.Resolver, Memory: opts.Memory, State: opts.State, Section: opts.Sections[r.name]}))
	}
	e.Reload(opts.Domains, opts.Rules)
	return e
}

// Reload swaps in new domains and rules at once; sessions already running
// keep the ones they started with. A nil set means the built-in default.
func (e *Engine) Reload(domains []string, set *rules.Set) {
	if set == nil {
		set = DefaultRules()
	}
	st := &state{domains: make(map[string]struct{}, len(domains)), rules: set,
		names: map[Stage]map[string]bool{}, plan: map[Stage][]*checker{}}
	for stage := StageConnect; stage <= StageData; stage++ {
		names := e.planNames(set, stage)
		if stage == StageData && e.authResults {
			names["spf"], names["dkim"], names["dmarc"] = true, true, true
		}
		st.names[stage] = names
	}
	e.recordFromOwnStage(st.names)
	for stage := StageConnect; stage <= StageData; stage++ {
		st.plan[stage] = e.needed(stage, st.names[stage])
	}
	for _, d := range domains {
		n := mailaddr.ParseDomain(d)
		st.domains[n.ASCII()] = struct{}{}
		st.domainList = append(st.domainList, n.String())
	}
	e.cur.Store(st)
}

// planNames are the facts whose checks stage's rules make run. A rule
// that reads a per-recipient check that is off in this configuration
// (greylisting without greylist.enabled) makes no check run: its facts
// are empty, and the checks it reads beside them (the default greylist
// rule's SPF) would otherwise run at rcpt for every message for a rule
// that cannot act.
func (e *Engine) planNames(set *rules.Set, stage Stage) map[string]bool {
	out := map[string]bool{}
	for _, r := range set.Rules {
		if r.Stage != stage.String() || e.readsOffCheck(r.Names) {
			continue
		}
		for _, n := range r.Names {
			out[n] = true
		}
	}
	return out
}

// recordFromOwnStage makes a check with Record that a later stage's rules
// read run from its own stage: it records what the decisions of that
// stage mean (harvesting counts the unknown recipients of each rcpt
// decision), which it cannot do when it first runs later.
func (e *Engine) recordFromOwnStage(names map[Stage]map[string]bool) {
	for name, c := range e.checks {
		if c.Record == nil || c.PerRcpt || names[c.Stage][name] {
			continue
		}
		for later := c.Stage + 1; later <= StageData; later++ {
			if names[later][name] {
				names[c.Stage][name] = true
				break
			}
		}
	}
}

// readsOffCheck reports whether names hold a per-recipient check that is
// not enabled.
func (e *Engine) readsOffCheck(names []string) bool {
	for _, n := range names {
		if r, ok := registryByName[n]; ok && r.perRcpt {
			if _, on := e.checks[n]; !on {
				return true
			}
		}
	}
	return false
}

// Rules returns the rule set new sessions get.
func (e *Engine) Rules() *rules.Set { return e.cur.Load().rules }

// NewSession pins the current rules for one SMTP session.
func (e *Engine) NewSession() *Session {
	return &Session{e: e, st: e.cur.Load()}
}

// Session is the engine as one SMTP session sees it: the same rules from
// its first command to its last, and the results of its connect and HELO
// stages, which every one of its transactions inherits.
type Session struct {
	e  *Engine
	st *state
	// What the connect stage and the latest HELO found.
	connect, helo *snapshot
}

// snapshot is what a session-level stage left for later transactions.
type snapshot struct {
	matches     []RuleMatch
	score       float64
	headers     []Header
	accepted    bool
	quarantined string
	checks      map[string]CheckRecord
	found       *Found // nil: nothing found
}

// LocalDomain reports whether mail for domain is ours to accept. Domains
// compare as names (mailaddr.Domain): any case, with or without the
// trailing dot, U-labels or A-labels.
func (s *Session) LocalDomain(domain string) bool {
	_, ok := s.st.domains[mailaddr.ParseDomain(domain).ASCII()]
	return ok
}

// relayRefusal refuses tx.Rcpt when delivering it could relay the message
// beyond our domains, whatever the rules say.
func (s *Session) relayRefusal(tx *Transaction) (Verdict, bool) {
	switch {
	case strings.EqualFold(tx.Rcpt, "postmaster"):
		// RFC 5321 §4.5.1: <postmaster> without a domain must be accepted.
		return Verdict{}, false
	case !s.LocalDomain(Domain(tx.Rcpt)):
		// RFC 5321 §3.6.2 lets a server refuse to relay; 5.7.1 is
		// "delivery not authorized" (RFC 3463).
		return Refuse(ActionReject, "relay", replyRelayDenied, tx.Session), true
	case senderRouted(tx.Rcpt):
		// The backend may honour the routing (Postfix rewrites
		// user%host@ours and host!user@ours for its own domains, and a
		// quoted "user@host"@ours is the same thing), and it trusts us as
		// its client: refuse it as Postfix refuses it from untrusted
		// clients (allow_untrusted_routing = no).
		return Refuse(ActionReject, "relay", replySenderRouted, tx.Session), true
	}
	return Verdict{}, false
}

// senderRouted reports whether the local part of addr asks the next MTA
// to route the message on: the percent hack (user%host), a bang path
// (host!user) or an "@" inside a quoted local part (RFC 5321 appendix C
// and §3.6.1 describe the forms; source routes, <@a:user@b>, are dropped
// by the proxy before this point). Quoting or escaping does not hide
// them, since an MTA that unquotes the local part would still route.
func senderRouted(addr string) bool {
	local := addr
	if at := strings.LastIndexByte(addr, '@'); at >= 0 {
		local = addr[:at]
	}
	return strings.ContainsAny(local, "%!@")
}

// Decide returns the verdict for tx at stage.
func (s *Session) Decide(ctx context.Context, stage Stage, tx *Transaction) Verdict {
	s.inherit(tx, stage)
	if stage == StageRcpt {
		s.startRcpt(tx)
		defer clearRcptFacts(tx)
		if v, refused := s.relayRefusal(tx); refused {
			return v
		}
	}
	if tx.accepted {
		// An enforced accept at an earlier stage trusts the rest of the
		// transaction; only the contracts above still apply.
		return Accept
	}
	set := s.st.rules
	if stage == StageData {
		s.fromFacts(tx)
		tx.localDomains = s.st.domainList
	}
	s.e.runChecks(ctx, tx, s.st.plan[stage])
	if stage == StageRcpt && s.st.names[stage]["rcpt_verify"] {
		s.verifyRcpt(ctx, tx)
	}
	f := tx.factsFor(stage)
	var domains []string
	switch stage {
	case StageRcpt:
		domains = []string{Domain(tx.Rcpt)}
	case StageData:
		for _, r := range tx.Rcpts {
			domains = append(domains, Domain(r))
		}
	}
	v := s.apply(stage, tx, set.Eval(stage.String(), f, domains), f)
	s.recordRan(ctx, tx, stage, v)
	if stage == StageData && !v.Action.Refuses() && s.e.authResults {
		if h, ok := s.authResultsHeader(tx); ok {
			tx.Headers = append([]Header{h}, tx.Headers...)
		}
	}
	switch stage {
	case StageConnect:
		s.connect = s.takeSnapshot(tx, stage, nil)
	case StageHelo:
		s.helo = s.takeSnapshot(tx, stage, s.connect)
	}
	return v
}

// inherit gives a transaction, once, what the session's earlier stages
// found: a HELO decision builds on connect, a MAIL transaction on HELO.
func (s *Session) inherit(tx *Transaction, stage Stage) {
	if tx.inherited {
		return
	}
	tx.inherited = true
	if tx.Checks == nil {
		tx.Checks = map[string]CheckRecord{}
	}
	from := s.helo
	if stage <= StageHelo || from == nil {
		from = s.connect
	}
	if stage == StageConnect || from == nil {
		return
	}
	tx.Matches = append(append([]RuleMatch(nil), from.matches...), tx.Matches...)
	tx.Score += from.score
	tx.Headers = append(append([]Header(nil), from.headers...), tx.Headers...)
	tx.accepted = tx.accepted || from.accepted
	if tx.quarantined == "" {
		tx.quarantined = from.quarantined
	}
	tx.found = Found{}
	if from.found != nil {
		tx.found = *from.found
	}
	if tx.Client.PTR == "" {
		// The name the connect stage verified (rdns).
		tx.Client.PTR = tx.found.RDNS.ClientPTR()
	}
	for k, v := range from.checks {
		tx.Checks[k] = v
	}
}

// takeSnapshot keeps what tx's stage found for the session's later
// transactions; prev is the snapshot tx inherited from, if any. The
// checks' facts (Found, over 1 KiB) are the bulk of it, and a session
// keeps its snapshots as long as it lives, idle or not: they are kept
// only when some check found something, and shared with prev when no
// check ran at this stage, which left them as inherited.
func (s *Session) takeSnapshot(tx *Transaction, stage Stage, prev *snapshot) *snapshot {
	sn := &snapshot{matches: tx.Matches, score: tx.Score, headers: tx.Headers, accepted: tx.accepted, quarantined: tx.quarantined, checks: tx.Checks}
	switch {
	case prev != nil && len(s.st.plan[stage]) == 0:
		sn.found = prev.found
	case !reflect.ValueOf(&tx.found).Elem().IsZero():
		found := tx.found
		sn.found = &found
	}
	return sn
}

func (s *Session) apply(stage Stage, tx *Transaction, out rules.Outcome, f *Facts) Verdict {
	for _, r := range out.Matches {
		m := RuleMatch{Name: r.Name, Stage: r.Stage, Action: r.Action, Mode: r.Mode, Score: r.Score}
		if stage == StageRcpt {
			m.Rcpt = tx.Rcpt
		}
		tx.Matches = append(tx.Matches, m)
		s.e.metrics.RuleMatch(r.Name, r.Mode)
	}
	tx.Score += out.Score
	tx.Headers = append(tx.Headers, out.Headers...)
	for _, err := range out.MonitorErrors {
		s.e.logger.Warn("monitor rule evaluation failed", "session", tx.Session, "err", err)
	}
	if len(out.Errors) > 0 {
		// A condition that cannot be evaluated must not read as "no
		// match": that would be a silent pass.
		for _, err := range out.Errors {
			s.e.logger.Error("rule evaluation failed", "session", tx.Session, "err", err)
		}
		return Refuse(ActionTempfail, "rule-error", replyRuleError, tx.Session)
	}
	if r := out.Decisive; r != nil {
		switch r.Action {
		case rules.Accept:
			if stage != StageRcpt {
				tx.accepted = true
			}
			return Verdict{Action: ActionAccept, Reason: r.Name}
		case rules.Quarantine:
			tx.quarantined = r.Name
		case rules.Hold:
			// Rules load only at stage data (rules.Parse): the message is
			// complete, and what holds it is this rule, whatever the score.
			return Verdict{Action: ActionHold, Reason: r.Name}
		case rules.Reject:
			rep := replyRuleReject
			if r.Reply != nil {
				rep = r.RenderReply(f)
			}
			return Refuse(ActionReject, r.Name, rep, tx.Session)
		case rules.Tempfail:
			rep := replyRuleTempfail
			if r.Reply != nil {
				rep = r.RenderReply(f)
			}
			return Refuse(ActionTempfail, r.Name, rep, tx.Session)
		}
	}
	if stage != StageData {
		return Accept
	}
	th := s.st.rules.Thresholds
	switch {
	case th.Reject > 0 && tx.Score >= th.Reject:
		return Refuse(ActionReject, "score", smtpreply.Reply{Code: smtpreply.C550MailboxUnavail, Enhanced: smtpreply.Se5Pol7DeliveryNotAuth1,
			Text: fmt.Sprintf("message refused: score %g reaches the limit of %g", tx.Score, th.Reject)}, tx.Session)
	case th.Quarantine > 0 && tx.Score >= th.Quarantine && tx.quarantined == "":
		tx.quarantined = "score"
	}
	if tx.quarantined != "" {
		tx.Headers = append(tx.Headers, Header{Name: "X-Mxguard-Quarantine", Value: fmt.Sprintf("yes (score %g, session %s)", tx.Score, tx.Session)})
		return Verdict{Action: ActionQuarantine, Reason: tx.quarantined}
	}
	if len(tx.Headers) > 0 {
		return Verdict{Action: ActionTag, Reason: "tag"}
	}
	return Accept
}
