package state

import (
	"context"
	"testing"
	"time"
)

// clock is a settable clock for tests.
type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock               { return &clock{t: time.Unix(1_800_000_000, 0)} }
func minuteLimit(key string, n int) Limit {
	return Limit{Key: key, Interval: time.Minute / time.Duration(n), Window: time.Minute}
}

// TestMemoryAllow: a burst of N passes, the next is refused and charged to
// the first bucket only; the network bucket refuses for the whole chain.
func TestMemoryAllow(t *testing.T) {
	c := newClock()
	m := NewMemory(MemoryOptions{Now: c.now})
	ctx := context.Background()
	chain := []Limit{minuteLimit("rate:a", 3), minuteLimit("rate:n", 4)}
	for i := range 3 {
		if r, _, err := m.Allow(ctx, chain, nil); err != nil || r != -1 {
			t.Fatalf("event %d: refused at %d, %v", i, r, err)
		}
	}
	if r, _, _ := m.Allow(ctx, chain, nil); r != 0 {
		t.Fatalf("4th event: refused at %d, want 0 (the address)", r)
	}
	// Another address of the network: one more fits the network's 4.
	other := []Limit{minuteLimit("rate:b", 3), minuteLimit("rate:n", 4)}
	if r, _, _ := m.Allow(ctx, other, nil); r != -1 {
		t.Fatalf("neighbour: refused at %d", r)
	}
	if r, _, _ := m.Allow(ctx, other, nil); r != 1 {
		t.Fatalf("neighbour over the network's limit: refused at %d, want 1", r)
	}
	// A minute on, the burst is back.
	c.add(2 * time.Minute)
	if r, _, _ := m.Allow(ctx, chain, nil); r != -1 {
		t.Fatalf("after two minutes: refused at %d", r)
	}
}

// TestMemoryGreylist walks a triplet through new, early, passed and known.
func TestMemoryGreylist(t *testing.T) {
	c := newClock()
	m := NewMemory(MemoryOptions{Now: c.now})
	ctx := context.Background()
	tr := Triplet{Network: "192.0.2.0/24", Sender: "a@s.test", Rcpt: "u@example.org",
		Delay: 5 * time.Minute, RetryWindow: time.Hour, PassLifetime: 24 * time.Hour}
	step := func(want GreyState, record bool) Grey {
		t.Helper()
		g, err := m.Greylist(ctx, tr)
		if err != nil || g.State != want {
			t.Fatalf("state %+v, %v; want %s", g, err, want)
		}
		if record {
			if err := m.RecordGreylist(ctx, tr, g); err != nil {
				t.Fatal(err)
			}
		}
		return g
	}
	step(GreyNew, false)
	step(GreyNew, true) // deciding alone records nothing
	c.add(time.Minute)
	if g := step(GreyEarly, true); g.Wait != 4*time.Minute {
		t.Fatalf("wait %v, want 4m", g.Wait)
	}
	c.add(5 * time.Minute)
	step(GreyPassed, true)
	other := tr
	other.Rcpt = "v@example.org"
	if g, _ := m.Greylist(ctx, other); g.State != GreyKnown {
		t.Fatalf("another triplet of a passed network: %s", g.State)
	}
	c.add(25 * time.Hour)
	if g, _ := m.Greylist(ctx, other); g.State != GreyNew {
		t.Fatalf("after the pass lifetime: %s", g.State)
	}
	// A triplet not retried within delay + retry window is forgotten.
	step(GreyNew, true)
	c.add(2 * time.Hour)
	step(GreyNew, false)
}

// TestMemoryBounded: the store keeps at most MaxEntries, dropping the least
// recently used, and counters expire with their window.
func TestMemoryBounded(t *testing.T) {
	c := newClock()
	m := NewMemory(MemoryOptions{Now: c.now, MaxEntries: 2})
	ctx := context.Background()
	for _, k := range []string{"c:1", "c:2", "c:3"} {
		if _, err := m.Count(ctx, k, 1, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := m.Count(ctx, "c:1", 0, time.Minute); n != 0 {
		t.Fatalf("the oldest entry was kept: %d", n)
	}
	if n, _ := m.Count(ctx, "c:3", 1, time.Minute); n != 2 {
		t.Fatalf("count %d, want 2", n)
	}
	c.add(time.Minute)
	if n, _ := m.Count(ctx, "c:3", 0, time.Minute); n != 0 {
		t.Fatalf("an expired counter reads %d", n)
	}
	var keys []string
	_ = m.Entries(ctx, "c:", func(e Entry) bool { keys = append(keys, e.Key); return true })
	if len(keys) != 0 {
		t.Fatalf("expired entries listed: %v", keys)
	}
}
