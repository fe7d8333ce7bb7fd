package dkim

import (
	"bufio"
	"runtime"
	"strings"
	"testing"
)

// TestReadHeaderFoldedField: a field folded over many lines is built once,
// not copied again for each line: joining them one string concatenation at
// a time allocates the square of the field's length (460 MB for this
// 256 KiB field, 14 GiB for 1 MiB).
func TestReadHeaderFoldedField(t *testing.T) {
	field := "X-Folded: start\r\n" + strings.Repeat(" "+strings.Repeat("f", 70)+"\r\n", 256<<10/73)
	msg := "From: a@example.org\r\n" + field + "Subject: s\r\n\r\nbody\r\n"
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fields, err := readHeader(bufio.NewReader(strings.NewReader(msg)))
	runtime.ReadMemStats(&after)
	if err != nil || len(fields) != 3 || fields[1] != field {
		t.Fatalf("fields %d (err %v), want 3 with the folded one whole", len(fields), err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 8<<20 {
		t.Fatalf("reading a %d KiB header allocated %d MiB", len(msg)>>10, n>>20)
	}
}
