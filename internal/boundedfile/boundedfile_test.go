package boundedfile

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, 101), 0o600); err != nil {
		t.Fatal(err)
	}
	ok := filepath.Join(dir, "ok")
	if err := os.WriteFile(ok, []byte("rules: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		fifo:                          "not a regular file (a named pipe)",
		"/dev/zero":                   "not a regular file (a character device)",
		dir:                           "not a regular file (a directory)",
		big:                           "larger than 100 octets",
		filepath.Join(dir, "missing"): "no such file",
	} {
		// A named pipe would block a plain read for ever; Read answers.
		if _, err := Read(path, 100); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Read(%s): %v, want %q", path, err, want)
		}
	}
	if data, err := Read(ok, 100); err != nil || string(data) != "rules: []\n" {
		t.Errorf("Read(ok): %q, %v", data, err)
	}
}
