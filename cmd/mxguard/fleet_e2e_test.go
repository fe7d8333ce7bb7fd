package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mxguard/checks/resolver/dnstest"
	"mxguard/internal/testhaproxy"
	"mxguard/internal/testredis"
)

// fleet is three mxguard instances behind a real HAProxy that passes each
// client's address with PROXY v2, sharing their state through a real
// Redis, each delivering to its own built-in sink.
type fleet struct {
	t     *testing.T
	redis *testredis.Server
	lb    *testhaproxy.Proxy
	sinks map[string]string // instance hostname → its sink's folder
}

func startFleet(t *testing.T) *fleet {
	t.Helper()
	f := &fleet{t: t, redis: testredis.Start(t), sinks: map[string]string{}}
	dns := dnstest.StartFiles(t, corpusPath("zones/e2e.zone"))
	var listens []string
	for i := 1; i <= 3; i++ {
		host := fmt.Sprintf("mx%d.example.org", i)
		sink := t.TempDir()
		f.sinks[host] = sink
		// Loopback is not exempt here: every client of the test is one.
		// The network factor is high so that the clients, which all
		// come from 127.0.0.0/24, are limited per address.
		_, listen := startMxguard(t, `
hostname: `+host+`
listen:
  - address: LISTEN
    proxy_protocol: true
    proxy_trusted: [127.0.0.1/32]
backend:
  address: builtin:`+sink+`
domains: [example.org]
dns:
  servers: [`+dns.Addr()+`]
limits:
  exempt: []
  rate:
    messages_per_minute: 3
    net_factor: 100
greylist:
  enabled: true
  delay: 1s
state:
  dir: `+t.TempDir()+`
  redis:
    address: `+f.redis.Addr+`
    timeout: 200ms
`)
		listens = append(listens, listen)
	}
	f.lb = testhaproxy.Start(t, testhaproxy.Options{Backends: listens, ProxyV2: true})
	return f
}

// dial connects from src through the balancer and returns the session and
// the instance that answered (its hostname, from the banner).
func (f *fleet) dial(src string) (*conv, string) {
	f.t.Helper()
	c := dialConv(f.t, src, f.lb.Addr)
	banner := c.say("", "220 ")
	host, _, _ := strings.Cut(strings.TrimPrefix(banner, "220 "), " ")
	if _, ok := f.sinks[host]; !ok {
		f.t.Fatalf("banner %q names no instance of the fleet", banner)
	}
	c.say("EHLO client.example.net", "250 ")
	return c, host
}

// dialOther is dial until an instance other than not answers.
func (f *fleet) dialOther(src, not string) (*conv, string) {
	f.t.Helper()
	for range 20 {
		c, host := f.dial(src)
		if host != not {
			return c, host
		}
		c.say("QUIT", "221 ")
	}
	f.t.Fatalf("20 connections through the balancer all reached %s", not)
	return nil, ""
}

// mail starts a transaction and returns MAIL's reply.
func (c *conv) mail(from string) string {
	c.t.Helper()
	fmt.Fprintf(c.c, "MAIL FROM:<%s>\r\n", from)
	return c.say("", "")
}

// delivered counts the messages every instance's sink holds with a
// Message-ID holding id.
func (f *fleet) delivered(id string) (n int) {
	f.t.Helper()
	for _, dir := range f.sinks {
		files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
		for _, file := range files {
			if data, err := os.ReadFile(file); err == nil && strings.Contains(string(data), id) {
				n++
			}
		}
	}
	return n
}

// overLimit sends MAIL from src through the balancer until the fleet has
// refused it three times, and returns how many it accepted and how many
// instances took part.
func (f *fleet) overLimit(src string) (accepted int, instances map[string]bool) {
	f.t.Helper()
	instances = map[string]bool{}
	refused := 0
	for range 30 {
		c, host := f.dial(src)
		instances[host] = true
		rep := c.mail("alice@sender.test")
		switch {
		case strings.HasPrefix(rep, "250 "):
			accepted++
		case strings.HasPrefix(rep, "451 4.7.1 too many messages per minute from "+src):
			refused++
		default:
			f.t.Fatalf("MAIL from %s on %s: %q", src, host, rep)
		}
		c.say("QUIT", "221 ")
		if refused == 3 {
			return accepted, instances
		}
	}
	f.t.Fatalf("30 transactions from %s and the fleet refused %d", src, refused)
	return
}

// TestFleetSharesStateThroughRedis: three instances behind HAProxy
// (send-proxy-v2) share one Redis. A client over its message rate is
// limited fleet-wide, whichever instance it reaches; a greylisted triplet
// retried through another instance passes; with Redis killed mid-run mail
// is still delivered, nothing lost; with Redis back, the limits are shared
// again.
func TestFleetSharesStateThroughRedis(t *testing.T) {
	f := startFleet(t)

	// The rate limit is the fleet's: 3 MAILs a minute, wherever they land.
	accepted, instances := f.overLimit("127.0.0.5")
	if accepted != 3 || len(instances) < 2 {
		t.Fatalf("the fleet accepted %d MAILs from one client over %d instances, want 3 over at least 2", accepted, len(instances))
	}

	// Greylisting: the first attempt is delayed on one instance, the
	// retry after the delay passes on another.
	c, first := f.dial("127.0.0.6")
	c.mail("bob@nospf.test")
	c.say("RCPT TO:<user@example.org>", "451 4.7.1 greylisted")
	c.say("QUIT", "221 ")
	time.Sleep(1100 * time.Millisecond)
	c, second := f.dialOther("127.0.0.6", first)
	c.mail("bob@nospf.test")
	c.say("RCPT TO:<user@example.org>", "250 ")
	c.data("Subject: t\r\nFrom: <bob@nospf.test>\r\nMessage-ID: <grey-retry@nospf.test>\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n\r\nhi\r\n", "250 ")
	c.say("QUIT", "221 ")
	if n := f.delivered("grey-retry@nospf.test"); n != 1 {
		t.Fatalf("the retry through %s (first seen by %s) was delivered %d times, want once", second, first, n)
	}

	// Redis dies mid-run: every instance keeps taking mail, from its own
	// memory, and nothing acknowledged is lost. (Three messages: each
	// instance alone allows three a minute, wherever they land.)
	f.redis.Stop()
	for i := range 3 {
		c, host := f.dial("127.0.0.7")
		if rep := c.mail("alice@sender.test"); !strings.HasPrefix(rep, "250 ") {
			t.Fatalf("MAIL on %s with Redis down: %q", host, rep)
		}
		c.say("RCPT TO:<user@example.org>", "250 ")
		c.data(fmt.Sprintf("Subject: t\r\nFrom: <alice@sender.test>\r\nMessage-ID: <down-%d@sender.test>\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n\r\nhi\r\n", i), "250 ")
		c.say("QUIT", "221 ")
	}
	for i := range 3 {
		if n := f.delivered(fmt.Sprintf("down-%d@sender.test", i)); n != 1 {
			t.Errorf("message %d acknowledged with Redis down was delivered %d times, want once", i, n)
		}
	}

	// Redis is back (empty, as after a crash): once each instance has
	// tried it again (the fallback retries every 5 s), the limits are the
	// fleet's again. Each try is a new client, so that what the instances
	// counted on their own while Redis was away does not count.
	f.redis.Restart(t)
	deadline := time.Now().Add(30 * time.Second)
	for i := 8; ; i++ {
		accepted, instances = f.overLimit(fmt.Sprintf("127.0.0.%d", i))
		if accepted == 3 && len(instances) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s after Redis came back, the fleet still accepted %d MAILs from one client over %d instances, want 3", accepted, len(instances))
		}
		time.Sleep(time.Second)
	}
}
