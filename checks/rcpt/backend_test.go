package rcpt

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// TestBackendStatuses probes the backend for each kind of reply.
func TestBackendStatuses(t *testing.T) {
	b := startBackend(t, false)
	v := newVerifier(t, Options{Verify: VerifyBackend, Backend: b.addr, Helo: "mx.test"})
	tests := []struct {
		name, rcpt string
		want       Result
	}{
		{"known", "alice@example.org", Result{Status: Known, Detail: "backend accepted RCPT TO"}},
		{"known other case", "Bob@Example.ORG", Result{Status: Known, Detail: "backend accepted RCPT TO"}},
		{"unknown", "x@example.org", Result{Status: Unknown, Detail: "550 5.1.1 <x@example.org>: Recipient address rejected: User unknown"}},
		{"busy", "busy@example.org", Result{Status: Temperror, Detail: "451 4.3.0 Try again later"}},
		{"552 is temporary", "full@example.org", Result{Status: Temperror, Detail: "552 5.2.2 Mailbox full"}},
		{"other 5xx", "blocked@example.org", Result{Status: Unknown, Detail: "554 5.7.1 Access denied (a permanent refusal, but not an unknown-mailbox reply)"}},
		{"unprobeable", "a@example.org>\r\nDATA", Result{Status: Unchecked, Detail: `cannot ask the backend about "a@example.org> / DATA"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := v.Verify(t.Context(), tt.rcpt); got != tt.want {
				t.Errorf("Verify(%q)\n got %+v\nwant %+v", tt.rcpt, got, tt.want)
			}
		})
	}
}

// TestClassify pins the reply-code mapping, including the codes the test
// backend does not produce.
func TestClassify(t *testing.T) {
	tests := []struct {
		code int
		enh  smtp.EnhancedCode
		want Status
	}{
		{550, smtp.EnhancedCode{5, 1, 1}, Unknown},
		{550, smtp.EnhancedCode{}, Unknown},
		{551, smtp.EnhancedCode{5, 1, 6}, Unknown},
		{553, smtp.EnhancedCode{5, 1, 3}, Unknown},
		{554, smtp.EnhancedCode{5, 1, 1}, Unknown},
		{554, smtp.EnhancedCode{5, 7, 1}, Unknown},
		{552, smtp.EnhancedCode{5, 2, 2}, Temperror},
		{450, smtp.EnhancedCode{4, 2, 1}, Temperror},
		{421, smtp.EnhancedCode{4, 4, 2}, Temperror},
		{354, smtp.EnhancedCode{}, Temperror},
		{600, smtp.EnhancedCode{}, Temperror},
	}
	for _, tt := range tests {
		got := classify(&smtp.SMTPError{Code: tt.code, EnhancedCode: tt.enh, Message: "m"})
		if got.Status != tt.want {
			t.Errorf("classify(%d %v) = %+v, want %s", tt.code, tt.enh, got, tt.want)
		}
		if got.Status == Unknown && tt.code != 550 && tt.code != 551 && tt.code != 553 && tt.enh[1] != 1 &&
			!strings.Contains(got.Detail, "not an unknown-mailbox reply") {
			t.Errorf("classify(%d %v).Detail = %q, want it to say it is not a mailbox reply", tt.code, tt.enh, got.Detail)
		}
	}
}

// TestPositiveCache: the second Verify of an address is answered from the
// cache, whatever the case of the address.
func TestPositiveCache(t *testing.T) {
	b := startBackend(t, false)
	v := newVerifier(t, Options{Verify: VerifyBackend, Backend: b.addr})
	ctx := t.Context()
	if got := v.Verify(ctx, "alice@example.org"); got.Status != Known || got.Cached {
		t.Fatalf("first Verify = %+v, want known, not cached", got)
	}
	if got := v.Verify(ctx, "ALICE@example.org"); got.Status != Known || !got.Cached {
		t.Fatalf("second Verify = %+v, want known, cached", got)
	}
	if n := b.rcptCount(); n != 1 {
		t.Errorf("backend saw %d RCPT, want 1", n)
	}
	want := Stats{Probes: 1, Dials: 1, Hits: 1, Misses: 1}
	if got := v.Stats(); got != want {
		t.Errorf("Stats()\n got %+v\nwant %+v", got, want)
	}
}

// TestNegativeCacheExpiry: an unknown answer is cached for NegativeTTL,
// then asked again.
func TestNegativeCacheExpiry(t *testing.T) {
	b := startBackend(t, false)
	v := newVerifier(t, Options{Verify: VerifyBackend, Backend: b.addr, NegativeTTL: 50 * time.Millisecond})
	ctx := t.Context()
	if got := v.Verify(ctx, "x@example.org"); got.Status != Unknown || got.Cached {
		t.Fatalf("first Verify = %+v, want unknown, not cached", got)
	}
	if got := v.Verify(ctx, "x@example.org"); got.Status != Unknown || !got.Cached {
		t.Fatalf("second Verify = %+v, want unknown, cached", got)
	}
	if n := b.rcptCount(); n != 1 {
		t.Fatalf("backend saw %d RCPT before expiry, want 1", n)
	}
	time.Sleep(60 * time.Millisecond)
	if got := v.Verify(ctx, "x@example.org"); got.Status != Unknown || got.Cached {
		t.Fatalf("Verify after the TTL = %+v, want unknown, not cached", got)
	}
	if n := b.rcptCount(); n != 2 {
		t.Errorf("backend saw %d RCPT after expiry, want 2", n)
	}
}

// TestPositiveOutlivesNegative: the two caches keep their own lifetimes.
func TestPositiveOutlivesNegative(t *testing.T) {
	b := startBackend(t, false)
	v := newVerifier(t, Options{Verify: VerifyBackend, Backend: b.addr, NegativeTTL: 20 * time.Millisecond})
	ctx := t.Context()
	v.Verify(ctx, "alice@example.org")
	v.Verify(ctx, "x@example.org")
	time.Sleep(40 * time.Millisecond)
	if got := v.Verify(ctx, "alice@example.org"); !got.Cached {
		t.Errorf("known answer after the negative TTL = %+v, want cached", got)
	}
	if got := v.Verify(ctx, "x@example.org"); got.Cached {
		t.Errorf("unknown answer after the negative TTL = %+v, want a new probe", got)
	}
}

// TestTemperrorNotCached: a 4xx answer is asked again every time.
func TestTemperrorNotCached(t *testing.T) {
	b := startBackend(t, false)
	v := newVerifier(t, Options{Verify: VerifyBackend, Backend: b.addr})
	for i := range 3 {
		if got := v.Verify(t.Context(), "busy@example.org"); got.Status != Temperror || got.Cached {
			t.Fatalf("Verify #%d = %+v, want temperror, not cached", i+1, got)
		}
	}
	if n := b.rcptCount(); n != 3 {
		t.Errorf("backend saw %d RCPT, want 3", n)
	}
}

// TestConnectionReuse: sequential probes share one backend connection,
// with RSET after every RCPT, and never a DATA.
func TestConnectionReuse(t *testing.T) {
	b := startBackend(t, false)
	v := newVerifier(t, Options{Verify: VerifyBackend, Backend: b.addr})
	for _, rcpt := range []string{"alice@example.org", "x@example.org", "busy@example.org", "bob@example.org", "y@example.org"} {
		v.Verify(t.Context(), rcpt)
	}
	if n := b.connCount(); n != 1 {
		t.Errorf("backend saw %d connections, want 1", n)
	}
	if s := v.Stats(); s.Dials != 1 || s.Probes != 5 {
		t.Errorf("Stats() = %+v, want 1 dial and 5 probes", s)
	}
	// go-smtp's client says EHLO again after RSET (RFC 5321 §4.1.4).
	probe := []string{"EHLO", "MAIL", "RCPT", "RSET"}
	var want []string
	for range 5 {
		want = append(want, probe...)
	}
	if got := b.commands(); !slices.Equal(got, want) {
		t.Errorf("commands\n got %q\nwant %q", got, want)
	}
	v.Close()
	eventually(t, "QUIT", func() bool { return slices.Contains(b.commands(), "QUIT") })
}

// TestConcurrentProbes: concurrent probes for different addresses each get
// their answer; at most MaxIdle connections stay open afterwards.
func TestConcurrentProbes(t *testing.T) {
	b := startBackend(t, false)
	v := newVerifier(t, Options{Verify: VerifyBackend, Backend: b.addr, MaxIdle: 2})
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			rcpt, want := "alice@example.org", Known
			if i%2 == 1 {
				rcpt, want = "u"+string(rune('a'+i))+"@example.org", Unknown
			}
			if got := v.Verify(t.Context(), rcpt); got.Status != want {
				t.Errorf("Verify(%q) = %+v, want %s", rcpt, got, want)
			}
		})
	}
	wg.Wait()
	v.pool.mu.Lock()
	idle := len(v.pool.idle)
	v.pool.mu.Unlock()
	if idle > 2 {
		t.Errorf("%d idle connections, want at most 2", idle)
	}
}

// TestBackendDown: nothing listens at the backend address.
func TestBackendDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	for _, backend := range []string{addr, "unix:" + t.TempDir() + "/none.sock"} {
		v := newVerifier(t, Options{Verify: VerifyBackend, Backend: backend, Timeout: time.Second})
		got := v.Verify(t.Context(), "alice@example.org")
		if got.Status != Temperror || !strings.HasPrefix(got.Detail, "backend connect: ") {
			t.Errorf("%s: Verify = %+v, want temperror from connect", backend, got)
		}
		if got := v.Verify(t.Context(), "alice@example.org"); got.Cached {
			t.Errorf("%s: temperror was cached", backend)
		}
	}
}

// TestStall: a backend that does not answer RCPT within Timeout gives a
// temperror, and its connection is not reused.
func TestStall(t *testing.T) {
	b := startBackend(t, false)
	v := newVerifier(t, Options{Verify: VerifyBackend, Backend: b.addr, Timeout: 100 * time.Millisecond})
	b.behave.Store(behaveStall)
	start := time.Now()
	got := v.Verify(t.Context(), "alice@example.org")
	if got.Status != Temperror || !strings.Contains(got.Detail, "timeout") {
		t.Errorf("Verify = %+v, want temperror for a timeout", got)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Verify took %v with a 100ms timeout", d)
	}
	if n := b.rcptCount(); n != 1 {
		t.Errorf("backend saw %d RCPT, want 1 (a timeout is not retried)", n)
	}
	b.behave.Store(behaveNormal)
	b.releaseStalls()
	if got := v.Verify(t.Context(), "alice@example.org"); got.Status != Known {
		t.Errorf("Verify after the stall = %+v, want known", got)
	}
	if n := b.connCount(); n != 2 {
		t.Errorf("backend saw %d connections, want 2 (the stalled one dropped)", n)
	}
}

// TestDrop: a connection dropped before the RCPT reply is retried once on
// a new connection.
func TestDrop(t *testing.T) {
	b := startBackend(t, false)
	v := newVerifier(t, Options{Verify: VerifyBackend, Backend: b.addr})

	b.behave.Store(behaveDropOnce)
	if got := v.Verify(t.Context(), "alice@example.org"); got.Status != Known {
		t.Errorf("Verify with one drop = %+v, want known after a retry", got)
	}
	if n := b.connCount(); n != 2 {
		t.Errorf("backend saw %d connections, want 2", n)
	}

	b.behave.Store(behaveDrop)
	got := v.Verify(t.Context(), "bob@example.org")
	if got.Status != Temperror || !strings.HasPrefix(got.Detail, "backend RCPT TO: ") {
		t.Errorf("Verify with drops = %+v, want temperror from RCPT TO", got)
	}
	if n := b.rcptCount(); n != 4 {
		t.Errorf("backend saw %d RCPT, want 4 (1 drop + 1 answer + 2 drops)", n)
	}
}

// TestStaleIdleConnection: a kept connection the backend has closed is
// replaced without the caller noticing.
func TestStaleIdleConnection(t *testing.T) {
	b := startBackend(t, false)
	v := newVerifier(t, Options{Verify: VerifyBackend, Backend: b.addr})
	v.Verify(t.Context(), "alice@example.org")
	b.dropAll()
	if got := v.Verify(t.Context(), "bob@example.org"); got.Status != Known {
		t.Errorf("Verify on a stale connection = %+v, want known", got)
	}
	if s := v.Stats(); s.Dials != 2 || s.Probes != 3 {
		t.Errorf("Stats() = %+v, want 2 dials and 3 probe attempts", s)
	}
}

// TestCoalesce: concurrent Verify calls for one address share one probe.
func TestCoalesce(t *testing.T) {
	b := startBackend(t, false)
	v := newVerifier(t, Options{Verify: VerifyBackend, Backend: b.addr})
	b.behave.Store(behaveStall)
	const n = 10
	results := make([]Result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i] = v.Verify(t.Context(), "Alice@example.org") })
	}
	<-b.stalled
	eventually(t, "every caller to join the probe", func() bool { return v.Stats().Coalesced == n-1 })
	b.releaseStalls()
	wg.Wait()
	for i, r := range results {
		if r.Status != Known {
			t.Errorf("caller %d: %+v, want known", i, r)
		}
	}
	if got := b.rcptCount(); got != 1 {
		t.Errorf("backend saw %d RCPT, want 1", got)
	}
	if s := v.Stats(); s.Coalesced != n-1 {
		t.Errorf("Stats() = %+v, want %d coalesced", s, n-1)
	}
}

// TestCallerContext: a caller whose context ends gets a temperror at once;
// the probe completes and its answer is cached for the next caller.
func TestCallerContext(t *testing.T) {
	b := startBackend(t, false)
	v := newVerifier(t, Options{Verify: VerifyBackend, Backend: b.addr})
	b.behave.Store(behaveStall)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	got := v.Verify(ctx, "alice@example.org")
	if got.Status != Temperror || !strings.Contains(got.Detail, "deadline exceeded") {
		t.Errorf("Verify = %+v, want temperror for the deadline", got)
	}
	b.behave.Store(behaveNormal)
	b.releaseStalls()
	eventually(t, "the probe to be cached", func() bool { return v.pos.Contains("alice@example.org") })
	if got := v.Verify(t.Context(), "alice@example.org"); got.Status != Known || !got.Cached {
		t.Errorf("next Verify = %+v, want known, cached", got)
	}

	cancel()
	if got := v.Verify(ctx, "bob@example.org"); got.Status != Temperror {
		t.Errorf("Verify with an ended context = %+v, want temperror", got)
	}
}

// TestCloseAbortsProbe: Close does not wait out a stalled backend.
func TestCloseAbortsProbe(t *testing.T) {
	b := startBackend(t, false)
	v, err := New(Options{Verify: VerifyBackend, Backend: b.addr})
	if err != nil {
		t.Fatal(err)
	}
	b.behave.Store(behaveStall)
	done := make(chan Result)
	go func() { done <- v.Verify(context.Background(), "alice@example.org") }()
	<-b.stalled
	start := time.Now()
	v.Close()
	if got := <-done; got.Status != Temperror {
		t.Errorf("Verify during Close = %+v, want temperror", got)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v", d)
	}
	if got := v.Verify(t.Context(), "bob@example.org"); got.Status != Temperror {
		t.Errorf("Verify after Close = %+v, want temperror", got)
	}
}

// TestLMTP probes go-smtp's LMTP server over a Unix socket.
func TestLMTP(t *testing.T) {
	b := startBackend(t, true)
	v := newVerifier(t, Options{Verify: VerifyBackend, Backend: b.addr, LMTP: true})
	for rcpt, want := range map[string]Status{
		"alice@example.org": Known,
		"x@example.org":     Unknown,
		"busy@example.org":  Temperror,
	} {
		if got := v.Verify(t.Context(), rcpt); got.Status != want {
			t.Errorf("Verify(%q) = %+v, want %s", rcpt, got, want)
		}
	}
	cmds := b.commands()
	if !slices.Contains(cmds, "LHLO") || slices.Contains(cmds, "EHLO") {
		t.Errorf("commands %q, want LHLO and no EHLO", cmds)
	}
	if n := b.connCount(); n != 1 {
		t.Errorf("backend saw %d connections, want 1", n)
	}
}

// TestSMTPAgainstLMTP: speaking SMTP to an LMTP server is a temperror, not
// an unknown recipient.
func TestSMTPAgainstLMTP(t *testing.T) {
	b := startBackend(t, true)
	v := newVerifier(t, Options{Verify: VerifyBackend, Backend: b.addr})
	if got := v.Verify(t.Context(), "alice@example.org"); got.Status != Temperror {
		t.Errorf("Verify = %+v, want temperror", got)
	}
}

// Cached answers what is in the cache and never asks the backend.
func TestCachedNeverAsks(t *testing.T) {
	b := startBackend(t, false)
	v := newVerifier(t, Options{Verify: VerifyBackend, Backend: b.addr})
	if got, ok := v.Cached("alice@example.org"); ok {
		t.Fatalf("Cached before any probe = %+v", got)
	}
	if n := b.rcptCount(); n != 0 {
		t.Fatalf("Cached asked the backend %d times", n)
	}
	want := v.Verify(t.Context(), "alice@example.org")
	got, ok := v.Cached("Alice@example.org")
	if !ok || got.Status != want.Status || !got.Cached || b.rcptCount() != 1 {
		t.Fatalf("Cached after Verify = %+v, %v (%d RCPT), want %+v from the cache", got, ok, b.rcptCount(), want)
	}
	if got, ok := v.Cached("bad\r\nRSET"); !ok || got.Status != Unchecked {
		t.Errorf("an address that cannot be asked about: %+v, %v", got, ok)
	}
}
