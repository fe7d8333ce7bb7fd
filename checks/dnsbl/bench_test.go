package dnsbl

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"mxguard/checks/resolver"
)

// BenchmarkCheckWarmCache measures one Check against three lists — one
// listing with a TXT reason, one allow list, one miss — when every answer
// is already in the resolver's cache: the cost of the check itself, its
// goroutines and the cache, without the network.
func BenchmarkCheckWarmCache(b *testing.B) {
	_, r := newServer(b, time.Second)
	c := &Checker{Lookup: r, Zones: []Zone{
		{Zone: "bl.test", Weight: 5},
		{Zone: "wl.test", Weight: -5},
		{Zone: "codes.test", Weight: 1, Match: mustCodes(b, "127.0.0.3")},
	}}
	ip := netip.MustParseAddr("127.0.0.2")
	ctx := b.Context()

	warm := c.Check(ctx, ip)
	if len(warm.Listed) != 2 || len(warm.Errors) != 0 || warm.Score != 0 {
		b.Fatalf("unexpected result:\n%s", show(warm))
	}
	before := r.Stats().Queries
	b.ReportAllocs()
	for b.Loop() {
		c.Check(ctx, ip)
	}
	if q := r.Stats().Queries - before; q != 0 {
		b.Fatalf("%d DNS queries with a warm cache, want none", q)
	}
}

// BenchmarkCheckZones is a client that no list lists, the common case,
// against 1, 3 and 10 lists whose NXDOMAIN answers are cached: how the
// check's cost grows with the lists configured (a goroutine, a query
// name and a cache lookup per list).
func BenchmarkCheckZones(b *testing.B) {
	_, r := newServer(b, time.Second)
	ip := netip.MustParseAddr("127.0.0.1")
	ctx := b.Context()
	for _, n := range []int{1, 3, 10} {
		zones := make([]Zone, n)
		for i := range zones {
			zones[i] = Zone{Zone: fmt.Sprintf("z%d.bl.test", i), Weight: 1}
		}
		c := &Checker{Lookup: r, Zones: zones}
		// cached is how the engine runs the check first (check.CacheFirst).
		for _, mode := range []string{"", "cached"} {
			ctx := ctx
			if mode == "cached" {
				ctx = resolver.CacheOnly(ctx)
			}
			b.Run(fmt.Sprintf("zones=%d%s", n, mode), func(b *testing.B) {
				if res := c.Check(ctx, ip); len(res.Listed) != 0 || len(res.Errors) != 0 {
					b.Fatalf("unexpected result:\n%s", show(res))
				}
				before := r.Stats().Queries
				b.ReportAllocs()
				for b.Loop() {
					c.Check(ctx, ip)
				}
				if q := r.Stats().Queries - before; q != 0 || resolver.Missed(ctx) {
					b.Fatalf("%d DNS queries with a warm cache, want none", q)
				}
			})
		}
	}
}
