package sink

import (
	"net/smtp"
	"os"
	"path/filepath"
	"testing"
)

// Both modes store what they accept; the benchmark mode only leaves out
// the flush and the log line.
func TestSinkStores(t *testing.T) {
	for _, bench := range []bool{false, true} {
		dir := t.TempDir()
		s, err := Start(Options{Listen: "127.0.0.1:0", Dir: dir, Bench: bench})
		if err != nil {
			t.Fatal(err)
		}
		msg := "Subject: hi\r\n\r\nbody\r\n"
		if err := smtp.SendMail(s.Addr(), nil, "a@sender.test", []string{"b@example.org"}, []byte(msg)); err != nil {
			t.Fatalf("bench=%v: %v", bench, err)
		}
		_ = s.Close()
		files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
		if len(files) != 1 || s.Count() != 1 {
			t.Fatalf("bench=%v: %d files, count %d; want 1", bench, len(files), s.Count())
		}
		b, _ := os.ReadFile(files[0])
		want := "Return-Path: <a@sender.test>\r\nDelivered-To: b@example.org\r\n" + msg
		if string(b) != want {
			t.Fatalf("bench=%v: stored %q, want %q", bench, b, want)
		}
	}
}
