package proxy

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mxguard/checks/resolver"
	"mxguard/checks/resolver/dnstest"
	"mxguard/internal/membudget"
	"mxguard/policy"
)

// budgetProxy is a proxy whose spool and DKIM prefetcher share mem, with
// every authentication check on, so that the prefetcher reads ahead.
func budgetProxy(t *testing.T, mem *membudget.Budget, spoolDir string, threshold int) (*proxyHarness, *testBackend) {
	t.Helper()
	dns := dnstest.Start(t, "sender.test. 300 IN TXT \"v=spf1 ip4:127.0.0.0/8 -all\"\n")
	res, err := resolver.New(resolver.Options{Servers: []string{dns.Addr()}, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	be := startBackend(t, nil)
	h := startProxy(t, be.addr, func(o *Options, _ *BackendOptions) {
		o.Spool = Spool{Dir: spoolDir, Threshold: threshold, Memory: mem}
		o.Policy = policy.NewEngine(policy.Options{Domains: []string{"example.org"}, Resolver: res,
			Hostname: "mx.example.org", AuthResults: true, Memory: mem})
	})
	return h, be
}

// openTx greets and opens a transaction ready for DATA or BDAT.
func openTx(t *testing.T, addr string) *dialog {
	t.Helper()
	d := dial(t, addr)
	d.expect("", "220 ")
	d.expect("EHLO client.sender.test", "250 ")
	d.expect("MAIL FROM:<alice@sender.test>", "250 ")
	d.expect("RCPT TO:<user@example.org>", "250 ")
	return d
}

// body is a message of about n octets with a complete header section.
func body(n int) string {
	var b strings.Builder
	b.WriteString("From: alice@sender.test\r\nSubject: budget\r\n\r\n")
	for b.Len() < n {
		b.WriteString(strings.Repeat("y", 70) + "\r\n")
	}
	return b.String()
}

// TestMemoryBudgetComesBackAfterEverySession runs sessions that end in
// every way a message can (delivered in memory or from the spool, refused,
// abandoned mid-DATA or mid-BDAT, reset, cut off in the header the DKIM
// prefetcher holds) next to sessions parked with content in memory: while
// they run the budget is never exceeded, and once they are gone it is back
// at zero. A leak here would shrink the budget for good.
func TestMemoryBudgetComesBackAfterEverySession(t *testing.T) {
	const limit = 32 * chunkSize
	mem := membudget.New(limit)
	h, be := budgetProxy(t, mem, t.TempDir(), 256<<10)

	// Parked sessions take more than half the budget (18 chunks of 32).
	var parked []*dialog
	for range 6 {
		d := openTx(t, h.addr)
		d.expect("DATA", "354 ")
		d.send(body(40 << 10))
		parked = append(parked, d)
	}
	const parkedHeld = 18 * chunkSize
	waitFor(t, "the parked content to be held", func() bool { return mem.InUse() == parkedHeld })

	scenarios := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"delivered in memory", func(t *testing.T) {
			d := openTx(t, h.addr)
			defer d.c.Close()
			d.expect("DATA", "354 ")
			d.send(body(2000) + ".\r\n")
			d.expect("", "250 ")
			d.expect("QUIT", "221 ")
		}},
		{"past the threshold, delivered from the spool", func(t *testing.T) {
			d := openTx(t, h.addr)
			defer d.c.Close()
			d.expect("DATA", "354 ")
			d.send(body(300<<10) + ".\r\n")
			d.expect("", "250 ")
		}},
		{"past the budget, delivered from the spool", func(t *testing.T) {
			d := openTx(t, h.addr)
			defer d.c.Close()
			d.expect("DATA", "354 ")
			d.send(body(240<<10) + ".\r\n")
			d.expect("", "250 ")
		}},
		{"too big", func(t *testing.T) {
			d := openTx(t, h.addr)
			defer d.c.Close()
			d.expect("DATA", "354 ")
			d.send(body(1100<<10) + ".\r\n")
			d.expect("", "552 5.3.4")
		}},
		{"refused by the rules", func(t *testing.T) {
			d := openTx(t, h.addr)
			defer d.c.Close()
			d.expect("DATA", "354 ")
			d.send("From: alice@sender.test\r\n\r\nbare\nLF\r\n.\r\n")
			d.expect("", "554 5.6.0")
		}},
		{"client gone mid-DATA", func(t *testing.T) {
			d := openTx(t, h.addr)
			defer d.c.Close()
			d.expect("DATA", "354 ")
			d.send(body(30 << 10))
			d.c.Close()
		}},
		{"client gone in a signed header", func(t *testing.T) {
			d := openTx(t, h.addr)
			defer d.c.Close()
			d.expect("DATA", "354 ")
			d.send("DKIM-Signature: v=1; a=rsa-sha256; d=sender.test; s=sel;\r\n" + strings.Repeat("X-Filler: "+strings.Repeat("z", 60)+"\r\n", 300))
			// The header section so far is in the spool (two chunks)
			// and, read ahead, in the DKIM prefetcher.
			waitFor(t, "the prefetcher to hold the header", func() bool { return mem.InUse() > parkedHeld+2*chunkSize })
			d.c.Close()
		}},
		{"BDAT chunks, then RSET", func(t *testing.T) {
			d := openTx(t, h.addr)
			defer d.c.Close()
			chunk := body(20 << 10)
			d.send(fmt.Sprintf("BDAT %d\r\n%s", len(chunk), chunk))
			d.expect("", "250 ")
			d.expect("RSET", "250 ")
			d.expect("QUIT", "221 ")
		}},
		{"BDAT cut off mid-chunk", func(t *testing.T) {
			d := openTx(t, h.addr)
			defer d.c.Close()
			chunk := body(20 << 10)
			d.send(fmt.Sprintf("BDAT %d\r\n%s", 100<<10, chunk))
			d.c.Close()
		}},
		{"BDAT LAST", func(t *testing.T) {
			d := openTx(t, h.addr)
			defer d.c.Close()
			chunk := body(90 << 10)
			d.send(fmt.Sprintf("BDAT %d\r\n%s", len(chunk)/2, chunk[:len(chunk)/2]))
			d.expect("", "250 ")
			d.send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(chunk)-len(chunk)/2, chunk[len(chunk)/2:]))
			d.expect("", "250 ")
		}},
		{"two messages, one session", func(t *testing.T) {
			d := openTx(t, h.addr)
			defer d.c.Close()
			d.expect("DATA", "354 ")
			d.send(body(50<<10) + ".\r\n")
			d.expect("", "250 ")
			d.expect("MAIL FROM:<alice@sender.test>", "250 ")
			d.expect("RCPT TO:<user@example.org>", "250 ")
			d.expect("DATA", "354 ")
			d.send(body(10<<10) + ".\r\n")
			d.expect("", "250 ")
		}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			sc.run(t)
			if n := mem.InUse(); n > limit {
				t.Fatalf("%d octets held, over the budget of %d", n, limit)
			}
			waitFor(t, "the session to end", func() bool { return h.srv.Active() == len(parked) })
			if n := mem.InUse(); n != parkedHeld {
				t.Fatalf("%d octets held once the session ended, want the parked sessions' %d", n, parkedHeld)
			}
		})
	}
	for _, d := range parked {
		d.c.Close()
	}
	waitFor(t, "every session to end", func() bool { return h.srv.Active() == 0 })
	if n := mem.InUse(); n != 0 {
		t.Fatalf("%d octets of the budget still held after every session ended", n)
	}
	if got := len(be.messages()); got != 6 {
		t.Fatalf("backend holds %d messages, want the 6 delivered", got)
	}
	if left, _ := filepath.Glob(filepath.Join(h.dir, "*")); len(left) != 0 {
		t.Fatalf("spool files left: %v", left)
	}
}

// When the content cannot stay in memory and the spool cannot be written,
// the client hears 451 4.3.0 and retries: not 250, not silence.
func TestSpoolFailureTempfails(t *testing.T) {
	for _, c := range []struct {
		name   string
		budget int64
		size   int
	}{
		{"past the threshold", 1 << 20, 100 << 10},
		{"past the budget", 0, 500},
	} {
		t.Run(c.name, func(t *testing.T) {
			mem := membudget.New(c.budget)
			h, be := budgetProxy(t, mem, filepath.Join(t.TempDir(), "gone"), 64<<10)
			d := openTx(t, h.addr)
			d.expect("DATA", "354 ")
			d.send(body(c.size) + ".\r\n")
			d.expect("", "451 4.3.0")
			// The session goes on.
			d.expect("MAIL FROM:<alice@sender.test>", "250 ")
			d.expect("RCPT TO:<user@example.org>", "250 ")
			chunk := body(c.size)
			d.send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(chunk), chunk))
			d.expect("", "451 4.3.0")
			d.expect("QUIT", "221 ")
			if got := len(be.messages()); got != 0 {
				t.Fatalf("backend holds %d messages", got)
			}
			waitFor(t, "the session to end", func() bool { return h.srv.Active() == 0 })
			if mem.InUse() != 0 {
				t.Fatalf("%d octets of the budget held", mem.InUse())
			}
		})
	}
}
