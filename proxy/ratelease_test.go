package proxy

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"mxguard/internal/state"
)

// leaseLimiter is a store-backed limiter on a fake clock whose store
// counts the round trips.
func leaseLimiter(l RateLimits) (*rateLimiter, *fakeClock, *countingStore) {
	r, c := newTestLimiter(l)
	st := &countingStore{Store: state.NewMemory(state.MemoryOptions{Now: c.now})}
	r.useStore(st, new(storeHealth), slog.New(slog.DiscardHandler))
	return r, c, st
}

// mailTx runs one transaction's rate events through r: its MAIL, and its
// first recipient unless the MAIL reserved it.
func mailTx(t *testing.T, r *rateLimiter, l *rateLease) bool {
	t.Helper()
	ip := rateAddr(t, "203.0.113.7")
	ok, _, rcpt := r.allowMail(context.Background(), ip, l)
	if !ok {
		return false
	}
	if !rcpt {
		ok, _ = r.allow(context.Background(), rateRcpt, ip)
	}
	return ok
}

// TestRateLeaseSavesRoundTrips: a session sending message after message
// reserves more transactions per round trip (1, 2, 4, 8, 16), so 31
// one-recipient messages cost 5 round trips, not 31 (or 62 without the
// recipient's reservation).
func TestRateLeaseSavesRoundTrips(t *testing.T) {
	r, c, st := leaseLimiter(RateLimits{MessagesPerMinute: 100000, RecipientsPerMinute: 100000, NetFactor: 4, MaxTracked: 100})
	var l rateLease
	for i := range 31 {
		if !mailTx(t, r, &l) {
			t.Fatalf("message %d refused", i)
		}
		c.add(time.Millisecond)
	}
	if n := st.allows.Load(); n != 5 {
		t.Errorf("31 messages cost %d round trips, want 5", n)
	}
}

// TestRateLeaseNeverPastTheLimit: at one instant (no refill), reserving
// cannot admit one event more than the limit: every reserved event is
// charged to the store first. Two sessions of one client share the limit.
func TestRateLeaseNeverPastTheLimit(t *testing.T) {
	r, c, _ := leaseLimiter(RateLimits{MessagesPerMinute: 600, RecipientsPerMinute: 6000, NetFactor: 4, MaxTracked: 100})
	var a, b rateLease
	admitted := 0
	for i := range 2000 {
		l := &a
		if i%3 == 0 {
			l = &b
		}
		if mailTx(t, r, l) {
			admitted++
		}
		if i%50 == 0 {
			c.add(time.Microsecond) // the leases stay alive
		}
	}
	if admitted > 600 {
		t.Errorf("admitted %d messages at once, limit 600", admitted)
	}
	if admitted < 590 {
		t.Errorf("admitted only %d of the limit's 600: reservations wasted the burst", admitted)
	}
}

// TestRateLeaseBound: over a minute of a client sending as fast as it
// may, leases add at most rateLeaseLife's worth of the limit (10 events at
// 600 a minute) to what the limit allows in that minute, and a lease not
// used within rateLeaseLife is dropped.
func TestRateLeaseBound(t *testing.T) {
	r, c, _ := leaseLimiter(RateLimits{MessagesPerMinute: 600, NetFactor: 4, MaxTracked: 100})
	var l rateLease
	// The burst, then a minute at the rate.
	admitted := 0
	for step := 0; step < 60000; step += 10 { // every 10 ms for a minute
		for mailTx(t, r, &l) {
			admitted++
			if admitted > 5000 {
				t.Fatal("no limit at all")
			}
		}
		c.add(10 * time.Millisecond)
	}
	// GCRA allows the burst (600) and one per interval (100 ms) after:
	// 1,200 in the minute; leases may add one second's worth.
	if limit := 1200 + 10; admitted > limit {
		t.Errorf("admitted %d in a minute, want at most %d", admitted, limit)
	}
	// A lease left unused for longer than its life is not used.
	var idle rateLease
	c.add(2 * time.Minute)
	for range 4 {
		mailTx(t, r, &idle)
	}
	if idle.msgs == 0 {
		t.Fatal("no lease to test with")
	}
	c.add(rateLeaseLife + time.Millisecond)
	before := idle.msgs
	mailTx(t, r, &idle)
	if idle.size != 1 || idle.msgs != 0 {
		t.Errorf("after an expired lease of %d: size %d, %d spare; want a fresh reservation of 1", before, idle.size, idle.msgs)
	}
}

// TestRateLeaseFromConnection: a connection reserves its session's first
// MAIL and recipient, so a one-message session costs one round trip; at
// one instant, sessions that each send one message (or none, leaving
// their reservation unused) are never admitted past the message limit.
func TestRateLeaseFromConnection(t *testing.T) {
	r, c, st := leaseLimiter(RateLimits{ConnectionsPerMinute: 100000, MessagesPerMinute: 300, RecipientsPerMinute: 100000, NetFactor: 4, MaxTracked: 100})
	ip := rateAddr(t, "203.0.113.7")
	admitted := 0
	for i := range 1000 {
		var l rateLease
		before := st.allows.Load()
		if ok, _ := r.allowConn(context.Background(), ip, &l); !ok {
			t.Fatalf("connection %d refused", i)
		}
		if i%4 == 3 {
			continue // a session that never sends MAIL
		}
		if mailTx(t, r, &l) {
			admitted++
		}
		if i == 0 && st.allows.Load()-before != 1 {
			t.Fatalf("a one-message session cost %d round trips, want 1", st.allows.Load()-before)
		}
	}
	c.add(time.Microsecond)
	if admitted > 300 {
		t.Errorf("admitted %d messages at once, limit 300", admitted)
	}
}

// rcptTx runs a transaction of n recipients through r, and returns how
// many were admitted.
func rcptTx(t *testing.T, r *rateLimiter, l *rateLease, n int) int {
	t.Helper()
	ip := rateAddr(t, "203.0.113.7")
	ok, _, first := r.allowMail(context.Background(), ip, l)
	if !ok {
		return 0
	}
	admitted := 0
	for i := range n {
		switch {
		case i == 0 && first, r.useRcpt(l):
		default:
			if ok, _ := r.allow(context.Background(), rateRcpt, ip); !ok {
				continue
			}
		}
		admitted++
		l.lastRcpts = admitted
	}
	return admitted
}

// TestRateLeaseRecipients: a MAIL reserves as many recipients as the
// session's last transaction had, so the second ten-recipient message
// costs one round trip, not ten; and at one instant the recipients so
// reserved never take a client past its recipient limit.
func TestRateLeaseRecipients(t *testing.T) {
	r, c, st := leaseLimiter(RateLimits{MessagesPerMinute: 100000, RecipientsPerMinute: 100000, NetFactor: 4, MaxTracked: 100})
	var l rateLease
	if n := rcptTx(t, r, &l, 10); n != 10 {
		t.Fatalf("first message: %d of 10 recipients", n)
	}
	first := st.allows.Load()
	c.add(time.Millisecond)
	if n := rcptTx(t, r, &l, 10); n != 10 {
		t.Fatalf("second message: %d of 10 recipients", n)
	}
	if n := st.allows.Load() - first; n != 1 {
		t.Errorf("the second ten-recipient message cost %d round trips, want 1 (the first cost %d)", n, first)
	}

	r, _, _ = leaseLimiter(RateLimits{MessagesPerMinute: 100000, RecipientsPerMinute: 120, NetFactor: 4, MaxTracked: 100})
	l = rateLease{}
	admitted := 0
	for range 40 {
		admitted += rcptTx(t, r, &l, 10)
	}
	if admitted > 120 {
		t.Errorf("admitted %d recipients at once, limit 120", admitted)
	}
	if admitted < 100 {
		t.Errorf("admitted only %d of the limit's 120: reservations wasted it", admitted)
	}
}
