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
// the answer in the front; with then >= 0 it asks the store to reserve an
// event of that kind in the same round trip (see allowReserving).
//
// The front mirrors each of this instance's events as the store decided
// it, so it never knows more than the store (every admitted event is
// charged to the store first: a fleet never admits more than one limit's
// worth), only less (other instances' events). A reservation is recorded
// in the front when the store makes it, as the store charges it. What the
// front adds is the debt of refused retries: the events it refuses on its
// own are charged to it alone, as the in-process limiter charges them, so
// a client hammering one instance is refused there without a round trip
// per attempt.
//
// A store that fails (or outlasts rateStoreTimeout) allows the event: mail
// is never refused because the state store failed. The front then limits
// this instance's events alone, and nothing is reserved.
func (r *rateLimiter) ask(ctx context.Context, kind, then rateKind, ak, nk netip.Prefix, checkNet bool) (bool, string, bool) {
	var buf, rbuf [2]state.Limit
	r.mu.Lock()
	chain := r.chain(buf[:0], kind, ak, nk, checkNet)
	var reserve []state.Limit
	thenNet := then >= 0 && nk.IsValid() && r.net[then].interval != 0
	if then >= 0 {
		reserve = r.chain(rbuf[:0], then, ak, nk, thenNet)
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
			r.addr[then].admit(&r.state(ak).tat[then], now)
			if thenNet {
				r.net[then].admit(&r.state(nk).tat[then], now)
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
// withNet, its network nk. Called with r.mu held.
func (r *rateLimiter) chain(dst []state.Limit, kind rateKind, ak, nk netip.Prefix, withNet bool) []state.Limit {
	dst = append(dst, state.Limit{Key: r.storeKey(kind, ak, true), Interval: r.addr[kind].interval, Window: rateWindow})
	if withNet {
		dst = append(dst, state.Limit{Key: r.storeKey(kind, nk, false), Interval: r.net[kind].interval, Window: rateWindow})
	}
	return dst
}
