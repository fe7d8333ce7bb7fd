package proxy

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"mxguard/internal/metrics"
	"mxguard/internal/state"
)

// countingStore is a state store that counts the rate limits' round trips
// and, while fail is set, fails them as a Redis that is down would.
type countingStore struct {
	state.Store
	allows atomic.Int64
	fail   atomic.Bool
}

var errStoreDown = errors.New("state: connection refused")

func (c *countingStore) Allow(ctx context.Context, chain, reserve []state.Limit) (int, bool, error) {
	c.allows.Add(1)
	if c.fail.Load() {
		return 0, false, errStoreDown
	}
	return c.Store.Allow(ctx, chain, reserve)
}

func newCountingStore() *countingStore {
	return &countingStore{Store: state.NewMemory(state.MemoryOptions{})}
}

// logBuffer collects log lines for a test to read, safe for the sessions'
// goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// count returns how many lines contain s.
func (l *logBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.buf.String(), s)
}

// sendOK runs one transaction and expects the backend's 250.
func sendOK(d *dialog, from string, rcpts []string) {
	d.t.Helper()
	if got := d.sendMail(from, rcpts, simpleMsg); !strings.HasPrefix(got, "250 ") {
		d.t.Fatalf("end of data: %q, want 250", got)
	}
}

// counterValue reads a counter from m's registry.
func counterValue(t *testing.T, m *metrics.Metrics, name string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestRateStoreFleet is a fleet in miniature: two proxies share one store,
// and what a client spends on one counts on the other, for each kind of
// limit.
func TestRateStoreFleet(t *testing.T) {
	be := startBackend(t, nil)
	st := state.NewMemory(state.MemoryOptions{})
	withStore := func(o *Options, _ *BackendOptions) {
		o.Rate = withRate(RateLimits{ConnectionsPerMinute: 4, MessagesPerMinute: 2, RecipientsPerMinute: 3})
		o.State = st
	}
	a := startProxy(t, be.addr, withStore)
	b := startProxy(t, be.addr, withStore)

	da := hello(t, a.addr) // connection 1, on A
	da.expect("MAIL FROM:<a@sender.test>", "250 ")
	da.expect("RCPT TO:<a@example.org>", "250 ")
	da.expect("RCPT TO:<b@example.org>", "250 ")
	db := hello(t, b.addr) // connection 2, on B
	db.expect("MAIL FROM:<a@sender.test>", "250 ")
	db.expect("RCPT TO:<c@example.org>", "250 ")
	// Three recipients and two messages spent, across A and B.
	db.expect("RCPT TO:<d@example.org>", "451 4.7.1 too many recipients per minute from 127.0.0.1")
	db.expect("RSET", "250 ")
	db.expect("MAIL FROM:<a@sender.test>", "451 4.7.1 too many messages per minute from 127.0.0.1")
	da.expect("RSET", "250 ")
	da.expect("MAIL FROM:<a@sender.test>", "451 4.7.1 too many messages per minute from 127.0.0.1")
	hello(t, a.addr) // 3
	hello(t, b.addr) // 4
	dial(t, a.addr).expect("", "421 4.7.0 mx.example.org too many connections per minute from 127.0.0.1")
	dial(t, b.addr).expect("", "421 4.7.0 mx.example.org too many connections per minute from 127.0.0.1")
}

// TestRateStoreFailureAllows: a store that fails never costs a message.
// Each event is allowed (within what this instance's own front allows),
// the failure is logged once per episode, with the recovery, and every
// event the store could not decide is counted.
func TestRateStoreFailureAllows(t *testing.T) {
	be := startBackend(t, nil)
	st := newCountingStore()
	st.fail.Store(true)
	logs := new(logBuffer)
	m := metrics.New()
	px := startProxy(t, be.addr, func(o *Options, _ *BackendOptions) {
		o.Rate = withRate(RateLimits{ConnectionsPerMinute: 10, MessagesPerMinute: 10, RecipientsPerMinute: 10})
		o.State = st
		o.Metrics = m
		o.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	const failed = "rate limits: state store failed"
	const back = "rate limits: state store answers again"

	d := hello(t, px.addr)
	sendOK(d, "a@sender.test", []string{"a@example.org", "b@example.org"})
	sendOK(d, "a@sender.test", []string{"c@example.org"})
	if n := len(be.messages()); n != 2 {
		t.Fatalf("backend got %d messages, want 2", n)
	}
	// 1 connection, 2 messages, 3 recipients: six events, none decided.
	if n := counterValue(t, m, "mxguard_rate_limit_store_errors_total"); n != 6 {
		t.Errorf("store errors counted: %v, want 6", n)
	}
	if n := logs.count(failed); n != 1 {
		t.Errorf("%d log lines %q, want 1 for the episode", n, failed)
	}
	st.fail.Store(false)
	sendOK(d, "a@sender.test", []string{"d@example.org"})
	if n := logs.count(back); n != 1 {
		t.Errorf("%d log lines %q, want 1", n, back)
	}
	st.fail.Store(true)
	sendOK(d, "a@sender.test", []string{"e@example.org"})
	if n := logs.count(failed); n != 2 {
		t.Errorf("%d log lines %q, want 2: one per episode", n, failed)
	}
	if n := len(be.messages()); n != 4 {
		t.Fatalf("backend got %d messages, want 4", n)
	}
}

// TestRateStoreRoundTrips counts the store's round trips: one per event
// the front does not already refuse, but a connection reserves its first
// MAIL and recipient in its own round trip, and a MAIL its transaction's
// first recipient, so a session's first transaction costs one per
// accepted recipient after the first; a client over its limit on this
// instance costs none.
func TestRateStoreRoundTrips(t *testing.T) {
	be := startBackend(t, nil)
	st := newCountingStore()
	px := startProxy(t, be.addr, func(o *Options, _ *BackendOptions) {
		o.Rate = withRate(RateLimits{ConnectionsPerMinute: 100, MessagesPerMinute: 2, RecipientsPerMinute: 100})
		o.State = st
	})
	d := hello(t, px.addr)
	if n := st.allows.Load(); n != 1 {
		t.Fatalf("a connection cost %d round trips, want 1", n)
	}
	sendOK(d, "a@sender.test", []string{"a@example.org", "b@example.org", "c@example.org"})
	if n := st.allows.Load() - 1; n != 2 {
		t.Fatalf("a first transaction with 3 recipients cost %d round trips, want 2", n)
	}
	// The second message is the last of the minute: the front has
	// counted both, and refuses the next ones without asking.
	sendOK(d, "a@sender.test", []string{"a@example.org"})
	before := st.allows.Load()
	for range 20 {
		d.expect("MAIL FROM:<a@sender.test>", "451 4.7.1 too many messages per minute from 127.0.0.1")
	}
	if n := st.allows.Load() - before; n != 0 {
		t.Fatalf("20 refused MAIL commands cost %d round trips, want 0", n)
	}
}

// TestRateStoreReservationExact: a recipient reserved with its connection
// or its MAIL counts as the limit's event, so reserving never lets a
// client past its limit, and a reservation a transaction does not use
// (RSET) stays charged.
func TestRateStoreReservationExact(t *testing.T) {
	be := startBackend(t, nil)
	st := newCountingStore()
	px := startProxy(t, be.addr, func(o *Options, _ *BackendOptions) {
		o.Rate = withRate(RateLimits{ConnectionsPerMinute: 100, MessagesPerMinute: 100, RecipientsPerMinute: 3})
		o.State = st
	})
	d := hello(t, px.addr)
	sendOK(d, "a@sender.test", []string{"a@example.org"})
	if n := st.allows.Load(); n != 1 {
		t.Fatalf("a session with one message to one recipient cost %d round trips, want 1", n)
	}
	// A transaction abandoned before its RCPT: its reservation is spent.
	d.expect("MAIL FROM:<a@sender.test>", "250 2.1.0 Ok")
	d.expect("RSET", "250 2.0.0 Ok")
	// One recipient of the three a minute is left.
	d.expect("MAIL FROM:<a@sender.test>", "250 2.1.0 Ok")
	d.expect("RCPT TO:<b@example.org>", "250 2.1.5 Ok")
	d.expect("RCPT TO:<c@example.org>", "451 4.7.1 too many recipients per minute from 127.0.0.1")
	// And the next transaction reserves nothing and is refused at RCPT.
	d.expect("RSET", "250 2.0.0 Ok")
	d.expect("MAIL FROM:<a@sender.test>", "250 2.1.0 Ok")
	d.expect("RCPT TO:<d@example.org>", "451 4.7.1 too many recipients per minute from 127.0.0.1")
}

// TestRateStoreExempt: an exempt client is never limited and costs the
// store nothing.
func TestRateStoreExempt(t *testing.T) {
	be := startBackend(t, nil)
	st := newCountingStore()
	px := startProxy(t, be.addr, func(o *Options, _ *BackendOptions) {
		o.Rate = withRate(RateLimits{ConnectionsPerMinute: 1, MessagesPerMinute: 1, RecipientsPerMinute: 1})
		o.State = st
		o.Exempt = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	for range 3 {
		d := hello(t, px.addr)
		sendOK(d, "a@sender.test", []string{"a@example.org", "b@example.org"})
	}
	if n := st.allows.Load(); n != 0 {
		t.Fatalf("an exempt client cost %d round trips", n)
	}
}

// TestRateStoreRemembersWhatTheFrontForgets: the front is bounded by
// MaxTracked and forgets; the store does not, so a forgotten client is
// still limited.
func TestRateStoreRemembersWhatTheFrontForgets(t *testing.T) {
	r, _ := newKindLimiter("store", RateLimits{ConnectionsPerMinute: 1, NetFactor: -1, MaxTracked: 2})
	for _, a := range []string{"203.0.113.1", "203.0.113.2", "203.0.113.3"} {
		if ok, key := r.allow(t.Context(), rateConn, rateAddr(t, a)); !ok {
			t.Fatalf("%s refused by %q", a, key)
		}
	}
	if ak, _ := rateKeys(rateAddr(t, "203.0.113.1")); r.cache.Contains(ak) {
		t.Fatal("the front still tracks 203.0.113.1: MaxTracked 2")
	}
	if ok, key := r.allow(t.Context(), rateConn, rateAddr(t, "203.0.113.1")); ok || key != "203.0.113.1" {
		t.Fatalf("a client the front forgot: allowed %v by %q, want refused by its address", ok, key)
	}
}

// ctxStore is a store that answers only when its context ends, as a
// network store does with a session that a forced drain cancelled.
type ctxStore struct{ state.Store }

func (ctxStore) Allow(ctx context.Context, _, _ []state.Limit) (int, bool, error) {
	<-ctx.Done()
	return 0, false, ctx.Err()
}

// TestRateStoreSessionEnded: a question cut short because the session
// ended is allowed and is not the store's failure: nothing is counted or
// logged.
func TestRateStoreSessionEnded(t *testing.T) {
	logs := new(logBuffer)
	h := new(storeHealth)
	r, _ := newTestLimiter(RateLimits{MessagesPerMinute: 1})
	r.useStore(ctxStore{}, h, slog.New(slog.NewTextHandler(logs, nil)))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if ok, key := r.allow(ctx, rateMsg, rateAddr(t, "203.0.113.7")); !ok {
		t.Fatalf("refused by %q", key)
	}
	if n := h.errors.Load(); n != 0 {
		t.Errorf("%d store errors counted, want 0", n)
	}
	if n := logs.count("state store"); n != 0 {
		t.Errorf("%d log lines about the store, want 0", n)
	}
}
