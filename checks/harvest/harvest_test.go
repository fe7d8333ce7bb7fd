package harvest

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"mxguard/checks/check"
	"mxguard/checks/check/checktest"
	"mxguard/internal/confval"
	"mxguard/internal/state"
)

func TestSource(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":          "192.0.2.7",
		"::ffff:192.0.2.7":   "192.0.2.7",
		"2001:db8:1:2:3::9":  "2001:db8:1:2::/64",
		"2001:db8:1:2:ff::1": "2001:db8:1:2::/64",
	} {
		if got := Source(netip.MustParseAddr(in)); got != want {
			t.Errorf("Source(%s) = %s, want %s", in, got, want)
		}
	}
}

// Without a store (mxguard check) the check does not run; with one it
// reads the count, and Record adds only the recipients found unknown,
// within the window.
func TestCountOverWindow(t *testing.T) {
	if d := (Facts{}).Define(check.Env{}); d.Run != nil || d.Record != nil || d.Stage != check.Rcpt || d.PerRcpt {
		t.Fatalf("without a store: %+v", d)
	}
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	st := state.NewMemory(state.MemoryOptions{Now: func() time.Time { return now }})
	d := Facts{}.Define(check.Env{State: st, Section: Config{Window: confval.Dur(10 * time.Minute)}, Now: func() time.Time { return now }})
	ctx := context.Background()
	v := checktest.View{ClientIP: netip.MustParseAddr("2001:db8::7")}
	r := d.Run(ctx, v)
	if r.Result != None || r.Facts != (Facts{Source: "2001:db8::/64"}) {
		t.Fatalf("first run: %+v", r)
	}
	for _, unknown := range []bool{true, false, true, true} {
		if err := d.Record(ctx, v, r, check.Verdict{Refused: unknown, Permanent: unknown, UnknownRcpt: unknown}); err != nil {
			t.Fatal(err)
		}
	}
	// Another address of the /64 shares the count.
	r = d.Run(ctx, checktest.View{ClientIP: netip.MustParseAddr("2001:db8::8")})
	if f := r.Facts.(Facts); r.Result != Seen || f.UnknownRcpts != 3 {
		t.Fatalf("after three unknown recipients: %+v", r)
	}
	now = now.Add(10 * time.Minute)
	if f := d.Run(ctx, v).Facts.(Facts); f.UnknownRcpts != 0 {
		t.Fatalf("after the window: %+v", f)
	}
}

// A store that cannot answer is a temperror with the count at 0, and a
// record that fails says so.
func TestStoreDown(t *testing.T) {
	st := state.NewMemory(state.MemoryOptions{})
	st.Close()
	d := Facts{}.Define(check.Env{State: st})
	v := checktest.View{ClientIP: netip.MustParseAddr("192.0.2.7")}
	if r := d.Run(context.Background(), v); r.Result != check.Temperror || r.Facts.(Facts).UnknownRcpts != 0 {
		t.Fatalf("store down: %+v", r)
	}
	if err := d.Record(context.Background(), v, check.Result{}, check.Verdict{UnknownRcpt: true}); err == nil {
		t.Fatal("a failed count was not reported")
	}
}

// counts counts the store's reads of counters.
type counts struct {
	state.Store
	reads int
}

func (c *counts) Count(ctx context.Context, key string, n int64, window time.Duration) (int64, error) {
	if n == 0 {
		c.reads++
	}
	return c.Store.Count(ctx, key, n, window)
}

// Two instances share a store. A client whose count is 0 costs one read
// per zeroTTL, not one per transaction; unknown recipients counted by this
// instance show at once, those counted by another within zeroTTL.
func TestZeroFront(t *testing.T) {
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	st := &counts{Store: state.NewMemory(state.MemoryOptions{Now: clock})}
	env := check.Env{State: st, Section: DefaultConfig(), Now: clock}
	a, b := Facts{}.Define(env), Facts{}.Define(env)
	ctx := context.Background()
	v := checktest.View{ClientIP: netip.MustParseAddr("192.0.2.7")}
	for range 5 {
		if f := a.Run(ctx, v).Facts.(Facts); f.UnknownRcpts != 0 {
			t.Fatalf("count %d, want 0", f.UnknownRcpts)
		}
	}
	if st.reads != 1 {
		t.Fatalf("5 transactions of a clean client cost %d reads, want 1", st.reads)
	}
	// Instance b counts two unknown recipients: a sees them once its
	// zero answer is older than zeroTTL.
	r := b.Run(ctx, v)
	for range 2 {
		if err := b.Record(ctx, v, r, check.Verdict{Refused: true, Permanent: true, UnknownRcpt: true}); err != nil {
			t.Fatal(err)
		}
	}
	if f := a.Run(ctx, v).Facts.(Facts); f.UnknownRcpts != 0 {
		t.Fatalf("within zeroTTL a read %d; the front answers 0", f.UnknownRcpts)
	}
	now = now.Add(zeroTTL)
	if f := a.Run(ctx, v).Facts.(Facts); f.UnknownRcpts != 2 {
		t.Fatalf("after zeroTTL a reads %d, want 2", f.UnknownRcpts)
	}
	// An unknown recipient a counts itself shows at a's next read at once.
	w := checktest.View{ClientIP: netip.MustParseAddr("192.0.2.8")}
	r = a.Run(ctx, w)
	if err := a.Record(ctx, w, r, check.Verdict{Refused: true, Permanent: true, UnknownRcpt: true}); err != nil {
		t.Fatal(err)
	}
	if f := a.Run(ctx, w).Facts.(Facts); f.UnknownRcpts != 1 {
		t.Fatalf("a's own count reads %d, want 1", f.UnknownRcpts)
	}
}

// The front answers as Quick, on the deciding goroutine: a source that
// read 0 within zeroTTL costs no store and no goroutine; any other is
// left to Run.
func TestQuickFromFront(t *testing.T) {
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	st := &counts{Store: state.NewMemory(state.MemoryOptions{Now: clock})}
	d := Facts{}.Define(check.Env{State: st, Section: DefaultConfig(), Now: clock})
	v := checktest.View{ClientIP: netip.MustParseAddr("192.0.2.7")}
	if res, ok := d.Quick(v); ok {
		t.Fatalf("Quick answered %+v before the store was read", res)
	}
	want := d.Run(context.Background(), v)
	got, ok := d.Quick(v)
	if !ok || got.Result != want.Result || got.Facts != want.Facts || got.Detail != want.Detail || st.reads != 1 {
		t.Fatalf("Quick = %+v, %v (reads %d); Run = %+v", got, ok, st.reads, want)
	}
	now = now.Add(zeroTTL)
	if res, ok := d.Quick(v); ok {
		t.Fatalf("Quick answered %+v after zeroTTL", res)
	}
}
