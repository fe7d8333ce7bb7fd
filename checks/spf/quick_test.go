package spf

import (
	"context"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"mxguard/checks/check"
	"mxguard/checks/check/checktest"
	"mxguard/checks/resolver"
	"mxguard/checks/resolver/dnstest"
)

// With every record it needs in the resolver's cache, SPF answers at once
// (Quick, on the deciding goroutine), with what Run answers; with one
// missing it declines without sending a query, and Run asks.
func TestQuickFromCache(t *testing.T) {
	srv := dnstest.Start(t, zone)
	r, err := resolver.New(resolver.Options{Servers: []string{srv.Addr()}, Timeout: time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	d := Facts{}.Define(check.Env{Resolver: r})
	if d.Quick == nil {
		t.Fatal("no Quick")
	}
	// Each case names its own domains, so that the ones before it have
	// not cached them.
	for _, dom := range []string{"example.com", "mail.example.com", "helo-fail.example.com"} {
		from := "a@" + dom
		v := checktest.View{ClientIP: netip.MustParseAddr("192.0.2.10"), HELOName: dom, Sender: from}
		q := srv.Queries()
		if res, ok := d.Quick(v); ok {
			t.Fatalf("%s: Quick answered %+v from a cold cache", from, res)
		}
		if srv.Queries() != q {
			t.Fatalf("%s: Quick sent %d queries", from, srv.Queries()-q)
		}
		want := d.Run(context.Background(), v)
		q = srv.Queries()
		got, ok := d.Quick(v)
		if !ok || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: Quick from a warm cache = %+v, %v; Run = %+v", from, got, ok, want)
		}
		if srv.Queries() != q {
			t.Errorf("%s: Quick from a warm cache sent %d queries", from, srv.Queries()-q)
		}
	}
}
