package resolver

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
)

// ErrNotCached is the error of a lookup made under CacheOnly for a name
// the cache has no fresh answer for. It comes wrapped in a temporary
// *net.DNSError, so that a check reads it as it reads a server that does
// not answer: a temperror, never a verdict about the name.
var ErrNotCached = errors.New("not in the cache")

// cacheOnly marks a context under which lookups answer from the cache
// alone; missed records that one could not.
type cacheOnly struct{ missed atomic.Bool }

type cacheOnlyKey struct{}

// CacheOnly returns a context under which the resolver answers from its
// cache alone: a name it has no fresh answer for fails at once, with
// ErrNotCached, and no query is sent. A check that does nothing but DNS
// lookups can then be run on the goroutine that waits for it, which
// costs less than the goroutine a lookup that may wait needs; if Missed
// says a lookup could not be answered, its result is dropped and it runs
// again for real.
func CacheOnly(ctx context.Context) context.Context {
	return context.WithValue(ctx, cacheOnlyKey{}, &cacheOnly{})
}

// IsCacheOnly reports whether ctx was made by CacheOnly: no lookup under
// it can wait, so a check may make its lookups one after another where
// it would otherwise make them side by side.
func IsCacheOnly(ctx context.Context) bool {
	c, _ := ctx.Value(cacheOnlyKey{}).(*cacheOnly)
	return c != nil
}

// Missed reports whether a lookup under ctx, made with CacheOnly, found
// no answer in the cache.
func Missed(ctx context.Context) bool {
	c, _ := ctx.Value(cacheOnlyKey{}).(*cacheOnly)
	return c != nil && c.missed.Load()
}

// notCached fails a lookup under CacheOnly that missed the cache, or
// returns nil when ctx is no CacheOnly context.
func notCached(ctx context.Context, name string) error {
	c, _ := ctx.Value(cacheOnlyKey{}).(*cacheOnly)
	if c == nil {
		return nil
	}
	c.missed.Store(true)
	return &net.DNSError{Err: ErrNotCached.Error(), Name: name, IsTemporary: true, UnwrapErr: ErrNotCached}
}
