package policy

import (
	"context"
	"io"
	"reflect"
	"runtime/debug"
	"sort"
	"sync"
	"time"

	"mxguard/checks/check"
)

// Check results every check can give (RFC 7208 §8 and RFC 8601 use the
// same words).
const (
	ResultTemperror = check.Temperror
	ResultPermerror = check.Permerror
)

// checker is one check as the engine runs it: its definition, and where
// its facts go in Found.
type checker struct {
	name string
	check.Def
	// field is the index of the check's facts in Found, -1 for a check
	// with no facts there (tests register such checks).
	field int
}

// register adds check name with def. It is called when the engine is
// built, before any session runs; a def that neither runs nor answers
// quickly (not enabled in this configuration) is left out.
func (e *Engine) register(name string, def check.Def) {
	if def.Run == nil && def.Quick == nil {
		return
	}
	c := &checker{name: name, Def: def, field: -1}
	if r, ok := registryByName[name]; ok {
		c.field = r.field
	}
	e.checks[name] = c
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
		// A per-recipient check has nothing to decide without a
		// recipient: it runs at rcpt only.
		if !ok || want[name] || c.Stage > stage || c.PerRcpt && stage != StageRcpt {
			return
		}
		want[name] = true
		for _, d := range c.Deps {
			add(d)
		}
	}
	for name := range names {
		add(name)
	}
	// Both name every check's result: a rule reading them needs them all,
	// but for those that run only when named.
	if names["checks"] || names["temperrors"] {
		for name, c := range e.checks {
			if !c.OnlyNamed {
				add(name)
			}
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
// with its own deadline and a view of the transaction taken before the
// wave starts; their results are stored here, on the deciding goroutine,
// by check name, so a verdict never depends on which goroutine finished
// first, and a check that outlives its deadline never touches the
// transaction.
func (e *Engine) runChecks(ctx context.Context, tx *Transaction, plan []*checker) {
	pending := plan
	for len(pending) > 0 {
		var ready, wait []*checker
		for _, c := range pending {
			if e.done(tx, c.name) {
				continue
			}
			ok := true
			for _, d := range c.Deps {
				if !e.done(tx, d) {
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
				e.keep(tx, c, result{rec: CheckRecord{Result: ResultTemperror, Detail: "a check it depends on did not run"}})
			}
			return
		}
		results := make([]result, len(ready))
		views := make([]*view, len(ready))
		var slow []int
		for i, c := range ready {
			views[i] = tx.view(c)
			if r, ok := e.runQuick(c, views[i], tx.Session); ok {
				results[i] = r
			} else {
				slow = append(slow, i)
			}
		}
		// The other checks of a wave run side by side; the last runs
		// here, so that the usual wave of one check costs no extra
		// goroutine. They start together, so the checks without a
		// timeout of their own share one deadline, check_timeout from
		// now: one context and one timer for the wave, not one each.
		var wave context.Context
		var cancel context.CancelFunc
		for _, i := range slow {
			if ready[i].Timeout <= 0 && wave == nil {
				wave, cancel = context.WithTimeout(ctx, e.checkTimeout)
			}
		}
		var wg sync.WaitGroup
		for k, i := range slow {
			v := views[i]
			if k == len(slow)-1 {
				results[i] = e.runOne(ctx, wave, ready[i], v, tx.Session)
				break
			}
			wg.Go(func() { results[i] = e.runOne(ctx, wave, ready[i], v, tx.Session) })
		}
		wg.Wait()
		if cancel != nil {
			cancel()
		}
		for i, c := range ready {
			e.keep(tx, c, results[i])
			if e.record && c.Record != nil {
				tx.ran = append(tx.ran, ran{c: c, v: views[i], res: check.Result{Result: results[i].rec.Result, Detail: results[i].rec.Detail, Facts: results[i].facts}})
			}
		}
		pending = wait
	}
}

// done reports whether check name has answered for what is being decided:
// the transaction, or for a per-recipient check the recipient.
func (e *Engine) done(tx *Transaction, name string) bool {
	if c, ok := e.checks[name]; ok && c.PerRcpt {
		_, done := tx.rcptNow[name]
		return done
	}
	_, done := tx.Checks[name]
	return done
}

// keep stores a check's result: a transaction's in Checks, a recipient's
// apart (see Transaction.rcptNow), and its facts in their place.
func (e *Engine) keep(tx *Transaction, c *checker, r result) {
	if c.PerRcpt {
		if tx.rcptNow == nil {
			tx.rcptNow = map[string]CheckRecord{}
		}
		tx.rcptNow[c.name] = r.rec
		logged := r.rec
		logged.Facts = r.facts
		tx.logRcptCheck(c.name, logged)
	} else {
		tx.Checks[c.name] = r.rec
	}
	e.store(tx, c, r.facts)
}

// store puts a check's facts in their place in tx.found.
func (e *Engine) store(tx *Transaction, c *checker, facts any) {
	if facts == nil || c.field < 0 {
		return
	}
	dst := reflect.ValueOf(&tx.found).Elem().Field(c.field)
	src := reflect.ValueOf(facts)
	if src.Type() != dst.Type() {
		// A check that returns another type than its registry field's
		// is a build defect; its result stands, its facts cannot.
		e.logger.Error("check facts of the wrong type", "check", c.name, "type", src.Type().String(), "want", dst.Type().String())
		return
	}
	dst.Set(src)
	if p, ok := facts.(clientPTR); ok && tx.Client.PTR == "" {
		tx.Client.PTR = p.ClientPTR()
	}
}

// clientPTR is implemented by the facts of the check that verifies the
// client's name (rdns): the engine copies the name into client.ptr and
// the verdict log's client_ptr, which the proxy cannot know.
type clientPTR interface{ ClientPTR() string }

// result is a check's record, and the facts to store with it.
type result struct {
	rec   CheckRecord
	facts any
}

func record(res check.Result, took time.Duration) result {
	return result{rec: CheckRecord{Result: res.Result, Detail: res.Detail, DurationMS: float64(took.Microseconds()) / 1000}, facts: res.Facts}
}

// panicked logs a check's panic, with its stack, and gives its result:
// temperror, never a pass. It is called from the recovering function.
func (e *Engine) panicked(c *checker, session string, p any) check.Result {
	e.logger.Error("check panicked", "check", c.name, "session", session, "panic", p, "stack", string(debug.Stack()))
	return check.Errorf(ResultTemperror, "internal error in check %s", c.name)
}

// runQuick takes c's quick answer, if it has one for the view v.
func (e *Engine) runQuick(c *checker, v check.View, session string) (r result, ok bool) {
	if c.Quick == nil {
		return result{}, false
	}
	start := time.Now()
	var res check.Result
	func() {
		defer func() {
			if p := recover(); p != nil {
				res, ok = e.panicked(c, session, p), true
			}
		}()
		res, ok = c.Quick(v)
	}()
	if !ok {
		return result{}, false
	}
	took := time.Since(start)
	e.metrics.Check(c.name, res.Result, took)
	return record(res, took), true
}

// runOne runs one check under its deadline. A check that panics or does not
// answer in time gives temperror: never a crash, never a silent pass.
//
// wave is the deadline the checks of c's wave share (check_timeout from
// the wave's start); a check with a timeout of its own gets its own
// deadline from ctx instead.
func (e *Engine) runOne(ctx, wave context.Context, c *checker, v check.View, session string) result {
	start := time.Now()
	timeout := e.checkTimeout
	if c.Timeout > 0 || wave == nil {
		if c.Timeout > 0 {
			timeout = c.Timeout
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	} else {
		ctx = wave
	}
	var res check.Result
	if c.Run == nil { // a quick-only check that declined
		res = check.Errorf(ResultTemperror, "check %s gave no answer", c.name)
	} else {
		done := make(chan check.Result, 1)
		go func() {
			defer func() {
				if p := recover(); p != nil {
					done <- e.panicked(c, session, p)
				}
			}()
			done <- c.Run(ctx, v)
		}()
		select {
		case res = <-done:
		case <-ctx.Done():
			// The late result, when it comes, goes into the buffered
			// channel and nowhere else: its facts are never stored.
			res = check.Errorf(ResultTemperror, "no answer within %s", timeout)
		}
	}
	took := time.Since(start)
	e.metrics.Check(c.name, res.Result, took)
	return record(res, took)
}

// DataTap returns a writer to copy the message to while it arrives, for
// the data-stage checks that start work before the transfer ends (DKIM
// looks its keys up); nil when no such check will run. Finish stops them.
func (s *Session) DataTap(ctx context.Context, tx *Transaction) io.Writer {
	var ws []io.Writer
	for _, c := range s.st.plan[StageData] {
		if c.Tap == nil {
			continue
		}
		if tx.taps == nil {
			tx.taps = map[string]check.Tap{}
		}
		t := c.Tap(ctx)
		tx.taps[c.name] = t
		ws = append(ws, t)
	}
	switch len(ws) {
	case 0:
		return nil
	case 1:
		return ws[0]
	}
	return io.MultiWriter(ws...)
}

// stopTaps stops tx's taps.
func (tx *Transaction) stopTaps() {
	for name, t := range tx.taps {
		t.Stop()
		delete(tx.taps, name)
	}
}
