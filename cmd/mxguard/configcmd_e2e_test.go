package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"mxguard/config"
	"mxguard/internal/testcert"
)

// runBinary runs the mxguard binary with args and returns its exit code,
// standard output and standard error.
func runBinary(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if len(args) > 0 && args[0] == "serve" {
		// A serve that gets going keeps its state store in a folder of its
		// own (the default state.dir, as systemd's StateDirectory= sets it).
		cmd.Env = append(os.Environ(), "STATE_DIRECTORY="+t.TempDir())
	}
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("mxguard %s: %v", strings.Join(args, " "), err)
	}
	return code, out.String(), errb.String()
}

// configDir writes a configuration and a rules file beside it into a
// temporary folder and returns the config file's path.
func configDir(t *testing.T, cfg, rulesText string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "local.yaml"), []byte(rulesText), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "mxguard.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const checkedConfig = `hostname: mx.example.org
listen:
  - address: 127.0.0.1:2525
backend:
  address: 127.0.0.1:2526
domains: [example.org, example.net]
limits:
  max_message_bytes: 10MiB
rules: [local.yaml]
`

// TestConfigCheck: "mxguard config check" exits 0 for a good configuration
// and 2, with every problem as file:line:col, for a bad configuration, a
// bad rules file or a bad recipients file.
func TestConfigCheck(t *testing.T) {
	good := configDir(t, checkedConfig, corpusFile(t, "rules/no-spammer.yaml"))
	code, out, errOut := runBinary(t, "config", "check", "--config", good)
	if code != exitOK || out != good+": ok: 2 domains, 1 rules from "+filepath.Join(filepath.Dir(good), "local.yaml")+"\n" || errOut != "" {
		t.Fatalf("good config: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	bad := configDir(t, strings.NewReplacer("10MiB", "10", "example.net", "example..net").Replace(checkedConfig), corpusFile(t, "rules/no-spammer.yaml"))
	code, out, errOut = runBinary(t, "config", "check", "--config", bad)
	want := bad + ":6:24: domains[1]: expected a domain name like example.org, got \"example..net\"\n" +
		bad + ":8:22: limits.max_message_bytes: expected a size in bytes >= 1024, got 10\n"
	if code != exitUsage || errOut != want || out != "" {
		t.Fatalf("bad config: exit %d, stdout %q, stderr:\n%s\nwant:\n%s", code, out, errOut, want)
	}

	badRules := configDir(t, checkedConfig, corpusFile(t, "rules/misspelt-fact.yaml"))
	code, _, errOut = runBinary(t, "config", "check", "--config", badRules)
	if want := filepath.Join(filepath.Dir(badRules), "local.yaml") + ":6:21: rules[0].when: unknown fact mail_from.domian"; code != exitUsage || !strings.HasPrefix(errOut, want) {
		t.Fatalf("bad rules file: exit %d, stderr %q, want it to start with %q", code, errOut, want)
	}

	rcpts := filepath.Join(t.TempDir(), "recipients")
	if err := os.WriteFile(rcpts, []byte("user@example.org\nnot an address\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badRcpts := configDir(t, checkedConfig+"recipients:\n  verify: file\n  file: "+rcpts+"\n", corpusFile(t, "rules/no-spammer.yaml"))
	code, _, errOut = runBinary(t, "config", "check", "--config", badRcpts)
	if code != exitUsage || !strings.Contains(errOut, rcpts+":2: ") {
		t.Fatalf("bad recipients file: exit %d, stderr %q", code, errOut)
	}

	// Without --config, the file serve reads by default.
	code, out, errOut = runBinary(t, "config", "check")
	if !strings.Contains(out+errOut, "/etc/mxguard/mxguard.yaml") || code == exitFailed {
		t.Fatalf("config check without --config: exit %d, %q %q", code, out, errOut)
	}
	if code, _, _ := runBinary(t, "config", "check", "extra"); code != exitUsage {
		t.Fatalf("config check with an argument: exit %d", code)
	}
	if code, _, _ := runBinary(t, "config", "frobnicate"); code != exitUsage {
		t.Fatalf("unknown config command: exit %d", code)
	}
}

// TestConfigShowRoundTrip: what "config show" and "config show --changed"
// print is a configuration that config check accepts and that loads to
// the configuration shown; no certificate or key content is printed.
func TestConfigShowRoundTrip(t *testing.T) {
	cert := testcert.New(t, "mx.example.org")
	path := configDir(t, strings.Replace(checkedConfig, "  - address: 127.0.0.1:2525\n",
		"  - address: 127.0.0.1:2525\n    tls: {cert: "+cert.CertFile+", key: "+cert.KeyFile+"}\n", 1)+
		"dnsbl:\n  - zone: bl.example.net\n    weight: 5\n", corpusFile(t, "rules/no-spammer.yaml"))
	orig, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := config.Marshal(orig)
	if err != nil {
		t.Fatal(err)
	}
	for _, flags := range [][]string{nil, {"--changed"}} {
		code, out, errOut := runBinary(t, append([]string{"config", "show", "--config", path}, flags...)...)
		if code != exitOK || errOut != "" {
			t.Fatalf("config show %v: exit %d, stderr %q", flags, code, errOut)
		}
		if strings.Contains(out, "BEGIN") || !strings.Contains(out, "cert: "+cert.CertFile) {
			t.Fatalf("config show %v prints key material or no certificate path:\n%s", flags, out)
		}
		// Written elsewhere: the rules path must not depend on where the
		// file is.
		shown := filepath.Join(t.TempDir(), "shown.yaml")
		if err := os.WriteFile(shown, []byte(out), 0o600); err != nil {
			t.Fatal(err)
		}
		if code, _, errOut := runBinary(t, "config", "check", "--config", shown); code != exitOK {
			t.Fatalf("config check of what config show %v printed: exit %d: %s\n%s", flags, code, errOut, out)
		}
		back, err := config.Load(shown)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := config.Marshal(back); !bytes.Equal(got, want) {
			t.Fatalf("config show %v loads to another configuration:\n%s\nwant:\n%s", flags, got, want)
		}
	}
	code, out, _ := runBinary(t, "config", "show", "--config", path, "--changed")
	if code != exitOK || strings.Contains(out, "protocol: smtp") || !strings.Contains(out, "max_message_bytes: 10MiB") ||
		!strings.Contains(out, "  - zone: bl.example.net\n    weight: 5\n") {
		t.Fatalf("config show --changed: exit %d:\n%s", code, out)
	}
}

// TestConfigShowDefaultsAndErrors: --defaults needs no file and prints
// every default; a bad file is exit 2 with its positions; --changed and
// --defaults together are bad usage.
func TestConfigShowDefaultsAndErrors(t *testing.T) {
	code, out, _ := runBinary(t, "config", "show", "--defaults", "--config", "/nonexistent/mxguard.yaml")
	for _, line := range []string{"hostname: \"\" # required", "  max_message_bytes: 25MiB", "  max_connections_per_ip: 50", "drain_timeout: 30s"} {
		if code != exitOK || !strings.Contains(out, line+"\n") {
			t.Fatalf("config show --defaults: exit %d, no line %q:\n%s", code, line, out)
		}
	}
	bad := configDir(t, strings.Replace(checkedConfig, "10MiB", "lots", 1), corpusFile(t, "rules/no-spammer.yaml"))
	code, out, errOut := runBinary(t, "config", "show", "--config", bad)
	if code != exitUsage || out != "" || errOut != bad+":8:22: limits.max_message_bytes: expected a size like 1048576, 512KiB, 1MiB or 25MB, got \"lots\"\n" {
		t.Fatalf("config show of a bad file: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code, _, _ := runBinary(t, "config", "show", "--changed", "--defaults"); code != exitUsage {
		t.Fatalf("--changed with --defaults: exit %d", code)
	}
}
