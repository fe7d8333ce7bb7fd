package policy

import (
	"context"
	"fmt"
	"runtime/debug"
	"sort"
	"sync"
	"time"
)

// Check results every check can give (RFC 7208 §8 and RFC 8601 use the
// same words).
const (
	ResultTemperror = "temperror"
	ResultPermerror = "permerror"
)

// outcome is what a check returns: its result and detail for the record,
// and apply, which stores the facts it found on the transaction. A check
// never writes the transaction itself: it runs on a goroutine of its own,
// which may outlive its deadline while the session reads the transaction;
// the engine calls apply on the deciding goroutine, and only for a result
// that came in time.
type outcome struct {
	CheckFacts
	apply func(tx *Transaction)
}

// only is an outcome with no facts beyond its result.
func only(f CheckFacts) outcome { return outcome{CheckFacts: f} }

// checker adapts one check (a package under checks/, which knows nothing
// of transactions) to the engine: which stage it belongs to, what it needs,
// and how to run it on a transaction. Adding a check is one register call.
type checker struct {
	name  string
	stage Stage
	deps  []string
	// run reads tx and must not write it: see outcome.
	run func(ctx context.Context, tx *Transaction) outcome
	// quick, when set, may answer at once, without I/O, instead of run
	// (DKIM for a message known to be unsigned, the header checks, whose
	// work the header size limit bounds). Its answer is taken on the
	// deciding goroutine: every goroutine started wakes a thread, which
	// costs more than such a check. A panic in it is still a temperror.
	quick func(tx *Transaction) (outcome, bool)
}

// register adds a check. It is called when the engine is built, before any
// session runs.
func (e *Engine) register(c *checker) {
	e.checks[c.name] = c
	if st := e.cur.Load(); st != nil {
		e.Reload(st.domainList, st.rules) // the plans include the new check
	}
}

// needed returns the checks to run at stage for rules that read names, with
// their dependencies, ordered so that a check comes after what it needs.
// A rule that reads the generic "checks" map, or "temperrors", needs every
// check due by then.
func (e *Engine) needed(stage Stage, names map[string]bool) []*checker {
	want := map[string]bool{}
	var add func(name string)
	add = func(name string) {
		c, ok := e.checks[name]
		if !ok || want[name] || c.stage > stage {
			return
		}
		want[name] = true
		for _, d := range c.deps {
			add(d)
		}
	}
	for name := range names {
		add(name)
	}
	// Both name every check's result: a rule reading them needs them all.
	if names["checks"] || names["temperrors"] {
		for name := range e.checks {
			add(name)
		}
	}
	var out []*checker
	for name := range want {
		out = append(out, e.checks[name])
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// runChecks runs what the stage's rules need and has not run yet on this
// transaction. Checks whose dependencies are done run concurrently, each
// with its own deadline; results are stored by check name, so a verdict
// never depends on which goroutine finished first.
func (e *Engine) runChecks(ctx context.Context, tx *Transaction, plan []*checker) {
	pending := plan
	for len(pending) > 0 {
		var ready, wait []*checker
		for _, c := range pending {
			if _, done := tx.Checks[c.name]; done {
				continue
			}
			ok := true
			for _, d := range c.deps {
				if _, done := tx.Checks[d]; !done {
					ok = false
				}
			}
			if ok {
				ready = append(ready, c)
			} else {
				wait = append(wait, c)
			}
		}
		if len(ready) == 0 {
			for _, c := range wait { // a dependency that cannot run
				tx.Checks[c.name] = CheckRecord{Result: ResultTemperror, Detail: "a check it depends on did not run"}
			}
			return
		}
		results := make([]result, len(ready))
		var slow []int
		for i, c := range ready {
			if r, ok := e.runQuick(c, tx); ok {
				results[i] = r
			} else {
				slow = append(slow, i)
			}
		}
		// The other checks of a wave run side by side; the last runs
		// here, so that the usual wave of one check costs no extra
		// goroutine.
		var wg sync.WaitGroup
		for k, i := range slow {
			if k == len(slow)-1 {
				results[i] = e.runOne(ctx, ready[i], tx)
				break
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = e.runOne(ctx, ready[i], tx)
			}()
		}
		wg.Wait()
		for i, c := range ready {
			tx.Checks[c.name] = results[i].rec
			if results[i].apply != nil {
				results[i].apply(tx)
			}
		}
		pending = wait
	}
}

// result is a check's record, and the facts to apply with it.
type result struct {
	rec   CheckRecord
	apply func(tx *Transaction)
}

// panicked logs a check's panic, with its stack, and gives its result:
// temperror, never a pass. It is called from the recovering function.
func (e *Engine) panicked(c *checker, tx *Transaction, p any) outcome {
	e.logger.Error("check panicked", "check", c.name, "session", tx.Session, "panic", p, "stack", string(debug.Stack()))
	return only(CheckFacts{Result: ResultTemperror, Detail: fmt.Sprintf("internal error in check %s", c.name)})
}

// runQuick takes c's quick answer, if it has one for tx.
func (e *Engine) runQuick(c *checker, tx *Transaction) (r result, ok bool) {
	if c.quick == nil {
		return result{}, false
	}
	start := time.Now()
	var f outcome
	func() {
		defer func() {
			if p := recover(); p != nil {
				f, ok = e.panicked(c, tx, p), true
			}
		}()
		f, ok = c.quick(tx)
	}()
	if !ok {
		return result{}, false
	}
	took := time.Since(start)
	e.metrics.Check(c.name, f.Result, took)
	return result{rec: CheckRecord{Result: f.Result, Detail: f.Detail, DurationMS: float64(took.Microseconds()) / 1000}, apply: f.apply}, true
}

// runOne runs one check under its deadline. A check that panics or does not
// answer in time gives temperror: never a crash, never a silent pass.
func (e *Engine) runOne(ctx context.Context, c *checker, tx *Transaction) result {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, e.checkTimeout)
	defer cancel()
	done := make(chan outcome, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- e.panicked(c, tx, p)
			}
		}()
		done <- c.run(ctx, tx)
	}()
	var f outcome
	select {
	case f = <-done:
	case <-ctx.Done():
		// The late result, when it comes, goes into the buffered channel
		// and nowhere else: its facts are never applied.
		f = only(CheckFacts{Result: ResultTemperror, Detail: fmt.Sprintf("no answer within %s", e.checkTimeout)})
	}
	took := time.Since(start)
	e.metrics.Check(c.name, f.Result, took)
	return result{rec: CheckRecord{Result: f.Result, Detail: f.Detail, DurationMS: float64(took.Microseconds()) / 1000}, apply: f.apply}
}
