package testredis

import "testing"

// TestStartStopRestart: the server answers, is gone once stopped, and
// answers again after a restart on the same address.
func TestStartStopRestart(t *testing.T) {
	s := Start(t)
	if err := Ping(s.Addr); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	if err := Ping(s.Addr); err == nil {
		t.Fatal("a stopped server still answers")
	}
	s.Restart(t)
	if err := Ping(s.Addr); err != nil {
		t.Fatal(err)
	}
}
