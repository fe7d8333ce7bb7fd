package state

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Memory is a store in this process's memory: bounded (the least recently
// used entries go first when it is full) and with expiry. It is the
// embedded store's working copy, and a store of its own for tests and
// for a fleet's instance while Redis is away.
type Memory struct {
	now func() time.Time

	mu     sync.Mutex
	closed bool
	cache  *lru.Cache[string, *entry]
	// dirty are the keys changed (set, removed or evicted) since the last
	// takeDirty, for a store that persists the working copy; nil when
	// none does, so that a Memory alone keeps no such set.
	dirty map[string]struct{}
}

// entry is one value: a number (a TAT as nanoseconds since the epoch, a
// count, a Unix time in nanoseconds) or bytes, and when it expires.
type entry struct {
	n       int64
	b       []byte
	expires time.Time // zero: never
}

// MemoryOptions configure a Memory.
type MemoryOptions struct {
	// MaxEntries bounds the entries kept [100000].
	MaxEntries int
	// Now is the clock [time.Now]; tests move it.
	Now func() time.Time
}

// DefaultMaxEntries is the bound of a store's entries when none is given.
const DefaultMaxEntries = 100000

// NewMemory returns an empty Memory.
func NewMemory(o MemoryOptions) *Memory {
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	m := &Memory{now: o.Now}
	m.cache, _ = lru.New[string, *entry](o.MaxEntries) // size > 0
	return m
}

// newTrackedMemory is NewMemory for a store that persists the working
// copy: every key set, removed, expired or evicted is remembered until
// takeDirty, so that the file follows (an evicted key leaves the file
// too, which keeps the file as bounded as the memory).
func newTrackedMemory(o MemoryOptions) *Memory {
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	m := NewMemory(o)
	m.dirty = map[string]struct{}{}
	// The callback runs inside the cache's calls, which run with m.mu
	// held.
	m.cache, _ = lru.NewWithEvict(o.MaxEntries, func(k string, _ *entry) { m.dirty[k] = struct{}{} })
	return m
}

// record is one dirty key as takeDirty hands it over: its entry, or nil
// when the key is gone.
type record struct {
	key string
	e   *entry
}

// takeDirty returns the dirty keys with a copy of their live entries and
// forgets them.
func (m *Memory) takeDirty() []record {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]record, 0, len(m.dirty))
	for k := range m.dirty {
		r := record{key: k}
		if e, ok := m.cache.Peek(k); ok {
			c := *e
			r.e = &c
		}
		out = append(out, r)
	}
	clear(m.dirty)
	return out
}

// load puts an entry read back from a file into the working copy,
// without making it dirty.
func (m *Memory) load(key string, e *entry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cache.Add(key, e)
	// An entry evicted while loading (a file written with a larger
	// bound) stays dirty, so that it leaves the file.
	delete(m.dirty, key)
}

// get returns the live entry for key. Called with m.mu held.
func (m *Memory) get(key string, now time.Time) (*entry, bool) {
	e, ok := m.cache.Get(key)
	if !ok {
		return nil, false
	}
	if !e.expires.IsZero() && !now.Before(e.expires) {
		m.cache.Remove(key)
		return nil, false
	}
	return e, true
}

// set stores e under key. Called with m.mu held.
func (m *Memory) set(key string, e *entry) {
	m.cache.Add(key, e)
	m.markDirty(key)
}

// markDirty remembers that key changed, for a store that persists.
// Called with m.mu held.
func (m *Memory) markDirty(key string) {
	if m.dirty != nil {
		m.dirty[key] = struct{}{}
	}
}

// offset is a time as the buckets keep it: nanoseconds since the Unix
// epoch, so that TATs mean the same after a restart and on every instance
// (a stepped wall clock shifts them; the limits are a minute wide).
func offset(t time.Time) time.Duration { return time.Duration(t.UnixNano()) }

// Allow implements Store.
func (m *Memory) Allow(_ context.Context, chain, reserve []Limit) (int, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, false, ErrClosed
	}
	now := m.now()
	at := offset(now)
	if i, tat := m.conforms(chain, now); i >= 0 {
		first := chain[0]
		t := first.Refuse(tat, at)
		m.set(first.Key, &entry{n: int64(t), expires: now.Add(first.Expiry(t, at))})
		return i, false, nil
	}
	m.admit(chain, now)
	if len(reserve) == 0 {
		return -1, false, nil
	}
	if i, _ := m.conforms(reserve, now); i >= 0 {
		return -1, false, nil
	}
	m.admit(reserve, now)
	return -1, true, nil
}

// conforms returns the index of the first bucket of chain an event at now
// does not conform to, with the chain's first bucket's TAT; -1 when it
// conforms to every bucket. Called with m.mu held.
func (m *Memory) conforms(chain []Limit, now time.Time) (int, time.Duration) {
	at := offset(now)
	var first time.Duration
	for i, l := range chain {
		var tat time.Duration
		if e, ok := m.get(l.Key, now); ok {
			tat = time.Duration(e.n)
		}
		if i == 0 {
			first = tat
		}
		if !l.Conforms(tat, at) {
			return i, first
		}
	}
	return -1, first
}

// admit charges an admitted event at now to every bucket of chain. Called
// with m.mu held.
func (m *Memory) admit(chain []Limit, now time.Time) {
	at := offset(now)
	for _, l := range chain {
		var tat time.Duration
		if e, ok := m.get(l.Key, now); ok {
			tat = time.Duration(e.n)
		}
		t := l.Admit(tat, at)
		m.set(l.Key, &entry{n: int64(t), expires: now.Add(l.Expiry(t, at))})
	}
}

// Count implements Store.
func (m *Memory) Count(_ context.Context, key string, n int64, window time.Duration) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, ErrClosed
	}
	now := m.now()
	e, ok := m.get(key, now)
	if !ok {
		if n == 0 {
			return 0, nil
		}
		e = &entry{expires: now.Add(window)}
	}
	if n != 0 {
		e.n += n
		m.set(key, e)
	}
	return e.n, nil
}

// Greylist implements Store.
func (m *Memory) Greylist(_ context.Context, t Triplet) (Grey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Grey{}, ErrClosed
	}
	now := m.now()
	var mk Marks
	if p, ok := m.get(t.NetworkKey(), now); ok {
		mk.Passed, mk.PassedAt = true, time.Unix(0, p.n)
	}
	if e, ok := m.get(t.Key(), now); ok {
		mk.Seen, mk.First = true, time.Unix(0, e.n)
	}
	return Decide(t, mk, now), nil
}

// RecordGreylist implements Store.
func (m *Memory) RecordGreylist(_ context.Context, t Triplet, g Grey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	now := m.now()
	switch g.State {
	case GreyNew:
		// Another instance (or session) may have seen it meanwhile: the
		// first attempt stands.
		if _, seen := m.get(t.Key(), now); !seen {
			m.set(t.Key(), &entry{n: now.UnixNano(), expires: now.Add(t.Delay + t.RetryWindow)})
		}
	case GreyPassed:
		m.set(t.NetworkKey(), &entry{n: now.UnixNano(), expires: now.Add(t.PassLifetime)})
		m.cache.Remove(t.Key())
		m.markDirty(t.Key())
	case GreyKnown:
		// The pass refreshed: the network stays known for another
		// lifetime from now.
		m.set(t.NetworkKey(), &entry{n: now.UnixNano(), expires: now.Add(t.PassLifetime)})
	}
	return nil
}

// Get implements Store.
func (m *Memory) Get(_ context.Context, key string) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, false, ErrClosed
	}
	e, ok := m.get(key, m.now())
	if !ok {
		return nil, false, nil
	}
	return e.b, true, nil
}

// Put implements Store.
func (m *Memory) Put(_ context.Context, key string, value []byte, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	// Never nil, even when empty: a nil b marks a number.
	m.set(key, &entry{b: append([]byte{}, value...), expires: m.now().Add(ttl)})
	return nil
}

// Entries implements Store.
func (m *Memory) Entries(_ context.Context, prefix string, fn func(Entry) bool) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	now := m.now()
	var out []Entry
	for _, k := range m.cache.Keys() {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		e, ok := m.cache.Peek(k)
		if !ok || !e.expires.IsZero() && !now.Before(e.expires) {
			continue
		}
		out = append(out, Entry{Key: k, Value: describe(k, e), TTL: ttl(e, now)})
	}
	m.mu.Unlock()
	for _, e := range out {
		if !fn(e) {
			break
		}
	}
	return nil
}

func ttl(e *entry, now time.Time) time.Duration {
	if e.expires.IsZero() {
		return 0
	}
	return e.expires.Sub(now)
}

// describe renders an entry's value for people, by the kind its key names.
func describe(key string, e *entry) string {
	switch {
	case e.b != nil:
		return string(e.b)
	case strings.HasPrefix(key, "grey:"):
		return "since " + time.Unix(0, e.n).UTC().Format(time.RFC3339)
	case strings.HasPrefix(key, "rate:"):
		return "tat " + time.Unix(0, e.n).UTC().Format(time.RFC3339Nano)
	}
	return strconv.FormatInt(e.n, 10)
}

// Delete implements Store.
func (m *Memory) Delete(_ context.Context, key string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false, ErrClosed
	}
	_, ok := m.get(key, m.now())
	m.cache.Remove(key)
	m.markDirty(key)
	return ok, nil
}

// Close implements Store.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}
