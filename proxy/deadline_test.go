package proxy

import (
	"testing"
	"time"
)

func TestDeadlineRenew(t *testing.T) {
	var l deadline
	t0 := time.Now()
	const d = 64 * time.Second
	steps := []struct {
		at   time.Duration
		d    time.Duration
		want bool
	}{
		{0, d, true},                       // nothing set yet
		{500 * time.Millisecond, d, false}, // set 0.5 s ago for the same timeout
		{999 * time.Millisecond, d, false},
		{1000 * time.Millisecond, d, true}, // d/64 old: set again
		{1001 * time.Millisecond, 2 * d, true},
		{1002 * time.Millisecond, d, true}, // another timeout in between
	}
	for i, s := range steps {
		if got := l.renew(t0.Add(s.at), s.d); got != s.want {
			t.Errorf("step %d (%v, %v): renew %v, want %v", i, s.at, s.d, got, s.want)
		}
	}
	l.forget()
	if !l.renew(t0.Add(1003*time.Millisecond), d) {
		t.Error("renew after forget did not ask for the deadline to be set")
	}
}
