package proxy

import (
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mxguard/internal/state"
)

// fakeClock is a clock the tests move by hand; it is safe for concurrent
// use so the race tests can share it.
type fakeClock struct{ ns atomic.Int64 }

var clockBase = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func (c *fakeClock) now() time.Time      { return clockBase.Add(time.Duration(c.ns.Load())) }
func (c *fakeClock) set(d time.Duration) { c.ns.Store(int64(d)) }
func (c *fakeClock) add(d time.Duration) { c.ns.Add(int64(d)) }

func newTestLimiter(l RateLimits) (*rateLimiter, *fakeClock) {
	c := new(fakeClock)
	return newRateLimiter(withRate(l), nil, c.now), c
}

// limiterKinds are the two places limits are kept: this process, and a
// state store (with this process's cache as its front). Every test of the
// limits' arithmetic runs against both, and both must answer alike.
var limiterKinds = []string{"in-process", "store"}

// newKindLimiter is newTestLimiter keeping its buckets as kind says; the
// store shares the limiter's clock.
func newKindLimiter(kind string, l RateLimits) (*rateLimiter, *fakeClock) {
	r, c := newTestLimiter(l)
	if kind == "store" {
		r.useStore(state.NewMemory(state.MemoryOptions{Now: c.now}), new(storeHealth), slog.New(slog.DiscardHandler))
	}
	return r, c
}

// forKinds runs f as a subtest for each of limiterKinds.
func forKinds(t *testing.T, f func(t *testing.T, kind string)) {
	for _, k := range limiterKinds {
		t.Run(k, func(t *testing.T) { f(t, k) })
	}
}

// rateAddr parses an address for the tests; "" is the invalid address.
func rateAddr(t testing.TB, s string) netip.Addr {
	t.Helper()
	if s == "" {
		return netip.Addr{}
	}
	return netip.MustParseAddr(s)
}

// rateStep makes n events of kind from ip at time at (since the limiter's
// creation) and expects allowed of them to be allowed and the refused ones
// to name key.
type rateStep struct {
	at      time.Duration
	kind    rateKind
	ip      string
	n       int
	allowed int
	key     string
}

func TestRateLimiter(t *testing.T) {
	const (
		a1 = "203.0.113.7"
		a2 = "203.0.113.8"
		a3 = "203.0.113.9"
		b1 = "198.51.100.1"
	)
	tests := []struct {
		name   string
		limits RateLimits
		steps  []rateStep
	}{
		{
			name:   "per address",
			limits: RateLimits{ConnectionsPerMinute: 3},
			steps: []rateStep{
				{kind: rateConn, ip: a1, n: 5, allowed: 3, key: a1},
				{kind: rateConn, ip: a2, n: 5, allowed: 3, key: a2}, // same /24, 3 < 4*3
				{kind: rateConn, ip: b1, n: 5, allowed: 3, key: b1},
			},
		},
		{
			name:   "per /24 with NetFactor",
			limits: RateLimits{ConnectionsPerMinute: 2, NetFactor: 2},
			steps: []rateStep{
				{kind: rateConn, ip: "203.0.113.1", n: 2, allowed: 2},
				{kind: rateConn, ip: "203.0.113.2", n: 2, allowed: 2},
				{kind: rateConn, ip: "203.0.113.3", n: 2, allowed: 0, key: "203.0.113.0/24"},
				{kind: rateConn, ip: "203.0.114.3", n: 2, allowed: 2}, // the next /24
			},
		},
		{
			name:   "per /64 with NetFactor",
			limits: RateLimits{MessagesPerMinute: 2, NetFactor: 2},
			steps: []rateStep{
				{kind: rateMsg, ip: "2001:db8:1:2::1", n: 3, allowed: 2, key: "2001:db8:1:2::1"},
				{kind: rateMsg, ip: "2001:db8:1:2:ffff::2", n: 2, allowed: 2},
				{kind: rateMsg, ip: "2001:db8:1:2::3", n: 2, allowed: 0, key: "2001:db8:1:2::/64"},
				{kind: rateMsg, ip: "2001:db8:1:3::3", n: 2, allowed: 2}, // the next /64
			},
		},
		{
			name:   "default NetFactor is 4",
			limits: RateLimits{ConnectionsPerMinute: 1},
			steps: []rateStep{
				{kind: rateConn, ip: "203.0.113.1", n: 1, allowed: 1},
				{kind: rateConn, ip: "203.0.113.2", n: 1, allowed: 1},
				{kind: rateConn, ip: "203.0.113.3", n: 1, allowed: 1},
				{kind: rateConn, ip: "203.0.113.4", n: 1, allowed: 1},
				{kind: rateConn, ip: "203.0.113.5", n: 1, allowed: 0, key: "203.0.113.0/24"},
			},
		},
		{
			name:   "negative NetFactor disables the network limit",
			limits: RateLimits{ConnectionsPerMinute: 1, NetFactor: -1},
			steps: []rateStep{
				{kind: rateConn, ip: "203.0.113.1", n: 2, allowed: 1, key: "203.0.113.1"},
				{kind: rateConn, ip: "203.0.113.2", n: 2, allowed: 1, key: "203.0.113.2"},
				{kind: rateConn, ip: "203.0.113.3", n: 2, allowed: 1, key: "203.0.113.3"},
				{kind: rateConn, ip: "203.0.113.4", n: 2, allowed: 1, key: "203.0.113.4"},
				{kind: rateConn, ip: "203.0.113.5", n: 2, allowed: 1, key: "203.0.113.5"},
			},
		},
		{
			name:   "IPv4-mapped IPv6 is IPv4",
			limits: RateLimits{ConnectionsPerMinute: 2, NetFactor: 1},
			steps: []rateStep{
				{kind: rateConn, ip: "::ffff:" + a1, n: 1, allowed: 1},
				{kind: rateConn, ip: a1, n: 2, allowed: 1, key: a1},
				{kind: rateConn, ip: "::ffff:" + a2, n: 1, allowed: 0, key: "203.0.113.0/24"},
			},
		},
		{
			name:   "zones are ignored",
			limits: RateLimits{ConnectionsPerMinute: 1},
			steps: []rateStep{
				{kind: rateConn, ip: "fe80::1%eth0", n: 1, allowed: 1},
				{kind: rateConn, ip: "fe80::1%eth1", n: 1, allowed: 0, key: "fe80::1"},
			},
		},
		{
			name:   "unknown addresses share one key",
			limits: RateLimits{ConnectionsPerMinute: 2},
			steps: []rateStep{
				{kind: rateConn, ip: "", n: 1, allowed: 1},
				{kind: rateConn, ip: "", n: 2, allowed: 1, key: "invalid"},
			},
		},
		{
			// 59 s after a burst, 59/6 = 9 slots have refilled.
			name:   "window slides: 9 of 10 back after 59 s",
			limits: RateLimits{MessagesPerMinute: 10},
			steps: []rateStep{
				{kind: rateMsg, ip: a1, n: 10, allowed: 10},
				{at: 59 * time.Second, kind: rateMsg, ip: a1, n: 10, allowed: 9, key: a1},
				{at: 60*time.Second + 59*time.Second, kind: rateMsg, ip: a1, n: 10, allowed: 9, key: a1},
			},
		},
		{
			name:   "window slides: exactly one minute",
			limits: RateLimits{MessagesPerMinute: 10},
			steps: []rateStep{
				{kind: rateMsg, ip: a1, n: 10, allowed: 10},
				{at: 60 * time.Second, kind: rateMsg, ip: a1, n: 11, allowed: 10, key: a1},
			},
		},
		{
			name:   "window slides: half the burst at 30 s",
			limits: RateLimits{MessagesPerMinute: 10},
			steps: []rateStep{
				{kind: rateMsg, ip: a1, n: 10, allowed: 10},
				{at: 30 * time.Second, kind: rateMsg, ip: a1, n: 10, allowed: 5, key: a1},
			},
		},
		{
			// The refusal at 5 s costs a slot, so at 12 s there is one, not two.
			name:   "window slides: one event per interval after a burst",
			limits: RateLimits{MessagesPerMinute: 10},
			steps: []rateStep{
				{kind: rateMsg, ip: a1, n: 10, allowed: 10},
				{at: 5 * time.Second, kind: rateMsg, ip: a1, n: 1, allowed: 0, key: a1},
				{at: 12 * time.Second, kind: rateMsg, ip: a1, n: 2, allowed: 1, key: a1},
			},
		},
		{
			// 10 admitted put the TAT at 60 s; 5 refused push it to 90 s,
			// so at 60 s there is room for only 5.
			name:   "refused events count",
			limits: RateLimits{MessagesPerMinute: 10},
			steps: []rateStep{
				{kind: rateMsg, ip: a1, n: 10, allowed: 10},
				{kind: rateMsg, ip: a1, n: 5, allowed: 0, key: a1},
				{at: 60 * time.Second, kind: rateMsg, ip: a1, n: 10, allowed: 5, key: a1},
			},
		},
		{
			// However long it hammers, a client owes at most one window:
			// one slot back a minute after it stops, all after two.
			name:   "refused debt is capped at one window",
			limits: RateLimits{MessagesPerMinute: 10},
			steps: []rateStep{
				{kind: rateMsg, ip: a1, n: 10, allowed: 10},
				{kind: rateMsg, ip: a1, n: 100000, allowed: 0, key: a1},
				{at: 60 * time.Second, kind: rateMsg, ip: a1, n: 2, allowed: 1, key: a1},
				{at: 180 * time.Second, kind: rateMsg, ip: a1, n: 11, allowed: 10, key: a1},
			},
		},
		{
			// a2's refused attempts are its own debt: after two it is
			// refused by its own limit, and at 60 s the network is clear
			// for a3 as though a2 had not tried.
			name:   "refusal by the network is charged to the address only",
			limits: RateLimits{ConnectionsPerMinute: 2, NetFactor: 1},
			steps: []rateStep{
				{kind: rateConn, ip: a1, n: 2, allowed: 2},
				{kind: rateConn, ip: a2, n: 2, allowed: 0, key: "203.0.113.0/24"},
				{kind: rateConn, ip: a2, n: 1, allowed: 0, key: a2},
				{at: 60 * time.Second, kind: rateConn, ip: a3, n: 2, allowed: 2},
			},
		},
		{
			name:   "kinds are independent",
			limits: RateLimits{ConnectionsPerMinute: 1, MessagesPerMinute: 2, RecipientsPerMinute: 3},
			steps: []rateStep{
				{kind: rateConn, ip: a1, n: 2, allowed: 1, key: a1},
				{kind: rateMsg, ip: a1, n: 3, allowed: 2, key: a1},
				{kind: rateRcpt, ip: a1, n: 4, allowed: 3, key: a1},
				{kind: rateConn, ip: a1, n: 1, allowed: 0, key: a1},
				{kind: rateMsg, ip: a1, n: 1, allowed: 0, key: a1},
			},
		},
		{
			name:   "zero limit is disabled",
			limits: RateLimits{MessagesPerMinute: 1},
			steps: []rateStep{
				{kind: rateConn, ip: a1, n: 10000, allowed: 10000},
				{kind: rateRcpt, ip: a1, n: 10000, allowed: 10000},
				{kind: rateMsg, ip: a1, n: 2, allowed: 1, key: a1},
			},
		},
		{
			name:   "unknown kind is not limited",
			limits: RateLimits{ConnectionsPerMinute: 1, MessagesPerMinute: 1, RecipientsPerMinute: 1},
			steps: []rateStep{
				{kind: numRateKinds, ip: a1, n: 5, allowed: 5},
				{kind: -1, ip: a1, n: 5, allowed: 5},
			},
		},
	}
	for _, tt := range tests {
		forKinds(t, func(t *testing.T, kind string) {
			t.Run(tt.name, func(t *testing.T) {
				testRateSteps(t, kind, tt.limits, tt.steps)
			})
		})
	}
}

// testRateSteps runs steps against a new limiter of kind.
func testRateSteps(t *testing.T, kind string, limits RateLimits, steps []rateStep) {
	r, clock := newKindLimiter(kind, limits)
	for i, s := range steps {
		clock.set(s.at)
		ip := rateAddr(t, s.ip)
		allowed := 0
		for range s.n {
			ok, key := r.allow(t.Context(), s.kind, ip)
			switch {
			case ok && key != "":
				t.Fatalf("step %d: allowed with key %q", i, key)
			case ok:
				allowed++
			case key != s.key:
				t.Fatalf("step %d: refused with key %q, want %q", i, key, s.key)
			}
		}
		if allowed != s.allowed {
			t.Errorf("step %d (%s at %v): %d of %d allowed, want %d", i, s.ip, s.at, allowed, s.n, s.allowed)
		}
	}
}

// TestRateDisabledTracksNothing checks that disabled limits cost no state.
func TestRateDisabledTracksNothing(t *testing.T) {
	forKinds(t, func(t *testing.T, kind string) {
		r, _ := newKindLimiter(kind, RateLimits{NetFactor: 4, MaxTracked: 10})
		for i := range 100 {
			ip := netip.AddrFrom4([4]byte{10, 0, byte(i), 1})
			for k := range numRateKinds {
				if ok, key := r.allow(t.Context(), k, ip); !ok {
					t.Fatalf("refused by %q", key)
				}
			}
		}
		if n := r.cache.Len(); n != 0 {
			t.Errorf("tracked %d keys with every limit disabled", n)
		}
	})
}

// TestRateMaxTracked checks that memory is bounded by MaxTracked whatever
// the number of clients, and that the least recently seen are forgotten.
func TestRateMaxTracked(t *testing.T) {
	tests := []struct {
		name      string
		limits    RateLimits
		addrs     []string
		forgotten string // the client whose state was evicted
		kept      string // a client whose state survived
	}{
		{
			name:      "addresses only",
			limits:    RateLimits{ConnectionsPerMinute: 1, NetFactor: -1, MaxTracked: 2},
			addrs:     []string{"203.0.113.1", "203.0.113.2", "203.0.113.3"},
			forgotten: "203.0.113.1",
			kept:      "203.0.113.3",
		},
		{
			// Each client needs two keys, so MaxTracked 2 keeps only
			// the last one's address and network.
			name:      "addresses and networks",
			limits:    RateLimits{ConnectionsPerMinute: 1, MaxTracked: 2},
			addrs:     []string{"192.0.2.1", "198.51.100.1", "2001:db8::1"},
			forgotten: "192.0.2.1",
			kept:      "2001:db8::1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := newTestLimiter(tt.limits)
			for _, a := range tt.addrs {
				if ok, key := r.allow(t.Context(), rateConn, rateAddr(t, a)); !ok {
					t.Fatalf("%s refused by %q", a, key)
				}
				if n := r.cache.Len(); n > 2 {
					t.Fatalf("tracking %d keys, MaxTracked 2", n)
				}
			}
			if ok, key := r.allow(t.Context(), rateConn, rateAddr(t, tt.kept)); ok {
				t.Errorf("%s allowed twice: its state was forgotten", tt.kept)
			} else if key != tt.kept {
				t.Errorf("%s refused by %q", tt.kept, key)
			}
			if ok, key := r.allow(t.Context(), rateConn, rateAddr(t, tt.forgotten)); !ok {
				t.Errorf("%s refused by %q: its state was not forgotten", tt.forgotten, key)
			}
			if n := r.cache.Len(); n > 2 {
				t.Errorf("tracking %d keys, MaxTracked 2", n)
			}
		})
	}
}

// TestRateMaxTrackedChurn throws many distinct IPv6 clients, as an attacker
// with a /48 could, at a small limiter: its size must not grow.
func TestRateMaxTrackedChurn(t *testing.T) {
	forKinds(t, func(t *testing.T, kind string) {
		const max = 1000
		r, clock := newKindLimiter(kind, RateLimits{ConnectionsPerMinute: 10, MessagesPerMinute: 10, MaxTracked: max})
		for i := range 20000 {
			var b [16]byte
			b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, 0xb8
			b[6], b[7], b[15] = byte(i>>8), byte(i), byte(i%7)
			r.allow(t.Context(), rateKind(i%2), netip.AddrFrom16(b))
			clock.add(time.Millisecond)
		}
		if n := r.cache.Len(); n > max {
			t.Errorf("tracking %d keys, MaxTracked %d", n, max)
		}
	})
}

// TestRateConcurrent hammers one limiter from many goroutines (run it with
// -race). With the clock frozen, each client must get exactly its burst:
// no lost updates, no overshoot.
func TestRateConcurrent(t *testing.T) {
	forKinds(t, func(t *testing.T, kind string) {
		const (
			limit      = 100
			goroutines = 32
			perG       = 500
		)
		clients := []netip.Addr{
			netip.MustParseAddr("192.0.2.1"),
			netip.MustParseAddr("198.51.100.1"),
			netip.MustParseAddr("203.0.113.1"),
			netip.MustParseAddr("2001:db8::1"),
		}
		r, _ := newKindLimiter(kind, RateLimits{ConnectionsPerMinute: limit, MessagesPerMinute: limit})
		var allowed [2][4]atomic.Int64
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				for i := range perG {
					c, k := (g+i)%len(clients), (g+i)/len(clients)%2
					if ok, _ := r.allow(t.Context(), rateKind(k), clients[c]); ok {
						allowed[k][c].Add(1)
					}
				}
			})
		}
		wg.Wait()
		for k := range allowed {
			for c := range allowed[k] {
				if n := allowed[k][c].Load(); n != limit {
					t.Errorf("kind %d client %v: %d allowed, want %d", k, clients[c], n, limit)
				}
			}
		}
	})
}

// TestRateConcurrentEviction races allow against eviction and a moving
// clock; it checks only that nothing breaks and the bound holds.
func TestRateConcurrentEviction(t *testing.T) {
	forKinds(t, func(t *testing.T, kind string) {
		r, clock := newKindLimiter(kind, RateLimits{ConnectionsPerMinute: 5, RecipientsPerMinute: 50, MaxTracked: 64})
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Go(func() {
				for i := range 2000 {
					ip := netip.AddrFrom4([4]byte{10, byte(g), byte(i % 5), byte(i % 200)})
					r.allow(t.Context(), rateKind(i%3), ip)
					if i%100 == 0 {
						clock.add(time.Second)
					}
				}
			})
		}
		wg.Wait()
		if n := r.cache.Len(); n > 64 {
			t.Errorf("tracking %d keys, MaxTracked 64", n)
		}
	})
}

// BenchmarkRateAllow measures allow's hot path, in this process and
// through a store. The fake clock advances a second per call against a
// limit of 100/min, so every event is admitted (the common case) unless
// the sub-benchmark says otherwise.
func BenchmarkRateAllow(b *testing.B) {
	for _, kind := range limiterKinds {
		b.Run(kind, func(b *testing.B) { benchRateAllow(b, kind) })
	}
}

// benchRateAllow is BenchmarkRateAllow for a limiter of kind: with a
// store (an in-memory one, so the figures are the limiter's own cost
// without a network), every admitted event is one Store.Allow.
func benchRateAllow(b *testing.B, kind string) {
	ctx := b.Context()
	limits := RateLimits{ConnectionsPerMinute: 100, MessagesPerMinute: 100, RecipientsPerMinute: 100}
	b.Run("existing", func(b *testing.B) {
		r, clock := newKindLimiter(kind, limits)
		ip := netip.MustParseAddr("203.0.113.7")
		b.ReportAllocs()
		for b.Loop() {
			clock.add(time.Second)
			if ok, _ := r.allow(ctx, rateMsg, ip); !ok {
				b.Fatal("refused")
			}
		}
	})
	b.Run("existing-ipv6", func(b *testing.B) {
		r, clock := newKindLimiter(kind, limits)
		ip := netip.MustParseAddr("2001:db8:1:2::7")
		b.ReportAllocs()
		for b.Loop() {
			clock.add(time.Second)
			if ok, _ := r.allow(ctx, rateMsg, ip); !ok {
				b.Fatal("refused")
			}
		}
	})
	b.Run("existing-10k-clients", func(b *testing.B) {
		r, clock := newKindLimiter(kind, limits)
		ips := make([]netip.Addr, 10000)
		for i := range ips {
			ips[i] = netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1})
		}
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			clock.add(time.Second)
			r.allow(ctx, rateRcpt, ips[i%len(ips)])
			i++
		}
	})
	b.Run("refused", func(b *testing.B) {
		r, _ := newKindLimiter(kind, limits)
		ip := netip.MustParseAddr("203.0.113.7")
		b.ReportAllocs()
		for b.Loop() {
			r.allow(ctx, rateMsg, ip) // frozen clock: refused after 100, with a key string
		}
	})
	b.Run("new-clients", func(b *testing.B) {
		// Each event a new address (in a new /64) at a full cache: the
		// worst case, two evictions and two insertions.
		r, clock := newKindLimiter(kind, RateLimits{ConnectionsPerMinute: 100, MaxTracked: 10000})
		var a [16]byte
		a[0], a[1] = 0x20, 0x01
		i := uint64(0)
		b.ReportAllocs()
		for b.Loop() {
			clock.add(time.Millisecond)
			i++
			for j := range 8 {
				a[2+j] = byte(i >> (8 * j))
			}
			r.allow(ctx, rateConn, netip.AddrFrom16(a))
		}
	})
	b.Run("parallel", func(b *testing.B) {
		r, clock := newKindLimiter(kind, limits)
		var n atomic.Uint32
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			id := n.Add(1)
			ip := netip.AddrFrom4([4]byte{10, 0, byte(id >> 8), byte(id)})
			for pb.Next() {
				clock.add(time.Second)
				r.allow(ctx, rateRcpt, ip)
			}
		})
	})
}

// Example keys, as they appear in logs.
func TestRateKeyString(t *testing.T) {
	for _, tt := range []struct{ ip, addr, net string }{
		{"203.0.113.7", "203.0.113.7", "203.0.113.0/24"},
		{"::ffff:203.0.113.7", "203.0.113.7", "203.0.113.0/24"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::1", "fe80::/64"},
		{"", "invalid", "invalid"},
	} {
		a, n := rateKeys(rateAddr(t, tt.ip))
		if got := fmt.Sprint(rateKeyString(a, true), " ", rateKeyString(n, false)); got != tt.addr+" "+tt.net {
			t.Errorf("%q: keys %s, want %s %s", tt.ip, got, tt.addr, tt.net)
		}
	}
}
