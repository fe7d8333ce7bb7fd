package policy

import (
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"mxguard/checks/check"
	"mxguard/checks/harvest"
	"mxguard/checks/rcpt"
	"mxguard/internal/confval"
	store "mxguard/internal/state"
)

const harvestRules = `rules:
  - name: unknown-recipient
    stage: rcpt
    when: rcpt_verify.result == "unknown"
    action: reject
    reply: "550 5.1.1 no such user"
  - name: harvesting-window
    stage: rcpt
    when: harvest.unknown_rcpts >= 3
    action: tempfail
    reply: "451 4.7.1 too many unknown recipients"
  - name: harvest-data
    stage: data
    when: harvest.unknown_rcpts >= 100
    action: reject
`

// harvestEngine is an engine over st that verifies recipients against a
// file listing known@example.org only.
func harvestEngine(t *testing.T, st store.Store, record bool, rulesText string) *Engine {
	t.Helper()
	file := filepath.Join(t.TempDir(), "recipients")
	if err := os.WriteFile(file, []byte("known@example.org\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	v, err := rcpt.New(rcpt.Options{Verify: rcpt.VerifyFile, File: file})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return NewEngine(Options{Domains: []string{"example.org"}, Rules: mustRules(t, rulesText), State: st, Record: record, Recipients: v,
		Sections: map[string]any{"harvest": harvest.Config{Window: confval.Dur(10 * time.Minute)}},
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil))})
}

// A client's unknown recipients are counted in the store across
// transactions; the count is read once per transaction (its first
// recipient), and a rule refuses the recipients of a client past the
// limit, the known one too. The logged value is what replay decides from.
func TestHarvestCountsAcrossTransactions(t *testing.T) {
	st := &counting{Store: store.NewMemory(store.MemoryOptions{})}
	e := harvestEngine(t, st, true, harvestRules)
	rec, vs := greyWalk(t, e, "192.0.2.7", "a@example.org", "b@example.org", "known@example.org")
	if vs[0].Action != ActionReject || vs[1].Action != ActionReject || vs[2].Action != ActionAccept {
		t.Fatalf("first transaction: %+v", vs)
	}
	if got := rec.Facts.Harvest; got.UnknownRcpts != 0 || got.Source != "192.0.2.7" {
		t.Fatalf("first transaction's facts %+v, want 0 for 192.0.2.7", got)
	}
	if n, _ := st.Count(t.Context(), harvest.Key("192.0.2.7"), 0, time.Minute); n != 2 {
		t.Fatalf("the store counts %d unknown recipients, want 2", n)
	}
	// One more unknown: the count (2 when this transaction began) stays
	// under the limit for all of this transaction's recipients.
	rec, vs = greyWalk(t, e, "192.0.2.7", "c@example.org", "known@example.org")
	if vs[0].Action != ActionReject || vs[1].Action != ActionAccept || rec.Facts.Harvest.UnknownRcpts != 2 {
		t.Fatalf("second transaction: %+v, facts %+v", vs, rec.Facts.Harvest)
	}
	if r := rec.Checks["harvest"]; r.Result != harvest.Seen {
		t.Fatalf("logged answer %+v, want seen", r)
	}
	// Now 3: the next transaction's recipients are refused with 451,
	// the known one first of all.
	rec, vs = greyWalk(t, e, "192.0.2.7", "known@example.org")
	if vs[0].Action != ActionTempfail || vs[0].Reason != "harvesting-window" || vs[0].Reply.String()[:10] != "451 4.7.1 " {
		t.Fatalf("third transaction: %+v", vs[0])
	}
	// Another client is not concerned.
	if _, vs := greyWalk(t, e, "192.0.2.8", "known@example.org"); vs[0].Action != ActionAccept {
		t.Fatalf("another client: %+v", vs[0])
	}
	// Replay decides from the logged count, without a store; with a
	// higher limit it would have accepted.
	if got := Replay(rec, mustRules(t, harvestRules)); got.Action != "tempfail" || got.Reason != "harvesting-window" {
		t.Fatalf("replay: %+v", got)
	}
	higher := mustRules(t, "rules:\n  - name: h\n    stage: rcpt\n    when: harvest.unknown_rcpts >= 4\n    action: tempfail\n")
	if got := Replay(rec, higher); got.Action != "abandoned" {
		t.Fatalf("replay with a higher limit: %+v, want the recipient accepted", got)
	}
}

// Rules at data read the same count; a rule set that reads it only at data
// still has it counted at rcpt, where the unknown recipients are.
func TestHarvestReadAtDataCountsAtRcpt(t *testing.T) {
	st := store.NewMemory(store.MemoryOptions{})
	rulesText := `rules:
  - name: harvest-data
    stage: data
    when: harvest.unknown_rcpts >= 2
    action: reject
    reply: "554 5.7.1 harvesting"
`
	e := harvestEngine(t, st, true, rulesText)
	names := []string{}
	for _, c := range e.cur.Load().plan[StageRcpt] {
		names = append(names, c.name)
	}
	if len(names) != 1 || names[0] != "harvest" {
		t.Fatalf("checks at rcpt: %v, want harvest", names)
	}
	// Verification runs when a rule reads it; here none does at rcpt,
	// so nothing is found unknown, and nothing is counted.
	greyWalk(t, e, "192.0.2.7", "a@example.org")
	if n, _ := st.Count(t.Context(), harvest.Key("192.0.2.7"), 0, time.Minute); n != 0 {
		t.Fatalf("counted %d without verification", n)
	}
	// With verification (a rule reads it), the count reaches data.
	e = harvestEngine(t, st, true, rulesText+`  - name: unknown-recipient
    stage: rcpt
    when: rcpt_verify.result == "unknown"
    action: reject
`)
	greyWalk(t, e, "192.0.2.7", "a@example.org", "b@example.org")
	tx := testTx()
	tx.Client.Addr = netip.AddrPortFrom(netip.MustParseAddr("192.0.2.7"), 4000)
	tx.Rcpts = nil
	r := e.NewSession().Walk(t.Context(), Walk{Tx: func(Stage) *Transaction { return tx }, Rcpts: []string{"known@example.org"}})
	if r.Stage != StageData || r.Verdict.Action != ActionReject || r.Verdict.Reason != "harvest-data" {
		t.Fatalf("data stage: %+v at %s", r.Verdict, r.Stage)
	}
}

// check and replay never write: an engine not told to record reads the
// count and leaves it as it was.
func TestHarvestNoRecordNoWrite(t *testing.T) {
	st := &counting{Store: store.NewMemory(store.MemoryOptions{})}
	e := harvestEngine(t, st, false, harvestRules)
	for range 4 {
		greyWalk(t, e, "192.0.2.7", "a@example.org")
	}
	if n := st.writes.Load(); n != 0 {
		t.Fatalf("%d writes without Record", n)
	}
}

// A store that cannot answer is a temperror, the count reads 0 and the
// recipient is decided by the other rules.
func TestHarvestStoreDown(t *testing.T) {
	mem := store.NewMemory(store.MemoryOptions{})
	mem.Close()
	e := harvestEngine(t, mem, true, harvestRules)
	rec, vs := greyWalk(t, e, "192.0.2.7", "known@example.org")
	if vs[0].Action != ActionAccept || rec.Checks["harvest"].Result != check.Temperror {
		t.Fatalf("store down: %+v, logged %+v", vs[0], rec.Checks["harvest"])
	}
}
