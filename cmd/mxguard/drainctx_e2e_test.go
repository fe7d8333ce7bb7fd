package main

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestForcedDrainCancelsChecks: a session waits on checks whose DNS
// answers are slow (within the check timeout, so nothing else ends them)
// when mxguard is told to stop. Once drain_timeout has passed, the
// session's context is cancelled: its DNS work ends, the client gets a 4xx
// (the sender retries elsewhere or later), and mxguard exits, instead of
// holding the shutdown until the DNS answers come.
func TestForcedDrainCancelsChecks(t *testing.T) {
	d, listen, dns := slowDNSMxguard(t, 30*time.Second, "60s", "60s", "drain_timeout: 500ms\n")
	c := openTx(t, "", listen)
	c.say("DATA", "354 ")
	c.c.Write([]byte("From: alice@sender.test\r\nSubject: slow DNS\r\n\r\nhello\r\n.\r\n"))
	// Once the checks are waiting on DNS, stop mxguard.
	for deadline := time.Now().Add(10 * time.Second); dns.Queries() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no DNS query for the message's checks")
		}
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	c.c.SetDeadline(time.Now().Add(20 * time.Second))
	got := c.say("", "4")
	if !strings.HasPrefix(got, "451 ") && !strings.HasPrefix(got, "421 ") {
		t.Fatalf("end of data during a forced drain: %q, want 451 or 421", got)
	}
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("mxguard did not exit: the drained session still waits on DNS")
	}
}
