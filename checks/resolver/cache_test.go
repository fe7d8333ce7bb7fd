package resolver

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

func TestCacheHit(t *testing.T) {
	srv := startServer(t)
	r := newResolver(t, Options{}, srv)
	ctx := context.Background()
	if _, err := r.LookupTXT(ctx, "example.com"); err != nil {
		t.Fatal(err)
	}
	q := srv.Queries()
	got, err := r.LookupTXT(ctx, "Example.COM.")
	if err != nil || len(got) != 1 {
		t.Fatalf("second lookup = %q, %v", got, err)
	}
	if srv.Queries() != q {
		t.Errorf("server queries %d -> %d, want the second lookup served from cache", q, srv.Queries())
	}
	if s := r.Stats(); s.Hits != 1 || s.Misses != 1 {
		t.Errorf("Stats = %+v, want Hits 1, Misses 1", s)
	}
	// Callers own what they get back: changing it must not change the cache.
	got[0] = "scribbled"
	if again, _ := r.LookupTXT(ctx, "example.com"); again[0] == "scribbled" {
		t.Error("a caller's change to a result leaked into the cache")
	}
}

func TestPositiveTTLExpiry(t *testing.T) {
	srv := startServer(t)
	r := newResolver(t, Options{}, srv)
	clk := withClock(r)
	ctx := context.Background()

	lookup := func() {
		t.Helper()
		if _, err := r.LookupTXT(ctx, "short.example.com"); err != nil { // TTL 1
			t.Fatal(err)
		}
	}
	lookup()
	clk.advance(900 * time.Millisecond)
	lookup()
	if q := srv.Queries(); q != 1 {
		t.Fatalf("queries = %d after a lookup within the 1s TTL, want 1", q)
	}
	clk.advance(200 * time.Millisecond)
	lookup()
	if q := srv.Queries(); q != 2 {
		t.Errorf("queries = %d after the 1s TTL passed, want 2", q)
	}
}

func TestMaxTTLCapsPositiveTTL(t *testing.T) {
	srv := startServer(t)
	r := newResolver(t, Options{MaxTTL: time.Minute}, srv)
	clk := withClock(r)
	ctx := context.Background()
	r.LookupTXT(ctx, "example.com") // TTL 300
	clk.advance(61 * time.Second)
	r.LookupTXT(ctx, "example.com")
	if q := srv.Queries(); q != 2 {
		t.Errorf("queries = %d, want 2: MaxTTL 1m should cap the 300s TTL", q)
	}
}

func TestNegativeCaching(t *testing.T) {
	tests := []struct {
		name    string
		qname   string
		negTTL  time.Duration
		wantTTL time.Duration
	}{
		// example.com's SOA: TTL 300, MINIMUM 60 → min = 60s (RFC 2308 §5).
		{name: "nxdomain SOA minimum", qname: "nope.example.com", wantTTL: 60 * time.Second},
		{name: "nodata SOA minimum", qname: "mx1.example.com", wantTTL: 60 * time.Second},
		// bl.example's SOA: MINIMUM 120, capped by NegativeTTL 10s.
		{name: "capped by NegativeTTL", qname: "9.9.9.9.bl.example", negTTL: 10 * time.Second, wantTTL: 10 * time.Second},
		// No SOA of ours encloses it: dnstest synthesises MINIMUM 300, the default cap.
		{name: "synthesised SOA", qname: "nothing.invalid", wantTTL: 300 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t)
			r := newResolver(t, Options{NegativeTTL: tt.negTTL}, srv)
			clk := withClock(r)
			ctx := context.Background()
			lookup := func() {
				t.Helper()
				_, err := r.LookupTXT(ctx, tt.qname)
				if de, ok := err.(*net.DNSError); !ok || !de.IsNotFound {
					t.Fatalf("err = %v, want not found", err)
				}
			}
			lookup()
			clk.advance(tt.wantTTL - time.Second)
			lookup()
			if q := srv.Queries(); q != 1 {
				t.Fatalf("queries = %d within the negative TTL, want 1", q)
			}
			clk.advance(2 * time.Second)
			lookup()
			if q := srv.Queries(); q != 2 {
				t.Errorf("queries = %d after the negative TTL, want 2", q)
			}
		})
	}
}

func TestTemporaryFailuresNotCached(t *testing.T) {
	srv := startServer(t)
	srv.ServFail("sf.example.com")
	r := newResolver(t, Options{}, srv)
	ctx := context.Background()
	for i := 1; i <= 2; i++ {
		_, err := r.LookupTXT(ctx, "sf.example.com")
		if de, ok := err.(*net.DNSError); !ok || !de.IsTemporary {
			t.Fatalf("lookup %d: err = %v, want temporary", i, err)
		}
		// One server, so no retry of a SERVFAIL: one query per lookup.
		if q := srv.Queries(); q != i {
			t.Errorf("after lookup %d the server answered %d queries, want %d", i, q, i)
		}
	}
	if e := r.Stats().Errors; e != 2 {
		t.Errorf("Stats().Errors = %d, want 2", e)
	}

	// Once the server recovers, the answer comes through at once.
	srv.Reset()
	if err := srv.AddZone(`sf.example.com. 300 IN TXT "ok"`); err != nil {
		t.Fatal(err)
	}
	if got, err := r.LookupTXT(ctx, "sf.example.com"); err != nil || len(got) != 1 {
		t.Errorf("after recovery: %q, %v", got, err)
	}
}

func TestLRUBound(t *testing.T) {
	srv := startServer(t)
	r := newResolver(t, Options{CacheSize: 2}, srv)
	ctx := context.Background()
	for _, n := range []string{"mx1.example.com", "mx2.example.com", "alias.example.com"} {
		if _, err := r.LookupA(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.cache.Len(); n != 2 {
		t.Errorf("cache holds %d entries, want 2", n)
	}
	q := srv.Queries()
	r.LookupA(ctx, "alias.example.com") // most recent: cached
	if srv.Queries() != q {
		t.Error("most recently used entry was evicted")
	}
	r.LookupA(ctx, "mx1.example.com") // least recent: evicted
	if srv.Queries() != q+1 {
		t.Error("least recently used entry was not evicted")
	}
}

func TestCacheDisabled(t *testing.T) {
	srv := startServer(t)
	r := newResolver(t, Options{CacheSize: -1}, srv)
	for range 2 {
		if _, err := r.LookupTXT(context.Background(), "example.com"); err != nil {
			t.Fatal(err)
		}
	}
	if q := srv.Queries(); q != 2 {
		t.Errorf("queries = %d with the cache disabled, want 2", q)
	}
}

func TestCoalescing(t *testing.T) {
	srv := startServer(t)
	srv.Delay("example.com", 300*time.Millisecond)
	r := newResolver(t, Options{Timeout: 2 * time.Second}, srv)

	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			if _, err := r.LookupTXT(context.Background(), "example.com"); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if q := srv.Queries(); q != 1 {
		t.Errorf("%d concurrent lookups made %d queries, want 1", n, q)
	}
	// Every lookup but the first either joined the query in flight or, if
	// it started after the answer arrived, hit the cache.
	if s := r.Stats(); s.Coalesced+s.Hits != n-1 || s.Queries != 1 {
		t.Errorf("Stats = %+v, want Coalesced+Hits = %d and Queries = 1", s, n-1)
	}
}

func TestCancelledWaiterDoesNotFailOthers(t *testing.T) {
	srv := startServer(t)
	srv.Delay("example.com", 300*time.Millisecond)
	r := newResolver(t, Options{Timeout: 2 * time.Second}, srv)

	impatient, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	var patientErr error
	wg.Go(func() { _, patientErr = r.LookupTXT(context.Background(), "example.com") })
	_, err := r.LookupTXT(impatient, "example.com")
	if de, ok := err.(*net.DNSError); !ok || !de.IsTimeout || !de.IsTemporary {
		t.Errorf("impatient caller: err = %v, want a timeout", err)
	}
	wg.Wait()
	if patientErr != nil {
		t.Errorf("patient caller failed because another gave up: %v", patientErr)
	}
}

func BenchmarkCacheHit(b *testing.B) {
	srv := startServer(b)
	r := newResolver(b, Options{}, srv)
	ctx := context.Background()
	if _, err := r.LookupTXT(ctx, "example.com."); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.LookupTXT(ctx, "example.com."); err != nil {
			b.Fatal(err)
		}
	}
	if srv.Queries() != 1 {
		b.Fatalf("benchmark left the cache: %d queries", srv.Queries())
	}
}

// Under CacheOnly the resolver answers what it has cached and fails the
// rest at once, without a query, and says that it did.
func TestCacheOnly(t *testing.T) {
	srv := startServer(t)
	r := newResolver(t, Options{}, srv)
	if _, err := r.LookupTXT(context.Background(), "example.com"); err != nil {
		t.Fatal(err)
	}
	q := srv.Queries()
	ctx := CacheOnly(context.Background())
	got, err := r.LookupTXT(ctx, "example.com")
	if err != nil || len(got) != 1 || Missed(ctx) {
		t.Fatalf("cached name under CacheOnly = %q, %v, missed %v", got, err, Missed(ctx))
	}
	_, err = r.LookupA(ctx, "mx1.example.com")
	var de *net.DNSError
	if !errors.As(err, &de) || !de.IsTemporary || !errors.Is(err, ErrNotCached) || !Missed(ctx) {
		t.Fatalf("uncached name under CacheOnly = %v (missed %v), want a temporary ErrNotCached", err, Missed(ctx))
	}
	if srv.Queries() != q {
		t.Errorf("server queries %d -> %d under CacheOnly, want none", q, srv.Queries())
	}
	if s := r.Stats(); s.Misses != 1 {
		t.Errorf("Stats = %+v: a cache-only miss is not a miss (the real lookup that follows is)", s)
	}
	if Missed(context.Background()) {
		t.Error("Missed without CacheOnly")
	}
	// Both families of a name, as SPF's a and mx mechanisms ask them.
	want, err := r.LookupIPAddr(context.Background(), "mx1.example.com")
	if err != nil {
		t.Fatal(err)
	}
	ctx = CacheOnly(context.Background())
	q = srv.Queries()
	got2, err := r.LookupIPAddr(ctx, "mx1.example.com")
	if err != nil || len(got2) != len(want) || len(want) != 2 || Missed(ctx) || srv.Queries() != q {
		t.Errorf("LookupIPAddr under CacheOnly = %v, %v (missed %v, %d queries); want %v", got2, err, Missed(ctx), srv.Queries()-q, want)
	}
}
