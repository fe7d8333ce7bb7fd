package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// coverageEnv names the folder that keeps the coverage counters of the
// mxguard processes the tests start, for `go tool covdata` to read after
// the run (test.sh sets it). Without it they go to a temporary folder that
// is removed with the binary.
const coverageEnv = "MXGUARD_COVERAGE"

// buildFlags build the binary the black-box tests run: with the race
// detector, and instrumented for coverage of every mxguard package it
// links, so that the paths only a real process takes (serve, reload,
// signals, the forwarder talking to a real Postfix) are measured too.
var buildFlags = []string{"-race", "-cover", "-coverpkg=mxguard/..."}

// setupCoverage creates the coverage folder (tmp/cover unless coverageEnv
// names one) and sets GOCOVERDIR to it for every process the tests start:
// an instrumented binary without GOCOVERDIR warns on its standard error,
// which some tests read.
func setupCoverage(tmp string) error {
	dir := filepath.Join(tmp, "cover")
	if d := os.Getenv(coverageEnv); d != "" {
		// The tests run in cmd/mxguard, not where the command was typed.
		if !filepath.IsAbs(d) {
			return fmt.Errorf("%s=%s: want an absolute path", coverageEnv, d)
		}
		dir = d
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("coverage folder: %w", err)
	}
	if err := os.Setenv("GOCOVERDIR", dir); err != nil {
		return err
	}
	// The race runtime sleeps a second before a process exits, and every
	// daemon now exits rather than being killed.
	return os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
}
