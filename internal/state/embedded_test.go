package state

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// fileKeys reads the keys in a closed embedded store's file.
func fileKeys(t *testing.T, dir string) []string {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var keys []string
	_ = db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketName).ForEach(func(k, _ []byte) error { keys = append(keys, string(k)); return nil })
	})
	return keys
}

// TestEmbeddedSurvivesRestart: what the store held is there after close
// and reopen (buckets, counters, greylist, cache); what expired meanwhile
// is not, and leaves the file.
func TestEmbeddedSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	ctx := context.Background()
	o := EmbeddedOptions{MemoryOptions: MemoryOptions{Now: c.now}}
	s, err := OpenEmbedded(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	tr := Triplet{Network: "192.0.2.0/24", Sender: "a@s.test", Rcpt: "u@example.org",
		Delay: 5 * time.Minute, RetryWindow: time.Hour, PassLifetime: 24 * time.Hour}
	_ = s.RecordGreylist(ctx, tr, Grey{State: GreyNew})
	chain := []Limit{minuteLimit("rate:a", 1)}
	if r, _, _ := s.Allow(ctx, chain, nil); r != -1 {
		t.Fatal("first event refused")
	}
	_, _ = s.Count(ctx, "c:long", 5, time.Hour)
	_, _ = s.Count(ctx, "c:short", 5, 10*time.Minute)
	_ = s.Put(ctx, "rcpt:x", []byte("ok"), time.Hour)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	c.add(6 * time.Minute)
	if s, err = OpenEmbedded(dir, o); err != nil {
		t.Fatal(err)
	}
	if g, _ := s.Greylist(ctx, tr); g.State != GreyPassed {
		t.Fatalf("greylist after restart: %s", g.State)
	}
	if n, _ := s.Count(ctx, "c:long", 0, time.Hour); n != 5 {
		t.Fatalf("counter after restart: %d", n)
	}
	if b, ok, _ := s.Get(ctx, "rcpt:x"); !ok || string(b) != "ok" {
		t.Fatalf("cache after restart: %q %v", b, ok)
	}
	_ = s.Close()
	c.add(5 * time.Minute) // c:short and the bucket have expired
	if s, err = OpenEmbedded(dir, o); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Count(ctx, "c:short", 0, time.Hour); n != 0 {
		t.Fatalf("expired counter after restart: %d", n)
	}
	_ = s.Close()
	keys := fileKeys(t, dir)
	if len(keys) != 3 {
		t.Fatalf("file keys %v, want the triplet, c:long and rcpt:x", keys)
	}
}

// TestEmbeddedFlushes: changes reach the file without a Close (the
// background flush), and deleted keys leave it.
func TestEmbeddedFlushes(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := OpenEmbedded(dir, EmbeddedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_ = s.Put(ctx, "k:1", []byte("a"), time.Hour)
	_ = s.Put(ctx, "k:2", []byte("b"), time.Hour)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	_, _ = s.Delete(ctx, "k:1")
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	var keys []string
	_ = s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketName).ForEach(func(k, _ []byte) error { keys = append(keys, string(k)); return nil })
	})
	if len(keys) != 1 || keys[0] != "k:2" {
		t.Fatalf("file keys %v, want [k:2]", keys)
	}
}

// TestEmbeddedBounded: the file holds no more than MaxEntries: the keys
// the memory evicts leave the file too.
func TestEmbeddedBounded(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := OpenEmbedded(dir, EmbeddedOptions{MemoryOptions: MemoryOptions{MaxEntries: 10}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		_, _ = s.Count(ctx, "c:"+string(rune('a'+i%26))+string(rune('a'+i/26)), 1, time.Hour)
		if i%7 == 0 {
			_ = s.Flush()
		}
	}
	_ = s.Close()
	if keys := fileKeys(t, dir); len(keys) != 10 {
		t.Fatalf("%d keys in the file, want 10", len(keys))
	}
	// Reopened with a smaller bound, the surplus leaves the file.
	s, err = OpenEmbedded(dir, EmbeddedOptions{MemoryOptions: MemoryOptions{MaxEntries: 4}})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	if keys := fileKeys(t, dir); len(keys) != 4 {
		t.Fatalf("%d keys in the file, want 4", len(keys))
	}
}

// TestEmbeddedLocked: a second open of the same directory (another
// mxguard) fails at once with ErrLocked instead of waiting for the lock.
func TestEmbeddedLocked(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenEmbedded(dir, EmbeddedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = OpenEmbedded(dir, EmbeddedOptions{})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
}

// TestEmbeddedBackgroundFlush: a change reaches the file by itself, within
// the flush interval, without Flush or Close.
func TestEmbeddedBackgroundFlush(t *testing.T) {
	s, err := OpenEmbedded(t.TempDir(), EmbeddedOptions{FlushInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_ = s.Put(context.Background(), "k", []byte("v"), time.Hour)
	inFile := func() (found bool) {
		_ = s.db.View(func(tx *bolt.Tx) error { found = tx.Bucket(bucketName).Get([]byte("k")) != nil; return nil })
		return found
	}
	// Waiting for it, not timing it.
	for deadline := time.Now().Add(10 * time.Second); !inFile(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the change never reached the file")
		}
	}
}
