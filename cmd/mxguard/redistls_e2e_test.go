package main

import (
	"crypto/tls"
	"strings"
	"testing"

	"mxguard/internal/testcert"
	"mxguard/internal/testredis"
)

// TestRedisTLSThroughServe: serve reaches a Redis that speaks TLS only
// with state.redis.tls (the CA file and the name in the server's
// certificate): the rate limits' buckets are in Redis, and mxguard state
// lists them over TLS. With a CA that did not sign the server's
// certificate, serve does not use that Redis: it says so, and mail is
// still delivered from this instance's memory.
func TestRedisTLSThroughServe(t *testing.T) {
	p := testcert.New(t, "redis.test")
	srv := testredis.StartTLS(t, testredis.TLS{CertFile: p.CertFile, KeyFile: p.KeyFile, CAFile: p.CertFile,
		ClientConfig: &tls.Config{RootCAs: p.Pool, ServerName: "redis.test", MinVersion: tls.VersionTLS12}})
	other := testcert.New(t, "redis.test")
	for _, tc := range []struct {
		name, ca string
		good     bool
	}{
		{"the right CA", p.CertFile, true},
		{"another CA", other.CertFile, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := map[bool]string{true: "good:", false: "bad:"}[tc.good]
			d, listen := startMxguard(t, `hostname: mx.example.org
listen:
  - address: LISTEN
backend:
  address: builtin:`+t.TempDir()+`
domains: [example.org]
limits:
  exempt: []
state:
  redis:
    address: `+srv.Addr+`
    key_prefix: "`+prefix+`"
    tls:
      ca: `+tc.ca+`
      server_name: redis.test
`)
			c := dialConv(t, "127.0.0.5", listen)
			c.say("", "220 ")
			c.say("EHLO client.sender.test", "250 ")
			c.say("MAIL FROM:<alice@sender.test>", "250 ")
			c.say("RCPT TO:<user@example.org>", "250 ")
			c.data("From: alice@sender.test\r\nSubject: hi\r\nMessage-ID: <tls@sender.test>\r\n\r\nhello\r\n", "250 ")
			c.say("QUIT", "221 ")
			cfgPath := d.cmd.Args[len(d.cmd.Args)-1]
			code, out, errb := runBinary(t, "state", "list", "--config", cfgPath, "--client", "127.0.0.5")
			if tc.good {
				if code != 0 || !strings.Contains(out, "rate:") {
					t.Fatalf("state list over TLS: exit %d\n%s%s", code, out, errb)
				}
				if strings.Contains(d.out.String(), "does not answer") || strings.Contains(d.out.String(), "shared store failed") {
					t.Errorf("serve did not reach Redis over TLS:\n%s", d.out.String())
				}
				return
			}
			if code != 1 || !strings.Contains(errb, "certificate") {
				t.Fatalf("state list with another CA: exit %d\n%s%s", code, out, errb)
			}
			if !strings.Contains(d.out.String(), "certificate") {
				t.Errorf("serve did not say why it cannot use Redis:\n%s", d.out.String())
			}
		})
	}
}
