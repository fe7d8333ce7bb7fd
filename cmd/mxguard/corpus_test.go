package main

import (
	"os"
	"path/filepath"
	"testing"
)

// corpusDir is the shared black-box corpus at the top of the module:
// messages, zones, rules files and keys that the end-to-end tests, the
// demo and the benchmarks all read (testdata/README.md lists them).
const corpusDir = "../../testdata"

// corpusPath is the path of a corpus file, e.g. "zones/e2e.zone".
func corpusPath(name string) string { return filepath.Join(corpusDir, filepath.FromSlash(name)) }

// corpusFile reads a corpus file, failing t when it cannot.
func corpusFile(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(corpusPath(name))
	if err != nil {
		t.Fatalf("corpus: %v", err)
	}
	return string(b)
}
