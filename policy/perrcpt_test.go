package policy

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"mxguard/checks/check"
	"mxguard/checks/greylist"
	"mxguard/internal/confval"
	store "mxguard/internal/state"
)

// counting is a store that counts its writes, and can fail them.
type counting struct {
	store.Store
	writes atomic.Int32
	fail   error
}

func (c *counting) RecordGreylist(ctx context.Context, t store.Triplet, g store.Grey) error {
	c.writes.Add(1)
	if c.fail != nil {
		return c.fail
	}
	return c.Store.RecordGreylist(ctx, t, g)
}

func (c *counting) Count(ctx context.Context, key string, n int64, w time.Duration) (int64, error) {
	if n != 0 {
		c.writes.Add(1)
	}
	return c.Store.Count(ctx, key, n, w)
}

func (c *counting) Allow(ctx context.Context, chain, reserve []store.Limit) (int, bool, error) {
	c.writes.Add(1)
	return c.Store.Allow(ctx, chain, reserve)
}

func (c *counting) Put(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	c.writes.Add(1)
	return c.Store.Put(ctx, key, v, ttl)
}

func (c *counting) Delete(ctx context.Context, key string) (bool, error) {
	c.writes.Add(1)
	return c.Store.Delete(ctx, key)
}

const greyRules = `rules:
  - name: greylist
    stage: rcpt
    when: greylist.state in ["new", "early"]
    action: tempfail
    reply: "451 4.7.1 greylisted, try again in ${greylist.wait} seconds"
`

// greyEngine is an engine with greylisting on over st.
func greyEngine(t *testing.T, st store.Store, record bool) *Engine {
	t.Helper()
	c := greylist.DefaultConfig()
	c.Enabled = true
	c.Delay = confval.Dur(time.Minute)
	return NewEngine(Options{Domains: []string{"example.org"}, Rules: mustRules(t, greyRules), State: st, Record: record,
		Sections: map[string]any{"greylist": c}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

// greyWalk decides one transaction to rcpts and returns its verdict line.
func greyWalk(t *testing.T, e *Engine, client string, rcpts ...string) (*Record, []Verdict) {
	t.Helper()
	var got []Verdict
	tx := testTx()
	tx.Rcpts = nil
	tx.Client.Addr = netip.AddrPortFrom(netip.MustParseAddr(client), 4000)
	r := e.NewSession().Walk(context.Background(), Walk{
		Tx:    func(Stage) *Transaction { return tx },
		Rcpts: rcpts,
		Step: func(stage Stage, _ string, v Verdict) {
			if stage == StageRcpt {
				got = append(got, v)
			}
		},
		Stop: func(stage Stage) bool { return stage == StageRcpt },
	})
	rec := NewRecord(r.Tx, Outcome{Stage: r.Stage, Action: r.Verdict.Action.String(), Reason: r.Verdict.Reason, Reply: r.Verdict.Reply.String()}, time.Now())
	// Through JSON, as replay reads it.
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	var back Record
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	return &back, got
}

// A per-recipient check decides each recipient: its facts and answer are
// that recipient's, logged under "greylist <addr>", never in the
// transaction's checks.
func TestPerRcptCheckDecidesEachRecipient(t *testing.T) {
	st := &counting{Store: store.NewMemory(store.MemoryOptions{})}
	e := greyEngine(t, st, true)
	// A triplet seen before: b's first attempt is recorded now.
	greyWalk(t, e, "192.0.2.7", "b@example.org")
	rec, vs := greyWalk(t, e, "192.0.2.7", "a@example.org", "b@example.org")
	if len(vs) != 2 || vs[0].Action != ActionTempfail || vs[1].Action != ActionTempfail {
		t.Fatalf("verdicts %+v, want two tempfails", vs)
	}
	if got := vs[0].Reply.String(); got[:10] != "451 4.7.1 " || !strings.Contains(got, "try again in 60 seconds") {
		t.Errorf("new triplet's reply %q", got)
	}
	a, b := rec.Checks["greylist <a@example.org>"], rec.Checks["greylist <b@example.org>"]
	if a.Result != "new" || b.Result != "early" {
		t.Errorf("logged answers %+v, %+v; want new, early", a, b)
	}
	if _, ok := rec.Checks["greylist"]; ok {
		t.Errorf("a per-recipient answer is in the transaction's checks: %v", rec.Checks)
	}
	if rec.Facts.Greylist != (greylist.Facts{}) {
		t.Errorf("the line's facts hold a recipient's greylist facts: %+v", rec.Facts.Greylist)
	}
	// Replay decides from the logged answers, and asks no store (its
	// engine has none): the same verdicts, and with rules that do not
	// greylist, an accept.
	if got := Replay(rec, mustRules(t, greyRules)); got.Action != "tempfail" || got.Reason != "greylist" {
		t.Errorf("replay: %+v, want tempfail by greylist", got)
	}
	off := mustRules(t, "rules:\n  - name: g\n    stage: rcpt\n    when: greylist.state == \"passed\"\n    action: tempfail\n")
	if got := Replay(rec, off); got.Action != "abandoned" {
		t.Errorf("replay with other rules: %+v, want the recipients accepted (abandoned at data)", got)
	}
}

// Recording is serve's: an engine not told to record never writes the
// store, and a failed record changes no verdict.
func TestRecordOnlyWhenServing(t *testing.T) {
	st := &counting{Store: store.NewMemory(store.MemoryOptions{})}
	e := greyEngine(t, st, false)
	for range 3 {
		if _, vs := greyWalk(t, e, "192.0.2.7", "a@example.org"); vs[0].Action != ActionTempfail {
			t.Fatalf("verdict %+v", vs[0])
		}
	}
	if n := st.writes.Load(); n != 0 {
		t.Fatalf("an engine that does not serve wrote the store %d times", n)
	}
	serving := greyEngine(t, st, true)
	greyWalk(t, serving, "192.0.2.7", "a@example.org")
	if n := st.writes.Load(); n != 1 {
		t.Fatalf("serve recorded %d times, want 1", n)
	}
	st.fail = errors.New("disk full")
	if _, vs := greyWalk(t, serving, "198.51.100.7", "a@example.org"); vs[0].Action != ActionTempfail || vs[0].Reason != "greylist" {
		t.Fatalf("a failed record changed the verdict: %+v", vs[0])
	}
}

// A store that cannot answer is a temperror of the recipient's check,
// which the default rules do not turn into a refusal.
func TestGreylistStoreDownDefaultRules(t *testing.T) {
	mem := store.NewMemory(store.MemoryOptions{})
	mem.Close() // every call fails
	c := greylist.DefaultConfig()
	c.Enabled = true
	e := NewEngine(Options{Domains: []string{"example.org"}, State: mem, Record: true, Sections: map[string]any{"greylist": c},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	rec, vs := greyWalk(t, e, "192.0.2.7", "a@example.org")
	if vs[0].Action != ActionAccept {
		t.Fatalf("store down: %+v, want accept", vs[0])
	}
	if r := rec.Checks["greylist <a@example.org>"]; r.Result != check.Temperror {
		t.Fatalf("store down: logged %+v, want temperror", r)
	}
}

// With greylisting off, the default greylist rule makes no check run at
// rcpt (its SPF would otherwise be computed for every message there);
// with it on, the rule's SPF and DNS lists run with it.
func TestOffPerRcptCheckPlansNothing(t *testing.T) {
	s := dnstestResolver(t)
	off := NewEngine(Options{Domains: []string{"example.org"}, Resolver: s})
	for _, c := range off.cur.Load().plan[StageRcpt] {
		t.Errorf("greylisting off: %s runs at rcpt", c.name)
	}
	c := greylist.DefaultConfig()
	c.Enabled = true
	on := NewEngine(Options{Domains: []string{"example.org"}, Resolver: s, State: store.NewMemory(store.MemoryOptions{}), Sections: map[string]any{"greylist": c}})
	var names []string
	for _, c := range on.cur.Load().plan[StageRcpt] {
		names = append(names, c.name)
	}
	// harvest runs too: the default set reads it, and the engine has a
	// store.
	if strings.Join(names, ",") != "greylist,harvest,spf" {
		t.Errorf("greylisting on: %v run at rcpt, want greylist, harvest and spf", names)
	}
}
