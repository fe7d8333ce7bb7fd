package rcpt

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testFile = `# Recipients of example.org.
alice@example.org
Bob@Example.org      # case does not matter
  carol@example.org

@example.net         # catch-all
dave+tag@example.org
`

// TestFile looks addresses up in a recipients file.
func TestFile(t *testing.T) {
	path := writeFile(t, "recipients.txt", testFile)
	v := newVerifier(t, Options{Verify: VerifyFile, File: path})
	tests := []struct {
		rcpt string
		want Result
	}{
		{"alice@example.org", Result{Status: Known, Detail: path + " lists alice@example.org"}},
		{"ALICE@EXAMPLE.ORG", Result{Status: Known, Detail: path + " lists alice@example.org"}},
		{"bob@example.org", Result{Status: Known, Detail: path + " lists bob@example.org"}},
		{"carol@example.org", Result{Status: Known, Detail: path + " lists carol@example.org"}},
		{"dave+tag@example.org", Result{Status: Known, Detail: path + " lists dave+tag@example.org"}},
		{"anyone@example.net", Result{Status: Known, Detail: path + " lists @example.net"}},
		{"Anyone@EXAMPLE.net", Result{Status: Known, Detail: path + " lists @example.net"}},
		{"dave@example.org", Result{Status: Unknown, Detail: "not in " + path}},
		{"anyone@sub.example.net", Result{Status: Unknown, Detail: "not in " + path}},
		{"#@example.org", Result{Status: Unknown, Detail: "not in " + path}},
		{"alice", Result{Status: Unknown, Detail: "not in " + path}},
		{"", Result{Status: Unknown, Detail: "not in " + path}},
	}
	for _, tt := range tests {
		if got := v.Verify(t.Context(), tt.rcpt); got != tt.want {
			t.Errorf("Verify(%q)\n got %+v\nwant %+v", tt.rcpt, got, tt.want)
		}
	}
}

// TestBadFile pins the error for each broken file under testdata/badfile:
// NN-name/recipients.txt and the exact error in NN-name/expected-error.
func TestBadFile(t *testing.T) {
	dirs, err := filepath.Glob("testdata/badfile/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no test cases: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join(dir, "expected-error"))
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "recipients.txt")
			for _, verify := range []Verify{VerifyFile, VerifyBoth} {
				v, err := New(Options{Verify: verify, File: path, Backend: "127.0.0.1:25"})
				if err == nil {
					v.Close()
					t.Fatalf("%s: New succeeded", verify)
				}
				if got := err.Error(); got != strings.TrimSpace(string(want)) {
					t.Errorf("%s: error\n got %s\nwant %s", verify, got, want)
				}
				var fe *FileError
				if !errors.As(err, &fe) || fe.File != path || fe.Line < 1 {
					t.Errorf("%s: errors.As(*FileError) = %+v", verify, fe)
				}
			}
		})
	}
}

// TestTooManyErrors: a file that is not a recipients file at all gives a
// bounded error.
func TestTooManyErrors(t *testing.T) {
	_, err := parseFile("f", []byte(strings.Repeat("nonsense\n", 1000)))
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != maxFileErrors+1 || lines[maxFileErrors] != "f:21: too many errors" {
		t.Errorf("got %d lines ending %q, want %d ending %q", len(lines), lines[len(lines)-1], maxFileErrors+1, "f:21: too many errors")
	}
}

// TestMissingFile: New and Reload report a file that cannot be read.
func TestMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.txt")
	if _, err := New(Options{Verify: VerifyFile, File: path}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("New: %v, want not-exist", err)
	}
}

// TestBoth: the file answers what it lists, the backend the rest.
func TestBoth(t *testing.T) {
	b := startBackend(t, false)
	path := writeFile(t, "recipients.txt", "carol@example.org\n@example.net\n")
	v := newVerifier(t, Options{Verify: VerifyBoth, File: path, Backend: b.addr})
	tests := []struct {
		rcpt  string
		want  Status
		rcpts int // RCPTs the backend has seen afterwards
	}{
		{"carol@example.org", Known, 0}, // not known to the backend; the file wins
		{"x@example.net", Known, 0},
		{"alice@example.org", Known, 1},
		{"x@example.org", Unknown, 2},
		{"busy@example.org", Temperror, 3},
	}
	for _, tt := range tests {
		if got := v.Verify(t.Context(), tt.rcpt); got.Status != tt.want {
			t.Errorf("Verify(%q) = %+v, want %s", tt.rcpt, got, tt.want)
		}
		if n := b.rcptCount(); n != tt.rcpts {
			t.Errorf("after %q backend saw %d RCPT, want %d", tt.rcpt, n, tt.rcpts)
		}
	}
}

// TestReload: Reload picks up a change; a broken file keeps the old one.
func TestReload(t *testing.T) {
	path := writeFile(t, "recipients.txt", "alice@example.org\n")
	v := newVerifier(t, Options{Verify: VerifyFile, File: path})
	ctx := t.Context()
	if got := v.Verify(ctx, "bob@example.org"); got.Status != Unknown {
		t.Fatalf("before Reload: %+v, want unknown", got)
	}
	if err := os.WriteFile(path, []byte("bob@example.org\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := v.Verify(ctx, "bob@example.org"); got.Status != Unknown {
		t.Fatalf("changed file before Reload: %+v, want unknown", got)
	}
	if err := v.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := v.Verify(ctx, "bob@example.org"); got.Status != Known {
		t.Errorf("after Reload: bob %+v, want known", got)
	}
	if got := v.Verify(ctx, "alice@example.org"); got.Status != Unknown {
		t.Errorf("after Reload: alice %+v, want unknown", got)
	}

	if err := os.WriteFile(path, []byte("bob@example.org\ncarol\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := v.Reload()
	if want := path + `:2: expected an address like user@example.org or a catch-all like @example.org, got "carol"`; err == nil || err.Error() != want {
		t.Errorf("Reload of a bad file: %v, want %s", err, want)
	}
	if got := v.Verify(ctx, "bob@example.org"); got.Status != Known {
		t.Errorf("after a failed Reload: %+v, want the old file still in use", got)
	}
}

// TestParseFileRoundTrip: every address a parsed file lists is found, in
// any case, and a catch-all covers any local part.
func TestParseFileRoundTrip(t *testing.T) {
	s, err := parseFile("f", []byte(testFile+"müller@bücher.example\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{"müller@bücher.example", "MÜLLER@BÜCHER.EXAMPLE", "x@example.net", "dave+tag@example.org"} {
		if _, ok := s.lookup(addr); !ok {
			t.Errorf("lookup(%q) = false", addr)
		}
	}
}
