package proxy

import (
	"context"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"mxguard/internal/state"
)

// rateStoreTimeout bounds one question to the state store, as a backstop:
// a store has its own, shorter timeout (state.redis.timeout), after which
// it answers from this instance's memory; past this one the event is
// allowed rather than the session kept waiting.
const rateStoreTimeout = time.Second

// rateKindNames name the kinds in the store's keys: "rate:msg:203.0.113.7".
var rateKindNames = [numRateKinds]string{rateConn: "conn", rateMsg: "msg", rateRcpt: "rcpt"}

// storeHealth is what the rate limits know of the store's health, shared
// by the limiters a reload replaces: failures are counted, and logged once
// per episode (the first failure, then the first answer after it), so a
// store that is down does not write a line per SMTP command.
type storeHealth struct {
	failing atomic.Bool
	errors  atomic.Uint64
}

// failed records a store error.
func (h *storeHealth) failed(log *slog.Logger, err error) {
	h.errors.Add(1)
	if h.failing.CompareAndSwap(false, true) {
		log.Warn("rate limits: state store failed: events are allowed, each instance limits them on its own until it answers", "err", err)
	}
}

// answered records an answer from the store.
func (h *storeHealth) answered(log *slog.Logger) {
	if h.failing.Load() && h.failing.CompareAndSwap(true, false) {
		log.Info("rate limits: state store answers again")
	}
}

// useStore makes st hold r's buckets, with r's own cache as its front.
func (r *rateLimiter) useStore(st state.Store, h *storeHealth, log *slog.Logger) *rateLimiter {
	r.store, r.health, r.log = st, h, log
	return r
}

// storeKey returns the store's key for kind of the address or network p.
// Called with r.mu held.
func (r *rateLimiter) storeKey(kind rateKind, p netip.Prefix, isAddr bool) string {
	s := r.state(p)
	if s.keys[kind] == "" {
		s.keys[kind] = "rate:" + rateKindNames[kind] + ":" + rateKeyString(p, isAddr)
	}
	return s.keys[kind]
}

// ask lets the store decide an event that the front admits, and records
// the answer in the front; it asks the store to reserve want in the same
// round trip (see decide).
//
// The front mirrors each of this instance's events as the store decided
// it, so it never knows more than the store (every admitted event is
// charged to the store before it is used: at no moment has a fleet given
// a client more than its limit; reservations only move the charge up to
// rateLeaseLife earlier), only less (other instances' events). A
// reservation is recorded in the front when the store makes it, as the
// store charges it. What the front adds is the debt of refused retries:
// the events it refuses on its own are charged to it alone, as the
// in-process limiter charges them, so a client hammering one instance is
// refused there without a round trip per attempt.
//
// A store that fails (or outlasts rateStoreTimeout) allows the event: mail
// is never refused because the state store failed. The front then limits
// this instance's events alone, and nothing is reserved.
func (r *rateLimiter) ask(ctx context.Context, kind rateKind, want []rateReservation, ak, nk netip.Prefix, checkNet bool) (bool, string, bool) {
	var buf [2]state.Limit
	var rbuf [4]state.Limit
	r.mu.Lock()
	chain := r.chain(buf[:0], kind, 1, ak, nk, checkNet)
	reserve := rbuf[:0]
	for _, w := range want {
		reserve = r.chain(reserve, w.kind, w.n, ak, nk, nk.IsValid() && r.net[w.kind].interval != 0)
	}
	r.mu.Unlock()

	sctx, cancel := context.WithTimeout(ctx, rateStoreTimeout)
	refused, reserved, err := r.store.Allow(sctx, chain, reserve)
	cancel()
	switch {
	case err != nil && ctx.Err() != nil:
		// The session ended (a forced drain): not the store's failure.
		refused, reserved = -1, false
	case err != nil:
		r.health.failed(r.log, err)
		refused, reserved = -1, false
	default:
		r.health.answered(r.log)
	}

	now := r.now().Sub(r.epoch)
	r.mu.Lock()
	defer r.mu.Unlock()
	a := &r.state(ak).tat[kind]
	switch refused {
	case -1:
		r.addr[kind].admit(a, now)
		if checkNet {
			r.net[kind].admit(&r.state(nk).tat[kind], now)
		}
		if reserved {
			for _, w := range want {
				r.addr[w.kind].admitN(&r.state(ak).tat[w.kind], now, w.n)
				if nk.IsValid() && r.net[w.kind].interval != 0 {
					r.net[w.kind].admitN(&r.state(nk).tat[w.kind], now, w.n)
				}
			}
		}
		return true, "", reserved
	case 0:
		r.addr[kind].refuse(a, now)
		return false, rateKeyString(ak, true), false
	}
	r.addr[kind].refuse(a, now)
	return false, rateKeyString(nk, false), false
}

// chain appends the store's buckets of kind for the address ak and, with
// withNet, its network nk, each charged n events. Called with r.mu held.
func (r *rateLimiter) chain(dst []state.Limit, kind rateKind, n int, ak, nk netip.Prefix, withNet bool) []state.Limit {
	dst = append(dst, state.Limit{Key: r.storeKey(kind, ak, true), Interval: time.Duration(n) * r.addr[kind].interval, Window: rateWindow})
	if withNet {
		dst = append(dst, state.Limit{Key: r.storeKey(kind, nk, false), Interval: time.Duration(n) * r.net[kind].interval, Window: rateWindow})
	}
	return dst
}

// rateLeaseLife is how long a session may use the events it reserved: a
// reserved event is charged when it is reserved, and used later, so in any
// period a client may get up to this long's worth of its limit more than
// the limit (one second of it: 10 events at 600 a minute, none at 60).
const rateLeaseLife = time.Second

// maxLease bounds the transactions one round trip reserves for.
const maxLease = 16

// rateLease is what one session holds of the store's rate limits: MAIL
// events, and first recipients, charged to the store ahead of their use,
// so that a session sending message after message (a large sender on a
// kept connection) asks the store once every few transactions instead of
// once each. It is the session's alone: nothing is shared, nothing
// locked.
type rateLease struct {
	// msgs and rcpts are the events reserved and not yet used: MAILs,
	// and recipients for the transactions to come (each takes its first
	// with its MAIL, and any further ones from here).
	msgs, rcpts int
	until       time.Duration // when they expire, on the limiter's clock
	size        int           // transactions the last round trip was for
	// lastRcpts is how many recipients the session's last transaction
	// accepted (kept by the session): a round trip reserves that many
	// per transaction, so a sender whose messages go to many recipients
	// gets them with its MAILs.
	lastRcpts int
}

// leaseCap is the most transactions one round trip may reserve for:
// maxLease, and no more than rateLeaseLife's worth of the client's
// message and recipient limits, so that what a lease may add to a
// client's period stays within the bound rateLeaseLife states.
func (r *rateLimiter) leaseCap() int {
	c := maxLease
	for _, k := range []rateKind{rateMsg, rateRcpt} {
		if iv := r.addr[k].interval; iv > 0 {
			c = min(c, int(rateLeaseLife/iv))
		}
	}
	return max(c, 1)
}

// allowConn decides a new connection from ip. With a store, and the
// message limit on, it also reserves in the same round trip the session's
// first MAIL and first recipient, into l: a session that sends one
// message (most do) then costs one round trip in all. A session that
// never sends MAIL leaves them charged: the limits err towards fewer
// events, never more.
func (r *rateLimiter) allowConn(ctx context.Context, ip netip.Addr, l *rateLease) (bool, string) {
	if r.store == nil || r.addr[rateMsg].interval == 0 || r.exempted(ip) {
		return r.allow(ctx, rateConn, ip)
	}
	want := []rateReservation{{rateMsg, 1}}
	rcptOn := r.addr[rateRcpt].interval != 0
	if rcptOn {
		want = append(want, rateReservation{rateRcpt, 1})
	}
	ok, key, granted := r.decide(ctx, rateConn, ip, want)
	if ok && granted {
		*l = rateLease{msgs: 1, until: r.now().Sub(r.epoch) + rateLeaseLife, size: 1}
		if rcptOn {
			l.rcpts = 1
		}
	}
	return ok, key
}

// allowMail decides a MAIL for ip. The session's lease l answers when it
// holds a reserved event; else the store decides, reserving in the same
// round trip this transaction's first recipient and, for a session whose
// last reservation was used up within rateLeaseLife, the events of more
// transactions (twice as many each time, up to leaseCap). rcpt says
// whether this transaction's first recipient is reserved.
func (r *rateLimiter) allowMail(ctx context.Context, ip netip.Addr, l *rateLease) (ok bool, key string, rcpt bool) {
	rcptOn := r.addr[rateRcpt].interval != 0
	if r.store == nil || r.addr[rateMsg].interval == 0 || r.exempted(ip) {
		var want []rateReservation
		if rcptOn && r.store != nil && !r.exempted(ip) {
			want = []rateReservation{{rateRcpt, 1}}
		}
		return r.decide(ctx, rateMsg, ip, want)
	}
	now := r.now().Sub(r.epoch)
	if l.msgs > 0 && now < l.until {
		l.msgs--
		if l.rcpts > 0 {
			l.rcpts--
			return true, "", true
		}
		return true, "", false
	}
	k := 1
	if l.until != 0 && now < l.until {
		// The last reservation is used up already: a busy session.
		k = min(2*max(l.size, 1), r.leaseCap())
	}
	rcpts := k
	if rcptOn && l.lastRcpts > 1 {
		// As many per transaction as the last had, but no more than a
		// second's worth of the recipient limit, as for any reservation.
		rcpts = max(min(k*l.lastRcpts, int(rateLeaseLife/r.addr[rateRcpt].interval)), k)
	}
	var want []rateReservation
	if k > 1 {
		want = append(want, rateReservation{rateMsg, k - 1})
	}
	if rcptOn {
		want = append(want, rateReservation{rateRcpt, rcpts})
	}
	ok, key, granted := r.decide(ctx, rateMsg, ip, want)
	last := l.lastRcpts
	*l = rateLease{lastRcpts: last}
	if !ok || !granted && len(want) > 0 {
		return ok, key, false
	}
	*l = rateLease{msgs: k - 1, until: now + rateLeaseLife, size: k, lastRcpts: last}
	if rcptOn {
		l.rcpts = rcpts - 1
	}
	return true, "", rcptOn
}

// useRcpt takes a recipient l reserved, for a transaction's recipient
// after its first, if it holds one still alive.
func (r *rateLimiter) useRcpt(l *rateLease) bool {
	if l.rcpts > 0 && r.now().Sub(r.epoch) < l.until {
		l.rcpts--
		return true
	}
	return false
}
