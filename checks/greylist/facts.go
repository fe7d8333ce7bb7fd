// Package greylist delays mail from clients it has not seen before: the
// first attempt of a triplet (the client's network, the envelope sender,
// the recipient) is told to retry later, and a retry after a delay passes,
// as do the network's later triplets for a while. Most spam engines never
// retry; real MTAs do, within minutes.
//
// The check only says where the triplet stands (greylist.state); the rules
// decide whom to delay, and the engine records the first attempt, in
// serve only (Def.Record), after the verdict. The state is in the store
// (internal/state), shared by a fleet's instances.
package greylist

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"time"

	"mxguard/checks/check"
	"mxguard/internal/state"
)

// The states, besides the store's (state.GreyNew, …).
const (
	// Allowed: the config's allow list names the client network, the
	// sender's domain or the recipient.
	Allowed = "allowed"
)

// Facts are the greylist check's facts about the recipient being decided.
type Facts struct {
	State   string `expr:"state" json:"state" doc:"where the triplet (client network, sender, recipient) stands: new (first attempt), early (retried before greylist.delay), passed (retried in time), known (the network passed lately), allowed (the allow list names it); \"\" when greylisting is off" values:"new,early,passed,known,allowed,\"\""`
	Wait    int    `expr:"wait" json:"wait" doc:"seconds until the triplet may pass (new, early; else 0)"`
	Network string `expr:"network" json:"network" doc:"the client network the triplet is kept for (IPv4 /24, IPv6 /64)"`
	PassAge int    `expr:"pass_age" json:"pass_age,omitempty" doc:"seconds since the client network passed or its pass was last refreshed (known; else 0); mail it delivers refreshes a pass older than a day"`
}

// Define builds the greylist check: per recipient at rcpt, when the
// section enables it and the engine has a store (serve; check and replay
// have none and leave greylist.state empty).
func (Facts) Define(env check.Env) check.Def {
	d := check.Def{Stage: check.Rcpt, PerRcpt: true}
	c, ok := env.Section.(Config)
	if !ok || !c.Enabled || env.State == nil {
		return d
	}
	g := newChecker(c, env.State)
	if env.Now != nil {
		g.known.now = env.Now
	}
	d.Run = g.run
	d.Quick = g.quick
	d.Record = g.record
	return d
}

// checker is the check for one configuration.
type checker struct {
	store        state.Store
	delay        time.Duration
	retryWindow  time.Duration
	passLifetime time.Duration
	networks     []netip.Prefix
	domains      []string
	rcpts        map[string]bool
	known        *knownFront
}

func newChecker(c Config, st state.Store) *checker {
	g := &checker{store: st, delay: c.Delay.Duration, retryWindow: c.RetryWindow.Duration, passLifetime: c.PassLifetime.Duration,
		rcpts: map[string]bool{}, known: newKnownFront(c.PassLifetime.Duration)}
	for _, s := range c.Allow.Networks {
		// The loader validated each entry (Config.Validate).
		if p, err := parsePrefix(s); err == nil {
			g.networks = append(g.networks, p)
		}
	}
	for _, dom := range c.Allow.SenderDomains {
		g.domains = append(g.domains, strings.ToLower(strings.TrimSuffix(dom, ".")))
	}
	for _, r := range c.Allow.Recipients {
		g.rcpts[normalizeRcptEntry(r)] = true
	}
	return g
}

// triplet is v's triplet.
func (g *checker) triplet(v check.View) state.Triplet {
	return state.Triplet{Network: Network(v.Client()).String(), Sender: NormalizeSender(v.MailFrom()), Rcpt: NormalizeRcpt(v.Rcpt()),
		Delay: g.delay, RetryWindow: g.retryWindow, PassLifetime: g.passLifetime}
}

// allowed says which allow-list entry covers t and v's client, if any.
func (g *checker) allowed(v check.View, t state.Triplet) (string, bool) {
	ip := v.Client().Unmap()
	for _, p := range g.networks {
		if p.Contains(ip) {
			return "network " + p.String(), true
		}
	}
	if at := strings.LastIndexByte(t.Sender, '@'); at >= 0 {
		dom := t.Sender[at+1:]
		for _, d := range g.domains {
			if dom == d || strings.HasSuffix(dom, "."+d) {
				return "sender domain " + d, true
			}
		}
	}
	if g.rcpts[t.Rcpt] {
		return "recipient " + t.Rcpt, true
	}
	if at := strings.LastIndexByte(t.Rcpt, '@'); at >= 0 && g.rcpts[t.Rcpt[at+1:]] {
		return "recipient domain " + t.Rcpt[at+1:], true
	}
	return "", false
}

func (g *checker) run(ctx context.Context, v check.View) check.Result {
	res, _ := g.answer(ctx, v, true)
	return res
}

// quick answers what needs no store (an allow-listed client, a network
// the known front holds: most mail a greylisting MX gets) on the
// deciding goroutine, and leaves the rest to run.
func (g *checker) quick(v check.View) (check.Result, bool) {
	return g.answer(context.Background(), v, false)
}

// answer is the check's answer, asking the store only when ask is set;
// ok is false when it would have had to.
func (g *checker) answer(ctx context.Context, v check.View, ask bool) (res check.Result, ok bool) {
	t := g.triplet(v)
	f := Facts{Network: t.Network}
	if why, ok := g.allowed(v, t); ok {
		f.State = Allowed
		return check.Result{Result: Allowed, Detail: "allow list: " + why, Facts: f}, true
	}
	grey, cached := g.known.get(t.Network)
	if !cached && !ask {
		return check.Result{}, false
	}
	var err error
	if !cached {
		grey, err = g.store.Greylist(ctx, t)
	}
	if err != nil {
		// Not a verdict (the rules decide what a temperror means; the
		// default rules let the mail through, see rules/default.yaml).
		return check.Result{Result: check.Temperror, Detail: fmt.Sprintf("greylist store: %v", err), Facts: f}, true
	}
	f.State = string(grey.State)
	f.Wait = seconds(grey.Wait)
	if grey.State == state.GreyKnown {
		// Rounded down: a pass is refreshed once it is a whole day old.
		f.PassAge = int(grey.Age / time.Second)
		if !cached {
			g.known.put(t.Network, grey.Age)
		}
	}
	detail := fmt.Sprintf("%s <%s> from %s", t.Sender, t.Rcpt, t.Network)
	switch grey.State {
	case state.GreyNew, state.GreyEarly:
		detail += fmt.Sprintf(": retry in %ds", f.Wait)
	case state.GreyPassed:
		detail += fmt.Sprintf(": retried after %ds", seconds(grey.Age))
	}
	return check.Result{Result: f.State, Detail: detail, Facts: f}, true
}

// seconds rounds d up to whole seconds: a client told to wait 0s would
// retry too early.
func seconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int(math.Ceil(d.Seconds()))
}

// record writes what the answer means for the next attempts: a new
// triplet's first attempt (unless the recipient was refused for good,
// when no retry will come), a network that passed, or a known network's
// pass refreshed by mail it delivers, once the pass is a day old
// (state.PassRefresh): a regular sender is not greylisted again every
// pass_lifetime, and the usual answer costs no write. Mail refused at
// that recipient refreshes nothing: a network that only sends what we
// refuse lets its pass run out.
func (g *checker) record(ctx context.Context, v check.View, r check.Result, verdict check.Verdict) error {
	f, ok := r.Facts.(Facts)
	if !ok {
		return nil
	}
	var grey state.Grey
	switch state.GreyState(f.State) {
	case state.GreyNew:
		if verdict.Permanent {
			return nil
		}
		grey.State = state.GreyNew
	case state.GreyPassed:
		grey.State = state.GreyPassed
	case state.GreyKnown:
		stale := state.Grey{State: state.GreyKnown, Age: time.Duration(f.PassAge) * time.Second}.StalePass()
		if verdict.Refused || !stale {
			return nil
		}
		grey.State = state.GreyKnown
	default:
		return nil
	}
	t := g.triplet(v)
	if err := g.store.RecordGreylist(ctx, t, grey); err != nil {
		return fmt.Errorf("greylist: %w", err)
	}
	if grey.State == state.GreyKnown || grey.State == state.GreyPassed {
		g.known.put(t.Network, 0) // passed or renewed just now
	}
	return nil
}
