package state

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// storeKind opens a fresh store for a test and returns it with a function
// that moves its time forward by d.
type storeKind struct {
	name string
	open func(t *testing.T) (Store, func(d time.Duration))
}

var storeKinds = []storeKind{
	{"memory", func(t *testing.T) (Store, func(time.Duration)) {
		c := newClock()
		return NewMemory(MemoryOptions{Now: c.now}), c.add
	}},
	{"embedded", func(t *testing.T) (Store, func(time.Duration)) {
		c := newClock()
		s, err := OpenEmbedded(t.TempDir(), EmbeddedOptions{MemoryOptions: MemoryOptions{Now: c.now}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s, c.add
	}},
	{"redis", func(t *testing.T) (Store, func(time.Duration)) {
		prefix := "test:" + t.Name() + ":"
		s := NewRedis(RedisOptions{Address: redisAddr, Prefix: prefix})
		t.Cleanup(func() { s.Close() })
		return s, func(d time.Duration) { ageRedis(t, prefix, d) }
	}},
}

// ageRedis makes d pass for the keys under prefix: Redis's clock cannot be
// moved, so the keys' times (buckets' TATs, greylist times) move back by d
// and their TTLs shrink by d, the ones that run out going.
func ageRedis(t *testing.T, prefix string, d time.Duration) {
	t.Helper()
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer c.Close()
	keys, err := c.Keys(ctx, globEscape(prefix)+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		ttl := c.PTTL(ctx, k).Val()
		if ttl > 0 && ttl <= d {
			c.Del(ctx, k)
			continue
		}
		if ttl > 0 {
			c.PExpire(ctx, k, ttl-d)
		}
		rest := strings.TrimPrefix(k, prefix)
		if strings.HasPrefix(rest, "rate:") || strings.HasPrefix(rest, "grey:") {
			v, err := strconv.ParseInt(c.Get(ctx, k).Val(), 10, 64)
			if err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			c.Set(ctx, k, strconv.FormatInt(v-d.Microseconds(), 10), redis.KeepTTL)
		}
	}
}

func eachStore(t *testing.T, fn func(t *testing.T, s Store, advance func(time.Duration))) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			s, advance := k.open(t)
			fn(t, s, advance)
		})
	}
}

// TestStoreAllow: a burst of N passes; the next is refused and charged to
// the first bucket only, so hammering while refused keeps the client
// refused; a neighbour is refused by the network's bucket; after a quiet
// while the burst is back.
func TestStoreAllow(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store, advance func(time.Duration)) {
		ctx := context.Background()
		chain := []Limit{minuteLimit("rate:a", 3), minuteLimit("rate:n", 4)}
		allow := func(what string, chain []Limit, want int) {
			t.Helper()
			if r, _, err := s.Allow(ctx, chain, nil); err != nil || r != want {
				t.Fatalf("%s: refused at %d (%v), want %d", what, r, err, want)
			}
		}
		for i := range 3 {
			allow("event "+strconv.Itoa(i), chain, -1)
		}
		allow("4th event", chain, 0)
		// One interval (20s) later a slot would be free, had the refusal
		// not been charged.
		advance(20 * time.Second)
		allow("retry one interval after a refusal", chain, 0)
		// The network's bucket (4 a minute, 3 charged 20s ago) has room
		// for 2 more.
		other := []Limit{minuteLimit("rate:b", 3), minuteLimit("rate:n", 4)}
		allow("neighbour 1", other, -1)
		allow("neighbour 2", other, -1)
		allow("neighbour 3", other, 1)
		advance(3 * time.Minute)
		allow("after three minutes", chain, -1)
		allow("empty chain", nil, -1)
	})
}

// TestStoreAllowReserve: a reservation is charged with the event it rides
// on when its buckets have room, never when the event is refused, never
// with a refusal's debt, and an event it cannot reserve for is still
// admitted.
func TestStoreAllowReserve(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store, advance func(time.Duration)) {
		ctx := context.Background()
		msgs := []Limit{minuteLimit("rate:msg:a", 3), minuteLimit("rate:msg:n", 10)}
		rcpts := []Limit{minuteLimit("rate:rcpt:a", 2), minuteLimit("rate:rcpt:n", 10)}
		allow := func(what string, chain, reserve []Limit, want int, wantReserved bool) {
			t.Helper()
			r, reserved, err := s.Allow(ctx, chain, reserve)
			if err != nil || r != want || reserved != wantReserved {
				t.Fatalf("%s: refused at %d, reserved %v (%v); want %d, %v", what, r, reserved, err, want, wantReserved)
			}
		}
		allow("1st message, reserving its recipient", msgs, rcpts, -1, true)
		allow("2nd message, reserving its recipient", msgs, rcpts, -1, true)
		// The recipients' bucket (2 a minute) is full: the 3rd message is
		// admitted without a reservation, and the recipient asked alone is
		// refused: the two reservations were charged.
		allow("3rd message, recipients full", msgs, rcpts, -1, false)
		allow("a recipient asked alone", rcpts, nil, 0, false)
		// A refused message charges nothing to the reservation's buckets.
		allow("4th message, refused", msgs, []Limit{minuteLimit("rate:rcpt:other", 5)}, 0, false)
		allow("the untouched bucket", []Limit{minuteLimit("rate:rcpt:other", 1)}, nil, -1, false)
		advance(3 * time.Minute)
		allow("after three minutes", msgs, rcpts, -1, true)
	})
}

// TestStoreCount: counters add up within their window, read with 0, and
// start again after it.
func TestStoreCount(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store, advance func(time.Duration)) {
		ctx := context.Background()
		if n, err := s.Count(ctx, "c:x", 0, time.Minute); err != nil || n != 0 {
			t.Fatalf("an unknown counter reads %d, %v", n, err)
		}
		for i, want := range []int64{1, 3, 6} {
			if n, err := s.Count(ctx, "c:x", int64(i+1), time.Minute); err != nil || n != want {
				t.Fatalf("count %d, %v; want %d", n, err, want)
			}
		}
		advance(30 * time.Second)
		// A later event does not stretch the window (a fixed window).
		if n, _ := s.Count(ctx, "c:x", 1, time.Minute); n != 7 {
			t.Fatalf("count %d, want 7", n)
		}
		advance(31 * time.Second)
		if n, _ := s.Count(ctx, "c:x", 0, time.Minute); n != 0 {
			t.Fatalf("after its window the counter reads %d", n)
		}
		if n, _ := s.Count(ctx, "c:x", 2, time.Minute); n != 2 {
			t.Fatalf("a new window starts at %d, want 2", n)
		}
		var keys []string
		_ = s.Entries(ctx, "c:", func(e Entry) bool { keys = append(keys, e.Key+"="+e.Value); return true })
		if len(keys) != 1 || keys[0] != "c:x=2" {
			t.Fatalf("entries %v, want [c:x=2] (a read creates nothing)", keys)
		}
	})
}

// TestStoreGreylist walks a triplet through new, early, passed and known,
// then forgets the network after the pass lifetime and a triplet not
// retried within the retry window.
func TestStoreGreylist(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store, advance func(time.Duration)) {
		ctx := context.Background()
		tr := Triplet{Network: "192.0.2.0/24", Sender: "a@s.test", Rcpt: "u@example.org",
			Delay: 5 * time.Minute, RetryWindow: time.Hour, PassLifetime: 24 * time.Hour}
		step := func(tr Triplet, want GreyState, record bool) Grey {
			t.Helper()
			g, err := s.Greylist(ctx, tr)
			if err != nil || g.State != want {
				t.Fatalf("state %+v, %v; want %s", g, err, want)
			}
			if record {
				if err := s.RecordGreylist(ctx, tr, g); err != nil {
					t.Fatal(err)
				}
			}
			return g
		}
		if g := step(tr, GreyNew, false); g.Wait != tr.Delay {
			t.Fatalf("a new triplet waits %v, want %v", g.Wait, tr.Delay)
		}
		step(tr, GreyNew, true) // deciding alone recorded nothing
		advance(time.Minute)
		// A second "new" record (another instance that saw it too) does
		// not move the first attempt.
		if err := s.RecordGreylist(ctx, tr, Grey{State: GreyNew}); err != nil {
			t.Fatal(err)
		}
		// Redis's clock runs on while the test does: allow it a second.
		if g := step(tr, GreyEarly, true); g.Wait > 4*time.Minute || g.Wait < 4*time.Minute-time.Second {
			t.Fatalf("wait %v, want 4m", g.Wait)
		}
		advance(5 * time.Minute)
		step(tr, GreyPassed, true)
		other := tr
		other.Rcpt = "v@example.org"
		step(other, GreyKnown, false)
		advance(25 * time.Hour)
		step(other, GreyNew, true)
		advance(2 * time.Hour)
		step(other, GreyNew, false)
	})
}

// TestStoreGreylistRefresh: a known network's answer says how old its
// pass is; recording a known answer refreshes the pass, so that a
// network in use is not greylisted again at the end of its first
// pass_lifetime.
func TestStoreGreylistRefresh(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store, advance func(time.Duration)) {
		ctx := context.Background()
		tr := Triplet{Network: "192.0.2.0/24", Sender: "a@s.test", Rcpt: "u@example.org",
			Delay: time.Minute, RetryWindow: time.Hour, PassLifetime: 3 * 24 * time.Hour}
		grey := func(want GreyState) Grey {
			t.Helper()
			g, err := s.Greylist(ctx, tr)
			if err != nil || g.State != want {
				t.Fatalf("state %+v, %v; want %s", g, err, want)
			}
			return g
		}
		if err := s.RecordGreylist(ctx, tr, grey(GreyNew)); err != nil {
			t.Fatal(err)
		}
		advance(2 * time.Minute)
		if err := s.RecordGreylist(ctx, tr, grey(GreyPassed)); err != nil {
			t.Fatal(err)
		}
		// Redis's clock runs on while the test does: allow it a second.
		if g := grey(GreyKnown); g.Age > time.Second {
			t.Fatalf("a pass just given is %v old", g.Age)
		}
		advance(2 * 24 * time.Hour)
		g := grey(GreyKnown)
		if g.Age < 2*24*time.Hour || g.Age > 2*24*time.Hour+time.Second {
			t.Fatalf("a pass two days old reads %v", g.Age)
		}
		if err := s.RecordGreylist(ctx, tr, g); err != nil {
			t.Fatal(err)
		}
		if g := grey(GreyKnown); g.Age > time.Second {
			t.Fatalf("a refreshed pass is %v old", g.Age)
		}
		// Past the first pass's lifetime (3 days), the refreshed one holds.
		advance(2 * 24 * time.Hour)
		grey(GreyKnown)
		advance(24*time.Hour + time.Minute)
		grey(GreyNew)
	})
}

// TestStoreCache: Get and Put keep bytes (an empty value too) until their
// TTL.
func TestStoreCache(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store, advance func(time.Duration)) {
		ctx := context.Background()
		if _, ok, err := s.Get(ctx, "rcpt:u@example.org"); ok || err != nil {
			t.Fatalf("unknown key: ok %v, %v", ok, err)
		}
		if err := s.Put(ctx, "rcpt:u@example.org", []byte("250 2.1.5"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctx, "rcpt:empty", nil, 2*time.Minute); err != nil {
			t.Fatal(err)
		}
		if b, ok, err := s.Get(ctx, "rcpt:u@example.org"); !ok || err != nil || string(b) != "250 2.1.5" {
			t.Fatalf("get %q %v %v", b, ok, err)
		}
		advance(61 * time.Second)
		if _, ok, _ := s.Get(ctx, "rcpt:u@example.org"); ok {
			t.Fatal("an expired entry was returned")
		}
		if b, ok, _ := s.Get(ctx, "rcpt:empty"); !ok || len(b) != 0 {
			t.Fatalf("empty value: %q %v", b, ok)
		}
	})
}

// TestStoreEntries: Entries lists the live entries under a prefix with
// their TTL, readable; Delete removes one and says whether it was there.
func TestStoreEntries(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store, advance func(time.Duration)) {
		ctx := context.Background()
		tr := Triplet{Network: "198.51.100.0/24", Sender: "a@s.test", Rcpt: "u@example.org",
			Delay: time.Minute, RetryWindow: time.Hour, PassLifetime: time.Hour}
		if err := s.RecordGreylist(ctx, tr, Grey{State: GreyNew}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Allow(ctx, []Limit{minuteLimit("rate:198.51.100.7", 10)}, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Count(ctx, "c:198.51.100.7", 4, time.Hour); err != nil {
			t.Fatal(err)
		}
		got := map[string]Entry{}
		if err := s.Entries(ctx, "", func(e Entry) bool { got[e.Key] = e; return true }); err != nil {
			t.Fatal(err)
		}
		g, ok := got[tr.Key()]
		if len(got) != 3 || !ok || !strings.HasPrefix(g.Value, "since 20") || g.TTL <= 0 || g.TTL > 61*time.Minute {
			t.Fatalf("entries %+v", got)
		}
		if r := got["rate:198.51.100.7"]; !strings.HasPrefix(r.Value, "tat 20") {
			t.Fatalf("bucket shown as %q", r.Value)
		}
		if c := got["c:198.51.100.7"]; c.Value != "4" {
			t.Fatalf("counter shown as %q", c.Value)
		}
		n := 0
		_ = s.Entries(ctx, "", func(Entry) bool { n++; return false })
		if n != 1 {
			t.Fatalf("Entries went on after fn said stop: %d", n)
		}
		n = 0
		_ = s.Entries(ctx, "grey:", func(Entry) bool { n++; return true })
		if n != 1 {
			t.Fatalf("prefix grey: lists %d entries", n)
		}
		if ok, err := s.Delete(ctx, tr.Key()); !ok || err != nil {
			t.Fatalf("delete: %v %v", ok, err)
		}
		if ok, _ := s.Delete(ctx, tr.Key()); ok {
			t.Fatal("deleted twice")
		}
		if g, _ := s.Greylist(ctx, tr); g.State != GreyNew {
			t.Fatalf("a deleted triplet is %s", g.State)
		}
		advance(2 * time.Hour)
		n = 0
		_ = s.Entries(ctx, "", func(Entry) bool { n++; return true })
		if n != 0 {
			t.Fatalf("%d expired entries listed", n)
		}
	})
}

// TestStoreClosed: a closed store refuses work with ErrClosed.
func TestStoreClosed(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store, _ func(time.Duration)) {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Count(context.Background(), "c:x", 1, time.Minute); !errors.Is(err, ErrClosed) {
			t.Fatalf("count after close: %v", err)
		}
	})
}

// TestRedisPrefixes: two deployments on one Redis, told apart by their
// key prefix, do not see each other's state.
func TestRedisPrefixes(t *testing.T) {
	ctx := context.Background()
	a := NewRedis(RedisOptions{Address: redisAddr, Prefix: "siteA:"})
	b := NewRedis(RedisOptions{Address: redisAddr, Prefix: "siteB:"})
	defer a.Close()
	defer b.Close()
	chain := []Limit{minuteLimit("rate:x", 1)}
	if r, _, _ := a.Allow(ctx, chain, nil); r != -1 {
		t.Fatal("first event refused")
	}
	if r, _, _ := a.Allow(ctx, chain, nil); r != 0 {
		t.Fatal("second event in A admitted")
	}
	if r, _, _ := b.Allow(ctx, chain, nil); r != -1 {
		t.Fatal("B sees A's bucket")
	}
	_ = a.Put(ctx, "k", []byte("a"), time.Minute)
	if _, ok, _ := b.Get(ctx, "k"); ok {
		t.Fatal("B sees A's cache")
	}
	var keys []string
	_ = b.Entries(ctx, "", func(e Entry) bool { keys = append(keys, e.Key); return true })
	if len(keys) != 1 || keys[0] != "rate:x" {
		t.Fatalf("B lists %v", keys)
	}
	if ok, _ := b.Delete(ctx, "k"); ok {
		t.Fatal("B deleted A's key")
	}
}

// TestRedisOneRoundTrip: every operation is one round trip to Redis once
// its script is loaded; after SCRIPT FLUSH (a restarted Redis) the script
// is sent again with EVAL, and the answer is the same.
func TestRedisOneRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := NewRedis(RedisOptions{Address: redisAddr, Prefix: "test:" + t.Name() + ":"})
	defer s.Close()
	rt := &roundTrips{}
	s.client.AddHook(rt)
	tr := Triplet{Network: "192.0.2.0/24", Sender: "a@s.test", Rcpt: "u@example.org", Delay: time.Minute, RetryWindow: time.Hour, PassLifetime: time.Hour}
	ops := map[string]func() error{
		"allow": func() error {
			_, _, err := s.Allow(ctx, []Limit{minuteLimit("rate:a", 100), minuteLimit("rate:n", 400)}, nil)
			return err
		},
		"count":    func() error { _, err := s.Count(ctx, "c:x", 1, time.Minute); return err },
		"greylist": func() error { _, err := s.Greylist(ctx, tr); return err },
		"record":   func() error { return s.RecordGreylist(ctx, tr, Grey{State: GreyNew}) },
		"refresh":  func() error { return s.RecordGreylist(ctx, tr, Grey{State: GreyKnown, Age: PassRefresh}) },
		"get":      func() error { _, _, err := s.Get(ctx, "k"); return err },
		"put":      func() error { return s.Put(ctx, "k", []byte("v"), time.Minute) },
		"delete":   func() error { _, err := s.Delete(ctx, "k"); return err },
	}
	if err := s.client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	for name, op := range ops {
		for _, want := range []int64{-1, 1, 1} { // the first may load the script
			before := rt.n.Load()
			if err := op(); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if n := rt.n.Load() - before; want > 0 && n != want {
				t.Fatalf("%s: %d round trips, want %d", name, n, want)
			}
		}
	}
}
