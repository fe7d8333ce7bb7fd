// Package houserules holds tests that enforce project-wide rules on the
// source itself.
package houserules

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Every DNS query goes through checks/resolver, which caches, bounds and
// classifies failures, and which tests point at a loopback server. A direct
// call to Go's resolver would reach the machine's /etc/resolv.conf: off the
// machine in tests, and uncached and unbounded in production.
func TestNoSystemResolver(t *testing.T) {
	banned := regexp.MustCompile(`net\.(DefaultResolver|Lookup[A-Z][A-Za-z]*)\(|net\.DefaultResolver|&net\.Resolver\{`)
	root := "../.."
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.Contains(path, filepath.Join("checks", "resolver")+string(filepath.Separator)) {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(data), "\n") {
			if c := strings.Index(line, "//"); c >= 0 {
				line = line[:c]
			}
			if banned.MatchString(line) {
				t.Errorf("%s:%d: uses Go's own resolver; go through checks/resolver: %s", path, i+1, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The mxguard binary carries no test code: package testing (which also
// registers its flags in the binary) and mxguard's test helpers stay out.
func TestNoTestCodeInBinary(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "mxguard/cmd/mxguard").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		// dnstest is the exception by design: "mxguard zone-serve" and the
		// demo serve their zones with it, and it does not link testing.
		helper := strings.HasPrefix(p, "mxguard/") && strings.HasSuffix(p, "test") && p != "mxguard/checks/resolver/dnstest"
		if p == "testing" || strings.HasPrefix(p, "mxguard/internal/test") || helper {
			t.Errorf("the mxguard binary links %s", p)
		}
	}
}

// A check's config section lives in the check's folder and config imports
// it, so no check, and neither the proxy nor the policy, may import config:
// each takes its options from the caller, and the loader stays the one
// place that knows the file.
func TestNothingBelowCmdImportsConfig(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "mxguard/checks/...", "mxguard/proxy", "mxguard/policy").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if p == "mxguard/config" {
			t.Errorf("mxguard/config is imported by checks, proxy or policy")
		}
	}
}
