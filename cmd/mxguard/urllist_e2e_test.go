package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mxguard/checks/resolver/dnstest"
)

// TestCheckShowsURLs: mxguard check prints the URLs of a stored message by
// host, with how many URLs each, the zones that list it with the code that
// answered and the zone's weight (a SURBL-style bitmask answer and an
// address written as an integer among them), a lookup that failed, and the
// host past uribl.max_domains that was not looked up.
func TestCheckShowsURLs(t *testing.T) {
	srv := dnstest.StartFiles(t, corpusPath("zones/e2e.zone"), corpusPath("zones/uribl.zone"))
	srv.ServFail("both.example.dbl.test")
	cfg := filepath.Join(t.TempDir(), "mxguard.yaml")
	if err := os.WriteFile(cfg, []byte(`hostname: mx.example.org
listen:
  - address: 127.0.0.1:2525
backend:
  address: 127.0.0.1:2526
domains: [example.org]
dns:
  servers: [`+srv.Addr()+`]
uribl:
  max_domains: 3
  zones:
    - zone: dbl.test
      weight: 10
      codes: 127.0.1.2-127.0.1.99
    - zone: multi.test
      weight: 5
      bitmask: 0x4c
    - zone: ip.test
      weight: 3
`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errb := runBinary(t, "check", "--config", cfg, "--client-ip", "127.0.0.1", "--helo", "c.sender.test",
		"--mail-from", "alice@sender.test", "--rcpt", "user@example.org", corpusPath("messages/links.eml"))
	if code != 0 {
		t.Fatalf("exit %d:\n%s\n%s", code, out, errb)
	}
	for _, want := range []string{
		"urls: 7 URLs to 5 domains and addresses (looked up in dbl.test, multi.test, ip.test)\n",
		"  good.example                     3 URLs   not listed\n",
		"  bad.example                      1 URL    listed by dbl.test 127.0.1.2 (weight 10)\n",
		"  both.example                     1 URL    listed by multi.test 127.0.0.68 (weight 5); failed: dbl.test: temperror\n",
		"  192.168.1.1                      1 URL    listed by ip.test 127.0.0.2 (weight 3)\n",
		"  late.example                     1 URL    not looked up (past uribl.max_domains 3)\n",
		"  score 18 (listed by dbl.test, multi.test, ip.test)\n",
		"final: reject at data (uribl): 554 5.7.1 message refused: listed URL domain: bad.example=dbl.test, both.example=multi.test, 192.168.1.1=ip.test",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}

	// Without uribl zones the URLs are still shown, not looked up.
	code, out, errb = runBinary(t, "check", "--dns", srv.Addr(), "--client-ip", "127.0.0.1", "--helo", "c.sender.test",
		"--mail-from", "alice@sender.test", "--rcpt", "user@example.org", corpusPath("messages/links.eml"))
	if code != 0 {
		t.Fatalf("exit %d:\n%s\n%s", code, out, errb)
	}
	for _, want := range []string{
		"urls: 7 URLs to 5 domains and addresses (no uribl zones configured: not looked up)\n",
		"  good.example                     3 URLs   -\n",
		"  192.168.1.1                      1 URL    -\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output without zones lacks %q:\n%s", want, out)
		}
	}
}
