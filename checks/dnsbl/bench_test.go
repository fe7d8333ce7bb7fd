package dnsbl

import (
	"net/netip"
	"testing"
	"time"
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
