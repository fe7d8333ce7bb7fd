package rcpt

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"mxguard/internal/state"
)

// fakeClock is a clock the tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// sharedVerifier is a verifier of b's recipients sharing its answers
// through st, on clock c.
func sharedVerifier(t *testing.T, b *testBackend, st state.Store, c *fakeClock) *Verifier {
	t.Helper()
	v := newVerifier(t, Options{Verify: VerifyBackend, Backend: b.addr, Store: st,
		PositiveTTL: time.Hour, NegativeTTL: 5 * time.Minute})
	v.now = c.now
	return v
}

// TestSharedCache: two verifiers over one store, as two instances of a
// fleet are, share their answers: what one probed, the other answers
// without a probe, until the answer's TTL from the probe ends; a
// temporary failure is never shared.
func TestSharedCache(t *testing.T) {
	b := startBackend(t, false)
	c := newFakeClock()
	st := state.NewMemory(state.MemoryOptions{Now: c.now})
	v1 := sharedVerifier(t, b, st, c)
	v2 := sharedVerifier(t, b, st, c)
	ctx := t.Context()

	for _, tt := range []struct {
		rcpt string
		want Status
	}{{"Alice@example.org", Known}, {"x@example.org", Unknown}} {
		if got := v1.Verify(ctx, tt.rcpt); got.Status != tt.want || got.Cached {
			t.Fatalf("v1.Verify(%s) = %+v, want %s, probed", tt.rcpt, got, tt.want)
		}
		if got := v2.Verify(ctx, tt.rcpt); got.Status != tt.want || !got.Cached {
			t.Fatalf("v2.Verify(%s) = %+v, want %s, cached", tt.rcpt, got, tt.want)
		}
	}
	if n := b.rcptCount(); n != 2 {
		t.Fatalf("backend saw %d RCPT, want 2 (one per address)", n)
	}
	if got := v2.Verify(ctx, "x@example.org"); got.Detail != "550 5.1.1 <x@example.org>: Recipient address rejected: User unknown" {
		t.Errorf("shared detail %q", got.Detail)
	}
	if s := v2.Stats(); s.Shared != 2 || s.Probes != 0 {
		t.Errorf("v2 stats %+v, want 2 shared answers and no probe", s)
	}

	v1.Verify(ctx, "busy@example.org")
	if got := v2.Verify(ctx, "busy@example.org"); got.Status != Temperror || got.Cached {
		t.Fatalf("v2.Verify(busy) = %+v, want temperror, probed", got)
	}

	// The negative answer lives 5m from v1's probe, in v2's own cache too
	// (v2 took it from the store, not from a probe of its own).
	c.add(5*time.Minute + time.Second)
	before := b.rcptCount()
	if got := v2.Verify(ctx, "x@example.org"); got.Status != Unknown || got.Cached {
		t.Fatalf("v2.Verify(x) after the negative TTL = %+v, want unknown, probed", got)
	}
	if got := v2.Verify(ctx, "alice@example.org"); got.Status != Known || !got.Cached {
		t.Fatalf("v2.Verify(alice) within the positive TTL = %+v, want known, cached", got)
	}
	if n := b.rcptCount() - before; n != 1 {
		t.Errorf("backend saw %d RCPT, want 1", n)
	}
}

// TestSharedCacheRestart: a verifier that starts over a store that
// outlived the one before it (the embedded store after a restart) answers
// from it.
func TestSharedCacheRestart(t *testing.T) {
	b := startBackend(t, false)
	c := newFakeClock()
	st := state.NewMemory(state.MemoryOptions{Now: c.now})
	old := sharedVerifier(t, b, st, c)
	old.Verify(t.Context(), "bob@example.org")
	old.Close()
	v := sharedVerifier(t, b, st, c)
	if got := v.Verify(t.Context(), "bob@example.org"); got.Status != Known || !got.Cached {
		t.Fatalf("after a restart: %+v, want known, cached", got)
	}
	if n := b.rcptCount(); n != 1 {
		t.Errorf("backend saw %d RCPT, want 1", n)
	}
}

// failingStore is a store that is down.
type failingStore struct{ state.Store }

func (failingStore) Get(context.Context, string) ([]byte, bool, error) {
	return nil, false, errors.New("state: connection refused")
}

func (failingStore) Put(context.Context, string, []byte, time.Duration) error {
	return errors.New("state: connection refused")
}

// TestSharedCacheStoreDown: a store that fails costs nothing but the
// sharing: the backend is probed, and this process's cache still works.
func TestSharedCacheStoreDown(t *testing.T) {
	b := startBackend(t, false)
	v := sharedVerifier(t, b, failingStore{}, newFakeClock())
	if got := v.Verify(t.Context(), "alice@example.org"); got.Status != Known || got.Cached {
		t.Fatalf("first Verify = %+v, want known, probed", got)
	}
	if got := v.Verify(t.Context(), "alice@example.org"); got.Status != Known || !got.Cached {
		t.Fatalf("second Verify = %+v, want known, cached", got)
	}
	if s := v.Stats(); s.StoreErrors != 2 || s.Probes != 1 {
		t.Errorf("stats %+v, want 2 store errors (a get, a put) and 1 probe", s)
	}
}

// TestSharedCacheGarbage: a value in the store that is not an answer (an
// older format, a hand edit) is a miss, never a verdict.
func TestSharedCacheGarbage(t *testing.T) {
	b := startBackend(t, false)
	c := newFakeClock()
	st := state.NewMemory(state.MemoryOptions{Now: c.now})
	for _, val := range []string{"known", `{"status":"temperror","until":"2030-01-01T00:00:00Z"}`, `{"status":"known"}`} {
		if err := st.Put(t.Context(), "rcpt:x@example.org", []byte(val), time.Hour); err != nil {
			t.Fatal(err)
		}
		v := sharedVerifier(t, b, st, c)
		if got := v.Verify(t.Context(), "x@example.org"); got.Status != Unknown || got.Cached {
			t.Errorf("with %q in the store: %+v, want unknown, probed", val, got)
		}
	}
}
