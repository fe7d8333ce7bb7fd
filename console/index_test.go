package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mxguard/policy"
)

// writeVerdicts appends n records to the verdict log at path with the
// real writer, one a minute from t0, cycling through actions and clients.
func writeVerdicts(t *testing.T, path string, t0 time.Time, from, n int) {
	t.Helper()
	l, err := policy.OpenVerdictLog(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	actions := []string{"accept", "reject", "tempfail"}
	for i := from; i < from+n; i++ {
		r := &policy.Record{
			Time:     t0.Add(time.Duration(i) * time.Minute),
			Session:  fmt.Sprintf("S%04d", i),
			Tx:       fmt.Sprintf("S%04d.1", i),
			ClientIP: fmt.Sprintf("192.0.2.%d", i%7),
			MailFrom: fmt.Sprintf("sender%d@example.net", i),
			Rcpts:    []string{"user@example.org"},
			Action:   actions[i%3],
			Stage:    "data",
		}
		if i%5 == 0 {
			r.Rules = []policy.RuleMatch{{Name: "every-fifth"}}
		}
		if err := l.Write(r); err != nil {
			t.Fatal(err)
		}
	}
}

func openIndex(t testing.TB, o IndexOptions) *Index {
	t.Helper()
	x, err := OpenIndex(filepath.Join(t.TempDir(), "index.db"), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

func sessionsOf(p Page) []string {
	var out []string
	for _, r := range p.Records {
		out = append(out, r.Session)
	}
	return out
}

var t0 = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

// TestIndexSearch: records come back newest first, filtered exactly as
// the verdicts command filters them, page after page without a repeat or
// a gap, through each kind of secondary key and without one.
func TestIndexSearch(t *testing.T) {
	log := filepath.Join(t.TempDir(), "verdicts.jsonl")
	writeVerdicts(t, log, t0, 0, 100)
	x := openIndex(t, IndexOptions{})
	if err := x.CatchUp(log); err != nil {
		t.Fatal(err)
	}
	filters := map[string]func(f *policy.VerdictFilter){
		"none":    func(f *policy.VerdictFilter) {},
		"rule":    func(f *policy.VerdictFilter) { f.Rule = "every-fifth" },
		"action":  func(f *policy.VerdictFilter) { _ = f.AddActions("reject") },
		"actions": func(f *policy.VerdictFilter) { _ = f.AddActions("reject,tempfail") },
		"client":  func(f *policy.VerdictFilter) { _ = f.SetClient("192.0.2.3") },
		"network": func(f *policy.VerdictFilter) { _ = f.SetClient("192.0.2.0/30") },
		"from":    func(f *policy.VerdictFilter) { f.From = "sender1" },
		"since+until+action": func(f *policy.VerdictFilter) {
			f.Since, f.Until = t0.Add(20*time.Minute), t0.Add(70*time.Minute)
			_ = f.AddActions("accept")
		},
		"rule+client": func(f *policy.VerdictFilter) { f.Rule = "every-fifth"; _ = f.SetClient("192.0.2.0") },
	}
	all, err := x.Search(&policy.VerdictFilter{}, "", 1000)
	if err != nil || len(all.Records) != 100 || all.Next != "" {
		t.Fatalf("everything: %d records, next %q, %v", len(all.Records), all.Next, err)
	}
	for name, set := range filters {
		t.Run(name, func(t *testing.T) {
			var f policy.VerdictFilter
			set(&f)
			var want []string
			for _, r := range all.Records { // newest first already
				if f.Match(r) {
					want = append(want, r.Session)
				}
			}
			var got []string
			after := ""
			for pages := 0; ; pages++ {
				p, err := x.Search(&f, after, 7)
				if err != nil {
					t.Fatal(err)
				}
				if len(p.Records) > 7 {
					t.Fatalf("page of %d records, asked 7", len(p.Records))
				}
				got = append(got, sessionsOf(p)...)
				if p.Next == "" {
					break
				}
				after = p.Next
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("got %v\nwant %v", got, want)
			}
			if len(want) == 0 {
				t.Error("the filter matches nothing: the test proves nothing")
			}
		})
	}
	if all.Records[0].Session != "S0099" {
		t.Errorf("newest first: got %s first", all.Records[0].Session)
	}
}

// TestIndexFollowsTheLog: what is appended is indexed on the next read
// and nothing twice; a line being written (no newline yet) waits; a
// rotated log is read from its start; a reopened index goes on where it
// stopped.
func TestIndexFollowsTheLog(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "verdicts.jsonl")
	dbPath := filepath.Join(dir, "index.db")
	x, err := OpenIndex(dbPath, IndexOptions{})
	if err != nil {
		t.Fatal(err)
	}
	count := func() int {
		t.Helper()
		p, err := x.Search(&policy.VerdictFilter{}, "", 10000)
		if err != nil {
			t.Fatal(err)
		}
		return len(p.Records)
	}
	if err := x.CatchUp(log); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("no log yet: %v", err)
	}
	writeVerdicts(t, log, t0, 0, 10)
	if err := x.CatchUp(log); err != nil || count() != 10 {
		t.Fatalf("after 10 lines: %d indexed, %v", count(), err)
	}
	// Half a line: not indexed until it ends.
	f, _ := os.OpenFile(log, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"time":"2026-11-30T12:00:00Z","session":"HALF",`)
	if err := x.CatchUp(log); err != nil || count() != 10 {
		t.Fatalf("with a partial line: %d indexed, %v", count(), err)
	}
	f.WriteString(`"action":"accept"}` + "\n")
	f.Close()
	if err := x.CatchUp(log); err != nil || count() != 11 {
		t.Fatalf("after the line ends: %d indexed, %v", count(), err)
	}
	if rs, _ := x.Session("HALF"); len(rs) != 1 {
		t.Fatalf("session HALF: %d records", len(rs))
	}
	x.Close()
	// Reopened: nothing read twice.
	if x, err = OpenIndex(dbPath, IndexOptions{}); err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	writeVerdicts(t, log, t0, 10, 5)
	if err := x.CatchUp(log); err != nil || count() != 16 {
		t.Fatalf("reopened, 5 more: %d indexed, %v", count(), err)
	}
	// Rotation: a new file under the name.
	if err := os.Rename(log, log+".1"); err != nil {
		t.Fatal(err)
	}
	writeVerdicts(t, log, t0, 100, 3)
	if err := x.CatchUp(log); err != nil || count() != 19 {
		t.Fatalf("rotated, 3 in the new file: %d indexed, %v", count(), err)
	}
	if rs, _ := x.Session("S0101.1"); len(rs) != 1 || rs[0].Session != "S0101" {
		t.Fatalf("by transaction id: %v", rs)
	}
}

// TestIndexPrune: records older than Keep go, with their secondary keys.
func TestIndexPrune(t *testing.T) {
	log := filepath.Join(t.TempDir(), "verdicts.jsonl")
	writeVerdicts(t, log, t0, 0, 100)
	now := t0.Add(100 * time.Minute)
	x := openIndex(t, IndexOptions{Keep: 30 * time.Minute, Now: func() time.Time { return now }})
	if err := x.CatchUp(log); err != nil {
		t.Fatal(err)
	}
	if err := x.Prune(); err != nil {
		t.Fatal(err)
	}
	p, _ := x.Search(&policy.VerdictFilter{}, "", 1000)
	if len(p.Records) != 30 {
		t.Fatalf("%d records kept, want the last 30 minutes' 30", len(p.Records))
	}
	if rs, _ := x.Session("S0010"); len(rs) != 0 {
		t.Errorf("a pruned record's session still found: %v", rs)
	}
	p, _ = x.Search(&policy.VerdictFilter{Rule: "every-fifth"}, "", 1000)
	if len(p.Records) != 6 {
		t.Errorf("rule key: %d records, want 6", len(p.Records))
	}
}

// TestFollowLogsAFailureOnce: a verdict log that cannot be read is
// reported once, not at every interval, and its recovery once.
func TestFollowLogsAFailureOnce(t *testing.T) {
	var logs strings.Builder
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	x := openIndex(t, IndexOptions{Logger: log})
	path := t.TempDir() // a directory: reading it fails
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = x.Follow(ctx, path, time.Millisecond) }()
	for {
		mu.Lock()
		n := strings.Count(logs.String(), "\n")
		mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // some fifty intervals more
	cancel()
	<-done
	if n := strings.Count(logs.String(), "reading the verdict log"); n != 1 {
		t.Errorf("the failure was logged %d times, want once:\n%s", n, logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
