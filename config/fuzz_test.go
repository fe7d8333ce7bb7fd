package config

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var fuzzLine = regexp.MustCompile(`^config\.yaml:\d+:\d+: `)

// FuzzParse checks that no input makes Parse panic, and that every error
// line it produces is positioned, whatever the input.
func FuzzParse(f *testing.F) {
	f.Add([]byte(issueExample))
	f.Add([]byte("a: &a [*a, *a]\n<<: {b: 1}\n"))
	f.Add([]byte("listen: [{address: ':25', tls: {cert: /dev/zero, key: /}}]\nbackend: {tls_ca: /dev/zero}\n"))
	if data, err := os.ReadFile("../mxguard.example.yaml"); err == nil {
		f.Add(data)
	}
	cases, _ := filepath.Glob("testdata/badconfig/*/config.yaml")
	for _, c := range cases {
		if data, err := os.ReadFile(c); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("config.yaml", data)
		if err == nil {
			if c == nil {
				t.Fatal("nil Config without an error")
			}
			return
		}
		if c != nil {
			t.Fatal("non-nil Config with an error")
		}
		msg := err.Error()
		if msg == "" {
			t.Fatal("empty error")
		}
		for _, line := range strings.Split(msg, "\n") {
			if !fuzzLine.MatchString(line) {
				t.Fatalf("unpositioned error line %q in:\n%s", line, msg)
			}
		}
	})
}
