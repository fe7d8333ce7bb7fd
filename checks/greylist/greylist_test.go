package greylist

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"mxguard/checks/check"
	"mxguard/checks/check/checktest"
	"mxguard/internal/confval"
	"mxguard/internal/state"
)

// view is the part of a transaction the check reads.
func view(client netip.Addr, mailFrom, rcpt string) checktest.View {
	return checktest.View{ClientIP: client, Sender: mailFrom, Recipient: rcpt}
}

// clock is a store's clock that tests move.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func testDef(t *testing.T, c Config) (check.Def, *clock) {
	t.Helper()
	clk := &clock{t: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)}
	st := state.NewMemory(state.MemoryOptions{Now: clk.now})
	t.Cleanup(func() { st.Close() })
	c.Enabled = true
	d := Facts{}.Define(check.Env{State: st, Section: c, Now: clk.now})
	if d.Run == nil || d.Record == nil || !d.PerRcpt || d.Stage != check.Rcpt {
		t.Fatalf("Define = %+v, want a per-recipient rcpt check that runs and records", d)
	}
	return d, clk
}

// attempt runs the check for v and records its answer as serve does,
// after a verdict that tempfails the new and early states.
func attempt(t *testing.T, d check.Def, v checktest.View) Facts {
	t.Helper()
	r := d.Run(context.Background(), v)
	f, _ := r.Facts.(Facts)
	if r.Result != f.State {
		t.Errorf("result %q, state %q: want equal", r.Result, f.State)
	}
	refused := f.State == "new" || f.State == "early"
	if err := d.Record(context.Background(), v, r, check.Verdict{Refused: refused}); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestGreylistLifecycle(t *testing.T) {
	d, clk := testDef(t, DefaultConfig())
	first := view(netip.MustParseAddr("192.0.2.7"), "prvs=1001abcdef=news@sender.test", "u@example.org")
	if f := attempt(t, d, first); f != (Facts{State: "new", Wait: 300, Network: "192.0.2.0/24"}) {
		t.Fatalf("first attempt: %+v", f)
	}
	clk.t = clk.t.Add(time.Minute)
	if f := attempt(t, d, first); f.State != "early" || f.Wait != 240 {
		t.Fatalf("retry after 1m: %+v, want early with 240s", f)
	}
	// Another triplet of the same network is new.
	other := first
	other.Recipient = "v@example.org"
	if f := attempt(t, d, other); f.State != "new" {
		t.Fatalf("other recipient: %+v, want new", f)
	}
	// After the delay, from another address of the pool, with the next
	// day's BATV tag: the same triplet, which passes.
	clk.t = clk.t.Add(5 * time.Minute)
	retry := view(netip.MustParseAddr("192.0.2.99"), "prvs=1002fedcba=news@sender.test", "U@example.org")
	if f := attempt(t, d, retry); f.State != "passed" || f.Wait != 0 {
		t.Fatalf("retry after the delay: %+v, want passed", f)
	}
	// The network is known now: its other triplets pass at once.
	fresh := view(netip.MustParseAddr("192.0.2.8"), "someone@else.test", "w@example.org")
	if f := attempt(t, d, fresh); f.State != "known" {
		t.Fatalf("after a pass: %+v, want known", f)
	}
	// Another network is not.
	if f := attempt(t, d, view(netip.MustParseAddr("198.51.100.1"), "a@b.test", "u@example.org")); f.State != "new" {
		t.Fatalf("another network: %+v, want new", f)
	}
}

// writes counts a store's greylist writes.
type writes struct {
	state.Store
	n int
}

func (w *writes) RecordGreylist(ctx context.Context, t state.Triplet, g state.Grey) error {
	w.n++
	return w.Store.RecordGreylist(ctx, t, g)
}

// A network in use keeps its pass: mail from it refreshes the pass once
// it is a day old (a write at most once a day per network; the usual
// answer costs one read), so a regular sender is not greylisted again
// every pass_lifetime. Mail refused at that recipient refreshes nothing.
func TestGreylistPassRefreshedByUse(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)}
	st := &writes{Store: state.NewMemory(state.MemoryOptions{Now: clk.now})}
	c := DefaultConfig()
	c.Enabled = true
	c.Delay, c.PassLifetime = confval.Dur(time.Minute), confval.Dur(10*24*time.Hour)
	d := Facts{}.Define(check.Env{State: st, Section: c, Now: clk.now})
	v := view(netip.MustParseAddr("192.0.2.7"), "news@sender.test", "u@example.org")
	attempt(t, d, v)
	clk.t = clk.t.Add(2 * time.Minute)
	if f := attempt(t, d, v); f.State != "passed" {
		t.Fatalf("retry: %+v", f)
	}
	// Every day for 30 days, three messages a day: the pass given on day
	// 0 would have ended on day 10.
	before := st.n
	for day := 1; day <= 30; day++ {
		for range 3 {
			clk.t = clk.t.Add(8 * time.Hour)
			if f := attempt(t, d, v); f.State != "known" {
				t.Fatalf("day %d: %+v, want known", day, f)
			}
		}
	}
	if n := st.n - before; n < 10 || n > 30 {
		t.Errorf("%d pass refreshes in 30 days of 3 messages a day, want at most one a day", n)
	}
	// A recipient refused for another reason does not keep the pass
	// alive: eleven days of refusals, and the network is new again.
	for range 11 {
		clk.t = clk.t.Add(24 * time.Hour)
		r := d.Run(context.Background(), v)
		if err := d.Record(context.Background(), v, r, check.Verdict{Refused: true, Permanent: true}); err != nil {
			t.Fatal(err)
		}
	}
	if f := attempt(t, d, v); f.State != "new" {
		t.Fatalf("after eleven days of refused mail: %+v, want new", f)
	}
}

func TestGreylistForgetsAfterRetryWindow(t *testing.T) {
	c := DefaultConfig()
	c.Delay, c.RetryWindow = confval.Dur(time.Minute), confval.Dur(time.Hour)
	d, clk := testDef(t, c)
	v := view(netip.MustParseAddr("2001:db8::1"), "a@b.test", "u@example.org")
	if f := attempt(t, d, v); f.State != "new" || f.Network != "2001:db8::/64" {
		t.Fatalf("first: %+v", f)
	}
	clk.t = clk.t.Add(2 * time.Hour)
	if f := attempt(t, d, v); f.State != "new" {
		t.Fatalf("after the retry window: %+v, want new again", f)
	}
}

func TestGreylistPermanentRefusalNotRecorded(t *testing.T) {
	d, clk := testDef(t, DefaultConfig())
	v := view(netip.MustParseAddr("192.0.2.7"), "a@b.test", "nobody@example.org")
	r := d.Run(context.Background(), v)
	// An unknown recipient refused with 5xx: no retry will come.
	if err := d.Record(context.Background(), v, r, check.Verdict{Refused: true, Permanent: true}); err != nil {
		t.Fatal(err)
	}
	clk.t = clk.t.Add(10 * time.Minute)
	if f := attempt(t, d, v); f.State != "new" {
		t.Fatalf("after a permanent refusal: %+v, want new (nothing recorded)", f)
	}
}

func TestGreylistAllowList(t *testing.T) {
	c := DefaultConfig()
	c.Allow = Allow{Networks: []string{"198.51.100.0/24", "2001:db8::5"}, SenderDomains: []string{"partner.example"},
		Recipients: []string{"postmaster@example.org", "abuse.example"}}
	c.Normalize()
	d, _ := testDef(t, c)
	for _, v := range []checktest.View{
		{ClientIP: netip.MustParseAddr("198.51.100.9"), Sender: "a@b.test", Recipient: "u@example.org"},
		{ClientIP: netip.MustParseAddr("2001:db8::5"), Sender: "a@b.test", Recipient: "u@example.org"},
		{ClientIP: netip.MustParseAddr("192.0.2.1"), Sender: "a@mail.Partner.example", Recipient: "u@example.org"},
		{ClientIP: netip.MustParseAddr("192.0.2.1"), Sender: "a@b.test", Recipient: "PostMaster@example.org"},
		{ClientIP: netip.MustParseAddr("192.0.2.1"), Sender: "a@b.test", Recipient: "x@abuse.example"},
	} {
		if f := attempt(t, d, v); f.State != Allowed {
			t.Errorf("%+v: %+v, want allowed", v, f)
		}
	}
	if f := attempt(t, d, view(netip.MustParseAddr("192.0.2.1"), "a@notpartner.example", "u@example.org")); f.State != "new" {
		t.Errorf("notpartner.example: %+v, want new", f)
	}
}

// failing is a store that cannot answer.
type failing struct{ state.Store }

func (failing) Greylist(context.Context, state.Triplet) (state.Grey, error) {
	return state.Grey{}, errors.New("redis: connection refused")
}

func TestGreylistStoreErrorIsTemperror(t *testing.T) {
	c := DefaultConfig()
	c.Enabled = true
	d := Facts{}.Define(check.Env{State: failing{}, Section: c})
	r := d.Run(context.Background(), view(netip.MustParseAddr("192.0.2.7"), "a@b.test", "u@example.org"))
	if f, _ := r.Facts.(Facts); r.Result != check.Temperror || f.State != "" {
		t.Errorf("store down: %q %+v, want temperror with no state", r.Result, r.Facts)
	}
}

func TestGreylistOff(t *testing.T) {
	st := state.NewMemory(state.MemoryOptions{})
	defer st.Close()
	for name, env := range map[string]check.Env{
		"no section": {State: st},
		"disabled":   {State: st, Section: DefaultConfig()},
		"no store":   {Section: Config{Enabled: true}},
	} {
		if d := (Facts{}).Define(env); d.Run != nil || d.Record != nil || !d.PerRcpt {
			t.Errorf("%s: Define = %+v, want a per-recipient check that does not run", name, d)
		}
	}
}

// reads counts the store's greylist lookups.
type reads struct {
	state.Store
	n int
}

func (r *reads) Greylist(ctx context.Context, t state.Triplet) (state.Grey, error) {
	r.n++
	return r.Store.Greylist(ctx, t)
}

// A known network's mail costs no store lookup per recipient for a minute
// (the front); a pass the admin deletes is seen within that minute.
func TestGreylistKnownFront(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)}
	st := &reads{Store: state.NewMemory(state.MemoryOptions{Now: clk.now})}
	c := DefaultConfig()
	c.Enabled = true
	c.Delay = confval.Dur(time.Minute)
	d := Facts{}.Define(check.Env{State: st, Section: c, Now: clk.now})
	v := view(netip.MustParseAddr("192.0.2.7"), "a@sender.test", "u@example.org")
	attempt(t, d, v)
	clk.t = clk.t.Add(2 * time.Minute)
	if f := attempt(t, d, v); f.State != "passed" {
		t.Fatalf("retry: %+v", f)
	}
	before := st.n
	for i := range 10 {
		v.Recipient = fmt.Sprintf("u%d@example.org", i)
		if f := attempt(t, d, v); f.State != "known" {
			t.Fatalf("recipient %d: %+v, want known", i, f)
		}
	}
	if n := st.n - before; n != 0 {
		t.Errorf("a known network's 10 recipients cost %d store lookups within the minute, want 0", n)
	}
	// The admin deletes the pass: within frontTTL the instance still says
	// known; after it, it asks the store and learns.
	if _, err := st.Delete(context.Background(), state.Triplet{Network: "192.0.2.0/24"}.NetworkKey()); err != nil {
		t.Fatal(err)
	}
	clk.t = clk.t.Add(frontTTL)
	v.Recipient = "late@example.org"
	if f := attempt(t, d, v); f.State != "new" || st.n-before != 1 {
		t.Fatalf("after the front's minute: %+v after %d lookups, want new after 1", f, st.n-before)
	}
}

// What the known front or the allow list answers is Quick's, on the
// deciding goroutine, and is what Run answers; a network the front does
// not hold is left to Run, with no store lookup.
func TestGreylistQuick(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)}
	st := &reads{Store: state.NewMemory(state.MemoryOptions{Now: clk.now})}
	c := DefaultConfig()
	c.Enabled = true
	c.Delay = confval.Dur(time.Minute)
	c.Allow.Networks = []string{"198.51.100.0/24"}
	d := Facts{}.Define(check.Env{State: st, Section: c, Now: clk.now})
	if d.Quick == nil {
		t.Fatal("no Quick")
	}
	if res, ok := d.Quick(view(netip.MustParseAddr("198.51.100.9"), "a@sender.test", "u@example.org")); !ok || res.Result != Allowed {
		t.Fatalf("allow-listed client: Quick = %+v, %v", res, ok)
	}
	v := view(netip.MustParseAddr("192.0.2.7"), "a@sender.test", "u@example.org")
	if res, ok := d.Quick(v); ok || st.n != 0 {
		t.Fatalf("unknown network: Quick = %+v, %v after %d lookups, want no answer and none", res, ok, st.n)
	}
	attempt(t, d, v)
	clk.t = clk.t.Add(2 * time.Minute)
	attempt(t, d, v) // passed: the network is known from now on
	v.Recipient = "w@example.org"
	before := st.n
	got, ok := d.Quick(v)
	want := d.Run(context.Background(), v)
	if !ok || got.Result != "known" || got.Result != want.Result || got.Detail != want.Detail || got.Facts != want.Facts || st.n != before {
		t.Fatalf("known network: Quick = %+v, %v; Run = %+v; %d lookups", got, ok, want, st.n-before)
	}
}
