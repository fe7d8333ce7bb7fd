package rcpt

import (
	"context"
	"encoding/json"
	"time"
)

// storeTimeout bounds one question to the state store, as a backstop: a
// store has its own, shorter timeout (state.redis.timeout), after which it
// answers from this instance's memory; past this one the backend is probed
// (or the answer not shared) rather than the caller kept waiting.
const storeTimeout = time.Second

// sharedAnswer is an answer as the store keeps it, readable by the admin
// (mxguard state lists it as it is).
type sharedAnswer struct {
	Status Status `json:"status"`
	Detail string `json:"detail"`
	// Until is when the answer expires: the probe's time plus its TTL,
	// the same on every instance that reads it.
	Until time.Time `json:"until"`
}

// storeKey is the key of rcpt's answer: key is the lower-cased address.
func storeKey(key string) string { return "rcpt:" + key }

// fetch returns the answer for key from the store, and when it expires.
// Without a store, on a miss, on a failure and on a value that is not a
// live known or unknown answer, ok is false: the backend is probed.
func (v *Verifier) fetch(key string) (res Result, until time.Time, ok bool) {
	if v.o.Store == nil {
		return Result{}, time.Time{}, false
	}
	ctx, cancel := context.WithTimeout(v.ctx, storeTimeout)
	b, found, err := v.o.Store.Get(ctx, storeKey(key))
	cancel()
	if err != nil {
		v.storeFailed()
		return Result{}, time.Time{}, false
	}
	var a sharedAnswer
	if !found || json.Unmarshal(b, &a) != nil || a.Status != Known && a.Status != Unknown || !v.now().Before(a.Until) {
		return Result{}, time.Time{}, false
	}
	v.shared.Add(1)
	return Result{Status: a.Status, Detail: a.Detail, Cached: true}, a.Until, true
}

// share writes a probe's answer to the store, to live until until.
func (v *Verifier) share(key string, res Result, until time.Time) {
	if v.o.Store == nil {
		return
	}
	ttl := until.Sub(v.now())
	if ttl <= 0 {
		return
	}
	b, err := json.Marshal(sharedAnswer{Status: res.Status, Detail: res.Detail, Until: until.UTC()})
	if err != nil {
		v.storeErrors.Add(1)
		return
	}
	ctx, cancel := context.WithTimeout(v.ctx, storeTimeout)
	defer cancel()
	if err := v.o.Store.Put(ctx, storeKey(key), b, ttl); err != nil {
		v.storeFailed()
	}
}

// storeFailed counts a store error, unless Close cut the question short.
func (v *Verifier) storeFailed() {
	if v.ctx.Err() == nil {
		v.storeErrors.Add(1)
	}
}
