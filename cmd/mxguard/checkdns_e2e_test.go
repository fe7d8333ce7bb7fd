package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mxguard/checks/resolver/dnstest"
)

// TestCheckNamesConfiguredResolver runs "mxguard check" with a config
// and no --dns: it asks the servers of the config's dns.servers (two
// loopback test servers here, never the machine's resolver), says so on
// standard error, and its Authentication-Results header carries the
// config's hostname as authserv-id, never an empty one.
func TestCheckNamesConfiguredResolver(t *testing.T) {
	dns := dnstest.StartFiles(t, corpusPath("zones/e2e.zone"))
	second := dnstest.StartFiles(t, corpusPath("zones/e2e.zone"))
	dir := t.TempDir()
	cfg := filepath.Join(dir, "mxguard.yaml")
	if err := os.WriteFile(cfg, []byte(`hostname: mx.example.org
listen:
  - address: 127.0.0.1:2525
backend:
  address: 127.0.0.1:2526
domains: [example.org]
dns:
  servers: [`+dns.Addr()+`, `+second.Addr()+`]
  timeout: 2s
`), 0o600); err != nil {
		t.Fatal(err)
	}
	eml := filepath.Join(dir, "m.eml")
	if err := os.WriteFile(eml, []byte("From: a@sender.test\r\nTo: user@example.org\r\nDate: Mon, 30 Nov 2026 07:00:00 +0000\r\nMessage-ID: <c1@sender.test>\r\nSubject: hi\r\n\r\nfine\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errb := runBinary(t, "check", "--config", cfg, "--client-ip", "127.0.0.1", "--helo", "c.sender.test",
		"--mail-from", "a@sender.test", "--rcpt", "user@example.org", eml)
	if code != 0 {
		t.Fatalf("exit %d:\n%s\n%s", code, out, errb)
	}
	if want := "mxguard check: DNS from " + dns.Addr() + ", " + second.Addr() + " (dns.servers)\n"; !strings.Contains(errb, want) {
		t.Errorf("check does not name the configured resolver: stderr %q, want %q", errb, want)
	}
	if strings.Contains(errb, "/etc/resolv.conf") {
		t.Errorf("check names the machine's resolver though the config lists servers: %q", errb)
	}
	if dns.Queries() == 0 {
		t.Error("the configured server was never asked")
	}
	if !strings.Contains(out, "adds header: Authentication-Results: mx.example.org;") || strings.Contains(out, "Authentication-Results: ;") {
		t.Errorf("check's Authentication-Results should carry the config's hostname:\n%s", out)
	}
	if !strings.Contains(out, "spf=pass") {
		t.Errorf("SPF should pass from the test zone (sender.test allows 127.0.0.0/8):\n%s", out)
	}
}
