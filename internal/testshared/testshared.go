// Package testshared keeps one real daemon (clamd, rspamd) per test
// package: started by the first test that asks for it, in a temporary
// folder of its own, and stopped by the package's TestMain after every
// test has run, so that a package pays the daemon's start once, not once
// per test.
package testshared

import (
	"fmt"
	"os"
	"sync"
)

// TB is the part of testing.TB a caller needs.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Daemon is one shared daemon of type S.
type Daemon[S any] struct {
	// Name names the daemon in errors and its folder.
	Name string
	// Start starts the daemon with dir as its folder; Stop stops it.
	Start func(dir string) (S, error)
	Stop  func(S)

	mu      sync.Mutex
	s       S
	started bool
	dir     string
	err     error
}

// Get returns the daemon, starting it at the first call. A daemon that
// could not start fails every test that asks for it, with the same error.
func (d *Daemon[S]) Get(t TB) S {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.started && d.err == nil {
		d.dir, d.err = os.MkdirTemp("", d.Name)
		if d.err == nil {
			d.s, d.err = d.Start(d.dir)
			d.started = d.err == nil
		}
		if d.err != nil {
			d.err = fmt.Errorf("%s: %w", d.Name, d.err)
		}
	}
	if d.err != nil {
		t.Fatalf("%v", d.err)
	}
	return d.s
}

// Close stops the daemon, if it was started, and removes its folder.
// TestMain calls it after the tests.
func (d *Daemon[S]) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.started {
		d.Stop(d.s)
	}
	if d.dir != "" {
		os.RemoveAll(d.dir)
	}
	var zero S
	d.s, d.started, d.dir, d.err = zero, false, "", nil
}
