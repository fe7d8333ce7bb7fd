package state

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
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
		rt := &roundTrips{}
		s.client.AddHook(rt)
		fn(b, s)
		b.ReportMetric(float64(rt.n.Load())/float64(b.N), "roundtrips/op")
	})
}

// roundTrips counts what a client sends to Redis: each command, and each
// pipeline, is one round trip (a NOSCRIPT retry with EVAL would be a
// second).
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { r.n.Add(1); return next(ctx, cmd) }
}
func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { r.n.Add(1); return next(ctx, cmds) }
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
			if _, _, err := s.Allow(ctx, chains[i%len(chains)], nil); err != nil {
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

// BenchmarkAllowConcurrent is BenchmarkAllow from 16 goroutines at once,
// as busy sessions ask: with Redis, operations that meet share a round
// trip (roundtrips/op below 1).
func BenchmarkAllowConcurrent(b *testing.B) {
	benchStores(b, func(b *testing.B, s Store) {
		ctx := context.Background()
		chains := make([][]Limit, 1000)
		for i := range chains {
			chains[i] = []Limit{
				{Key: "rate:c:192.0.2." + strconv.Itoa(i), Interval: time.Millisecond, Window: time.Minute},
				{Key: "rate:n:192.0.2.0/24", Interval: time.Microsecond, Window: time.Minute},
			}
		}
		var next atomic.Int64
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, _, err := s.Allow(ctx, chains[next.Add(1)%int64(len(chains))], nil); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
