package state

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRedisBatchesConcurrentOperations: operations that arrive together go
// to Redis in fewer round trips than operations, and batching changes no
// answer: of 400 concurrent events against a limit of 100 a minute exactly
// 100 are admitted, each counter increment is counted once, and a cache
// entry written in a batch reads back.
func TestRedisBatchesConcurrentOperations(t *testing.T) {
	ctx := context.Background()
	s := NewRedis(RedisOptions{Address: redisAddr, Prefix: "test:" + t.Name() + ":"})
	defer s.Close()
	rt := &roundTrips{}
	s.client.AddHook(rt)

	const n = 400
	var admitted, errs atomic.Int64
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			refused, _, err := s.Allow(ctx, []Limit{minuteLimit("rate:a", 100)}, nil)
			if err != nil {
				errs.Add(1)
				return
			}
			if refused == -1 {
				admitted.Add(1)
			}
			if _, err := s.Count(ctx, "c:all", 1, time.Minute); err != nil {
				errs.Add(1)
			}
			if i%10 == 0 {
				if err := s.Put(ctx, "k:"+string(rune('a'+i/10)), []byte("v"), time.Minute); err != nil {
					errs.Add(1)
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	if errs.Load() != 0 {
		t.Fatalf("%d operations failed", errs.Load())
	}
	if got := admitted.Load(); got != 100 {
		t.Errorf("admitted %d of %d events, want exactly the limit, 100", got, n)
	}
	if got, err := s.Count(ctx, "c:all", 0, time.Minute); err != nil || got != n {
		t.Errorf("counter = %d, %v; want %d", got, err, n)
	}
	for i := 0; i < n; i += 10 {
		if _, ok, err := s.Get(ctx, "k:"+string(rune('a'+i/10))); !ok || err != nil {
			t.Errorf("entry %d written in a batch: found %v, %v", i/10, ok, err)
		}
	}
	ops := int64(2*n + n/10)
	if trips := rt.n.Load(); trips >= ops {
		t.Errorf("%d round trips for %d concurrent operations: nothing was batched", trips, ops)
	} else {
		t.Logf("%d round trips for %d operations", trips, ops)
	}
}

// TestRedisBatchSurvivesCancelledCaller: a session that gives up while its
// operation waits for a batch gets its context's error; the batch still
// runs, and the operations queued with it get their answers.
func TestRedisBatchSurvivesCancelledCaller(t *testing.T) {
	s := NewRedis(RedisOptions{Address: redisAddr, Prefix: "test:" + t.Name() + ":"})
	defer s.Close()
	// Hold the pipeline busy, as a round trip in flight does, so that the
	// operations below queue.
	s.pipe.mu.Lock()
	s.pipe.busy = true
	s.pipe.mu.Unlock()

	cancelled, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() {
		_, err := s.Count(cancelled, "c:x", 1, time.Minute)
		gaveUp <- err
	}()
	waiting := make(chan int64, 1)
	go func() {
		v, err := s.Count(context.Background(), "c:x", 1, time.Minute)
		if err != nil {
			t.Error(err)
		}
		waiting <- v
	}()
	for queued := 0; queued < 2; {
		time.Sleep(time.Millisecond)
		s.pipe.mu.Lock()
		queued = len(s.pipe.queue)
		s.pipe.mu.Unlock()
	}
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller got %v, want context.Canceled", err)
	}
	s.pipe.handOff() // the round trip in flight returns
	if v := <-waiting; v != 1 && v != 2 {
		t.Errorf("queued caller's count = %d, want 1 or 2", v)
	}
	if v, err := s.Count(context.Background(), "c:x", 0, time.Minute); err != nil || v != 2 {
		t.Errorf("counter = %d, %v; want 2: the cancelled caller's increment still ran", v, err)
	}
}
