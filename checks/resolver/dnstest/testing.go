package dnstest

import "os"

// TB is what Start needs of a test: testing.TB has it. It is declared here
// so that the mxguard binary, whose demo serves its zone with this package,
// does not link package testing.
type TB interface {
	Helper()
	Fatal(args ...any)
	Cleanup(func())
}

// Start is New for tests: it fails t on error and closes the server when
// the test ends.
func Start(t TB, zones ...string) *Server {
	t.Helper()
	s, err := New(zones...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// StartFiles is Start with zones read from files, e.g. under testdata/.
// Parse errors name the file and line.
func StartFiles(t TB, paths ...string) *Server {
	t.Helper()
	s := Start(t)
	for _, p := range paths {
		text, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.addZone(string(text), p); err != nil {
			t.Fatal(err)
		}
	}
	return s
}
