package dkim

import (
	"fmt"
	"os"
	"testing"
)

// TestMain fails the run if Verify recovered any panic: a recovered panic
// is a temperror in production, and a bug everywhere.
func TestMain(m *testing.M) {
	code := m.Run()
	if n := RecoveredPanics(); n != 0 {
		fmt.Fprintf(os.Stderr, "dkim: %d panics recovered during the tests\n", n)
		code = 1
	}
	os.Exit(code)
}
