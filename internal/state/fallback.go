package state

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Observer is told how the stores fare, for metrics. A nil Observer is
// not allowed; use NopObserver.
type Observer interface {
	// StoreOp is one operation of store (embedded, redis, memory) and how
	// long it took; err is its failure, if any.
	StoreOp(store, op string, took time.Duration, err error)
	// FallbackEpisode is called when a fallback episode starts: the
	// primary store failed and the local one answers.
	FallbackEpisode()
	// FallbackOp is one operation answered by the local store.
	FallbackOp(op string)
}

// NopObserver records nothing.
type NopObserver struct{}

// StoreOp implements Observer.
func (NopObserver) StoreOp(string, string, time.Duration, error) {}

// FallbackEpisode implements Observer.
func (NopObserver) FallbackEpisode() {}

// FallbackOp implements Observer.
func (NopObserver) FallbackOp(string) {}

// DefaultRetryInterval is how often a fallback tries the primary store
// again during an episode.
const DefaultRetryInterval = 5 * time.Second

// Fallback is a Store that uses a primary store (Redis) and, when it fails
// (an error, a timeout), answers from a local one instead: mail keeps
// flowing, with this instance's own state, and never gets a 5xx because a
// shared store is away. A failure starts an episode, logged once (and once
// more when the primary answers again) and counted; during it the primary
// is tried again at most every RetryInterval, so that a dead Redis does not
// add a timeout to every command. What the local store learnt during an
// episode stays local: the shared state resumes where it was.
type Fallback struct {
	primary, local Store
	obs            Observer
	log            *slog.Logger
	retry          time.Duration
	now            func() time.Time

	mu      sync.Mutex
	down    bool
	nextTry time.Time
}

// FallbackOptions configure a Fallback.
type FallbackOptions struct {
	Observer Observer      // [NopObserver]
	Logger   *slog.Logger  // [slog.Default()]
	Retry    time.Duration // how often to try the primary in an episode [DefaultRetryInterval]
	Now      func() time.Time
}

// NewFallback returns a store that uses primary, and local when primary
// fails. Close closes both.
func NewFallback(primary, local Store, o FallbackOptions) *Fallback {
	if o.Observer == nil {
		o.Observer = NopObserver{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Retry <= 0 {
		o.Retry = DefaultRetryInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Fallback{primary: primary, local: local, obs: o.Observer, log: o.Logger, retry: o.Retry, now: o.Now}
}

// InEpisode reports whether the local store is answering.
func (f *Fallback) InEpisode() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.down
}

// usePrimary reports whether to try the primary now.
func (f *Fallback) usePrimary() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.down || !f.now().Before(f.nextTry) {
		// Trying now: the next caller in an episode waits its turn.
		f.nextTry = f.now().Add(f.retry)
		return true
	}
	return false
}

// result records how the primary fared; it reports whether it failed.
func (f *Fallback) result(op string, err error) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil || errors.Is(err, ErrClosed) {
		if f.down && err == nil {
			f.down = false
			f.log.Info("state: the shared store answers again; using it", "op", op)
		}
		return false
	}
	if !f.down {
		f.down = true
		f.nextTry = f.now().Add(f.retry)
		f.obs.FallbackEpisode()
		f.log.Warn("state: the shared store failed; answering from this instance's memory until it is back", "op", op, "err", err)
	}
	f.obs.FallbackOp(op)
	return true
}

// do runs op on the primary and, when it fails or an episode is on, on
// the local store.
func do[T any](ctx context.Context, f *Fallback, op string, fn func(Store) (T, error)) (T, error) {
	if f.usePrimary() {
		v, err := fn(f.primary)
		if err != nil && ctx.Err() != nil {
			// The caller gave up (its session ended): no verdict on the
			// primary.
			return v, err
		}
		if !f.result(op, err) {
			return v, err
		}
	} else {
		f.obs.FallbackOp(op)
	}
	return fn(f.local)
}

// Allow implements Store.
func (f *Fallback) Allow(ctx context.Context, chain, reserve []Limit) (int, bool, error) {
	type allowed struct {
		refused  int
		reserved bool
	}
	a, err := do(ctx, f, "allow", func(s Store) (allowed, error) {
		refused, reserved, err := s.Allow(ctx, chain, reserve)
		return allowed{refused, reserved}, err
	})
	return a.refused, a.reserved, err
}

// Count implements Store.
func (f *Fallback) Count(ctx context.Context, key string, n int64, window time.Duration) (int64, error) {
	return do(ctx, f, "count", func(s Store) (int64, error) { return s.Count(ctx, key, n, window) })
}

// Greylist implements Store.
func (f *Fallback) Greylist(ctx context.Context, t Triplet) (Grey, error) {
	return do(ctx, f, "greylist", func(s Store) (Grey, error) { return s.Greylist(ctx, t) })
}

// RecordGreylist implements Store.
func (f *Fallback) RecordGreylist(ctx context.Context, t Triplet, g Grey) error {
	_, err := do(ctx, f, "record_greylist", func(s Store) (struct{}, error) { return struct{}{}, s.RecordGreylist(ctx, t, g) })
	return err
}

// Get implements Store.
func (f *Fallback) Get(ctx context.Context, key string) ([]byte, bool, error) {
	type got struct {
		b  []byte
		ok bool
	}
	g, err := do(ctx, f, "get", func(s Store) (got, error) {
		b, ok, err := s.Get(ctx, key)
		return got{b, ok}, err
	})
	return g.b, g.ok, err
}

// Put implements Store.
func (f *Fallback) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	_, err := do(ctx, f, "put", func(s Store) (struct{}, error) { return struct{}{}, s.Put(ctx, key, value, ttl) })
	return err
}

// Entries implements Store.
func (f *Fallback) Entries(ctx context.Context, prefix string, fn func(Entry) bool) error {
	_, err := do(ctx, f, "entries", func(s Store) (struct{}, error) { return struct{}{}, s.Entries(ctx, prefix, fn) })
	return err
}

// Delete implements Store.
func (f *Fallback) Delete(ctx context.Context, key string) (bool, error) {
	return do(ctx, f, "delete", func(s Store) (bool, error) { return s.Delete(ctx, key) })
}

// Close implements Store.
func (f *Fallback) Close() error {
	err := f.primary.Close()
	if lerr := f.local.Close(); err == nil {
		err = lerr
	}
	return err
}

// Instrumented is a Store whose every operation is reported to an
// Observer under the store's name.
type Instrumented struct {
	Store
	name string
	obs  Observer
}

// Instrument reports s's operations to obs as store name.
func Instrument(s Store, name string, obs Observer) *Instrumented {
	return &Instrumented{Store: s, name: name, obs: obs}
}

func (i *Instrumented) observe(op string, start time.Time, err error) {
	i.obs.StoreOp(i.name, op, time.Since(start), err)
}

// Allow implements Store.
func (i *Instrumented) Allow(ctx context.Context, chain, reserve []Limit) (int, bool, error) {
	start := time.Now()
	n, reserved, err := i.Store.Allow(ctx, chain, reserve)
	i.observe("allow", start, err)
	return n, reserved, err
}

// Count implements Store.
func (i *Instrumented) Count(ctx context.Context, key string, n int64, window time.Duration) (int64, error) {
	start := time.Now()
	v, err := i.Store.Count(ctx, key, n, window)
	i.observe("count", start, err)
	return v, err
}

// Greylist implements Store.
func (i *Instrumented) Greylist(ctx context.Context, t Triplet) (Grey, error) {
	start := time.Now()
	g, err := i.Store.Greylist(ctx, t)
	i.observe("greylist", start, err)
	return g, err
}

// RecordGreylist implements Store.
func (i *Instrumented) RecordGreylist(ctx context.Context, t Triplet, g Grey) error {
	start := time.Now()
	err := i.Store.RecordGreylist(ctx, t, g)
	i.observe("record_greylist", start, err)
	return err
}

// Get implements Store.
func (i *Instrumented) Get(ctx context.Context, key string) ([]byte, bool, error) {
	start := time.Now()
	b, ok, err := i.Store.Get(ctx, key)
	i.observe("get", start, err)
	return b, ok, err
}

// Put implements Store.
func (i *Instrumented) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	start := time.Now()
	err := i.Store.Put(ctx, key, value, ttl)
	i.observe("put", start, err)
	return err
}

// Delete implements Store.
func (i *Instrumented) Delete(ctx context.Context, key string) (bool, error) {
	start := time.Now()
	ok, err := i.Store.Delete(ctx, key)
	i.observe("delete", start, err)
	return ok, err
}
