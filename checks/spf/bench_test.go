package spf

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"mxguard/checks/resolver"
	"mxguard/checks/resolver/dnstest"
)

// benchZone is a typical policy: an include, then a and mx. The client is
// the MX host, so every term is evaluated before the match: five DNS-querying
// terms and their A/AAAA/MX/TXT lookups (RFC 7208 §4.6.4).
const benchZone = `
$ORIGIN example.com.
@          TXT  "v=spf1 include:_spf.example.net a mx -all"
@          A    192.0.2.1
@          MX   10 mx1
@          MX   20 mx2
mx1        A    192.0.2.25
mx2        A    192.0.2.26
mx2        AAAA 2001:db8::26
mail       A    192.0.2.26
mail       TXT  "v=spf1 a -all"
$ORIGIN example.net.
_spf       TXT  "v=spf1 ip4:198.51.100.0/24 ip6:2001:db8:ffff::/48 ~all"
`

// BenchmarkCheckWarmCache measures one Check (MAIL FROM and HELO) when every
// DNS answer is already in the resolver's cache: the cost of evaluation
// alone, without the network.
func BenchmarkCheckWarmCache(b *testing.B) {
	srv := dnstest.Start(b, benchZone)
	r, err := resolver.New(resolver.Options{
		Servers:  []string{srv.Addr()},
		Timeout:  time.Second,
		Attempts: 1,
	})
	if err != nil {
		b.Fatal(err)
	}
	c := &Checker{Resolver: r}
	in := Input{IP: netip.MustParseAddr("192.0.2.26"), HELO: "mail.example.com", MailFrom: "alice@example.com"}
	ctx := context.Background()

	want := Result{Result: Pass, Domain: "example.com", Identity: IdentityMailFrom, HELOResult: Pass}
	got := c.Check(ctx, in) // warm the cache
	got.Detail = ""
	if got != want {
		b.Fatalf("got %+v, want %+v", got, want)
	}
	queries := srv.Queries()

	b.ReportAllocs()
	for b.Loop() {
		c.Check(ctx, in)
	}
	if n := srv.Queries() - queries; n != 0 {
		b.Fatalf("%d DNS queries with a warm cache, want 0", n)
	}
}
