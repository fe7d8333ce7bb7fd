package state

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// countingObserver counts what a Fallback reports.
type countingObserver struct {
	mu                 sync.Mutex
	episodes, fallback int
	errors             map[string]int
}

func (o *countingObserver) StoreOp(store, op string, _ time.Duration, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err != nil {
		if o.errors == nil {
			o.errors = map[string]int{}
		}
		o.errors[store+"/"+op]++
	}
}
func (o *countingObserver) FallbackEpisode() { o.mu.Lock(); o.episodes++; o.mu.Unlock() }
func (o *countingObserver) FallbackOp(string) {
	o.mu.Lock()
	o.fallback++
	o.mu.Unlock()
}

// TestFallback: with its Redis killed mid-run, the store keeps answering
// from memory (no errors), logs and counts one episode however many
// operations it answers, tries Redis again only every retry interval, and
// goes back to Redis (and its state) once Redis is back.
func TestFallback(t *testing.T) {
	dir := t.TempDir()
	srv, err := startRedis(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { srv.stop() }()
	c := newClock()
	var logs bytes.Buffer
	obs := &countingObserver{}
	redisStore := NewRedis(RedisOptions{Address: srv.addr, Timeout: 200 * time.Millisecond})
	f := NewFallback(Instrument(redisStore, "redis", obs), NewMemory(MemoryOptions{}), FallbackOptions{
		Observer: obs, Logger: slog.New(slog.NewTextHandler(&logs, nil)), Retry: 5 * time.Second, Now: c.now})
	defer f.Close()
	ctx := context.Background()

	if err := f.Put(ctx, "k", []byte("shared"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if n, err := f.Count(ctx, "c:x", 2, time.Hour); err != nil || n != 2 {
		t.Fatalf("count %d %v", n, err)
	}

	srv.stop()
	for i := range 5 {
		if n, err := f.Count(ctx, "c:x", 1, time.Hour); err != nil || n != int64(i+1) {
			t.Fatalf("count during the episode: %d %v (want %d from memory)", n, err, i+1)
		}
	}
	if r, _, err := f.Allow(ctx, []Limit{minuteLimit("rate:a", 1)}, nil); err != nil || r != -1 {
		t.Fatalf("allow during the episode: %d %v", r, err)
	}
	if !f.InEpisode() {
		t.Fatal("not in an episode")
	}
	if obs.episodes != 1 || obs.fallback != 6 {
		t.Fatalf("episodes %d, fallback operations %d; want 1 and 6", obs.episodes, obs.fallback)
	}
	// Redis was tried once, at the start; the others waited for the
	// retry interval.
	if n := obs.errors["redis/count"]; n != 1 {
		t.Fatalf("redis tried %d times during the episode, want 1", n)
	}
	c.add(6 * time.Second)
	_, _ = f.Count(ctx, "c:x", 1, time.Hour)
	if n := obs.errors["redis/count"]; n != 2 || obs.episodes != 1 {
		t.Fatalf("after the retry interval: redis tried %d times, %d episodes", n, obs.episodes)
	}

	srv2, err := startRedis(t.TempDir(), portOf(srv.addr))
	if err != nil {
		t.Fatal(err)
	}
	srv = srv2
	// Still within the retry interval: memory answers.
	if n, _ := f.Count(ctx, "c:x", 0, time.Hour); n != 6 {
		t.Fatalf("count within the retry interval: %d, want memory's 6", n)
	}
	c.add(6 * time.Second)
	// Redis is back (empty: it was killed without persistence).
	if n, err := f.Count(ctx, "c:x", 1, time.Hour); err != nil || n != 1 {
		t.Fatalf("count with redis back: %d %v, want 1", n, err)
	}
	if f.InEpisode() {
		t.Fatal("still in an episode")
	}
	log := logs.String()
	if strings.Count(log, "level=WARN") != 1 || strings.Count(log, "level=INFO") != 1 ||
		!strings.Contains(log, "answers again") {
		t.Fatalf("log:\n%s", log)
	}
}

func portOf(addr string) int {
	i := strings.LastIndexByte(addr, ':')
	n := 0
	for _, c := range addr[i+1:] {
		n = n*10 + int(c-'0')
	}
	return n
}

// TestFallbackSlowRedis: a Redis that stops answering (SIGSTOP: the
// connection stays open, replies never come) costs one timeout, then the
// local store answers; once it answers again, it is used again.
func TestFallbackSlowRedis(t *testing.T) {
	srv, err := startRedis(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.stop()
	c := newClock()
	obs := &countingObserver{}
	f := NewFallback(Instrument(NewRedis(RedisOptions{Address: srv.addr, Timeout: 200 * time.Millisecond}), "redis", obs),
		NewMemory(MemoryOptions{}), FallbackOptions{Observer: obs, Logger: slog.New(slog.DiscardHandler), Now: c.now})
	defer f.Close()
	ctx := context.Background()
	if err := f.Put(ctx, "k", []byte("shared"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, ok, err := f.Get(ctx, "k"); err != nil || ok {
			t.Fatalf("get from a stopped redis: ok %v, %v; want memory's answer (absent)", ok, err)
		}
	}
	if obs.episodes != 1 || obs.errors["redis/get"] != 1 {
		t.Fatalf("episodes %d, redis errors %v", obs.episodes, obs.errors)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	c.add(DefaultRetryInterval + time.Second)
	if b, ok, err := f.Get(ctx, "k"); err != nil || !ok || string(b) != "shared" {
		t.Fatalf("get with redis answering again: %q %v %v", b, ok, err)
	}
}
