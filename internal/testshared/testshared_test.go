package testshared

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

// fatal records what Get reports instead of ending the test.
type fatal struct{ msg string }

func (f *fatal) Helper()                           {}
func (f *fatal) Fatalf(format string, args ...any) { f.msg = fmt.Sprintf(format, args...) }

func TestDaemonStartsOnceAndCloses(t *testing.T) {
	starts, stops := 0, 0
	d := Daemon[string]{Name: "testshared", Start: func(dir string) (string, error) {
		starts++
		return dir, nil
	}, Stop: func(string) { stops++ }}
	a, b := d.Get(t), d.Get(t)
	if a != b || starts != 1 {
		t.Fatalf("two Gets: %q, %q after %d starts; want one daemon", a, b, starts)
	}
	if _, err := os.Stat(a); err != nil {
		t.Fatalf("its folder: %v", err)
	}
	d.Close()
	if _, err := os.Stat(a); !errors.Is(err, os.ErrNotExist) || stops != 1 {
		t.Fatalf("after Close: folder %v, %d stops", err, stops)
	}
	d.Close() // a second Close stops nothing
	if stops != 1 {
		t.Fatalf("%d stops after two Closes", stops)
	}
}

func TestDaemonThatCannotStart(t *testing.T) {
	starts := 0
	d := Daemon[int]{Name: "testshared", Start: func(string) (int, error) {
		starts++
		return 0, errors.New("no binary")
	}, Stop: func(int) { t.Error("Stop of a daemon that never started") }}
	for range 2 {
		f := &fatal{}
		d.Get(f)
		if !strings.Contains(f.msg, "testshared: no binary") {
			t.Fatalf("Get reported %q", f.msg)
		}
	}
	if starts != 1 {
		t.Errorf("%d starts; a failed start is not tried again", starts)
	}
	d.Close()
}
