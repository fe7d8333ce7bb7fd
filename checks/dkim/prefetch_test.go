package dkim

import (
	"bytes"
	"context"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"mxguard/checks/resolver"
	"mxguard/internal/membudget"
)

// feed writes msg to p in random chunks of 1 to max octets.
func feed(t testing.TB, p *Prefetcher, msg []byte, rng *rand.Rand, max int) {
	t.Helper()
	for len(msg) > 0 {
		n := min(len(msg), 1+rng.IntN(max))
		if w, err := p.Write(msg[:n]); err != nil || w != n {
			t.Errorf("Write: %d, %v", w, err) // not Fatal: feed runs on other goroutines too
			return
		}
		msg = msg[n:]
	}
}

// TestPrefetchWarmsCache: once the header is in, the keys of its
// signatures are looked up, so that Verify afterwards asks DNS nothing.
func TestPrefetchWarmsCache(t *testing.T) {
	e := newEnv(t)
	k := getKeys(t)
	msg := sign(t, sign(t, baseMessage(5000), k.ed, "ed"), k.rsa2048, "rsa2048")
	hdr := bytes.Index(msg, []byte("\r\n\r\n")) + 4
	for _, max := range []int{1, 100, 1 << 20} {
		// A fresh resolver each time, so that its cache is cold.
		res, err := resolver.New(resolver.Options{Servers: []string{e.dns.Addr()}, Timeout: 5 * time.Second, Attempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		o := Options{Lookup: res.LookupTXT}
		q0 := e.dns.Queries()
		p := NewPrefetcher(testCtx(t), o)
		feed(t, p, msg[:hdr], rand.New(rand.NewPCG(1, 2)), max)
		p.wait()
		if n := e.dns.Queries() - q0; n != 2 {
			t.Errorf("chunks up to %d: %d queries after the header, want 2 (one key per signature)", max, n)
		}
		feed(t, p, msg[hdr:], rand.New(rand.NewPCG(1, 2)), max)
		q1 := e.dns.Queries()
		if r := Verify(testCtx(t), bytes.NewReader(msg), o); r.Result != Pass || len(r.Signatures) != 2 {
			t.Errorf("chunks up to %d: %s", max, formatResult(r))
		}
		if n := e.dns.Queries() - q1; n != 0 {
			t.Errorf("chunks up to %d: Verify asked DNS %d more times", max, n)
		}
		if p.Unsigned() {
			t.Error("a signed message called unsigned")
		}
	}
}

// TestPrefetchWriteDoesNotWait: while a key lookup hangs, the writer is not
// held up, keeps nothing past the header, and Stop lets the lookup go.
func TestPrefetchWriteDoesNotWait(t *testing.T) {
	e := newEnv(t)
	msg := sign(t, baseMessage(1<<20), getKeys(t).ed, "ed")
	base := settledGoroutines(t, -1)
	release := make(chan struct{})
	asked := make(chan struct{}, 1)
	o := e.opts()
	o.Lookup = func(ctx context.Context, name string) ([]string, error) {
		asked <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil, ctx.Err()
	}
	p := NewPrefetcher(testCtx(t), o)
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		feed(t, p, msg, rand.New(rand.NewPCG(3, 4)), 8192)
	}()
	select {
	case <-asked:
	case <-time.After(10 * time.Second):
		t.Fatal("the key was never looked up")
	}
	select {
	case <-wrote:
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("Write waited for the key lookup")
	}
	p.mu.Lock()
	held := len(p.head)
	p.mu.Unlock()
	if held != 0 {
		t.Errorf("%d octets held after the header", held)
	}
	p.Stop()
	p.wait()
	settledGoroutines(t, base)
	close(release)
}

// TestPrefetchUnsigned: a header section without a signature is known at
// once, with no lookup and no goroutine, and nothing is held after it.
func TestPrefetchUnsigned(t *testing.T) {
	e := newEnv(t)
	base := settledGoroutines(t, -1)
	q0 := e.dns.Queries()
	p := NewPrefetcher(testCtx(t), e.opts())
	feed(t, p, baseMessage(1<<16), rand.New(rand.NewPCG(5, 6)), 4096)
	if !p.Unsigned() {
		t.Fatal("an unsigned message not called unsigned")
	}
	p.mu.Lock()
	held, done := len(p.head), p.done
	p.mu.Unlock()
	if held != 0 || done != nil {
		t.Errorf("%d octets held, lookups started: %v", held, done != nil)
	}
	if n := e.dns.Queries() - q0; n != 0 {
		t.Errorf("%d queries for an unsigned message", n)
	}
	settledGoroutines(t, base)
}

// TestPrefetchUnsure: whenever the header might hold a signature, or never
// ends, the message is not called unsigned; and whatever it is called,
// Unsigned implies that Verify finds no signature.
func TestPrefetchUnsure(t *testing.T) {
	e := newEnv(t)
	k := getKeys(t)
	signed := sign(t, baseMessage(100), k.ed, "ed")
	for name, c := range map[string]struct {
		msg      []byte
		unsigned bool
	}{
		"subject names it": {append([]byte("Subject: about DKIM-SIGNATURE\r\n"), baseMessage(100)...), false},
		// Not a field name (RFC 5322 §3.6.8: US-ASCII only), though a
		// Unicode case folding makes it one: the header section ends
		// before it (mailhdr), for every reader downstream too.
		"Kelvin sign in the name":  {append([]byte("D\u212aIM-Signature: v=1; a=rsa-sha256; d=x; s=y; h=from; bh=; b=\r\n"), baseMessage(100)...), true},
		"no end of header":         {[]byte("From: a@sender.test\r\nSubject: x\r\n"), false},
		"signed, no end of header": {signed[:bytes.Index(signed, []byte("\r\n\r\n"))+2], false},
		"empty":                    {nil, false},
		"LF line endings":          {bytes.ReplaceAll(signed, []byte("\r\n"), []byte("\n")), false},
		"unsigned, LF":             {bytes.ReplaceAll(baseMessage(100), []byte("\r\n"), []byte("\n")), true},
		"no header":                {[]byte("\r\nbody\r\n"), true},
	} {
		for _, max := range []int{1, 13, 1 << 20} {
			p := NewPrefetcher(testCtx(t), e.opts())
			feed(t, p, c.msg, rand.New(rand.NewPCG(7, 8)), max)
			if got := p.Unsigned(); got != c.unsigned {
				t.Errorf("%s, chunks up to %d: Unsigned %v, want %v", name, max, got, c.unsigned)
			}
			p.Stop()
		}
	}
	// A header longer than maxHeld, arriving in pieces, is given up on and
	// left to Verify, and not kept.
	long := append([]byte("X-Long: "+string(bytes.Repeat([]byte("a"), maxHeld+10))+"\r\nX-Longer: "+
		string(bytes.Repeat([]byte("b"), 10000))+"\r\n"), baseMessage(100)...)
	p := NewPrefetcher(testCtx(t), e.opts())
	feed(t, p, long, rand.New(rand.NewPCG(7, 8)), 4096)
	p.mu.Lock()
	held := len(p.head)
	p.mu.Unlock()
	if p.Unsigned() || held != 0 {
		t.Errorf("long header: Unsigned %v, %d octets held; want false, 0", p.Unsigned(), held)
	}
	// Every case of the Verify tests: Unsigned implies none.
	for _, tc := range cases(t, e) {
		p := NewPrefetcher(testCtx(t), e.opts())
		feed(t, p, tc.msg, rand.New(rand.NewPCG(9, 10)), 64)
		if p.Unsigned() {
			if r := Verify(testCtx(t), bytes.NewReader(tc.msg), e.opts()); !reflect.DeepEqual(r, Result{Result: None}) {
				t.Errorf("%s: called unsigned, Verify gives %s", tc.name, formatResult(r))
			}
		}
		p.Stop()
	}
}

// TestPrefetchStops: lookups that never answer end with Stop or with the
// context, and leave no goroutine behind.
func TestPrefetchStops(t *testing.T) {
	e := newEnv(t)
	msg := sign(t, baseMessage(5000), getKeys(t).ed, "drop")
	base := settledGoroutines(t, -1)
	ctx, cancel := context.WithCancel(context.Background())
	for i := range 20 {
		p := NewPrefetcher(ctx, e.opts())
		p.Write(msg[:len(msg)/2])
		if i%2 == 0 {
			p.Stop()
			p.Write([]byte("more\r\n"))
		}
	}
	cancel()
	settledGoroutines(t, base)
}

// TestPrefetchMemoryBudget: the header section held counts against the
// memory budget, is given back however the prefetcher ends, and is not
// held at all when the budget has no room: the message is then left to
// Verify, which finds the same signatures.
func TestPrefetchMemoryBudget(t *testing.T) {
	e := newEnv(t)
	signed := sign(t, baseMessage(5000), getKeys(t).ed, "ed")
	hdr := bytes.Index(signed, []byte("\r\n\r\n")) + 4
	// Fields that push the header section past the first writes, so
	// that it is held while it arrives.
	filler := bytes.Repeat([]byte("X-Filler: "+string(bytes.Repeat([]byte("f"), 60))+"\r\n"), 100)
	msg := append(append([]byte(nil), filler...), signed...)
	hdr += len(filler)
	for _, c := range []struct {
		name   string
		budget int64
		end    func(p *Prefetcher)
		held   bool // the header section was held while it arrived
	}{
		{"header completes", 1 << 20, func(p *Prefetcher) { feed(t, p, msg[hdr-2:], rand.New(rand.NewPCG(3, 4)), 512) }, true},
		{"stopped mid-header", 1 << 20, func(p *Prefetcher) { p.Stop() }, true},
		{"header too long", 1 << 20, func(p *Prefetcher) {
			feed(t, p, bytes.Repeat([]byte("X-More: "+string(bytes.Repeat([]byte("m"), 70))+"\r\n"), maxHeld/40), rand.New(rand.NewPCG(3, 4)), 512)
		}, true},
		{"no room in the budget", 1 << 10, func(p *Prefetcher) { p.Stop() }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			mem := membudget.New(c.budget)
			o := e.opts()
			o.Memory = mem
			p := NewPrefetcher(testCtx(t), o)
			feed(t, p, msg[:hdr-2], rand.New(rand.NewPCG(1, 2)), 512)
			p.mu.Lock()
			held, reserved := len(p.head), p.held
			p.mu.Unlock()
			if c.held != (held > 0) || mem.InUse() != reserved || reserved < int64(held) || reserved > maxHeld {
				t.Fatalf("mid-header: %d octets held, %d reserved, budget shows %d; want held %v", held, reserved, mem.InUse(), c.held)
			}
			c.end(p)
			p.wait()
			if mem.InUse() != 0 {
				t.Fatalf("%d octets of the budget held once the header is judged", mem.InUse())
			}
			// Whatever the prefetcher did, Verify has the last word.
			if r := Verify(testCtx(t), bytes.NewReader(msg), o); r.Result != Pass {
				t.Fatalf("Verify: %s", formatResult(r))
			}
			p.Stop()
		})
	}
}
