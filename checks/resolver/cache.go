package resolver

import "sync"

// cached returns the unexpired cached answer for k. Expiry is stored per
// entry because golang-lru's plain Cache has none; an expired entry is
// dropped on sight.
func (r *Resolver) cached(k key) (*answer, bool) {
	if r.cache == nil {
		return nil, false
	}
	a, ok := r.cache.Get(k)
	if !ok {
		return nil, false
	}
	if !r.now().Before(a.expires) {
		// Racing with a fresh Add for k at worst costs one extra query.
		r.cache.Remove(k)
		return nil, false
	}
	return a, true
}

// group coalesces concurrent resolutions of the same key into one, like
// golang.org/x/sync/singleflight but without the dependency, and with the
// waiting left to the caller so that each can give up on its own context.
type group struct {
	mu sync.Mutex
	m  map[key]*call
}

// call is one resolution in flight; ans is valid once done is closed.
type call struct {
	done chan struct{}
	ans  *answer
}

// do returns the call resolving k, starting fn in a new goroutine unless
// one is already in flight, in which case joined is true.
func (g *group) do(k key, fn func() *answer) (c *call, joined bool) {
	g.mu.Lock()
	if c, ok := g.m[k]; ok {
		g.mu.Unlock()
		return c, true
	}
	if g.m == nil {
		g.m = make(map[key]*call)
	}
	c = &call{done: make(chan struct{})}
	g.m[k] = c
	g.mu.Unlock()

	go func() {
		c.ans = fn()
		// Forget the call before waking the waiters: fn has already cached
		// the answer, so a lookup arriving now finds it there.
		g.mu.Lock()
		delete(g.m, k)
		g.mu.Unlock()
		close(c.done)
	}()
	return c, false
}
