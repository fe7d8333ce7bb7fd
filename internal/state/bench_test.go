package state

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// benchStores opens each kind of store for a benchmark (Redis on
// loopback: one round trip per operation).
func benchStores(b *testing.B, fn func(b *testing.B, s Store)) {
	b.Run("memory", func(b *testing.B) { fn(b, NewMemory(MemoryOptions{})) })
	b.Run("embedded", func(b *testing.B) {
		s, err := OpenEmbedded(b.TempDir(), EmbeddedOptions{})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		fn(b, s)
	})
	b.Run("redis", func(b *testing.B) {
		s := NewRedis(RedisOptions{Address: redisAddr, Prefix: "bench:" + b.Name() + ":"})
		defer s.Close()
		fn(b, s)
	})
}

// BenchmarkAllow charges a two-bucket chain (an address and its network),
// over 1000 clients.
func BenchmarkAllow(b *testing.B) {
	benchStores(b, func(b *testing.B, s Store) {
		ctx := context.Background()
		chains := make([][]Limit, 1000)
		for i := range chains {
			chains[i] = []Limit{
				{Key: "rate:c:192.0.2." + strconv.Itoa(i), Interval: time.Millisecond, Window: time.Minute},
				{Key: "rate:n:192.0.2.0/24", Interval: time.Microsecond, Window: time.Minute},
			}
		}
		for i := 0; b.Loop(); i++ {
			if _, err := s.Allow(ctx, chains[i%len(chains)]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkGreylist looks up a known client's triplet, the common path.
func BenchmarkGreylist(b *testing.B) {
	benchStores(b, func(b *testing.B, s Store) {
		ctx := context.Background()
		tr := Triplet{Network: "192.0.2.0/24", Sender: "a@s.test", Rcpt: "u@example.org",
			Delay: 0, RetryWindow: time.Hour, PassLifetime: time.Hour}
		_ = s.RecordGreylist(ctx, tr, Grey{State: GreyPassed})
		for b.Loop() {
			g, err := s.Greylist(ctx, tr)
			if err != nil || g.State != GreyKnown {
				b.Fatal(g, err)
			}
		}
	})
}
