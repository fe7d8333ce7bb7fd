// Package harvest counts, per client and over a time window, the
// recipients that recipient verification found unknown: the trace of a
// directory harvest attack, which guesses addresses to learn which exist.
// The per-session count (smtp.unknown_rcpts) misses a harvester that
// spreads its guesses over many short sessions, or over the instances of
// a fleet; this one is kept in the state store (internal/state), which
// every instance shares.
//
// The check reads the count once per transaction, when its first
// recipient is decided (one store question per transaction, not per
// recipient, and none for a client the store counted 0 for within the
// last zeroTTL), so harvest.unknown_rcpts is the count from before the
// transaction, the same at rcpt and at data. The engine calls Record
// after each recipient's decision, in serve only, and Record adds the
// recipients found unknown. check and replay never write the store:
// check has none (the count reads 0) and replay reads the logged value.
package harvest

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"mxguard/checks/check"
	"mxguard/internal/state"
)

// Results of the check.
const (
	// None: the client has no unknown recipient counted in the window.
	None = "none"
	// Seen: it has some (harvest.unknown_rcpts says how many).
	Seen = "seen"
)

// Facts are the harvest check's facts about the client.
type Facts struct {
	UnknownRcpts int    `expr:"unknown_rcpts" json:"unknown_rcpts" doc:"recipients found unknown (rcpt_verify.result \"unknown\") from the client's address (IPv6: its /64) within harvest.window, over every session and every instance sharing the state store, as counted when the transaction's first recipient was decided; 0 in mxguard check, which has no store"`
	Source       string `expr:"source" json:"source" doc:"what the count is kept for: the client's IPv4 address or IPv6 /64"`
}

// Define builds the check: at rcpt, once per transaction, when the engine
// has a store (serve).
func (Facts) Define(env check.Env) check.Def {
	d := check.Def{Stage: check.Rcpt}
	if env.State == nil {
		return d
	}
	c, ok := env.Section.(Config)
	if !ok || c.Window.Duration <= 0 {
		c = DefaultConfig()
	}
	h := &counter{store: env.State, window: c.Window.Duration, now: time.Now, zero: map[string]time.Time{}}
	if env.Now != nil {
		h.now = env.Now
	}
	d.Run = h.run
	d.Quick = h.quick
	d.Record = h.record
	return d
}

// quick answers from the front of sources that read 0 (most clients):
// no store, so no goroutine to wait on it.
func (h *counter) quick(v check.View) (check.Result, bool) {
	src := Source(v.Client())
	if !h.zeroNow(src) {
		return check.Result{}, false
	}
	return h.none(src, Facts{Source: src}), true
}

// none is the result for a source with no unknown recipient counted.
func (h *counter) none(src string, f Facts) check.Result {
	return check.Result{Result: None, Detail: "no unknown recipient from " + src + " within " + h.window.String(), Facts: f}
}

// zeroTTL is how long an instance answers 0 for a source whose count the
// store said was 0, without asking it again. Most clients never send to
// an unknown recipient: their transactions then cost no store round trip.
// Unknown recipients this instance counts end it at once; those another
// instance counts are seen here within zeroTTL, a few more guesses at most
// against a limit counted over minutes.
const zeroTTL = 10 * time.Second

// zeroMax bounds the sources the front remembers.
const zeroMax = 10000

// counter is the check for one configuration.
type counter struct {
	store  state.Store
	window time.Duration
	now    func() time.Time

	mu   sync.Mutex
	zero map[string]time.Time // sources the store counted 0 for, and when
}

// zeroNow reports whether src read 0 within zeroTTL.
func (h *counter) zeroNow(src string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	at, ok := h.zero[src]
	if ok && h.now().Sub(at) >= zeroTTL {
		delete(h.zero, src)
		ok = false
	}
	return ok
}

// setZero remembers that src read 0 now, or forgets it.
func (h *counter) setZero(src string, zero bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !zero {
		delete(h.zero, src)
		return
	}
	if len(h.zero) >= zeroMax {
		clear(h.zero) // bounded; the store still has every count
	}
	h.zero[src] = h.now()
}

// Source is what a client's count is kept for: its IPv4 address, or its
// IPv6 /64, which one host may hold whole (RFC 4291 §2.5.1 gives a host
// its own 64 interface bits) and walk to look like many clients.
func Source(ip netip.Addr) string {
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64) // a valid IPv6 address: no error
		return p.String()
	}
	return ip.String()
}

// Key is the store's key of the count for source.
func Key(source string) string { return "harvest:" + source }

func (h *counter) run(ctx context.Context, v check.View) check.Result {
	src := Source(v.Client())
	if h.zeroNow(src) {
		return h.none(src, Facts{Source: src})
	}
	n, err := h.store.Count(ctx, Key(src), 0, h.window)
	if err != nil {
		// Not a verdict: the count reads 0 and the rules decide.
		return check.Result{Result: check.Temperror, Detail: fmt.Sprintf("harvest store: %v", err), Facts: Facts{Source: src}}
	}
	f := Facts{UnknownRcpts: int(n), Source: src}
	h.setZero(src, n == 0)
	if n == 0 {
		return h.none(src, f)
	}
	return check.Result{Result: Seen, Detail: fmt.Sprintf("%d unknown recipients from %s within %s", n, src, h.window), Facts: f}
}

// record counts the recipient just decided when verification found it
// unknown.
func (h *counter) record(ctx context.Context, v check.View, _ check.Result, verdict check.Verdict) error {
	if !verdict.UnknownRcpt {
		return nil
	}
	src := Source(v.Client())
	h.setZero(src, false)
	if _, err := h.store.Count(ctx, Key(src), 1, h.window); err != nil {
		return fmt.Errorf("harvest: %w", err)
	}
	return nil
}
