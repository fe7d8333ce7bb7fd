package main

import (
	"os/exec"
	"regexp"
	"testing"
)

// TestReadmeSwaksAgainstDemo runs the README's trial as typed: swaks
// against mxguard demo, with no options but the server and the recipient.
// swaks greets with the machine's name, which is often a short one (no
// dot); it is also tried with a short name given outright, since the name
// of the machine the tests run on may happen to be fully qualified. The
// message must be taken.
func TestReadmeSwaksAgainstDemo(t *testing.T) {
	if _, err := exec.LookPath("swaks"); err != nil {
		t.Fatalf("swaks is not installed (.ci/run installs it): %v", err)
	}
	listen := freePort(t)
	startDaemon(t, binary, "demo", "--listen", listen, "--dir", t.TempDir())
	waitListening(t, listen)
	for _, args := range [][]string{
		{"--server", listen, "--to", "user@example.org"},
		{"--server", listen, "--to", "user@example.org", "--helo", "vm"},
	} {
		out, err := exec.Command("swaks", args...).CombinedOutput()
		if err != nil || !regexp.MustCompile(`(?m)^<- +250 2\.0\.0 Ok: queued as `).Match(out) {
			t.Errorf("swaks %q: %v\n%s", args, err, out)
		}
	}
}
