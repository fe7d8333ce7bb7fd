package policy

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// sampleRecord is a verdict line from a benchmark run: an accepted message
// with every check run.
func sampleRecord(t testing.TB) *Record {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "verdict-line.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

// The verdict log's encoding is encoding/json's, byte for byte.
func TestVerdictLineEncoding(t *testing.T) {
	r := sampleRecord(t)
	dir := t.TempDir()
	l, err := OpenVerdictLog(filepath.Join(dir, "v.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := l.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	got, _ := os.ReadFile(filepath.Join(dir, "v.jsonl"))
	want, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if !bytes.Equal(got, append(append([]byte{}, want...), want...)) {
		t.Fatalf("verdict lines differ from encoding/json:\n got: %s\nwant: %s", got, want)
	}
}
