package testclamd

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	code := m.Run()
	StopShared()
	os.Exit(code)
}

// TestStartStopRestart: clamd answers on both sockets, is gone once
// stopped, and answers again after a restart on the same sockets.
func TestStartStopRestart(t *testing.T) {
	s := Start(t, Options{})
	for _, c := range [][2]string{{"unix", s.Socket}, {"tcp", s.TCPAddr}} {
		if err := Ping(c[0], c[1]); err != nil {
			t.Fatalf("%s: %v", c[1], err)
		}
	}
	s.Stop()
	if err := Ping("unix", s.Socket); err == nil {
		t.Fatal("a stopped clamd still answers")
	}
	s.Restart(t)
	if err := Ping("tcp", s.TCPAddr); err != nil {
		t.Fatal(err)
	}
}

// TestShared: the package's clamd is started once.
func TestShared(t *testing.T) {
	a, b := Shared(t), Shared(t)
	if a != b {
		t.Fatal("Shared started a second clamd")
	}
	if err := Ping("unix", a.Socket); err != nil {
		t.Fatal(err)
	}
}
